"""The hostile-archive defects: each test failed on the code before the fix and passes after.

Every run goes through `batchrun.batch`, which asserts that the files under
each source are byte-identical afterwards.
"""

import os
import shutil
import signal
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retint.batch.manifest import read_manifest

from archive import entries_by_name as statuses
from archive import grey_photo, photo
from batchrun import batch


def assert_no_two_ok_lines_share_an_output(output: Path) -> None:
    entries, _ = read_manifest(output)
    outputs = [e["output"] for e in entries if e["status"] in ("ok", "partial")]
    assert len(outputs) == len(set(outputs)), outputs


# 1. An output must never land on an input.

@pytest.mark.parametrize("overwrite", [True, False], ids=["overwrite", "no-overwrite"])
def test_an_output_that_is_its_input_is_never_written(engine, tmp_path, overwrite):
    # Issue 29: an -o that contains a source (here a file source) is refused up front, exit 2.
    original = photo(tmp_path / "self" / "photo.jpg")
    before = original.read_bytes()
    args = [original, "-o", tmp_path / "self", "--engine", engine] + (["--overwrite"] if overwrite else [])
    process = batch(*args)
    assert process.returncode == 2, process.stderr
    assert "contains the source" in process.stderr and process.stderr.strip().count("\n") == 0
    assert original.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "self").iterdir()) == ["photo.jpg"]


def test_output_folder_equal_to_a_source_is_refused_under_any_spelling(engine, tmp_path):
    photo(tmp_path / "src" / "a.jpg")
    (tmp_path / "link").symlink_to(tmp_path / "src", target_is_directory=True)
    for output in (tmp_path / "src", tmp_path / "link", Path(str(tmp_path / "src") + "/./")):
        process = batch(tmp_path / "src", "-o", output, "--engine", engine)
        assert process.returncode == 2, process.stderr
        assert "is the source folder" in process.stderr and process.stderr.strip().count("\n") == 0
    assert sorted(p.name for p in (tmp_path / "src").iterdir()) == ["a.jpg"]  # no lock, no manifest


def test_output_folder_inside_a_source_is_not_read_back(engine, tmp_path):
    photo(tmp_path / "src" / "a.jpg")
    output = tmp_path / "src" / "out"
    assert batch(tmp_path / "src", "-o", output, "--engine", engine).returncode == 0
    rerun = batch(tmp_path / "src", "-o", output, "--engine", engine)
    assert rerun.returncode == 0, rerun.stderr
    entries, summary = read_manifest(output)
    assert [os.path.basename(e["source"]) for e in entries] == ["a.jpg"] and summary["already_done"] == 1
    assert not (output / "out").exists()


def test_output_folder_containing_a_source_is_refused(engine, tmp_path):
    # Issue 29 (2): `cd P; colorize-batch photos -o .` would sweep, write into and reread the source tree.
    inner = photo(tmp_path / "out" / "in" / "x.jpg", seed=1)
    partial_named = tmp_path / "out" / "in" / ".retint-partial-scan7.jpg"
    partial_named.write_bytes(inner.read_bytes())
    for output in (tmp_path / "out", Path(".")):
        process = batch(tmp_path / "out" / "in", "-o", output, "--engine", engine, cwd=tmp_path / "out")
        assert process.returncode == 2, process.stderr
        assert "contains the source" in process.stderr and process.stderr.strip().count("\n") == 0
    assert partial_named.exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["in"]  # no lock, no manifest


def test_a_hard_link_to_an_input_in_the_output_folder_is_never_written(engine, tmp_path):
    original = photo(tmp_path / "src" / "a.jpg")
    (tmp_path / "out").mkdir()
    os.link(original, tmp_path / "out" / "a.jpg")
    before = original.read_bytes()
    for extra in ([], ["--overwrite"]):
        process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine, *extra)
        assert process.returncode == 3, process.stderr
        assert original.read_bytes() == before
        assert statuses(tmp_path / "out")["a.jpg"]["status"] == "failed"


# 2. Two inputs never share an output.

def test_inputs_that_would_share_an_output_name_each_keep_their_result(engine, tmp_path):
    photo(tmp_path / "src" / "a" / "photo.jpg", seed=1)
    photo(tmp_path / "src" / "a" / "photo.png", seed=2)
    photo(tmp_path / "src" / "a" / "photo.jpeg", seed=3)
    output = tmp_path / "out"
    process = batch(tmp_path / "src", "-o", output, "--engine", engine, "--format", "jpg")
    assert process.returncode == 0, process.stderr
    found = statuses(output)
    assert {name: e["output"] for name, e in found.items()} == {
        "photo.jpg": "a/photo.jpg", "photo.png": "a/photo.png.jpg", "photo.jpeg": "a/photo.jpeg.jpg"}
    assert "output renamed" in found["photo.png"]["reason"]
    assert sorted(p.name for p in (output / "a").iterdir()) == ["photo.jpeg.jpg", "photo.jpg", "photo.png.jpg"]
    assert_no_two_ok_lines_share_an_output(output)
    # A rerun agrees on every name: all done, nothing written again.
    rerun = batch(tmp_path / "src", "-o", output, "--engine", engine, "--format", "jpg")
    assert rerun.returncode == 0 and read_manifest(output)[1]["already_done"] == 3


def test_a_renamed_output_that_meets_another_input_fails_the_later_input(engine, tmp_path):
    photo(tmp_path / "src" / "photo.png", seed=1)
    photo(tmp_path / "src" / "photo.png.jpg", seed=2)  # its plain output is photo.png.jpg too
    photo(tmp_path / "src" / "photo.jpg", seed=3)
    output = tmp_path / "out"
    process = batch(tmp_path / "src", "-o", output, "--engine", engine, "--format", "jpg")
    assert process.returncode == 3, process.stderr
    found = statuses(output)
    assert found["photo.jpg"]["output"] == "photo.jpg"
    assert [found["photo.png"]["status"], found["photo.png.jpg"]["status"]].count("ok") == 1
    failed = found["photo.png"] if found["photo.png"]["status"] == "failed" else found["photo.png.jpg"]
    assert "already the output of" in failed["reason"]
    assert_no_two_ok_lines_share_an_output(output)


def test_an_output_left_by_another_input_is_not_taken_as_done(engine, tmp_path):
    photo(tmp_path / "src" / "photo.png", seed=1)
    output = tmp_path / "out"
    assert batch(tmp_path / "src", "-o", output, "--engine", engine, "--format", "jpg").returncode == 0
    coloured = (output / "photo.jpg").read_bytes()
    photo(tmp_path / "src" / "photo.jpg", seed=2)  # now photo.jpg owns the plain name photo.jpg
    process = batch(tmp_path / "src", "-o", output, "--engine", engine, "--format", "jpg")
    assert process.returncode == 3, process.stderr
    found = statuses(output)
    assert found["photo.png"]["status"] == "ok"  # done earlier, kept
    assert found["photo.jpg"]["status"] == "failed" and "coloured by an earlier run" in found["photo.jpg"]["reason"]
    assert (output / "photo.jpg").read_bytes() == coloured


# 4. Unreadable folders and dangling or looping links get a manifest line.

def test_dangling_and_looping_links_and_fifos_get_a_manifest_line(engine, tmp_path):
    source = tmp_path / "src"
    photo(source / "fine.jpg")
    (source / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (source / "loop.png").symlink_to(source / "loop.png")
    os.mkfifo(source / "pipe.tif")
    (source / "notes-link.txt").symlink_to(tmp_path / "gone.txt")  # not an image name: not an input
    process = batch(source, "-o", tmp_path / "out", "--engine", engine, timeout=120)
    assert process.returncode == 3, process.stderr
    found = statuses(tmp_path / "out")
    assert set(found) == {"fine.jpg", "dangling.jpg", "loop.png", "pipe.tif"}
    assert found["fine.jpg"]["status"] == "ok"
    assert "dangling symbolic link" in found["dangling.jpg"]["reason"]
    assert "loop" in found["loop.png"]["reason"]
    assert "not a regular file" in found["pipe.tif"]["reason"]
    assert all(found[name]["status"] == "failed" for name in ("dangling.jpg", "loop.png", "pipe.tif"))


def without_root_overrides() -> list[str]:
    """A command prefix that drops root's permission overrides (root reads any folder otherwise)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: an unreadable folder cannot be made")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_an_unreadable_folder_gets_a_manifest_line(engine, tmp_path):
    import sys

    source = tmp_path / "src"
    photo(source / "fine.jpg")
    photo(source / "locked" / "hidden.jpg")
    (source / "locked").chmod(0o000)
    try:
        process = subprocess.run([*without_root_overrides(), sys.executable, "-m", "retint.batch.cli",
                                  "--no-progress", str(source), "-o", str(tmp_path / "out"), "--engine", str(engine)],
                                 capture_output=True, text=True)
    finally:
        (source / "locked").chmod(0o755)
    assert process.returncode == 3, process.stderr
    found = statuses(tmp_path / "out")
    assert found["fine.jpg"]["status"] == "ok"
    assert found["locked"]["status"] == "failed" and "cannot list this folder" in found["locked"]["reason"]


# 5. A full disk is one clear line and exit 2, keeping the lines already written.

def test_no_room_for_the_summary_is_exit_2_keeping_the_manifest_lines(engine, tmp_path):
    import resource

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "empty.jpg").write_bytes(b"")  # fails without writing an output

    def manifest_fits_but_not_its_summary():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))

    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine,
                    preexec_fn=manifest_fits_but_not_its_summary)
    assert process.returncode == 2, process.stderr
    assert "cannot write the manifest" in process.stderr and process.stderr.strip().count("\n") == 0
    entries, summary = read_manifest(tmp_path / "out")
    assert summary is None and [e["status"] for e in entries] == ["failed"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 256 KiB tmpfs (needs root's mount); skipped where it cannot be mounted."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> None:
    """Write until the filesystem says it is full."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_full_disk_is_exit_2_with_one_line(engine, tmp_path, tiny_disk):
    photo(tmp_path / "src" / "a.png", size=(256, 320))
    (tmp_path / "src" / "empty.png").write_bytes(b"")
    (tiny_disk / "out").mkdir()
    fill(tiny_disk)
    process = batch(tmp_path / "src", "-o", tiny_disk / "out", "--engine", engine, "--format", "png")
    assert process.returncode == 2, process.stderr
    assert "No space left on device" in process.stderr and process.stderr.strip().count("\n") == 0
    assert not list((tiny_disk / "out").glob(".retint-partial-*"))
    assert not (tiny_disk / "out" / "a.png").exists()


# 6, 7. Float and multi-page TIFFs.

def test_float_tiffs_are_scaled_from_0_1_or_fail_never_black(engine, tmp_path):
    grey = grey_photo(48, 64, 4)
    (tmp_path / "src").mkdir()
    Image.fromarray(grey.astype(np.float32) / 255.0).save(tmp_path / "src" / "unit.tif")
    Image.fromarray(grey.astype(np.float32) * 40.0).save(tmp_path / "src" / "wide.tif")
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 3, process.stderr
    found = statuses(tmp_path / "out")
    assert found["unit.tif"]["status"] == "ok" and "32-bit float" in found["unit.tif"]["reason"]
    lightness = np.asarray(Image.open(tmp_path / "out" / "unit.tif").convert("L"), np.float32)
    assert abs(lightness.mean() - grey.mean()) < 3, "a float TIFF must not come out black"
    assert found["wide.tif"]["status"] == "failed" and "outside the nominal 0..1" in found["wide.tif"]["reason"]


def test_a_multi_page_tiff_says_which_page_was_coloured(engine, tmp_path):
    pages = [Image.fromarray(grey_photo(40, 40, seed)) for seed in range(3)]
    (tmp_path / "src").mkdir()
    pages[0].save(tmp_path / "src" / "pages.tif", save_all=True, append_images=pages[1:])
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 0, process.stderr
    assert "page 1 of 3" in statuses(tmp_path / "out")["pages.tif"]["reason"]


# 8. Manifest identity does not depend on how a source was spelled.

def test_relative_and_absolute_spellings_name_one_input(engine, tmp_path):
    photo(tmp_path / "b" / "x.jpg", seed=1)
    photo(tmp_path / "b" / "sub" / "y.jpg", seed=2)
    (tmp_path / "b-link").symlink_to(tmp_path / "b", target_is_directory=True)
    assert batch("b", "-o", "outb", "--engine", engine, cwd=tmp_path).returncode == 0
    for spelling in (tmp_path / "b", "./b/", tmp_path / "b-link"):
        process = batch(spelling, "-o", tmp_path / "outb", "--engine", engine, cwd=tmp_path)
        assert process.returncode == 0, process.stderr
        entries, summary = read_manifest(tmp_path / "outb")
        assert len(entries) == 2 and summary["already_done"] == 2, (spelling, entries)
    assert all(os.path.isabs(e["source"]) for e in entries)


# 12. A mistyped source creates nothing; Pillow's warnings land on the file's line.

def test_a_mistyped_source_creates_no_output_folder(engine, tmp_path):
    process = batch(tmp_path / "typo", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 2 and "source not found" in process.stderr
    assert not (tmp_path / "out").exists()


def jpeg_with_corrupt_exif(path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "a description long enough to be stored outside its IFD entry"
    raw = bytearray(exif.tobytes())
    entry = raw.find(b"\x01\x0e\x00\x02")  # tag 270, type ASCII (big-endian)
    raw[entry + 4:entry + 8] = struct.pack(">I", 100_000)  # a count far past the end of the block
    Image.fromarray(grey_photo(40, 40, 1)).save(path, exif=bytes(raw))


def test_pillow_warnings_go_to_the_files_manifest_line_not_stderr(engine, tmp_path):
    (tmp_path / "src").mkdir()
    jpeg_with_corrupt_exif(tmp_path / "src" / "odd-exif.jpg")
    jpeg_with_corrupt_exif(tmp_path / "src" / "odd-exif-2.jpg")
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 0, process.stderr
    assert "Warning" not in process.stderr, process.stderr
    found = statuses(tmp_path / "out")
    for name in ("odd-exif.jpg", "odd-exif-2.jpg"):  # every file's, not only the first's
        assert "warning: Tag data larger than file" in found[name]["reason"], found[name]
