"""colorize-batch --temperature: a colour model v2 engine colours at it; a regression engine refuses it."""

import json

import cv2
import numpy as np

from batchrun import batch
from imagemaker import grey_photo


def v2_engine(exported_distribution):
    return next(path for path in exported_distribution.artefacts if path.name == "tiny-v2.onnx")


def test_temperature_changes_the_colours_and_is_named_in_the_manifest(exported_distribution, tmp_path):
    source = tmp_path / "scans"
    source.mkdir()
    cv2.imwrite(str(source / "a.png"), grey_photo(90, 120))
    outputs = {}
    for name, extra in (("default", []), ("warm", ["--temperature", "1.5"])):
        process = batch(source, "-o", tmp_path / name, "--engine", v2_engine(exported_distribution),
                        "--backend", "onnxruntime", *extra)
        assert process.returncode == 0, process.stderr
        outputs[name] = cv2.imread(str(tmp_path / name / "a.png"))
        manifest = [json.loads(line) for line in (tmp_path / name / "manifest.jsonl").read_text().splitlines()]
        assert any("temperature 1.5" in json.dumps(line) for line in manifest) == (name == "warm")
    assert np.abs(outputs["warm"].astype(int) - outputs["default"]).mean() > 0.2


def test_a_regression_engine_refuses_a_temperature_before_anything_is_created(exported, tmp_path):
    source = tmp_path / "scans"
    source.mkdir()
    cv2.imwrite(str(source / "a.png"), grey_photo(40, 40))
    process = batch(source, "-o", tmp_path / "out", "--engine", exported["effnet-unet"].artefacts[0],
                    "--backend", "onnxruntime", "--temperature", "0.5")
    assert process.returncode == 2, process.stderr
    assert process.stderr.strip().count("\n") == 0 and "regression model" in process.stderr
    assert not (tmp_path / "out").exists()
