"""colorize-batch --hints FILE.json: each photo coloured with its own hints, the rest as without them.

The tiny colour model v2 is untrained, so no test asks for the hinted colour itself: a hinted output
must be what the engine gives for those hints, called directly, and differ from automatic colouring.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from batchrun import batch, fused_graph_alone
from imagemaker import grey_photo, grey_photos, natural_like_image, write_rgb
from retint.batch.config import BatchConfig
from retint.batch.decode import decode
from retint.batch.hints import HINTS_NOT_APPLIED, HintTable, read_hints_file
from retint.batch.manifest import read_manifest
from retint.batch.reference import ReferenceTable, read_reference
from retint.batch.run import run_batch
from retint.runtime import open_engines
from retint.runtime.guides.hints import hints_as_json, hints_from_json

# x, y in the photos' pixels (they are 64 wide, 48 high), a*, b* in CIELAB
RED = [{"x": 8, "y": 6, "a": 60.0, "b": 40.0}, {"x": 50, "y": 30, "rgb": "#c03030"}]
BLUE = [{"x": 20, "y": 20, "a": 10.0, "b": -60.0}]
GREEN = [{"x": 40, "y": 10, "a": -50.0, "b": 40.0}]
# Strong enough to move the colours by many levels (for Ray's output, compared within one level).
GRID = [{"x": x, "y": y, "a": 80.0, "b": 60.0} for x in range(4, 64, 12) for y in range(4, 48, 12)]


def v2_engine(exported_distribution) -> Path:
    return next(path for path in exported_distribution.artefacts if path.name == "tiny-v2.onnx")


def hints_file(path: Path, content: dict) -> Path:
    path.write_text(json.dumps(content))
    return path


def colorize(source: Path, output: Path, engine: Path, *extra) -> tuple[int, str, dict[str, dict], dict]:
    """colorize-batch on the CPU's ONNX Runtime: (exit code, stderr, manifest lines by source name, summary)."""
    process = batch(source, "-o", output, "--engine", engine, "--backend", "onnxruntime", *extra)
    entries, summary = read_manifest(output)
    sources = [entry["source"] for entry in entries]
    assert len(sources) == len(set(sources)), "the manifest names an input twice"
    return process.returncode, process.stderr, {os.path.basename(entry["source"]): entry for entry in entries}, \
        summary or {}


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def identity(path: Path) -> tuple[int, int]:
    """The file at `path` (an output written again is a new file: its atomic replacement)."""
    status = os.stat(path)
    return status.st_ino, status.st_mtime_ns


def as_points(hints: list[dict]) -> list[tuple[float, float, float, float]]:
    """JSON hints -> (x, y, a, b), as the engine takes them."""
    return hints_from_json(hints)


def test_hinted_photos_take_their_hints_and_the_others_are_byte_identical(exported_distribution, tmp_path):
    engine = v2_engine(exported_distribution)
    source = grey_photos(tmp_path / "scans", {"a.png": 1, "album/b.png": 2, "album/c.png": 3})
    table = hints_file(tmp_path / "hints.json", {"a.png": RED, "album/c.png": [{"x": 64, "y": 3, "a": 1, "b": 1}],
                                                 "gone.png": BLUE, "album/missing.jpg": GREEN})
    code, _, plain, _ = colorize(source, tmp_path / "plain", engine)
    assert code == 0
    code, stderr, hinted, summary = colorize(source, tmp_path / "hinted", engine, "--hints", table)

    assert code == 3, stderr  # c's hint lies outside it: that photo fails, the batch goes on
    warnings = [line for line in stderr.splitlines() if "not found in the sources" in line]
    assert warnings == ["warning: --hints names 2 input(s) not found in the sources, left unused: gone.png, "
                        "album/missing.jpg"]
    assert summary["counts"] == {"ok": 2, "failed": 1}

    # The hinted photo: what the engine gives for those hints, called directly with the run's settings.
    with open_engines(BatchConfig(sources=(source,), output=tmp_path / "x", engine=engine,
                                  backend="onnxruntime").engine_request()) as engines:
        gray = decode(source / "a.png", BatchConfig.max_pixels, False).gray
        direct = engines.main.colorize(gray, hints=[as_points(RED)])[0]
    assert np.array_equal(rgb(tmp_path / "hinted" / "a.png"), direct)
    assert not np.array_equal(rgb(tmp_path / "hinted" / "a.png"), rgb(tmp_path / "plain" / "a.png"))
    assert hinted["a.png"]["hints"] == hints_as_json(as_points(RED))
    assert hinted["a.png"]["hints"][1]["a"] != 0  # the rgb hint is recorded as its a*, b*

    # A photo without hints: the very file a run without --hints writes, and no hints in its line.
    assert (tmp_path / "hinted" / "album" / "b.png").read_bytes() == (tmp_path / "plain" / "album" / "b.png").read_bytes()
    assert "hints" not in hinted["b.png"] and "hints" not in plain["a.png"]

    failed = hinted["c.png"]
    assert failed["status"] == "failed" and failed["output"] is None
    assert failed["reason"] == "--hints: hint at (64, 3) is outside the 64x48 image"
    assert not (tmp_path / "hinted" / "album" / "c.png").exists()


def test_reruns_colour_again_exactly_the_photos_whose_hints_changed(exported_distribution, tmp_path):
    engine = v2_engine(exported_distribution)
    source = grey_photos(tmp_path / "scans", {"a.png": 1, "b.png": 2, "d.png": 4})
    output = tmp_path / "out"

    def run(*extra) -> dict:
        code, stderr, entries, summary = colorize(source, output, engine, *extra)
        assert code == 0, stderr
        return {"entries": entries, "counts": summary["counts"], "already_done": summary["already_done"],
                "files": {name: identity(output / name) for name in ("a.png", "b.png", "d.png")}}

    first = run()
    automatic = (output / "a.png").read_bytes()
    gained = run("--hints", hints_file(tmp_path / "h1.json", {"a.png": RED, "d.png": BLUE}))
    assert gained["counts"] == {"ok": 2} and gained["already_done"] == 1  # only the photos that gained hints
    assert gained["files"]["b.png"] == first["files"]["b.png"]
    assert gained["files"]["a.png"] != first["files"]["a.png"] and gained["files"]["d.png"] != first["files"]["d.png"]

    same = run("--hints", tmp_path / "h1.json")
    assert same["counts"] == {} and same["already_done"] == 3 and same["files"] == gained["files"]

    changed = run("--hints", hints_file(tmp_path / "h2.json", {"a.png": GREEN, "d.png": BLUE}))
    assert changed["counts"] == {"ok": 1} and changed["already_done"] == 2
    assert [name for name in changed["files"] if changed["files"][name] != same["files"][name]] == ["a.png"]
    assert changed["entries"]["a.png"]["hints"] == hints_as_json(as_points(GREEN))
    assert changed["entries"]["d.png"]["hints"] == hints_as_json(as_points(BLUE))

    # Without --hints the hinted photos are coloured automatically again: the outputs say what the
    # command line says.
    dropped = run()
    assert dropped["counts"] == {"ok": 2} and dropped["files"]["b.png"] == first["files"]["b.png"]
    assert (output / "a.png").read_bytes() == automatic
    assert all("hints" not in entry for entry in dropped["entries"].values())


def test_an_output_someone_changed_is_never_written_over_for_new_hints(exported_distribution, tmp_path):
    """A user retouched a.png after the run; new hints for it must not replace their file (a review
    found they did): the manifest line names the file retint wrote, and only that file is replaced."""
    engine = v2_engine(exported_distribution)
    source = grey_photos(tmp_path / "scans", {"a.png": 1, "b.png": 2})
    output = tmp_path / "out"
    code, stderr, _, _ = colorize(source, output, engine, "--hints", hints_file(tmp_path / "h1.json", {"a.png": RED}))
    assert code == 0, stderr
    retouched = rgb(output / "a.png")[..., ::-1].copy()
    cv2.imwrite(str(output / "a.png"), retouched)
    mine = (output / "a.png").read_bytes()
    code, stderr, entries, summary = colorize(source, output, engine, "--hints",
                                              hints_file(tmp_path / "h2.json", {"a.png": GREEN, "b.png": BLUE}))
    assert code == 0, stderr
    assert (output / "a.png").read_bytes() == mine  # the user's file, untouched
    assert summary["counts"] == {"ok": 1} and entries["b.png"]["hints"] == hints_as_json(as_points(BLUE))
    assert entries["a.png"]["hints"] == hints_as_json(as_points(RED))  # the line still says what made its output


def test_a_photo_whose_new_hints_fail_keeps_its_earlier_output_and_line_for_the_next_run(exported_distribution,
                                                                                          tmp_path):
    engine = v2_engine(exported_distribution)
    source = grey_photos(tmp_path / "scans", {"a.png": 1})
    output = tmp_path / "out"
    assert colorize(source, output, engine, "--hints", hints_file(tmp_path / "good.json", {"a.png": RED}))[0] == 0
    before = (output / "a.png").read_bytes()
    code, _, entries, _ = colorize(source, output, engine, "--hints",
                                   hints_file(tmp_path / "bad.json", {"a.png": [{"x": 1, "y": 99, "a": 0, "b": 0}]}))
    assert code == 3 and entries["a.png"]["status"] == "failed"
    assert "its earlier output (coloured with other hints or reference) is left as it was" in entries["a.png"]["reason"]
    assert (output / "a.png").read_bytes() == before
    code, _, entries, summary = colorize(source, output, engine, "--hints", tmp_path / "good.json")
    assert code == 0 and summary["counts"] == {} and summary["already_done"] == 1  # still retint's, still done
    assert entries["a.png"]["hints"] == hints_as_json(as_points(RED))


def test_keys_are_paths_in_the_output_tree_with_several_sources(exported_distribution, tmp_path):
    engine = v2_engine(exported_distribution)
    first = grey_photos(tmp_path / "scans", {"a.png": 1})
    second = grey_photos(tmp_path / "more", {"a.png": 5})
    single = grey_photos(tmp_path / "loose", {"e.png": 6}) / "e.png"
    table = hints_file(tmp_path / "hints.json", {"more/a.png": RED, "e.png": BLUE, "a.png": GREEN})
    process = batch(first, second, single, "-o", tmp_path / "out", "--engine", engine, "--backend", "onnxruntime",
                    "--hints", table)
    assert process.returncode == 0, process.stderr
    assert "left unused: a.png" in process.stderr  # with several sources, a key names its source folder
    entries = {entry["output"]: entry for entry in read_manifest(tmp_path / "out")[0]}
    assert entries["more/a.png"]["hints"] == hints_as_json(as_points(RED))
    assert entries["e.png"]["hints"] == hints_as_json(as_points(BLUE))
    assert "hints" not in entries["scans/a.png"]


def test_a_video_with_hints_is_coloured_automatically_and_says_so(exported_distribution, tmp_path):
    pytest.importorskip("av")
    from test_video import make_clip

    engine = v2_engine(exported_distribution)
    source = grey_photos(tmp_path / "scans", {"a.png": 1})
    make_clip(source / "clip.mp4", frames=6, size=(64, 48), audio=False)
    table = hints_file(tmp_path / "hints.json", {"clip.mp4": RED, "a.png": RED})
    code, stderr, entries, _ = colorize(source, tmp_path / "out", engine, "--hints", table)
    assert code == 0, stderr
    video = entries["clip.mp4"]
    assert video["status"] == "ok" and HINTS_NOT_APPLIED in video["reason"] and "hints" not in video
    assert [line for line in stderr.splitlines() if line.startswith("warning:")] == [
        "warning: --hints has hints for 1 video(s): videos are coloured automatically (hints are for photos)"]
    assert entries["a.png"]["hints"] == hints_as_json(as_points(RED))
    # Done is done: a rerun with the same file colours nothing again, the video included.
    code, _, _, summary = colorize(source, tmp_path / "out", engine, "--hints", table)
    assert code == 0 and summary["counts"] == {} and summary["already_done"] == 2


@pytest.mark.parametrize("content, message", [
    ("{\"a.png\": [", "not JSON (Expecting value at line 1 column 12)"),
    ("[]", "expected an object of input path -> list of hints (or folder/photo path -> {\"reference\": ...}), "
           "got list"),
    ("{\"a.png\": {\"x\": 1}}", "'a.png': expected a list of hints, got dict"),
    ("{\"a.png\": [{\"x\": 1, \"y\": 2, \"a\": 3}]}", "'a.png'[0]: expected the keys x, y and either a, b or rgb; "
                                                   "got a, x, y"),
    ("{\"a.png\": [{\"x\": 1, \"y\": 2, \"rgb\": \"red\"}]}", "'a.png'[0]: a hint's rgb must be a colour "
                                                            "written #rrggbb, got 'red'"),
    ("{\"a.png\": [{\"x\": NaN, \"y\": 2, \"a\": 3, \"b\": 4}]}", "'a.png'[0]: x must be a finite number, got nan"),
    ("{\"/abs/a.png\": []}", "the key '/abs/a.png' is not an input's relative path"),
    ("{\"../a.png\": []}", "the key '../a.png' is not an input's relative path"),
    ("{\"./a.png\": []}", "the key './a.png' is not an input's relative path"),
    ("{\"a.png\": [], \"a.png\": []}", "the key 'a.png' appears twice"),
    (None, "cannot read the file (No such file or directory)"),
])
def test_a_bad_hints_file_is_one_line_and_exit_2_before_anything(exported_distribution, tmp_path, content, message):
    source = grey_photos(tmp_path / "scans", {"a.png": 1})
    path = tmp_path / "hints.json"
    if content is not None:
        path.write_text(content)
    process = batch(source, "-o", tmp_path / "out", "--engine", v2_engine(exported_distribution), "--hints", path)
    assert process.returncode == 2
    assert process.stderr.count("\n") == 1, process.stderr
    assert process.stderr.startswith(f"colorize-batch: error: --hints {path}: ") and message in process.stderr
    assert not (tmp_path / "out").exists()


def test_the_bundled_model_takes_hints_which_hold_at_their_pixels(tmp_path):
    source = grey_photos(tmp_path / "scans", {"a.png": 1})
    hint = {"x": 20, "y": 20, "a": 18.0, "b": 24.0}
    process = batch(source, "-o", tmp_path / "out", "--hints", hints_file(tmp_path / "hints.json", {"a.png": [hint]}))
    assert process.returncode == 0, process.stderr
    lab = cv2.cvtColor(rgb(tmp_path / "out" / "a.png").astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    assert abs(lab[20, 20, 1] - hint["a"]) < 2 and abs(lab[20, 20, 2] - hint["b"]) < 2
    entries, _ = read_manifest(tmp_path / "out")
    assert [entry["hints"] for entry in entries if entry.get("hints")] == [hints_as_json(as_points([hint]))]


def test_a_model_without_its_stages_refuses_hints_in_the_one_wording_before_anything(exported, tmp_path):
    from retint.runtime.refusals import stages_refusal

    alone = fused_graph_alone(exported["effnet-unet"].artefacts[0], tmp_path / "alone")
    source = grey_photos(tmp_path / "scans", {"a.png": 1})
    process = batch(source, "-o", tmp_path / "out", "--engine", alone, "--backend", "onnxruntime",
                    "--hints", hints_file(tmp_path / "hints.json", {"a.png": RED}))
    assert process.returncode == 2
    assert process.stderr == f"colorize-batch: error: --hints: {stages_refusal(alone.name, ['hints'])}\n"
    assert not (tmp_path / "out").exists()


def test_the_hint_table_is_immutable_and_travels_by_pickle(tmp_path):
    import pickle

    table = read_hints_file(hints_file(tmp_path / "hints.json", {"a.png": RED, "b/c.png": []})).hints
    assert dict(table) == {"a.png": tuple(as_points(RED)), "b/c.png": ()}
    assert pickle.loads(pickle.dumps(table)) == table and hash(table) == hash(HintTable(dict(table)))
    with pytest.raises(TypeError):
        table["a.png"] = ()  # type: ignore[index]
    config = BatchConfig(sources=(tmp_path,), output=tmp_path / "out", hints=table)
    assert pickle.loads(pickle.dumps(config)).hints == table


def test_ray_carries_each_photos_hints_to_its_worker(exported_distribution, tmp_path):
    ray = pytest.importorskip("ray")
    engine = v2_engine(exported_distribution)
    source = grey_photos(tmp_path / "scans", {"a.png": 1, "b.png": 2})
    table = read_hints_file(hints_file(tmp_path / "hints.json", {"a.png": GRID})).hints
    palette = read_reference(write_rgb(tmp_path / "square.jpg", natural_like_image(60, 80, 3)), 10 ** 8)
    settings = dict(sources=(source,), engine=engine, backend="onnxruntime", progress=False, hints=table,
                    references=ReferenceTable(by_key=(("b.png", palette),)))
    run_batch(BatchConfig(output=tmp_path / "local", **settings), log=lambda line: None)
    run_batch(BatchConfig(output=tmp_path / "plain", **(settings | {"hints": HintTable(), "references": ReferenceTable()})),
              log=lambda line: None)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = run_batch(BatchConfig(output=tmp_path / "ray", ray=True, **settings), log=lambda line: None)
    finally:
        ray.shutdown()
    assert summary.counts == {"ok": 2}
    entries = {os.path.basename(entry["source"]): entry for entry in read_manifest(tmp_path / "ray")[0]}
    assert entries["a.png"]["hints"] == hints_as_json(as_points(GRID)) and "hints" not in entries["b.png"]
    # b.png's reference rides to the worker by its sha256, its thumbnail in the actors' config.
    assert entries["b.png"]["reference"] == palette.recorded() and "reference" not in entries["a.png"]

    def difference(first: Path, second: Path) -> float:
        return float(np.abs(rgb(first).astype(int) - rgb(second)).mean())

    assert difference(tmp_path / "ray" / "a.png", tmp_path / "local" / "a.png") <= 1.0
    assert difference(tmp_path / "ray" / "a.png", tmp_path / "plain" / "a.png") > 5.0
    assert difference(tmp_path / "ray" / "b.png", tmp_path / "local" / "b.png") <= 1.0
    assert difference(tmp_path / "ray" / "b.png", tmp_path / "plain" / "b.png") > 0.0


def test_fuzzed_hints_files_are_read_or_refused_in_one_line(tmp_path):
    """Seeded, bounded: a damaged hints file gives a table or one HintError line, never anything else."""
    import random

    from retint.runtime.guides.hints import HintError

    valid = json.dumps({"a.png": RED, "album/b.jpg": BLUE, "c.png": []}).encode()
    pieces = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\\", b"NaN", b"1e999", b"-", b"/", b"..", b"\xff", b"\x00"]
    generator = random.Random(11)
    path = tmp_path / "hints.json"
    read = refused = 0
    for _ in range(400):
        data = bytearray(valid)
        for _ in range(generator.randint(1, 4)):
            at = generator.randrange(len(data) + 1)
            choice = generator.random()
            if choice < 0.4:
                data[at:at] = generator.choice(pieces)
            elif choice < 0.7:
                del data[at:at + generator.randint(1, 6)]
            elif data:
                data[min(at, len(data) - 1)] = generator.randrange(256)
            else:
                data[:] = b""
        path.write_bytes(bytes(data))
        try:
            table = read_hints_file(path).hints
        except HintError as error:
            refused += 1
            assert "\n" not in str(error) and str(error).startswith(f"--hints {path}: ")
        else:
            read += 1
            assert all(isinstance(key, str) and not key.startswith("/") for key in table)
    assert read and refused
