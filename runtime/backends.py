"""Which backend runs an artefact, and opening an engine on it.

`choose_backend` decides once, from the artefact, the request, the device
and this CPU; `open_engine` opens that choice. `auto` means:

- a TensorRT plan runs on TensorRT;
- an `.onnx` on a GPU (`--device cuda`, or `auto` where ONNX Runtime has
  CUDA) runs on ONNX Runtime there;
- on a CPU with native bf16 (AMX or AVX512-BF16), with OpenVINO installed
  and an artefact whose OpenVINO bf16 parity gate passed at export, the
  generator runs on OpenVINO in bf16, the compose on OpenVINO in f32 and the
  lightness stage on ONNX Runtime (`openvino_runner` says why);
- otherwise ONNX Runtime runs the fused graph. Without native bf16, OpenVINO
  would run the generator in f32; that is not measured to be faster end to
  end, so `auto` does not pick it (ask for it with `--backend openvino`).

The CPU's flags come from `retint.cpu` (RETINT_CPU_HIDE_FLAGS hides some, so
that a CPU with native bf16 takes the path of one without: the tests' way of
checking both).

Precision is never lowered silently: the spec's `precision` and `reason` say
what runs and why, and the batch summary and manifest repeat them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from retint.cpu import native_bf16_flags, without_native_bf16
from retint.errors import EngineError
from retint.runtime.artefact import Artefact, require_stages, require_uncertainty_head
from retint.runtime.engine import Engine, SpecFacts
from retint.runtime.metadata import ArtefactMetadata, SizeLimits

BACKENDS = ("auto", "onnxruntime", "openvino", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")  # where an .onnx engine runs (a .plan: always cuda)
# OpenVINO's compose agrees with ONNX Runtime's to within this many levels (float32 rounding at
# a level's edge), or ONNX Runtime keeps it.
COMPOSE_TOLERANCE = 1
OPENVINO_BF16_GATE = "openvino-bf16"  # the parity entry export-trt records in the generator's sidecar


@dataclass(frozen=True)
class BackendChoice:
    backend: str  # "onnxruntime", "openvino" or "tensorrt"
    device: str  # "cpu" or "cuda"
    reason: str  # one clause: why this one


def choose_backend(artefact: Artefact, requested: str = "auto", device: str = "auto",
                   providers: Sequence[str] | None = None) -> BackendChoice:
    """See the module doc. Raises EngineError / BackendUnavailable for a request that cannot run."""
    if requested not in BACKENDS:
        raise EngineError(f"unknown backend {requested!r}; use one of {', '.join(BACKENDS)}")
    if artefact.format == "tensorrt":
        if requested not in ("auto", "tensorrt"):
            raise EngineError(f"{artefact.name} is a TensorRT plan; --backend {requested} runs .onnx files "
                              f"(give the .onnx exported beside it)")
        if device == "cpu":
            raise EngineError(f"{artefact.name} is a TensorRT engine; it cannot run on the CPU")
        return BackendChoice("tensorrt", "cuda", "a .plan runs on TensorRT")
    if requested == "tensorrt":
        raise EngineError(f"{artefact.name} is an ONNX graph; build a TensorRT plan with export-trt, or run it "
                          f"on ONNX Runtime's TensorRT provider")
    from retint.runtime.onnx_runner import CPU, choose_providers

    on_gpu = choose_providers(device, providers)[0] != CPU
    if requested == "openvino":
        if on_gpu:
            raise EngineError("the OpenVINO backend runs on the CPU; use --device cpu (or auto without CUDA)")
        _require_openvino(artefact)
        return BackendChoice("openvino", "cpu", "asked for")
    if requested == "onnxruntime":
        return BackendChoice("onnxruntime", "cuda" if on_gpu else "cpu", "asked for")
    if on_gpu:
        return BackendChoice("onnxruntime", "cuda", "auto: ONNX Runtime has CUDA here")
    if artefact.stages is None:
        return BackendChoice("onnxruntime", "cpu", "auto: the engine's stage files are not beside it")
    blocker = bf16_blocker(artefact.generator_metadata)
    if blocker:
        return BackendChoice("onnxruntime", "cpu", f"auto: {blocker}, so OpenVINO would run f32, not "
                                                   f"measured faster than ONNX Runtime")
    from retint.runtime.openvino_runner import openvino_installed

    native = "/".join(native_bf16_flags())
    if not openvino_installed():
        return BackendChoice("onnxruntime", "cpu", f"auto: this CPU has {native} but OpenVINO is "
                                                   f"not installed (pip install 'retint[openvino]')")
    return BackendChoice("openvino", "cpu", f"auto: this CPU has {native}; OpenVINO runs the "
                                            f"generator (bf16) and the compose about 2x faster")


@dataclass(frozen=True)
class EngineSettings:
    """How to open an engine on a choice: the inference plan's threads and streams and the
    caller's options (see `load_engine` for each)."""

    cpu_threads: int = 0  # ONNX Runtime's threads per call (0: one per core)
    streams: int = 1  # concurrent callers OpenVINO prepares for
    by_stages: bool = False  # a StagedEngine (predict/compose) even where the fused graph would do
    mute_uncertain: bool = False  # needs the interval stage, so it runs by stages
    temperature: float | None = None  # None: the artefact's default
    providers: tuple[str, ...] | None = None  # ONNX Runtime execution providers named explicitly


def open_engine(artefact: Artefact, choice: BackendChoice, settings: EngineSettings = EngineSettings()) -> Engine:
    """An engine on `choice`, its spec complete. A TensorRT plan asked to run by stages (temporal
    smoothing, --mute-uncertain) runs its ONNX stages on ONNX Runtime, and its spec says so."""
    alpha = artefact.uncertainty_alpha
    if settings.mute_uncertain:
        require_uncertainty_head(artefact.name, alpha, "--mute-uncertain")
    by_stages = settings.by_stages or settings.mute_uncertain
    if by_stages and choice.backend == "tensorrt":
        choice = stages_of_plan(choice)
    facts = SpecFacts(reason=choice.reason, uncertainty_alpha=alpha, mute_uncertain=settings.mute_uncertain,
                      temperature=settings.temperature,
                      distribution_stage=artefact.stages is not None and artefact.stages.distribution is not None,
                      stages=artefact.stages is not None, name=artefact.name)
    if by_stages or choice.backend == "openvino":
        return _open_staged(artefact, choice, settings, facts)
    open_side_stages = None
    if artefact.stages is not None:
        # The fused graph or plan has no interval or distribution output and no step between its
        # generator and compose: guided, uncertainty and suggest calls run the stages on ONNX Runtime.
        interval_choice = BackendChoice("onnxruntime", choice.device,
                                        "guides, intervals and the distribution run by stages on ONNX Runtime")
        interval_facts = replace(facts, reason=interval_choice.reason)
        interval_settings = replace(settings, streams=1, providers=None)

        def open_side_stages() -> Engine:
            return _open_staged(artefact, interval_choice, interval_settings, interval_facts)
    if choice.backend == "tensorrt":
        from retint.runtime.tensorrt_runner import TensorRTEngine

        return TensorRTEngine(artefact.path, artefact.metadata, facts=facts, open_side_stages=open_side_stages)
    from retint.runtime.onnx_runner import OnnxEngine

    return OnnxEngine(artefact.path, device=choice.device, providers=settings.providers, threads=settings.cpu_threads,
                      metadata=artefact.metadata, facts=facts, open_side_stages=open_side_stages)


def stages_of_plan(choice: BackendChoice) -> BackendChoice:
    """Where a TensorRT plan's work runs when it must run by stages: a plan has none, so the
    ONNX stages exported beside it run on ONNX Runtime on the same device."""
    return BackendChoice("onnxruntime", choice.device, "a TensorRT plan has no stages, so its ONNX stages "
                                                       "run on ONNX Runtime")


def _open_staged(artefact: Artefact, choice: BackendChoice, settings: EngineSettings, facts: SpecFacts) -> Engine:
    from retint.runtime.onnx_runner import OnnxCompose, OnnxGenerator, choose_providers, open_session
    from retint.runtime.split import Generator, StagedEngine

    stages = require_stages(artefact, "the OpenVINO backend" if choice.backend == "openvino" else "running by stages")
    generator_metadata = artefact.generator_metadata
    render_size = generator_metadata.render_size if generator_metadata else 0
    chosen = choose_providers(choice.device, settings.providers)  # "cpu" whenever OpenVINO was chosen
    cpu_threads, streams = settings.cpu_threads, settings.streams
    # With OpenVINO working between the ONNX Runtime stages, spinning ORT threads would hold the
    # cores it needs (benchmarks/README.md, "The CPU fast path", has the timings).
    spinning = choice.backend != "openvino"
    lightness = open_session(stages.lightness, chosen, cpu_threads, spinning)
    compose_session = open_session(stages.compose, chosen, cpu_threads, spinning)
    compose = OnnxCompose(compose_session)
    # The chroma the compose takes: render size, or half of it for a distribution head.
    ab_side = compose_session.get_inputs()[1].shape[-1]
    if not render_size:
        render_size = int(lightness.get_outputs()[0].shape[-1])
    generator: Generator
    if choice.backend == "openvino":
        from retint.runtime.openvino_runner import OpenVinoGenerator

        precision, why = openvino_precision(generator_metadata)
        threads = cpu_threads * streams if cpu_threads else 0
        generator = OpenVinoGenerator(stages.generator, precision, render_size, streams=streams, threads=threads)
        compose, compose_note = _compose_on_openvino(stages.compose, compose,
                                                     ab_side if isinstance(ab_side, int) else render_size,
                                                     streams, threads)
        provider = f"OpenVINO {generator.version} CPU for the generator{compose_note}"
        facts = replace(facts, reason=f"{facts.reason}; {why}")
    else:
        generator = OnnxGenerator(open_session(stages.generator, chosen, cpu_threads))
        precision = generator_metadata.precision if generator_metadata else "unknown"
        provider = f"{chosen[0]}, by stages"
    interval = open_session(stages.interval, chosen, cpu_threads, spinning) if stages.interval else None
    # Opened on the first suggest or uncertainty call: plain colouring never needs it.
    distribution_path = stages.distribution
    distribution = (None if distribution_path is None else
                    lambda: open_session(distribution_path, chosen, cpu_threads, spinning))
    metadata = artefact.metadata or generator_metadata
    # Every sidecar of one export carries the same limits and bins (export/pipeline.py).
    spec = facts.spec(path=artefact.path, backend=choice.backend, provider=provider, precision=precision,
                      render_size=render_size, limits=metadata.limits if metadata else SizeLimits(),
                      metadata=metadata)
    return StagedEngine(lightness, generator, compose, spec, interval, distribution)


def _compose_on_openvino(path, on_onnxruntime, ab_side: int, streams: int, threads: int):
    """(compose, provider note): OpenVINO's compose where it compiles and agrees with ONNX Runtime's.

    Its graph is rewritten and compiled with a property OpenVINO does not list
    (`openvino_graph`, `openvino_runner`), so it is checked once here, on every
    grey level, against ONNX Runtime's compose of the same file; where either
    fails, ONNX Runtime keeps the compose and the provider says why.
    """
    from retint.runtime.openvino_runner import OpenVinoCompose

    try:
        on_openvino = OpenVinoCompose(path, streams=streams, threads=threads)
    except EngineError as error:
        return on_onnxruntime, f", ONNX Runtime for the rest (OpenVINO's compose failed: {error})"
    gray, ab = _compose_check_case(ab_side)
    difference = np.abs(on_openvino(gray, ab).astype(np.int16) - on_onnxruntime(gray, ab).astype(np.int16)).max()
    if difference > COMPOSE_TOLERANCE:
        on_openvino.close()
        return on_onnxruntime, (f", ONNX Runtime for the rest (OpenVINO's compose differed by {difference} "
                                f"levels from ONNX Runtime's)")
    on_onnxruntime.close()
    return on_openvino, " and the compose (f32), ONNX Runtime for the lightness"


def _compose_check_case(ab_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Every grey level, at an odd size, under strong chroma of both signs (ab at ab_side)."""
    generator = np.random.default_rng(0)
    levels = np.concatenate([np.arange(256), generator.integers(0, 256, 37 * 41 - 256)])
    gray = generator.permutation(levels).astype(np.uint8).reshape(1, 1, 37, 41)
    ab = (generator.standard_normal((1, 2, ab_side, ab_side)) * 45).astype(np.float32)
    return gray, ab


def openvino_precision(generator_metadata: ArtefactMetadata | None) -> tuple[str, str]:
    """("bf16" or "fp32", why): bf16 only where `bf16_blocker` finds nothing in the way."""
    blocker = bf16_blocker(generator_metadata)
    if blocker:
        return "fp32", f"f32: {blocker}"
    gate = _bf16_gate(generator_metadata) or {}
    return "bf16", (f"bf16 on {'/'.join(native_bf16_flags())}, parity gate passed at export (mean CIEDE2000 "
                    f"{gate.get('mean_ciede2000', float('nan')):.3f} vs PyTorch FP32)")


def bf16_blocker(generator_metadata: ArtefactMetadata | None) -> str | None:
    """Why OpenVINO cannot run this generator in bf16 here, or None when it can: an fp32 generator,
    native bf16 on this CPU and the artefact's passed bf16 parity gate. The one rule for auto's
    choice and for OpenVINO's precision."""
    if generator_metadata is not None and generator_metadata.precision != "fp32":
        return f"its {generator_metadata.precision} generator runs in f32 on OpenVINO"
    if not native_bf16_flags():
        return without_native_bf16()
    if _bf16_gate(generator_metadata) is None:
        return "the artefact has no passed OpenVINO bf16 parity gate (export-trt measures it)"
    return None


def _bf16_gate(metadata: ArtefactMetadata | None) -> dict | None:
    """The generator's recorded OpenVINO bf16 parity, if it passed."""
    gate = (metadata.parity.get(OPENVINO_BF16_GATE) if metadata else None) or None
    return gate if gate and gate.get("passed") else None


def _require_openvino(artefact: Artefact) -> None:
    from retint.runtime.openvino_runner import import_openvino

    import_openvino()  # BackendUnavailable with the install line
    require_stages(artefact, "the OpenVINO backend")
