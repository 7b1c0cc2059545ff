"""colorize-batch --reference PHOTO, and "reference" entries per folder in the --hints file.

The tiny colour model v2 is untrained (its global-hint weights are random), so no test asks for a
palette's colours: a guided output must be what the engine gives for that reference, called
directly, and differ from automatic colouring; the manifest must name the reference, and a rerun
must colour again exactly the inputs whose reference changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from batchrun import batch, fused_graph_alone
from imagemaker import grey_photo, grey_photos, natural_like_image, write_rgb
from retint.batch.decode import decode
from retint.batch.hints import read_hints_file
from retint.batch.manifest import read_manifest
from retint.batch.reference import ReferenceTable, read_reference
from retint.runtime import open_engines
from retint.runtime.guides.hints import HintError

MAX_PIXELS = 150_000_000


def v2_engine(exported_distribution) -> Path:
    return next(path for path in exported_distribution.artefacts if path.name == "tiny-v2.onnx")


def colour_photo(path: Path, seed: int, tint=(1.0, 1.0, 1.0)) -> Path:
    """A colour photo (a JPEG, 300x200), its channels scaled by `tint`."""
    rgb = (natural_like_image(200, 300, seed) * np.array(tint)).clip(0, 255).astype(np.uint8)
    return write_rgb(path, rgb, [cv2.IMWRITE_JPEG_QUALITY, 92])


def run(source: Path, output: Path, engine: Path, *extra) -> tuple[int, str, dict[str, dict]]:
    """colorize-batch on ONNX Runtime: (exit code, stderr, manifest lines by output-relative path)."""
    process = batch(source, "-o", output, "--engine", engine, "--backend", "onnxruntime", "--no-progress", *extra)
    entries, _ = read_manifest(output)
    assert len({entry["source"] for entry in entries}) == len(entries), "the manifest names an input twice"
    return process.returncode, process.stderr, {
        os.path.relpath(entry["source"], source): entry for entry in entries}


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def expected(engine: Path, photo: Path, reference: Path | None) -> np.ndarray:
    """What the engine itself gives `photo` with `reference`'s thumbnail (as the batch reads it)."""
    palette = read_reference(reference, MAX_PIXELS).rgb() if reference is not None else None
    with open_engines_for(engine) as opened:
        gray = decode(photo, MAX_PIXELS, include_colour=False).gray
        return opened.colorize(gray[None, None], reference=palette)[0]


class open_engines_for:
    def __init__(self, engine: Path):
        from retint.runtime import EngineRequest

        self.engines = open_engines(EngineRequest(path=engine, backend="onnxruntime"))

    def __enter__(self):
        return self.engines.main

    def __exit__(self, *_):
        self.engines.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_reference_guides_every_photo_and_the_manifest_names_it(exported_distribution, tmp_path):
    engine = v2_engine(exported_distribution)
    source = grey_photos(tmp_path / "scans", {"a.png": 1, "b/c.png": 2})
    square = colour_photo(tmp_path / "refs" / "square.jpg", 5, tint=(1.0, 0.5, 0.4))
    code, stderr, lines = run(source, tmp_path / "out", engine, "--reference", square)
    assert code == 0, stderr
    assert f"reference palette: square.jpg ({sha256(square)[:12]})" in stderr
    for name in ("a.png", "b/c.png"):
        assert lines[name]["status"] == "ok"
        assert lines[name]["reference"] == {"path": str(square), "sha256": sha256(square)}
        guided = rgb(tmp_path / "out" / name)
        assert np.array_equal(guided, expected(engine, source / name, square))
        # The tiny model's random global-hint weights move its colours a little (a trained one's, a lot).
        assert np.abs(guided.astype(int) - expected(engine, source / name, None)).mean() > 0.1


def test_a_rerun_colours_again_exactly_the_inputs_whose_reference_changed(exported_distribution, tmp_path):
    engine = v2_engine(exported_distribution)
    source = grey_photos(tmp_path / "scans", {"town/a.png": 1, "town/b.png": 2, "family/c.png": 3})
    refs = tmp_path / "refs"
    colour_photo(refs / "square.jpg", 5, tint=(1.0, 0.5, 0.4))
    colour_photo(refs / "garden.jpg", 6, tint=(0.4, 1.0, 0.5))
    hints = refs / "hints.json"
    hints.write_text(json.dumps({"town/": {"reference": "square.jpg"}, "town/b.png": {"reference": None}}))
    out = tmp_path / "out"

    def files() -> dict[str, tuple[int, int]]:
        return {name: (os.stat(out / name).st_ino, os.stat(out / name).st_mtime_ns)
                for name in ("town/a.png", "town/b.png", "family/c.png")}

    code, stderr, lines = run(source, out, engine, "--hints", hints, "--reference", refs / "garden.jpg")
    assert code == 0, stderr
    assert lines["town/a.png"]["reference"]["sha256"] == sha256(refs / "square.jpg")
    assert "reference" not in lines["town/b.png"]  # null: automatic there, even under --reference
    assert lines["family/c.png"]["reference"]["sha256"] == sha256(refs / "garden.jpg")
    assert np.array_equal(rgb(out / "town/b.png"), expected(engine, source / "town/b.png", None))
    first = files()

    # The same guides, the square's file moved (same bytes): nothing is coloured again.
    moved = tmp_path / "moved"
    shutil.copytree(refs, moved)
    code, stderr, lines = run(source, out, engine, "--hints", moved / "hints.json", "--reference",
                              moved / "garden.jpg")
    assert code == 0 and files() == first, stderr

    # The square's bytes change: exactly the town photo it guides is coloured again.
    colour_photo(moved / "square.jpg", 7, tint=(0.5, 0.5, 1.0))
    code, stderr, lines = run(source, out, engine, "--hints", moved / "hints.json", "--reference",
                              moved / "garden.jpg")
    now = files()
    assert code == 0, stderr
    assert now["town/a.png"] != first["town/a.png"]
    assert now["town/b.png"] == first["town/b.png"] and now["family/c.png"] == first["family/c.png"]
    assert lines["town/a.png"]["reference"] == {"path": str(moved / "square.jpg"),
                                                "sha256": sha256(moved / "square.jpg")}
    assert np.array_equal(rgb(out / "town/a.png"), expected(engine, source / "town/a.png", moved / "square.jpg"))

    # Without any reference: the guided photos return to automatic colouring, the other stays.
    code, stderr, lines = run(source, out, engine)
    assert code == 0, stderr
    assert files()["town/b.png"] == now["town/b.png"]
    for name in ("town/a.png", "family/c.png"):
        assert "reference" not in lines[name]
        assert np.array_equal(rgb(out / name), expected(engine, source / name, None))


@pytest.mark.parametrize("make, reason", [
    (lambda path: path, "cannot read the file (No such file or directory)"),
    (lambda path: (path.write_bytes(b"not an image"), path)[1], "not an image this tool reads"),
    (lambda path: (path.write_bytes(b""), path)[1], "empty file (0 bytes)"),
    (lambda path: (cv2.imwrite(str(path), grey_photo(60, 80, 4)), path)[1], "a black-and-white or toned photo"),
], ids=["missing", "not-an-image", "empty", "black-and-white"])
def test_a_reference_that_cannot_serve_is_one_line_and_creates_nothing(exported_distribution, tmp_path, make,
                                                                        reason):
    source = grey_photos(tmp_path / "scans", {"a.png": 1})
    reference = make(tmp_path / "ref.png")
    code, stderr, _ = run(source, tmp_path / "out", v2_engine(exported_distribution), "--reference", reference)
    assert code == 2
    assert stderr.startswith(f"colorize-batch: error: --reference {reference}: {reason}") and stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_bundled_model_takes_a_reference_and_names_it_once_accepted(tmp_path):
    source = grey_photos(tmp_path / "scans", {"a.png": 1})
    reference = colour_photo(tmp_path / "ref.jpg", 5)
    process = batch(source, "-o", tmp_path / "out", "--reference", reference)
    assert process.returncode == 0, process.stderr
    assert process.stderr.count("reference palette: ref.jpg (") == 1


def test_a_model_without_its_stages_refuses_a_reference_without_naming_it_first(exported, tmp_path):
    from retint.runtime.refusals import stages_refusal

    alone = fused_graph_alone(exported["effnet-unet"].artefacts[0], tmp_path / "alone")
    source = grey_photos(tmp_path / "scans", {"a.png": 1})
    reference = colour_photo(tmp_path / "ref.jpg", 5)
    process = batch(source, "-o", tmp_path / "out", "--engine", alone, "--backend", "onnxruntime",
                    "--reference", reference)
    assert process.returncode == 2
    assert process.stderr == f"colorize-batch: error: --reference: {stages_refusal(alone.name, ['reference'])}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, message", [
    ({"album/": [{"x": 1, "y": 1, "a": 10, "b": 10}]}, "'album/' names a folder: hints belong to one photo"),
    ({"album/": {"hints": [{"x": 1, "y": 1, "a": 10, "b": 10}]}}, "'album/' names a folder: hints belong to one"),
    ({"a.png": {"palette": "x.jpg"}}, "'a.png': unknown field 'palette'"),
    ({"a.png": {"reference": 3}}, "'a.png': \"reference\" must be a photo's path (or null), got 3"),
    ({"album": {"reference": "x.jpg"}, "album/": {"reference": "y.jpg"}}, "the key 'album' appears twice"),
    ({"a.png": "x.jpg"}, "'a.png': expected a list of hints or an object"),
])
def test_a_hints_file_with_a_misplaced_reference_is_one_line(tmp_path, content, message):
    path = tmp_path / "hints.json"
    path.write_text(json.dumps(content))
    with pytest.raises(HintError) as caught:
        read_hints_file(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_reference_paths_are_the_hints_files_and_the_longest_key_wins(tmp_path):
    path = tmp_path / "guides" / "hints.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"a/": {"reference": "one.jpg"}, "a/b/": {"reference": "/abs/two.jpg"},
                                "a/b/c.png": {"reference": None, "hints": []}}))
    read = read_hints_file(path)
    assert read.references == {"a": tmp_path / "guides" / "one.jpg", "a/b": Path("/abs/two.jpg"), "a/b/c.png": None}
    assert dict(read.hints) == {"a/b/c.png": ()}
    one, two, default = (read_reference(colour_photo(tmp_path / f"{name}.jpg", seed), MAX_PIXELS)
                         for name, seed in (("one", 1), ("two", 2), ("default", 3)))
    table = ReferenceTable(default=default, by_key=(("a", one), ("a/b", two), ("a/b/c.png", None)))
    assert table.for_input("a/x.png") is one and table.for_input("a/b/y.png") is two
    assert table.for_input("a/b/c.png") is None and table.for_input("ab/x.png") is default
    assert table.unused_keys({"a/b/y.png"}) == ["a/b/c.png"]


def grey_clip(path: Path, frames: int = 8, size=(64, 48)) -> Path:
    """A short grey H.264 clip of moving shapes."""
    av = pytest.importorskip("av")
    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            grey = grey_photo(height, width, 9).copy()
            grey[10:30, 2 * index:2 * index + 16] = 220
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, -1),
                                                                   format="rgb24")))
        container.mux(stream.encode(None))
    return path


def mean_frame(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.mean([frame.to_ndarray(format="rgb24").astype(float) for frame in container.decode(video=0)], 0)


@pytest.mark.parametrize("smoothing", ["0", "0.5"])
def test_a_reference_guides_every_frame_of_a_video(exported_distribution, tmp_path, smoothing):
    engine = v2_engine(exported_distribution)
    source = tmp_path / "films"
    source.mkdir()
    grey_clip(source / "reel.mp4")
    square = colour_photo(tmp_path / "square.jpg", 5, tint=(1.0, 0.5, 0.4))
    settings = ("--temporal-smoothing", smoothing)
    code, stderr, lines = run(source, tmp_path / "auto", engine, *settings)
    assert code == 0, stderr
    code, stderr, lines = run(source, tmp_path / "guided", engine, "--reference", square, *settings)
    assert code == 0, stderr
    assert lines["reel.mp4"]["status"] == "ok" and lines["reel.mp4"]["reference"]["sha256"] == sha256(square)
    automatic, guided = mean_frame(tmp_path / "auto" / "reel.mp4"), mean_frame(tmp_path / "guided" / "reel.mp4")
    assert np.abs(guided - automatic).mean() > 0.1


def test_an_unreadable_file_keeps_its_failed_line_under_a_reference(exported_distribution, tmp_path):
    """Its failure is its own, whatever the guides: a rerun with the same reference does not fail it again."""
    engine = v2_engine(exported_distribution)
    source = grey_photos(tmp_path / "scans", {"a.png": 1})
    (source / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    square = colour_photo(tmp_path / "square.jpg", 5)
    code, stderr, lines = run(source, tmp_path / "out", engine, "--reference", square)
    assert code == 3 and lines["broken.jpg"]["status"] == "failed", stderr
    code, stderr, lines = run(source, tmp_path / "out", engine, "--reference", square)
    assert code == 0, stderr
    assert "2 already done" in stderr and lines["broken.jpg"]["status"] == "failed"


def test_two_reference_files_of_the_same_bytes_keep_their_own_paths(tmp_path):
    first = colour_photo(tmp_path / "one" / "square.jpg", 5)
    second = tmp_path / "two" / "square-copy.jpg"
    second.parent.mkdir()
    second.write_bytes(first.read_bytes())
    one, two = read_reference(first, MAX_PIXELS), read_reference(second, MAX_PIXELS)
    table = ReferenceTable(by_key=(("a", one), ("b", two)))
    assert one.sha256 == two.sha256 and table.photos() == {one.identity: one, two.identity: two}
    assert table.photos()[two.identity].recorded()["path"] == str(second)
