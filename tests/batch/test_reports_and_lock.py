"""Issue 41, item 10: each failed or skipped input is a line on stderr, not only in the manifest."""

from __future__ import annotations

from PIL import Image

from retint.batch.manifest import MANIFEST_NAME, read_manifest

from batchrun import batch
from imagemaker import natural_like_image


# 10. Each failed or skipped input is a line on stderr, not only in the manifest.

def test_a_failed_input_is_named_with_its_reason_on_stderr(engine, tmp_path):
    (tmp_path / "README.md").write_text("# not a photo\n")
    process = batch(tmp_path / "README.md", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 3, process.stderr
    *noted, summary = process.stderr.strip().splitlines()
    (entry,), _ = read_manifest(tmp_path / "out")
    assert noted == [f"failed: {entry['source']}: {entry['reason']}"]
    assert summary.startswith("1 failed;")


def test_skipped_colour_photos_are_named_with_the_include_colour_tip(engine, tmp_path):
    for index in range(2):
        path = tmp_path / "colour" / f"photo{index}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(natural_like_image(48, 64, index + 5)).save(path)
    process = batch(tmp_path / "colour", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 0, process.stderr
    *noted, summary = process.stderr.strip().splitlines()
    assert len(noted) == 2 and all(line.startswith("skipped-colour: ") and "--include-colour" in line
                                   for line in noted)
    assert summary.startswith("2 skipped-colour;")


def test_past_twenty_the_rest_are_counted_and_where_they_are_said(engine, tmp_path):
    for index in range(23):
        (tmp_path / "bad" / f"empty{index:02d}.jpg").parent.mkdir(exist_ok=True)
        (tmp_path / "bad" / f"empty{index:02d}.jpg").write_bytes(b"")
    process = batch(tmp_path / "bad", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 3, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 22 and all(line.startswith("failed: ") for line in lines[:20])
    assert lines[20] == (f"... and 3 more failed, partial or skipped input(s): see "
                         f"{tmp_path / 'out' / MANIFEST_NAME}")
