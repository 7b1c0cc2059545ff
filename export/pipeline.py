"""What `export-trt` does, step by step: FP32 ONNX, FP16 ONNX, parity gates, TensorRT plan.

Each artefact is written only after it has passed its gate, and atomically,
so a failing step never removes or corrupts what an earlier step proved.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import onnx
import torch
from torch import nn

from retint import __version__
from retint.errors import BackendUnavailable, InputError
from retint.export.config import ExportConfig
from retint.export.deploy import (
    Composer,
    DeployColouriser,
    DistributionStage,
    GeneratorStage,
    IntervalStage,
    LightnessStage,
    generator_stage_side,
    is_distribution_head,
)
from retint.export.onnx_export import (
    NonfiniteProbe,
    automatic_controls,
    export_colouriser,
    export_composer,
    export_distribution,
    export_generator,
    export_interval,
    export_lightness,
    save_model,
    with_metadata,
)
from retint.export.parity import (
    GATES,
    INTERVAL_GATES,
    ParityReport,
    check_gate,
    describe,
    gate_failures,
    interval_parity,
    load_parity_images,
    measure_parity,
    parity_cases,
)
from retint.export.triton import write_triton_repository
from retint.model.bins import decoding_of, release_temperature
from retint.model.checkpoint import generator_of, load_checkpoint
from retint.model.uncertainty import DISTRIBUTION_METHOD, load_interval_head
from retint.model.config import config_to_dict
from retint.files import write_text_atomically
from retint.progress import StepProgress, Steps
from retint.runtime.metadata import (
    AB_NAME,
    INPUT_NAME,
    INTERVAL_NAME,
    LIGHTNESS_NAME,
    LOGITS_NAME,
    ArtefactMetadata,
    SizeLimits,
    sidecar_path,
)
from retint.runtime import EngineRequest, open_engines
from retint.runtime.backends import OPENVINO_BF16_GATE
from retint.runtime.colour_controls import ColourControls
from retint.runtime.onnx_runner import CPU, OnnxEngine, open_session

Reference = Callable[[np.ndarray], np.ndarray]  # grey uint8 [N,1,H,W] -> rgb uint8 [N,H,W,3], PyTorch FP32


@dataclass
class ExportResult:
    """What an export wrote (in order), its fused graphs' parity reports, and why no plan was built."""

    artefacts: list[Path] = field(default_factory=list)
    reports: dict[str, ParityReport] = field(default_factory=dict)
    tensorrt_missing: str = ""


@dataclass(frozen=True)
class ExportJob:
    """What every step of one export shares: where, what, against which reference and cases."""

    config: ExportConfig
    name: str
    generator: nn.Module
    render_size: int
    limits: SizeLimits
    base_metadata: dict[str, Any]
    reference: Reference
    cases: list[Any]
    result: ExportResult
    log: Callable[[str], None]

    def path(self, suffix: str) -> Path:
        """The artefact NAME + suffix in the output folder (".fp16.onnx", ".compose.onnx", ...)."""
        return self.config.output_dir / f"{self.name}{suffix}"


@contextmanager
def gating(path: Path, promote: bool = False) -> Iterator[Path]:
    """A hidden `.NAME.gating` file beside `path`, for a graph or plan while its gate runs.

    It is removed if the block raises (a failed gate leaves nothing); at the end of the block it
    is moved to `path` with `promote`, else removed (a graph published with its parity after)."""
    gate_file = path.with_name(f".{path.name}.gating")
    try:
        yield gate_file
    except BaseException:
        gate_file.unlink(missing_ok=True)
        raise
    if promote:
        gate_file.replace(path)
    else:
        gate_file.unlink(missing_ok=True)


@contextmanager
def gating_folder(job: ExportJob) -> Iterator[Path]:
    """A hidden `.NAME.gating/` folder laid out as an export (the published fused graphs linked in),
    so that stages under their gate are opened by the runtime exactly as it opens the published
    artefact; removed when the block ends, whatever happens."""
    folder = job.config.output_dir / f".{job.name}.gating"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        for suffix in (".onnx", ".fp16.onnx"):
            for published in (job.path(suffix), sidecar_path(job.path(suffix))):
                _link_or_copy(published, folder / published.name)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a filesystem without hard links
        shutil.copyfile(source, target)


def stage_into(folder: Path, model: onnx.ModelProto, metadata: ArtefactMetadata, name: str) -> Path:
    """Write a stage graph with its metadata (inside and in the sidecar) into a gating folder."""
    path = folder / name
    save_model(with_metadata(model, metadata), path)
    write_text_atomically(sidecar_path(path), metadata.to_json())
    return path


def sha256_of(path: Path) -> str:
    """The file's SHA-256 (the checkpoint's, recorded in every sidecar)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def torch_reference(module: torch.nn.Module) -> Reference:
    """The deploy module as the gates' reference: grey uint8 in, rgb uint8 out, no gradients."""
    def run(gray: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(gray)).numpy()
    return run


def export_steps(config: ExportConfig, interval_head: bool, distribution_head: bool = False) -> list[str]:
    """The steps `run_export` reports, in order (each takes seconds to minutes)."""
    return ["fp32 graph", "fp16 graph", "lightness and compose stages", "fp32 generator stage",
            "fp16 generator stage", *(["interval stage"] if interval_head else []),
            *(["distribution stage"] if distribution_head else []),
            *([] if config.onnx_only else ["TensorRT plan"]), *(["Triton repository"] if config.triton else [])]


def run_export(config: ExportConfig, log: Callable[[str], None] = print,
               progress: StepProgress | None = None) -> ExportResult:
    """export-trt's job (see the module doc); `progress` hears of each step as it begins."""
    checkpoint = load_checkpoint(config.checkpoint)
    generator = generator_of(checkpoint, config.checkpoint)
    generator_config = generator.retint_config
    render_size = config.render_size or generator_config.render_size
    if render_size % generator_config.size_multiple:
        raise InputError(f"--render-size {render_size} must be a multiple of "
                         f"{generator_config.size_multiple} for {generator_config.arch}")
    name = config.name or config.checkpoint.stem
    distribution = is_distribution_head(generator)
    head = load_interval_head(checkpoint) if not distribution else None
    steps = Steps(export_steps(config, head is not None, distribution), progress)
    limits = SizeLimits(max_batch=config.max_batch)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    cases = parity_cases(load_parity_images(config.parity_images))
    reference_module = DeployColouriser(copy.deepcopy(generator), render_size, "fp32").eval()
    reference = torch_reference(reference_module)
    base_metadata = dict(
        kind="colorizer", render_size=render_size, arch=generator_config.arch, limits=limits,
        checkpoint_sha256=sha256_of(config.checkpoint), checkpoint_name=config.checkpoint.name,
        generator_config=config_to_dict(generator_config),
        versions={"retint": __version__, "torch": torch.__version__, "onnx": onnx.__version__},
        colour_bins=colour_bins_metadata(generator),
    )
    result = ExportResult()
    job = ExportJob(config=config, name=name, generator=generator, render_size=render_size, limits=limits,
                    base_metadata=base_metadata, reference=reference, cases=cases, result=result, log=log)
    for precision, suffix in (("fp32", ".onnx"), ("fp16", ".fp16.onnx")):
        path = job.path(suffix)
        steps.begin(f"{precision} graph")
        log(f"exporting {precision} graph -> {path}")
        module = DeployColouriser(copy.deepcopy(generator), render_size, precision).eval()
        model = export_colouriser(module, limits)
        report = gate_onnx(job, model, precision, path)
        log(f"  parity vs PyTorch FP32: {describe(report)}")
        metadata = ArtefactMetadata(precision=precision, parity={"reference": "pytorch-fp32",
                                                                 **report.summary()}, **base_metadata)
        publish_onnx(model, metadata, path, result)
        result.reports[precision] = report

    export_stages(job, steps.begin)
    if head is not None:
        steps.begin("interval stage")
        export_interval_stage(job, *head)
    else:
        remove_stale(job, ".interval.onnx", "this checkpoint has no uncertainty head")
    if distribution:
        steps.begin("distribution stage")
        export_distribution_stage(job, distribution_calibration(checkpoint))
    else:
        remove_stale(job, ".distribution.onnx", "this checkpoint has no distribution head")
    plan = None
    if not config.onnx_only:
        steps.begin("TensorRT plan")
        try:
            plan = build_tensorrt_plan(job)
            result.artefacts.append(plan)
        except BackendUnavailable as missing:
            result.tensorrt_missing = str(missing)
    if config.triton is not None:
        steps.begin("Triton repository")
        folders = write_triton_repository(config.output_dir / f"{name}.onnx", config.triton, config.triton_device,
                                          plan, config.profile.max_shape[0])
        log(f"Triton model repository -> {config.triton} ({', '.join(folder.name for folder in folders)})")
        result.artefacts.extend(folder / "config.pbtxt" for folder in folders)
    steps.finish()
    return result


def remove_stale(job: ExportJob, suffix: str, why: str) -> None:
    """Remove an earlier export's optional stage that this checkpoint does not have: it would
    describe another generator's colours."""
    stale = job.path(suffix)
    if stale.exists():
        stale.unlink()
        sidecar_path(stale).unlink(missing_ok=True)
        job.log(f"removed {stale.name}: {why}")


def distribution_calibration(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A distribution checkpoint's interval calibration (colorize-uncertainty); empty without one."""
    calibration = checkpoint.get("uncertainty") or {}
    return dict(calibration) if calibration.get("method") == DISTRIBUTION_METHOD else {}


def colour_bins_metadata(generator) -> dict:
    """What the runtime needs of a distribution head's bins (empty for a regression generator)."""
    if not is_distribution_head(generator):
        return {}
    decoding = decoding_of(generator)
    # decode and chroma_gain are inside the graph; written here so that a user can read them.
    return {"centres": generator.bin_centres.tolist(), "weights": generator.bin_weights.tolist(),
            "default_temperature": decoding.temperature, "global_hint": generator.global_hint is not None,
            "head_stride": generator.head_stride, "decode": decoding.decode, "chroma_gain": decoding.chroma_gain}


def publish_onnx(model: onnx.ModelProto, metadata: ArtefactMetadata, path: Path, result: ExportResult) -> None:
    """Write a gated graph with its metadata (in metadata_props and the sidecar)."""
    save_model(with_metadata(model, metadata), path)
    write_text_atomically(sidecar_path(path), metadata.to_json())
    result.artefacts.append(path)


def export_stages(job: ExportJob, begin: Callable[[str], None] = lambda step: None) -> None:
    """NAME.lightness.onnx, NAME.generator[.fp16].onnx and NAME.compose.onnx, gated as a chain
    against PyTorch on the runtime's own staged engine. Backends run them where each is fastest;
    video smoothing runs between them."""
    begin("lightness and compose stages")
    name, generator, limits, render_size = job.name, job.generator, job.limits, job.render_size
    job.log(f"exporting the stages -> {name}.lightness.onnx, {name}.generator[.fp16].onnx, {name}.compose.onnx")
    ab_side = generator_stage_side(generator, render_size)
    models = {"lightness": export_lightness(LightnessStage(render_size).eval(), limits),
              "compose": export_composer(Composer().eval(), limits, ab_side)}
    stage_metadata = {stage: ArtefactMetadata(precision="fp32", **{**job.base_metadata, "kind": stage})
                      for stage in models}
    with gating_folder(job) as folder:
        for stage, model in models.items():
            stage_into(folder, model, stage_metadata[stage], f"{name}.{stage}.onnx")
        lightness = open_session(folder / f"{name}.lightness.onnx", [CPU])

        def generator_inputs(model: onnx.ModelProto) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
            return lambda gray: {LIGHTNESS_NAME: lightness.run([LIGHTNESS_NAME], {INPUT_NAME: gray})[0],
                                 **automatic_controls(model, gray.shape[0], release_temperature(generator))}

        for precision, fused_suffix, suffix in (("fp32", ".onnx", ".generator.onnx"),
                                                ("fp16", ".fp16.onnx", ".generator.fp16.onnx")):
            path = job.path(suffix)
            begin(f"{precision} generator stage")
            model = export_generator(GeneratorStage(copy.deepcopy(generator), precision), limits, render_size)
            metadata = ArtefactMetadata(precision=precision, **{**job.base_metadata, "kind": "generator"})
            stage_into(folder, model, metadata, path.name)
            request = EngineRequest(path=folder / f"{name}{fused_suffix}", backend="onnxruntime", device="cpu",
                                    by_stages=True)
            with open_engines(request) as engines:
                report = measure_parity(job.reference, engines.main.colorize, job.cases,
                                        NonfiniteProbe(model, generator_inputs(model)))
                check_gate(report, GATES[precision], path.name)
                job.log(f"  lightness + {path.name} + compose vs PyTorch FP32: {describe(report)}")
                parity = {"reference": "pytorch-fp32", "chained_with": [f"{name}.lightness.onnx",
                                                                        f"{name}.compose.onnx"], **report.summary()}
                if precision == "fp32":
                    bf16 = openvino_bf16_parity(job, model, generator_inputs(model), engines.main)
                    if bf16 is not None:
                        parity[OPENVINO_BF16_GATE] = bf16
            publish_onnx(model, replace(metadata, parity=parity), path, job.result)
    for stage, model in models.items():
        publish_onnx(model, stage_metadata[stage], job.path(f".{stage}.onnx"), job.result)


def export_distribution_stage(job: ExportJob, calibration: dict[str, Any]) -> None:
    """NAME.distribution.onnx (fp32): a distribution head's ab, calibrated intervals and logits, for
    suggestions and uncertainty, gated after the lightness stage against PyTorch FP32 (ab and
    intervals, in Lab units). Its sidecar carries the calibration, where the checkpoint has one."""
    path = job.path(".distribution.onnx")
    stage = DistributionStage(copy.deepcopy(job.generator), calibration.get("lambda", 1.0))
    model = export_distribution(stage, job.limits, job.render_size)
    lightness_session = open_session(job.path(".lightness.onnx"), [CPU])

    def feeds(gray: np.ndarray) -> dict[str, np.ndarray]:
        lightness = lightness_session.run([LIGHTNESS_NAME], {INPUT_NAME: gray})[0]
        return {LIGHTNESS_NAME: lightness, **automatic_controls(model, gray.shape[0], release_temperature(job.generator))}

    def reference(gray: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ab, interval, _ = stage(*(torch.from_numpy(value) for value in feeds(gray).values()))
        return np.concatenate([ab.numpy(), interval.numpy()], axis=1)

    with gating(path) as gate_file:
        save_model(model, gate_file)
        session = open_session(gate_file, [CPU])

        def exported(gray: np.ndarray) -> np.ndarray:
            ab, interval, logits = session.run([AB_NAME, INTERVAL_NAME, LOGITS_NAME], feeds(gray))
            return np.concatenate([ab, interval], axis=1)

        figures = interval_parity(reference, exported, job.cases, INTERVAL_GATES["fp32"],
                                  f"lightness + {path.name}")
    job.log(f"  lightness + {path.name} vs PyTorch FP32: ab and interval bounds |d| mean "
            f"{figures['mean_abs_lab']:.4f} p99 {figures['p99_abs_lab']:.4f} max {figures['max_abs_lab']:.3f} Lab")
    metadata = ArtefactMetadata(precision="fp32", parity={"reference": "pytorch-fp32", "fp32": figures},
                                uncertainty=calibration, **{**job.base_metadata, "kind": "distribution"})
    publish_onnx(model, metadata, path, job.result)
    if calibration:
        job.log(f"  uncertainty from the distribution: alpha {calibration['alpha']}, lambda "
                f"{calibration['lambda']:.3f}, calibrated on {calibration.get('calibration_photos')} photos")


def export_interval_stage(job: ExportJob, head: nn.Module, calibration: dict[str, Any]) -> None:
    """NAME.interval.onnx: the calibrated uncertainty head (lambda built in), gated after each generator
    stage (fp32 and fp16) against PyTorch FP32, its calibration in the sidecar."""
    path = job.path(".interval.onnx")
    stage = IntervalStage(head, calibration["lambda"])
    model = export_interval(stage, job.limits, job.render_size)
    lightness_session = open_session(job.path(".lightness.onnx"), [CPU])
    torch_generator = GeneratorStage(copy.deepcopy(job.generator), "fp32")

    def reference(gray: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            lightness = torch.from_numpy(lightness_session.run([LIGHTNESS_NAME], {INPUT_NAME: gray})[0])
            return stage(lightness, torch_generator(lightness)).numpy()

    parity: dict[str, Any] = {"reference": "pytorch-fp32 (generator and head)"}
    with gating(path) as gate_file:
        save_model(model, gate_file)
        session = open_session(gate_file, [CPU])
        for precision, suffix in (("fp32", ".generator.onnx"), ("fp16", ".generator.fp16.onnx")):
            generator_session = open_session(job.path(suffix), [CPU])

            def chained(gray: np.ndarray, generator_session=generator_session) -> np.ndarray:
                lightness = lightness_session.run([LIGHTNESS_NAME], {INPUT_NAME: gray})[0]
                ab = generator_session.run([AB_NAME], {LIGHTNESS_NAME: lightness})[0]
                return session.run([INTERVAL_NAME], {LIGHTNESS_NAME: lightness, AB_NAME: ab})[0]

            figures = interval_parity(reference, chained, job.cases, INTERVAL_GATES[precision],
                                      f"{path.name} after {job.name}{suffix}")
            parity[f"after-{precision}-generator"] = figures
            job.log(f"  lightness + {job.name}{suffix} + {path.name} vs PyTorch FP32: interval bounds |d| mean "
                    f"{figures['mean_abs_lab']:.4f} p99 {figures['p99_abs_lab']:.4f} max "
                    f"{figures['max_abs_lab']:.3f} Lab, NaN/Inf {figures['nonfinite']}")
    metadata = ArtefactMetadata(precision="fp32", parity=parity, uncertainty=calibration,
                                **{**job.base_metadata, "kind": "interval"})
    publish_onnx(model, metadata, path, job.result)
    job.log(f"  uncertainty: alpha {calibration['alpha']}, lambda {calibration['lambda']:.3f}, calibrated on "
            f"{calibration.get('calibration_photos')} photos of "
            f"{', '.join(calibration.get('calibration_sources', []))}")


def openvino_bf16_parity(job: ExportJob, model: onnx.ModelProto,
                         generator_inputs: Callable[[np.ndarray], dict[str, np.ndarray]],
                         staged_engine: Any) -> dict[str, Any] | None:
    """The fp32 generator run by OpenVINO in bf16, between the lightness stage and the staged
    engine's own compose, against PyTorch FP32: recorded in the generator's sidecar, where the
    runtime looks before it runs bf16. Measured only where this CPU computes bf16 natively
    (elsewhere OpenVINO would run f32)."""
    from retint.cpu import cpu_model, native_bf16_flags
    from retint.runtime.openvino_runner import OpenVinoGenerator, openvino_installed

    if not native_bf16_flags() or not openvino_installed():
        job.log("  OpenVINO bf16 gate not measured: it needs OpenVINO and a CPU with AMX or AVX512-BF16; "
                "the OpenVINO backend runs this artefact in f32")
        return None
    with gating(job.path(".generator.onnx")) as gate_file:
        save_model(model, gate_file)
        generator = OpenVinoGenerator(gate_file, "bf16", job.render_size)
        try:
            def run(gray: np.ndarray) -> np.ndarray:
                inputs = generator_inputs(gray)
                lightness = inputs.pop(LIGHTNESS_NAME)
                controls = ColourControls.from_feeds(inputs) if inputs else None
                return staged_engine.compose(gray, generator(lightness, controls))

            report = measure_parity(job.reference, run, job.cases)
        finally:
            generator.close()
    failures = gate_failures(report, GATES["bf16"])
    job.log(f"  OpenVINO bf16 generator + stages vs PyTorch FP32: {describe(report)}"
            f"{' FAILS: ' + '; '.join(failures) if failures else ''}")
    return {"reference": "pytorch-fp32", **report.summary(), "passed": not failures, "failures": failures,
            "cpu": cpu_model(), "bf16_flags": list(native_bf16_flags()), "openvino": generator.version}


def gate_onnx(job: ExportJob, model: onnx.ModelProto, precision: str, path: Path) -> ParityReport:
    """Run the fused graph on ONNX Runtime (CPU) against PyTorch; raise ParityError if it fails.
    Its metadata (without parity yet) goes with it: the engine reads a distribution head's bins there."""
    metadata = ArtefactMetadata(precision=precision, **job.base_metadata)
    with gating(path) as gate_file:
        save_model(with_metadata(model, metadata), gate_file)
        with OnnxEngine(gate_file, device="cpu") as engine:
            report = measure_parity(job.reference, engine.colorize, job.cases, NonfiniteProbe(model, temperature=release_temperature(job.generator)))
    check_gate(report, GATES[precision], path.name)
    return report


def build_tensorrt_plan(job: ExportJob) -> Path:
    """NAME.fp16.plan from the gated FP16 graph, gated against the FP32 graph on ONNX Runtime."""
    from retint.export.tensorrt_build import build_plan, require_tensorrt_builder
    from retint.runtime.tensorrt_runner import TensorRTEngine

    require_tensorrt_builder()
    config = job.config
    plan = job.path(".fp16.plan")
    job.log(f"building TensorRT engine -> {plan}")
    profile = config.profile
    with gating(plan, promote=True) as gate_file:
        info = build_plan(job.path(".fp16.onnx"), gate_file, profile, config.workspace_gb, config.timing_cache)
        # The plan's sidecar less its parity: the engine under the gate reads a distribution head's bins there.
        metadata = ArtefactMetadata(
            precision="fp16",
            tensorrt={"version": info.tensorrt_version, "gpu": info.gpu,
                      "compute_capability": info.compute_capability,
                      "profile": {"min": list(profile.min_shape), "opt": list(profile.opt_shape),
                                  "max": list(profile.max_shape)}},
            **{**job.base_metadata, "limits": SizeLimits(
                min_side=min(profile.min_shape[1:]), max_side=min(profile.max_shape[1:]),
                max_batch=profile.max_shape[0])})
        with OnnxEngine(job.path(".onnx"), device="cpu") as fp32_engine, TensorRTEngine(gate_file, metadata) as engine:
            report = measure_parity(fp32_engine.colorize, engine.colorize, job.cases)
        check_gate(report, GATES["fp16"], plan.name)
    job.log(f"  parity vs FP32 ONNX: {describe(report)}")
    write_text_atomically(sidecar_path(plan), replace(metadata, parity={"reference": "onnx-fp32",
                                                                        **report.summary()}).to_json())
    return plan
