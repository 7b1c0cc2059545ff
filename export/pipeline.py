"""What `export-trt` does, step by step: FP32 ONNX, FP16 ONNX, parity gates, TensorRT plan.

Each artefact is written only after it has passed its gate, and atomically,
so a failing step never removes or corrupts what an earlier step proved.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch

from retint import __version__
from retint.errors import BackendUnavailable, InputError
from retint.export.config import ExportConfig
from retint.export.deploy import (
    Composer,
    DeployColorizer,
    GeneratorStage,
    IntervalStage,
    LightnessStage,
    is_distribution_head,
)
from retint.export.onnx_export import (
    NonfiniteProbe,
    automatic_controls,
    export_colorizer,
    export_composer,
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
from retint.model.bins import DEFAULT_TEMPERATURE
from retint.model.checkpoint import generator_of, load_checkpoint
from retint.model.networks.effnet_distribution import HEAD_STRIDE
from retint.model.uncertainty import load_interval_head
from retint.model.config import config_to_dict
from retint.files import write_text_atomically
from retint.progress import StepProgress, Steps
from retint.runtime.metadata import (
    AB_NAME,
    INPUT_NAME,
    INTERVAL_NAME,
    LIGHTNESS_NAME,
    OUTPUT_NAME,
    ArtefactMetadata,
    SizeLimits,
    sidecar_path,
)
from retint.runtime.backends import OPENVINO_BF16_GATE
from retint.runtime.colour_controls import ColourControls
from retint.runtime.onnx_runner import OnnxEngine


@dataclass
class ExportResult:
    artefacts: list[Path] = field(default_factory=list)
    reports: dict[str, ParityReport] = field(default_factory=dict)
    tensorrt_missing: str = ""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def torch_reference(module: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    def run(gray: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(gray)).numpy()
    return run


def export_steps(config: ExportConfig, interval_head: bool) -> list[str]:
    """The steps `run_export` reports, in order (each takes seconds to minutes)."""
    return ["fp32 graph", "fp16 graph", "lightness and compose stages", "fp32 generator stage",
            "fp16 generator stage", *(["interval stage"] if interval_head else []),
            *([] if config.onnx_only else ["TensorRT plan"]), *(["Triton repository"] if config.triton else [])]


def run_export(config: ExportConfig, log: Callable[[str], None] = print,
               progress: StepProgress | None = None) -> ExportResult:
    checkpoint = load_checkpoint(config.checkpoint)
    generator = generator_of(checkpoint, config.checkpoint)
    generator_config = generator.retint_config
    render_size = config.render_size or generator_config.render_size
    if render_size % generator_config.size_multiple:
        raise InputError(f"--render-size {render_size} must be a multiple of "
                         f"{generator_config.size_multiple} for {generator_config.arch}")
    name = config.name or config.checkpoint.stem
    head = load_interval_head(checkpoint) if not is_distribution_head(generator) else None
    steps = Steps(export_steps(config, head is not None), progress)
    limits = SizeLimits(max_batch=config.max_batch)
    config.output_dir.mkdir(parents=True, exist_ok=True)
    cases = parity_cases(load_parity_images(config.parity_images))
    reference_module = DeployColorizer(copy.deepcopy(generator), render_size, "fp32").eval()
    reference = torch_reference(reference_module)
    base_metadata = dict(
        kind="colorizer", render_size=render_size, arch=generator_config.arch, limits=limits,
        checkpoint_sha256=sha256_of(config.checkpoint), checkpoint_name=config.checkpoint.name,
        generator_config=config_to_dict(generator_config),
        versions={"retint": __version__, "torch": torch.__version__, "onnx": onnx.__version__},
        colour_bins=colour_bins_metadata(generator),
    )
    result = ExportResult()
    for precision, suffix in (("fp32", ".onnx"), ("fp16", ".fp16.onnx")):
        path = config.output_dir / f"{name}{suffix}"
        steps.begin(f"{precision} graph")
        log(f"exporting {precision} graph -> {path}")
        module = DeployColorizer(copy.deepcopy(generator), render_size, precision).eval()
        model = export_colorizer(module, limits)
        report = gate_onnx(model, reference, cases, precision, path,
                           ArtefactMetadata(precision=precision, **base_metadata))
        log(f"  parity vs PyTorch FP32: {describe(report)}")
        metadata = ArtefactMetadata(precision=precision, parity={"reference": "pytorch-fp32",
                                                                 **report.summary()}, **base_metadata)
        publish_onnx(model, metadata, path, result)
        result.reports[precision] = report

    export_stages(config, name, generator, render_size, limits, base_metadata, reference, cases, result, log,
                  steps.begin)
    if head is not None:
        steps.begin("interval stage")
        export_interval_stage(config, name, generator, *head, render_size, limits, base_metadata, cases, result, log)
    elif (stale := config.output_dir / f"{name}.interval.onnx").exists():
        # An earlier export's head would bracket another generator's colours.
        stale.unlink()
        sidecar_path(stale).unlink(missing_ok=True)
        log(f"removed {stale.name}: this checkpoint has no uncertainty head")
    plan = None
    if not config.onnx_only:
        steps.begin("TensorRT plan")
        try:
            plan = build_tensorrt_plan(config, name, base_metadata, cases, log)
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


def colour_bins_metadata(generator) -> dict:
    """What the runtime needs of a distribution head's bins (empty for a regression generator)."""
    if not is_distribution_head(generator):
        return {}
    return {"centres": generator.bin_centres.tolist(), "weights": generator.bin_weights.tolist(),
            "default_temperature": DEFAULT_TEMPERATURE, "global_hint": generator.global_hint is not None,
            "head_stride": HEAD_STRIDE}


def publish_onnx(model: onnx.ModelProto, metadata: ArtefactMetadata, path: Path, result: ExportResult) -> None:
    """Write a gated graph with its metadata (in metadata_props and the sidecar)."""
    save_model(with_metadata(model, metadata), path)
    write_text_atomically(sidecar_path(path), metadata.to_json())
    result.artefacts.append(path)


def export_stages(config: ExportConfig, name: str, generator, render_size: int, limits: SizeLimits,
                  base_metadata: dict, reference, cases, result: ExportResult, log,
                  begin: Callable[[str], None] = lambda step: None) -> None:
    """NAME.lightness.onnx, NAME.generator[.fp16].onnx and NAME.compose.onnx, gated as a chain
    against PyTorch. Backends run them where each is fastest; video smoothing runs between them."""
    begin("lightness and compose stages")
    paths = {stage: config.output_dir / f"{name}.{stage}.onnx" for stage in ("lightness", "compose")}
    log(f"exporting the stages -> {name}.lightness.onnx, {name}.generator[.fp16].onnx, {name}.compose.onnx")
    ab_side = render_size // HEAD_STRIDE if is_distribution_head(generator) else render_size
    models = {"lightness": export_lightness(LightnessStage(render_size).eval(), limits),
              "compose": export_composer(Composer().eval(), limits, ab_side)}
    sessions = {stage: ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
                for stage, model in models.items()}

    def lightness_of(gray):
        return {LIGHTNESS_NAME: sessions["lightness"].run([LIGHTNESS_NAME], {INPUT_NAME: gray})[0]}

    def generator_inputs(model):
        return lambda gray: {**lightness_of(gray), **automatic_controls(model, gray.shape[0])}

    def compose(gray, ab):
        return sessions["compose"].run([OUTPUT_NAME], {INPUT_NAME: gray, AB_NAME: ab})[0]

    for precision, suffix in (("fp32", ".generator.onnx"), ("fp16", ".generator.fp16.onnx")):
        path = config.output_dir / f"{name}{suffix}"
        begin(f"{precision} generator stage")
        model = export_generator(GeneratorStage(copy.deepcopy(generator), precision), limits, render_size)
        generator_session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

        def chained(gray, generator_session=generator_session, inputs=generator_inputs(model)):
            return compose(gray, generator_session.run([AB_NAME], inputs(gray))[0])

        report = measure_parity(reference, chained, cases, NonfiniteProbe(model, generator_inputs(model)))
        check_gate(report, GATES[precision], path.name)
        log(f"  lightness + {path.name} + compose vs PyTorch FP32: {describe(report)}")
        parity = {"reference": "pytorch-fp32", "chained_with": [paths["lightness"].name, paths["compose"].name],
                  **report.summary()}
        if precision == "fp32":
            bf16 = openvino_bf16_parity(model, path, render_size, generator_inputs(model), compose, reference,
                                        cases, log)
            if bf16 is not None:
                parity[OPENVINO_BF16_GATE] = bf16
        metadata = ArtefactMetadata(precision=precision, parity=parity, **{**base_metadata, "kind": "generator"})
        publish_onnx(model, metadata, path, result)
    for stage, path in paths.items():
        publish_onnx(models[stage], ArtefactMetadata(precision="fp32", **{**base_metadata, "kind": stage}),
                     path, result)


def export_interval_stage(config: ExportConfig, name: str, generator, head, calibration: dict, render_size: int,
                          limits: SizeLimits, base_metadata: dict, cases, result: ExportResult, log) -> None:
    """NAME.interval.onnx: the calibrated uncertainty head (lambda built in), gated after each generator
    stage (fp32 and fp16) against PyTorch FP32, its calibration in the sidecar."""
    path = config.output_dir / f"{name}.interval.onnx"
    stage = IntervalStage(head, calibration["lambda"])
    model = export_interval(stage, limits, render_size)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    lightness_session = ort.InferenceSession(config.output_dir.joinpath(f"{name}.lightness.onnx").read_bytes(),
                                             providers=["CPUExecutionProvider"])
    torch_generator = GeneratorStage(copy.deepcopy(generator), "fp32")

    def reference(gray):
        with torch.no_grad():
            lightness = torch.from_numpy(lightness_session.run([LIGHTNESS_NAME], {INPUT_NAME: gray})[0])
            return stage(lightness, torch_generator(lightness)).numpy()

    parity = {"reference": "pytorch-fp32 (generator and head)"}
    for precision, suffix in (("fp32", ".generator.onnx"), ("fp16", ".generator.fp16.onnx")):
        generator_session = ort.InferenceSession(str(config.output_dir / f"{name}{suffix}"),
                                                 providers=["CPUExecutionProvider"])

        def chained(gray, generator_session=generator_session):
            lightness = lightness_session.run([LIGHTNESS_NAME], {INPUT_NAME: gray})[0]
            ab = generator_session.run([AB_NAME], {LIGHTNESS_NAME: lightness})[0]
            return session.run([INTERVAL_NAME], {LIGHTNESS_NAME: lightness, AB_NAME: ab})[0]

        figures = interval_parity(reference, chained, cases, INTERVAL_GATES[precision],
                                  f"{path.name} after {name}{suffix}")
        parity[f"after-{precision}-generator"] = figures
        log(f"  lightness + {name}{suffix} + {path.name} vs PyTorch FP32: interval bounds |d| mean "
            f"{figures['mean_abs_lab']:.4f} p99 {figures['p99_abs_lab']:.4f} max {figures['max_abs_lab']:.3f} "
            f"Lab, NaN/Inf {figures['nonfinite']}")
    metadata = ArtefactMetadata(precision="fp32", parity=parity, uncertainty=calibration,
                                **{**base_metadata, "kind": "interval"})
    publish_onnx(model, metadata, path, result)
    log(f"  uncertainty: alpha {calibration['alpha']}, lambda {calibration['lambda']:.3f}, calibrated on "
        f"{calibration.get('calibration_photos')} photos of {', '.join(calibration.get('calibration_sources', []))}")


def openvino_bf16_parity(model: onnx.ModelProto, path: Path, render_size: int, generator_inputs, compose,
                         reference, cases, log) -> dict | None:
    """The fp32 generator run by OpenVINO in bf16, chained with the ONNX Runtime stages, against
    PyTorch FP32: recorded in the generator's sidecar, where the runtime looks before it runs bf16.
    Measured only where this CPU computes bf16 natively (elsewhere OpenVINO would run f32)."""
    from retint.cpu import cpu_model, native_bf16_flags
    from retint.runtime.openvino_runner import OpenVinoGenerator, openvino_installed

    if not native_bf16_flags() or not openvino_installed():
        log("  OpenVINO bf16 gate not measured: it needs OpenVINO and a CPU with AMX or AVX512-BF16; "
            "the OpenVINO backend runs this artefact in f32")
        return None
    staged = path.with_name(f".{path.name}.gating")
    save_model(model, staged)
    try:
        generator = OpenVinoGenerator(staged, "bf16", render_size)
        try:
            def run(gray):
                inputs = generator_inputs(gray)
                lightness = inputs.pop(LIGHTNESS_NAME)
                controls = ColourControls.from_feeds(inputs) if inputs else None
                return compose(gray, generator(lightness, controls))

            report = measure_parity(reference, run, cases)
        finally:
            generator.close()
    finally:
        staged.unlink(missing_ok=True)
    failures = gate_failures(report, GATES["bf16"])
    log(f"  OpenVINO bf16 generator + stages vs PyTorch FP32: {describe(report)}"
        f"{' FAILS: ' + '; '.join(failures) if failures else ''}")
    return {"reference": "pytorch-fp32", **report.summary(), "passed": not failures, "failures": failures,
            "cpu": cpu_model(), "bf16_flags": list(native_bf16_flags()), "openvino": generator.version}


def gate_onnx(model: onnx.ModelProto, reference, cases, precision: str, path: Path,
              metadata: ArtefactMetadata) -> ParityReport:
    """Run the graph on ONNX Runtime (CPU) against PyTorch; raise ParityError if it fails.
    `metadata` (without parity yet) goes with it: the engine reads a distribution head's bins there."""
    staged = path.with_name(f".{path.name}.gating")
    save_model(with_metadata(model, metadata), staged)
    try:
        engine = OnnxEngine(staged, device="cpu")
        report = measure_parity(reference, engine.colorize, cases, NonfiniteProbe(model))
    finally:
        staged.unlink(missing_ok=True)
    check_gate(report, GATES[precision], path.name)
    return report


def build_tensorrt_plan(config: ExportConfig, name: str, base_metadata: dict, cases, log) -> Path:
    from retint.export.tensorrt_build import build_plan, require_tensorrt_builder
    from retint.runtime.tensorrt_runner import TensorRTEngine

    require_tensorrt_builder()
    fp16_onnx = config.output_dir / f"{name}.fp16.onnx"
    plan = config.output_dir / f"{name}.fp16.plan"
    log(f"building TensorRT engine -> {plan}")
    staged = plan.with_name(f".{plan.name}.gating")
    info = build_plan(fp16_onnx, staged, config.profile, config.workspace_gb, config.timing_cache)
    fp32_engine = OnnxEngine(config.output_dir / f"{name}.onnx", device="cpu")
    # The plan's sidecar less its parity: the engine under the gate reads a distribution head's bins there.
    metadata = ArtefactMetadata(
        precision="fp16",
        tensorrt={"version": info.tensorrt_version, "gpu": info.gpu,
                  "compute_capability": info.compute_capability,
                  "profile": {"min": list(config.profile.min_shape), "opt": list(config.profile.opt_shape),
                              "max": list(config.profile.max_shape)}},
        **{**base_metadata, "limits": SizeLimits(
            min_side=min(config.profile.min_shape[1:]), max_side=min(config.profile.max_shape[1:]),
            max_batch=config.profile.max_shape[0])})
    try:
        with TensorRTEngine(staged, metadata) as engine:
            report = measure_parity(fp32_engine.colorize, engine.colorize, cases)
        check_gate(report, GATES["fp16"], plan.name)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    staged.replace(plan)
    log(f"  parity vs FP32 ONNX: {describe(report)}")
    metadata = replace(metadata, parity={"reference": "onnx-fp32", **report.summary()})
    write_text_atomically(sidecar_path(plan), metadata.to_json())
    return plan
