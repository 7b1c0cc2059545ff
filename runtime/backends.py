"""Which backend runs an artefact, and opening an engine on it.

`choose_backend` decides once, from the artefact, the request, the device
and this CPU; `open_engine` opens that choice. `auto` means:

- a TensorRT plan runs on TensorRT;
- an `.onnx` on a GPU (`--device cuda`, or `auto` where ONNX Runtime has
  CUDA) runs on ONNX Runtime there;
- on a CPU with native bf16 (AMX or AVX512-BF16), with OpenVINO installed
  and an artefact whose OpenVINO bf16 parity gate passed at export, the
  generator runs on OpenVINO in bf16, the compose on OpenVINO in f32 and the
  lightness stage on ONNX Runtime (`openvino_runner` has the figures);
- otherwise ONNX Runtime runs the fused graph. Without native bf16, OpenVINO
  would run the generator in f32; that is not measured to be faster end to
  end, so `auto` does not pick it (ask for it with `--backend openvino`).

Precision is never lowered silently: the spec's `precision` and `reason` say
what runs and why, and the batch summary and manifest repeat them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from retint.cpu import native_bf16_flags
from retint.errors import EngineError
from retint.runtime.artefact import Artefact, require_stages
from retint.runtime.colour_controls import check_temperature
from retint.runtime.engine import Engine, EngineSpec
from retint.runtime.metadata import ArtefactMetadata, SizeLimits

BACKENDS = ("auto", "onnxruntime", "openvino", "tensorrt")
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
    native = native_bf16_flags()
    if not native:
        return BackendChoice("onnxruntime", "cpu", "auto: this CPU has no AMX or AVX512-BF16, so OpenVINO "
                                                   "would run f32, not measured faster than ONNX Runtime")
    from retint.runtime.openvino_runner import openvino_installed

    if not openvino_installed():
        return BackendChoice("onnxruntime", "cpu", f"auto: this CPU has {'/'.join(native)} but OpenVINO is "
                                                   f"not installed (pip install 'retint[openvino]')")
    if artefact.stages is None:
        return BackendChoice("onnxruntime", "cpu", "auto: the engine's stage files are not beside it")
    if _bf16_gate(artefact.generator_metadata) is None:
        return BackendChoice("onnxruntime", "cpu", "auto: the artefact has no passed OpenVINO bf16 parity gate")
    return BackendChoice("openvino", "cpu", f"auto: this CPU has {'/'.join(native)}; OpenVINO runs the "
                                            f"generator (bf16) and the compose about 2x faster")


def open_engine(artefact: Artefact, choice: BackendChoice, *, providers: Sequence[str] | None = None,
                cpu_threads: int = 0, streams: int = 1, staged: bool = False,
                mute_uncertain: bool = False, temperature: float | None = None) -> Engine:
    """An engine on `choice`. `cpu_threads`: ONNX Runtime's threads per call (0: one per core);
    `streams`: concurrent callers OpenVINO prepares for; `staged`: a StagedEngine (predict/compose)
    even where the fused graph would do; `mute_uncertain`: shrink chroma toward grey where the
    artefact's interval is wide (needs its interval stage, so it runs by stages); `temperature`:
    a distribution-head engine's annealed-mean temperature for every call that names none
    (None: the artefact's default)."""
    engine = _open(artefact, choice, providers, cpu_threads, streams, staged, mute_uncertain)
    if temperature is not None:
        bins = engine.spec.colour_bins
        if bins is None:
            engine.close()
            raise EngineError(f"{artefact.name} is a regression model: it has no temperature to set "
                              "(colour model v2 artefacts do)")
        engine.spec = replace(engine.spec, colour_bins=replace(bins, default_temperature=check_temperature(temperature)))
    return engine


def _open(artefact: Artefact, choice: BackendChoice, providers: Sequence[str] | None, cpu_threads: int,
          streams: int, staged: bool, mute_uncertain: bool) -> Engine:
    alpha = _uncertainty_alpha(artefact)
    if mute_uncertain and alpha is None:
        raise EngineError(f"{artefact.name} has no uncertainty head: --mute-uncertain needs its "
                          "NAME.interval.onnx (export-trt writes it from a colorize-uncertainty checkpoint)")
    if choice.backend == "tensorrt":
        if staged or mute_uncertain:
            raise EngineError("a TensorRT plan has no stages; open its .onnx stages on ONNX Runtime")
        from retint.runtime.tensorrt_runner import TensorRTEngine

        engine: Engine = TensorRTEngine(artefact.path)
    elif choice.backend == "onnxruntime" and not staged and not mute_uncertain:
        from retint.runtime.onnx_runner import OnnxEngine

        engine = OnnxEngine(artefact.path, device=choice.device, providers=providers, threads=cpu_threads)
        engine.spec = replace(engine.spec, reason=choice.reason)
    else:
        return _open_staged(artefact, choice, providers, cpu_threads, streams, mute_uncertain)
    if alpha is not None:
        # The fused graph or plan has no interval output; uncertainty calls run the stages on ONNX Runtime.
        by_stages = BackendChoice("onnxruntime", choice.device, "the interval stage runs on ONNX Runtime")
        engine.open_uncertainty_stages = lambda: _open_staged(artefact, by_stages, None, cpu_threads, 1)
    engine.spec = replace(engine.spec, uncertainty_alpha=alpha)
    return engine


def _uncertainty_alpha(artefact: Artefact) -> float | None:
    alpha = artefact.uncertainty.get("alpha")
    return float(alpha) if alpha is not None else None


def _open_staged(artefact: Artefact, choice: BackendChoice, providers: Sequence[str] | None, cpu_threads: int,
                 streams: int, mute_uncertain: bool = False) -> Engine:
    from retint.runtime.onnx_runner import OnnxCompose, OnnxGenerator, choose_providers, open_session
    from retint.runtime.split import StagedEngine

    stages = require_stages(artefact, "the OpenVINO backend" if choice.backend == "openvino" else "running by stages")
    generator_metadata = artefact.generator_metadata
    render_size = generator_metadata.render_size if generator_metadata else 0
    chosen = choose_providers(choice.device, providers)  # "cpu" whenever OpenVINO was chosen
    # With OpenVINO working between the ONNX Runtime stages, spinning ORT threads would hold the
    # cores it needs: on 2 cores, one call on all of them took 24-27 ms at 1024x768 with spinning
    # and 15-19 ms without (ONNX Runtime's fused graph: 19-24 ms).
    spinning = choice.backend != "openvino"
    lightness = open_session(stages.lightness, chosen, cpu_threads, spinning)
    compose_session = open_session(stages.compose, chosen, cpu_threads, spinning)
    compose = OnnxCompose(compose_session)
    # The chroma the compose takes: render size, or half of it for a distribution head.
    ab_side = compose_session.get_inputs()[1].shape[-1]
    if not render_size:
        render_size = int(lightness.get_outputs()[0].shape[-1])
    if choice.backend == "openvino":
        from retint.runtime.openvino_runner import OpenVinoGenerator

        precision, why = openvino_precision(generator_metadata)
        threads = cpu_threads * streams if cpu_threads else 0
        generator = OpenVinoGenerator(stages.generator, precision, render_size, streams=streams, threads=threads)
        compose, compose_note = _compose_on_openvino(stages.compose, compose,
                                                     ab_side if isinstance(ab_side, int) else render_size,
                                                     streams, threads)
        provider = f"OpenVINO {generator.version} CPU for the generator{compose_note}"
        reason = f"{choice.reason}; {why}"
    else:
        generator = OnnxGenerator(open_session(stages.generator, chosen, cpu_threads))
        precision = generator_metadata.precision if generator_metadata else "unknown"
        provider, reason = f"{chosen[0]}, by stages", choice.reason
    interval = open_session(stages.interval, chosen, cpu_threads, spinning) if stages.interval else None
    spec = EngineSpec(path=artefact.path, backend=choice.backend, provider=provider, precision=precision,
                      render_size=render_size, limits=_limits(artefact, generator_metadata),
                      metadata=artefact.metadata or generator_metadata, reason=reason,
                      uncertainty_alpha=_uncertainty_alpha(artefact), mute_uncertain=mute_uncertain,
                      colour_bins=generator_metadata.bins() if generator_metadata else None)
    return StagedEngine(lightness, generator, compose, spec, interval)


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
    """("bf16" or "fp32", why): bf16 only on native bf16 hardware and behind the artefact's parity gate."""
    if generator_metadata is not None and generator_metadata.precision != "fp32":
        return "fp32", f"its {generator_metadata.precision} generator runs in f32 on OpenVINO"
    native = native_bf16_flags()
    if not native:
        return "fp32", "f32: no AMX or AVX512-BF16 on this CPU"
    gate = _bf16_gate(generator_metadata)
    if gate is None:
        return "fp32", "f32: the artefact has no passed OpenVINO bf16 parity gate (export-trt measures it)"
    return "bf16", (f"bf16 on {'/'.join(native)}, parity gate passed at export (mean CIEDE2000 "
                    f"{gate.get('mean_ciede2000', float('nan')):.3f} vs PyTorch FP32)")


def _bf16_gate(metadata: ArtefactMetadata | None) -> dict | None:
    """The generator's recorded OpenVINO bf16 parity, if it passed."""
    gate = (metadata.parity.get(OPENVINO_BF16_GATE) if metadata else None) or None
    return gate if gate and gate.get("passed") else None


def _require_openvino(artefact: Artefact) -> None:
    from retint.runtime.openvino_runner import import_openvino

    import_openvino()  # BackendUnavailable with the install line
    require_stages(artefact, "the OpenVINO backend")


def _limits(artefact: Artefact, generator_metadata: ArtefactMetadata | None) -> SizeLimits:
    metadata = artefact.metadata or generator_metadata
    return metadata.limits if metadata else SizeLimits()
