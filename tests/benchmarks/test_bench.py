"""colorize-bench runs on fresh exports and its JSON validates against a schema."""

import json
import subprocess
import sys

import jsonschema
import pytest
from PIL import Image

NUMBER = {"type": "number"}
ENVIRONMENT = {"type": "object", "required": ["python", "onnxruntime", "retint"]}

LATENCY_SCHEMA = {
    "type": "object", "required": ["benchmark", "environment", "results"],
    "properties": {
        "benchmark": {"const": "latency"}, "environment": ENVIRONMENT,
        "results": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["backend", "batch", "height", "width", "p50_ms", "p95_ms", "images_per_second",
                         "megapixels_per_second", "runs"],
            "properties": {"batch": {"type": "integer", "minimum": 1}, "p50_ms": {"type": "number", "exclusiveMinimum": 0},
                           "images_per_second": {"type": "number", "exclusiveMinimum": 0}}}}},
}
PARITY_SCHEMA = {
    "type": "object", "required": ["benchmark", "environment", "results"],
    "properties": {
        "benchmark": {"const": "parity"}, "environment": ENVIRONMENT,
        "results": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["engine", "precision", "max_abs_error", "p999_abs_error", "fraction_within_one_level",
                         "mean_ciede2000", "p99_ciede2000", "psnr_db", "nonfinite", "gate_failures", "per_case"],
            "properties": {"max_abs_error": {"type": "integer", "minimum": 0},
                           "nonfinite": {"type": "integer", "minimum": 0},
                           "gate_failures": {"type": "array", "items": {"type": "string"}}}}}},
}
PIPELINE_BACKEND = {
    "type": "object",
    # end_to_end_vs_first_backend: only where several backends ran.
    "required": ["backend", "engine", "end_to_end", "engine_alone", "ratio_end_to_end_vs_engine"],
    "properties": {
        "end_to_end": {"type": "object", "required": ["images_per_second", "peak_rss_mb", "stage_seconds",
                                                      "every_round_images_per_second"],
                       "properties": {"stage_seconds": {"type": "object",
                                                        "required": ["decode", "infer", "encode", "write"]}}},
        "engine_alone": {"type": "object", "required": ["images_per_second", "batch", "engine"]},
        "ratio_end_to_end_vs_engine": NUMBER, "end_to_end_vs_first_backend": NUMBER},
}
PIPELINE_SCHEMA = {
    "type": "object", "required": ["benchmark", "environment", "images", "rounds", "backends"],
    "properties": {"benchmark": {"const": "pipeline"}, "images": {"type": "integer", "minimum": 1},
                   "backends": {"type": "array", "minItems": 1, "items": PIPELINE_BACKEND}},
}


def bench(*args):
    return subprocess.run([sys.executable, "-m", "retint.benchmarks.cli", *map(str, args)],
                          capture_output=True, text=True)


def test_latency_json_validates(exported, tiny_checkpoints, tmp_path):
    report = tmp_path / "latency.json"
    process = bench("latency", "--engine", exported["effnet-unet"].artefacts[0], "--torch",
                    tiny_checkpoints["effnet-unet"], "--batch", "1,2", "--size", "64,96x48", "--seconds", 0.1,
                    "--json", report)
    assert process.returncode == 0, process.stderr
    data = json.loads(report.read_text())
    jsonschema.validate(data, LATENCY_SCHEMA)
    assert {r["backend"].split(" ")[0] for r in data["results"]} == {"tiny-effnet-unet.onnx", "pytorch-eager"}
    assert "| backend |" in process.stdout


def test_parity_json_validates_and_passes_the_gates(exported, tiny_checkpoints, tmp_path):
    report = tmp_path / "parity.json"
    fused_fp32, fused_fp16 = exported["unet256"].artefacts[:2]
    process = bench("parity", "--torch", tiny_checkpoints["unet256"], "--engine", fused_fp32,
                    "--engine", fused_fp16, "--json", report)
    assert process.returncode == 0, process.stderr
    data = json.loads(report.read_text())
    jsonschema.validate(data, PARITY_SCHEMA)
    assert [r["precision"] for r in data["results"]] == ["fp32", "fp16"]
    assert all(not r["gate_failures"] for r in data["results"])


def test_parity_catches_a_perturbed_export(exported, tiny_checkpoints, tmp_path):
    import onnx

    model = onnx.load(str(exported["effnet-unet"].artefacts[0]))
    conv_names = {node.input[1] for node in model.graph.node if node.op_type == "Conv"}
    weight = [init for init in model.graph.initializer if init.name in conv_names][-1]
    values = onnx.numpy_helper.to_array(weight).copy()
    values.flat[0] += 5.0
    weight.CopyFrom(onnx.numpy_helper.from_array(values, weight.name))
    broken = tmp_path / "broken.onnx"
    onnx.save(model, str(broken))
    process = bench("parity", "--torch", tiny_checkpoints["effnet-unet"], "--engine", broken,
                    "--json", tmp_path / "p.json")
    assert process.returncode == 4
    assert "parity gate failed" in process.stderr and "CIEDE2000" in process.stderr
    assert "FAIL" in process.stdout


def test_pipeline_json_validates(exported, tmp_path):
    report = tmp_path / "pipeline.json"
    process = bench("pipeline", tmp_path / "archive", "--generate", 6, "--engine",
                    exported["effnet-unet"].artefacts[0], "--batch", 2, "--json", report)
    assert process.returncode == 0, process.stderr
    data = json.loads(report.read_text())
    jsonschema.validate(data, PIPELINE_SCHEMA)
    (figures,) = data["backends"]
    assert data["images"] == 6 and figures["end_to_end"]["counts"] == {"ok": 6}
    assert "6 images 1024x768," in process.stdout


def test_pipeline_names_every_size_and_compares_backends_only_when_several_ran(exported, tmp_path):
    # Issue 41: it printed "6 images 96x64" (the first photo's size) for photos of three sizes, and
    # an "x first backend" column (always 1.0) when one backend ran.
    from retint.benchmarks.pipeline import photo_like

    for index, (width, height, suffix) in enumerate([(96, 64, ".jpg"), (96, 64, ".jpg"), (80, 120, ".png"),
                                                     (80, 120, ".png"), (100, 100, ".jpg"), (100, 100, ".jpg")]):
        (tmp_path / "archive").mkdir(exist_ok=True)
        Image.fromarray(photo_like(height, width, index)).save(tmp_path / "archive" / f"{index}{suffix}")
    process = bench("pipeline", tmp_path / "archive", "--engine", exported["effnet-unet"].artefacts[0],
                    "--json", tmp_path / "pipeline.json")
    assert process.returncode == 0, process.stderr
    assert "6 images of 3 sizes (80x120 to 100x100), 0.05 MP," in process.stdout
    assert "x first backend" not in process.stdout
    data = json.loads((tmp_path / "pipeline.json").read_text())
    assert data["backends"][0]["engine_alone"]["sizes"] == 3
    assert [size["images"] for size in data["sizes"]] == [2, 2, 2]


@pytest.mark.slow  # two rounds on two backends, then parity on both: half a minute on two cores
def test_pipeline_and_parity_compare_backends_side_by_side(exported, tiny_checkpoints, tmp_path):
    pytest.importorskip("openvino")
    report = tmp_path / "pipeline.json"
    engine = exported["effnet-unet"].artefacts[0]
    process = bench("pipeline", tmp_path / "archive", "--generate", 4, "--engine", engine, "--backend",
                    "onnxruntime", "--backend", "openvino", "--rounds", 2, "--json", report)
    assert process.returncode == 0, process.stderr
    data = json.loads(report.read_text())
    jsonschema.validate(data, PIPELINE_SCHEMA)
    assert [b["backend"] for b in data["backends"]] == ["onnxruntime", "openvino"]
    assert all(len(b["end_to_end"]["every_round_images_per_second"]) == 2 for b in data["backends"])
    assert data["backends"][0]["end_to_end_vs_first_backend"] == 1.0 and "x first backend" in process.stdout
    assert data["backends"][1]["engine"].startswith("openvino ")
    parity = tmp_path / "parity.json"
    process = bench("parity", "--torch", tiny_checkpoints["effnet-unet"], "--engine", engine, "--backend",
                    "onnxruntime", "--backend", "openvino", "--json", parity)
    assert process.returncode == 0, process.stderr
    rows = json.loads(parity.read_text())["results"]
    assert [r["backend"] for r in rows] == ["onnxruntime", "openvino"]
    assert rows[1]["gate"] == rows[1]["precision"] and not rows[1]["gate_failures"]
    assert rows[1]["versus_onnxruntime"]["mean_ciede2000"] <= 0.5


@pytest.mark.gpu
def test_latency_on_a_tensorrt_plan(tiny_checkpoints, tmp_path):
    """On a GPU host: export the plan, then time it natively."""
    export = subprocess.run([sys.executable, "-m", "retint.export.cli", str(tiny_checkpoints["effnet-unet"]),
                             "-o", str(tmp_path), "--name", "tiny", "--max-shape", "8x1024x1024"],
                            capture_output=True, text=True)
    assert export.returncode == 0, export.stderr
    process = bench("latency", "--engine", tmp_path / "tiny.fp16.plan", "--batch", "1,8", "--size", "256",
                    "--json", tmp_path / "l.json")
    assert process.returncode == 0, process.stderr
    jsonschema.validate(json.loads((tmp_path / "l.json").read_text()), LATENCY_SCHEMA)


def test_training_compares_settings_in_one_run(tmp_path):
    from click.testing import CliRunner

    from retint.benchmarks.cli import main

    result = CliRunner().invoke(main, ["training", "--setting", "fp32", "--setting", "bf16-cl@64", "--batch", "2",
                                       "--seconds", "0.1", "--rounds", "1", "--json", str(tmp_path / "t.json")])
    assert result.exit_code == 0, result.output
    document = json.loads((tmp_path / "t.json").read_text())
    assert [r["setting"] for r in document["results"]] == ["fp32 @256", "bf16 channels_last @64"]
    assert [r["precision"] for r in document["results"]] == ["cpu fp32", "cpu bfloat16 autocast"]
    assert all(r["gan_images_per_second"] > 0 for r in document["results"])
    assert document["environment"]["cpu_model"] and "cpu_flags" in document["environment"]
    bad = CliRunner().invoke(main, ["training", "--setting", "fp8"])
    assert bad.exit_code == 2 and "fp8" in bad.output


def test_serve_loads_a_real_server_per_backend(tmp_path):
    pytest.importorskip("fastapi")
    report_path = tmp_path / "serve.json"
    process = bench("serve", "--backend", "onnxruntime", "--requests", "12", "--clients", "3", "--warmup", "3",
                    "--size", "320x240", "--json", report_path)
    assert process.returncode == 0, process.stderr
    [row] = json.loads(report_path.read_text())["rows"]
    assert row["backend"] == "onnxruntime" and row["engine"].startswith("onnxruntime fp32")
    assert row["answered"] == 12 and row["errors"] == []
    assert sum(row["statuses"].values()) == 12 and set(row["statuses"]) <= {"200", "503"}
    assert row["requests_per_second"] > 0 and row["p95_ms"] >= row["p50_ms"] > 0
    assert row["peak_rss_mb_after_load"] >= row["peak_rss_mb_after_warmup"] > 0
    assert "| onnxruntime |" in process.stdout


@pytest.mark.slow  # starts Ray twice (about 25 s)
def test_ray_overhead_report_runs_both_arrangements(tmp_path):
    pytest.importorskip("ray")
    report_path = tmp_path / "ray.json"
    process = bench("ray", "--generate", "20", "--rounds", "1", "--fast-engine-files", "40", "--json", report_path)
    assert process.returncode == 0, process.stderr
    report = json.loads(report_path.read_text())
    assert report["images"] == 20
    assert report["local"]["images_per_second"] > 0 and report["ray"]["images_per_second"] > 0
    assert "Ray actor" in report["ray"]["engine"] and "Ray" not in report["local"]["engine"]
    fast = report["fast_engine"]
    assert fast["files"] == 40 and fast["units"] == 3 and fast["engine"].startswith("onnxruntime fp32")
    assert fast["rows_per_second"] > 0 and fast["driver_recording_lines_per_second"] > 1000
    assert "--ray / local images/s" in process.stdout
