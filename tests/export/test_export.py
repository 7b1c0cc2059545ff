"""export-trt: one self-contained graph per precision, gated against PyTorch."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from retint.errors import ParityError
from retint.export.deploy import DeployColouriser, area_resize
from retint.export.parity import FP32_GATE, check_gate, load_parity_images, measure_parity, parity_cases
from retint.model.checkpoint import load_generator
from retint.runtime.metadata import METADATA_KEY, sidecar_path
from retint.runtime.onnx_runner import OnnxEngine

ARCHES = ["effnet-unet", "unet256"]


@pytest.mark.parametrize("arch", ARCHES)
def test_both_graphs_pass_their_gates_and_are_written(exported, arch):
    result = exported[arch]
    fp32, fp16, generator, generator_fp16, lightness, compose = result.artefacts
    assert (generator.name, generator_fp16.name, lightness.name, compose.name) == (
        f"tiny-{arch}.generator.onnx", f"tiny-{arch}.generator.fp16.onnx", f"tiny-{arch}.lightness.onnx",
        f"tiny-{arch}.compose.onnx")
    assert fp32.name.endswith(".onnx") and fp16.name.endswith(".fp16.onnx")
    assert result.reports["fp32"].fraction_within_one_level >= 0.999
    assert result.reports["fp32"].mean_ciede2000 <= 0.1
    assert result.reports["fp16"].mean_ciede2000 <= 0.5
    assert result.reports["fp16"].p99_ciede2000 <= 2.0
    assert result.reports["fp16"].nonfinite == 0
    # one self-contained file each, nothing staged left behind
    assert sorted(p.name for p in fp32.parent.iterdir()) == sorted(
        [p.name for p in result.artefacts] + [p.name + ".json" for p in result.artefacts])


@pytest.mark.parametrize("arch", ARCHES)
def test_graph_signature_opset_and_precision(exported, arch):
    for path, precision in zip(exported[arch].artefacts[:2], ("fp32", "fp16")):
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 18
        (graph_input,), (graph_output,) = model.graph.input, model.graph.output
        assert (graph_input.name, graph_output.name) == ("gray", "rgb")
        assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
        assert graph_output.type.tensor_type.elem_type == onnx.TensorProto.UINT8
        dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
        assert dims[1] == 1 and all(isinstance(d, str) for d in (dims[0], dims[2], dims[3]))
        conv_weights = {node.input[1] for node in model.graph.node if node.op_type in ("Conv", "ConvTranspose")}
        weight_types = {init.data_type for init in model.graph.initializer if init.name in conv_weights}
        expected = onnx.TensorProto.FLOAT16 if precision == "fp16" else onnx.TensorProto.FLOAT
        assert weight_types == {expected}


@pytest.mark.parametrize("arch", ARCHES)
def test_stages_have_their_own_signatures_and_sidecars(exported, arch):
    *_, generator, generator_fp16, lightness, compose = exported[arch].artefacts
    for path, inputs, outputs, kind in ((lightness, ["gray"], ["lightness"], "lightness"),
                                        (generator, ["lightness"], ["ab"], "generator"),
                                        (generator_fp16, ["lightness"], ["ab"], "generator"),
                                        (compose, ["gray", "ab"], ["rgb"], "compose")):
        model = onnx.load(str(path))
        assert [i.name for i in model.graph.input] == inputs and [o.name for o in model.graph.output] == outputs
        assert json.loads(sidecar_path(path).read_text())["kind"] == kind
    # The generator stage is the one with a fixed shape: only N is dynamic.
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(generator)).graph.input[0].type.tensor_type.shape.dim]
    render = exported[arch].reports["fp32"] and json.loads(sidecar_path(generator).read_text())["render_size"]
    assert isinstance(dims[0], str) and dims[1:] == [1, render, render]


@pytest.mark.parametrize("arch", ARCHES)
def test_openvino_bf16_gate_is_recorded_only_where_it_was_measured(exported, arch):
    from retint.cpu import has_native_bf16
    from retint.runtime.openvino_runner import openvino_installed

    generator = exported[arch].artefacts[2]
    parity = json.loads(sidecar_path(generator).read_text())["parity"]
    if has_native_bf16() and openvino_installed():
        gate = parity["openvino-bf16"]
        assert gate["passed"] and gate["failures"] == [] and gate["mean_ciede2000"] <= 0.5
        assert gate["bf16_flags"] and gate["reference"] == "pytorch-fp32"
    else:
        assert "openvino-bf16" not in parity


@pytest.mark.parametrize("arch", ARCHES)
def test_sidecar_and_metadata_props_explain_the_file(exported, tiny_checkpoints, arch):
    import hashlib

    for path, precision in zip(exported[arch].artefacts[:2], ("fp32", "fp16")):
        sidecar = json.loads(sidecar_path(path).read_text())
        embedded = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert json.loads(embedded[METADATA_KEY]) == sidecar
        assert sidecar["precision"] == precision and sidecar["arch"] == arch
        assert sidecar["checkpoint_sha256"] == hashlib.sha256(tiny_checkpoints[arch].read_bytes()).hexdigest()
        assert sidecar["render_size"] == (128 if arch == "effnet-unet" else 256)
        assert {"retint", "torch", "onnx"} <= set(sidecar["versions"])
        assert sidecar["parity"]["reference"] == "pytorch-fp32" and sidecar["parity"]["cases"] >= 6


def test_deploy_module_is_eval_mode_and_deterministic(tiny_checkpoints):
    generator = load_generator(tiny_checkpoints["unet256"])
    module = DeployColouriser(generator.train(), 256).train()
    assert not any(m.training for m in module.modules())
    gray = torch.randint(0, 256, (2, 1, 300, 200), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(module(gray), module(gray))


def test_area_resize_averages_blocks_and_matches_opencv_area_on_exact_multiples():
    import cv2

    image = np.random.default_rng(0).random((512, 768)).astype(np.float32)
    ours = area_resize(torch.from_numpy(image)[None, None], 256)[0, 0].numpy()
    assert np.abs(ours - cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)).max() < 1e-5


def test_a_perturbed_graph_fails_the_gate_with_figures(exported, tiny_checkpoints, tmp_path):
    path = exported["effnet-unet"].artefacts[0]
    model = onnx.load(str(path))
    conv_names = {node.input[1] for node in model.graph.node if node.op_type == "Conv"}
    conv_weights = [init for init in model.graph.initializer if init.name in conv_names]
    weights = onnx.numpy_helper.to_array(conv_weights[-1]).copy()
    weights.flat[0] += 5.0  # one weight of the last convolution
    conv_weights[-1].CopyFrom(onnx.numpy_helper.from_array(weights, conv_weights[-1].name))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))

    reference_module = DeployColouriser(load_generator(tiny_checkpoints["effnet-unet"]), 128)
    reference = lambda gray: reference_module(torch.from_numpy(gray)).detach().numpy()  # noqa: E731
    cases = parity_cases(load_parity_images(None))
    report = measure_parity(reference, OnnxEngine(broken, device="cpu").colorize, cases)
    with pytest.raises(ParityError, match="fails the fp32 parity gate") as failure:
        check_gate(report, FP32_GATE, broken.name)
    assert "CIEDE2000" in str(failure.value) and "within 1 level" in str(failure.value)


def export_cli(*args):
    return subprocess.run([sys.executable, "-m", "retint.export.cli", *map(str, args)],
                          capture_output=True, text=True)


@pytest.mark.slow  # a whole export in a subprocess (about 20 s)
def test_cli_without_tensorrt_writes_the_onnx_files_says_so_and_exits_0(tiny_checkpoints, tmp_path):
    # Issue 41: it exited 3 (a partial result) on every host without TensorRT, and its progress
    # wrote carriage returns into captured output.
    process = export_cli(tiny_checkpoints["effnet-unet"], "-o", tmp_path, "--name", "tiny")
    assert process.returncode == 0, process.stderr
    assert "\r" not in process.stderr
    assert any(line.startswith("[1/") and line.endswith("] fp32 graph") for line in process.stderr.splitlines())
    (missing,) = [line for line in process.stderr.splitlines() if "no TensorRT plan built" in line]
    assert f"on a GPU host run: export-trt {tiny_checkpoints['effnet-unet']} -o {tmp_path} --name tiny" in missing
    names = {"tiny.onnx", "tiny.fp16.onnx", "tiny.generator.onnx", "tiny.generator.fp16.onnx", "tiny.lightness.onnx",
             "tiny.compose.onnx"}
    assert {p.name for p in tmp_path.iterdir()} == names | {name + ".json" for name in names}
    assert (tmp_path / "tiny.onnx").stat().st_mode & 0o044  # readable by others, like any output
    required = export_cli(tiny_checkpoints["effnet-unet"], "-o", tmp_path / "again", "--require-plan")
    assert required.returncode == 3 and "no TensorRT plan built" in required.stderr


@pytest.mark.slow  # a whole export in a subprocess (about 20 s)
def test_cli_onnx_only_exits_0_and_writes_a_triton_repository(tiny_checkpoints, tmp_path):
    process = export_cli(tiny_checkpoints["unet256"], "-o", tmp_path, "--onnx-only", "--triton", tmp_path / "triton")
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == [str(tmp_path / f"tiny-unet256{suffix}") for suffix in (
        ".onnx", ".fp16.onnx", ".generator.onnx", ".generator.fp16.onnx", ".lightness.onnx", ".compose.onnx")] + [
        str(tmp_path / "triton" / "retint" / "config.pbtxt")]
    assert (tmp_path / "triton" / "retint" / "1" / "model.onnx").read_bytes() == (
        tmp_path / "tiny-unet256.onnx").read_bytes()


def test_the_gpu_host_command_repeats_every_option_given(tiny_checkpoints, tmp_path):
    """Issue 29: the hint after a missing TensorRT dropped --name (and every other option)."""
    from retint.export.cli import main, rerun_command

    checkpoint = tiny_checkpoints["effnet-unet"]
    context = main.make_context("export-trt", [str(checkpoint), "-o", str(tmp_path / "my engines"), "--name", "mine",
                                               "--render-size", "128", "--max-shape", "8x2048x2048"])
    assert rerun_command(context) == (f"export-trt {checkpoint} -o '{tmp_path / 'my engines'}' --name mine "
                                      "--render-size 128 --max-shape 8x2048x2048")


def test_export_reports_each_step_as_it_begins(exported, export_steps_seen):
    assert export_steps_seen["effnet-unet"] == [
        (0, 5, "fp32 graph"), (1, 5, "fp16 graph"), (2, 5, "lightness and compose stages"),
        (3, 5, "fp32 generator stage"), (4, 5, "fp16 generator stage"), (5, 5, "done")]


@pytest.mark.parametrize("args,message", [
    (["--render-size", "100"], "multiple of 32"),
    (["--min-shape", "1x16"], "NxHxW"),
])
def test_cli_bad_options_exit_2(tiny_checkpoints, tmp_path, args, message):
    process = export_cli(tiny_checkpoints["effnet-unet"], "-o", tmp_path, "--onnx-only", *args)
    assert process.returncode == 2 and message in process.stderr
    assert process.stderr.count("\n") == 1


def test_cli_refuses_a_foreign_checkpoint(tmp_path):
    foreign = tmp_path / "foreign.pth"
    torch.save({"weights": torch.zeros(3)}, foreign)
    process = export_cli(foreign, "-o", tmp_path / "out")
    assert process.returncode == 2 and "not a retint checkpoint" in process.stderr


@pytest.mark.gpu
def test_tensorrt_plan_is_built_and_matches_fp32_onnx(tiny_checkpoints, tmp_path):
    """Runs only on a GPU host with TensorRT: the real builder and runner, no mocks."""
    from retint.runtime import load_engine

    process = export_cli(tiny_checkpoints["effnet-unet"], "-o", tmp_path, "--name", "tiny",
                         "--max-shape", "4x2048x2048", "--timing-cache", tmp_path / "cache.bin")
    assert process.returncode == 0, process.stderr
    plan = tmp_path / "tiny.fp16.plan"
    sidecar = json.loads(sidecar_path(plan).read_text())
    assert sidecar["tensorrt"]["gpu"] and sidecar["parity"]["mean_ciede2000"] <= 0.5
    assert (tmp_path / "cache.bin").stat().st_size > 0
    with load_engine(plan) as engine:
        gray = np.random.default_rng(0).integers(0, 256, (2, 1, 480, 640), dtype=np.uint8)
        rgb = engine.colorize(gray)
        assert rgb.shape == (2, 480, 640, 3) and rgb.dtype == np.uint8
        assert engine.spec.backend == "tensorrt" and engine.spec.precision == "fp16"


@pytest.mark.gpu
def test_tensorrt_plan_of_a_v2_model_takes_hints_like_onnx(distribution_checkpoint, tmp_path):
    """Runs only on a GPU host with TensorRT: a distribution head's plan binds the hint planes, the
    global hint and the temperature, and colours as its FP32 ONNX graph does with the same controls."""
    from retint.runtime import load_engine

    process = export_cli(distribution_checkpoint, "-o", tmp_path, "--name", "v2", "--max-shape", "4x1024x1024")
    assert process.returncode == 0, process.stderr
    gray = np.random.default_rng(0).integers(0, 256, (2, 1, 240, 320), dtype=np.uint8)
    reference = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    controls = dict(hints=[[(20, 30, 50, 20)], []], temperature=0.6, reference=reference)
    with load_engine(tmp_path / "v2.fp16.plan") as plan, load_engine(tmp_path / "v2.onnx", device="cpu") as onnx:
        assert plan.spec.colour_bins is not None
        for kwargs in ({}, controls):
            difference = np.abs(plan.colorize(gray, **kwargs).astype(int) - onnx.colorize(gray, **kwargs))
            assert difference.mean() < 1.0, kwargs
