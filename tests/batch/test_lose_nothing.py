"""Issue 29, "Lose nothing, part 2": each test failed on the code before the fix.

Numbers in the section comments are the issue's defects. Every run goes
through `batchrun.batch`, which asserts that the sources' files are
byte-identical afterwards; every input is made here.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from retint.batch.decode import DecodeFailure, decode
from retint.batch.manifest import read_manifest
from retint.batch.naming import plan_outputs
from retint.batch.sources import Task
from retint.files import remove_partials

from archive import entries_by_name as by_name
from archive import grey_photo, photo
from fuzzing import small_video
from batchrun import COMMAND, batch


def journal_name() -> str:
    from retint.batch.manifest import JOURNAL_NAME  # imported here: the old code has none (a test fails, not all)

    return JOURNAL_NAME


def raw_exif(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """An EXIF block written by hand, so that an entry can have the wrong type: (tag, type, count, value)."""
    body = struct.pack(">H", len(entries))
    body += b"".join(struct.pack(">HHI", tag, kind, count) + value for tag, kind, count, value in entries)
    return b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + body + b"\x00\x00\x00\x00"


# 1. One error boundary per input.

def test_damaged_metadata_costs_no_run_and_no_photo(engine, tmp_path):
    source = tmp_path / "src"
    # XResolution stored as ASCII (a RATIONAL belongs there): Pillow's EXIF writer raised TypeError.
    ascii_resolution = raw_exif([(0x010F, 2, 4, b"Cam\x00"), (0x011A, 2, 3, b"72\x00\x00"),
                                 (0x0112, 3, 1, b"\x00\x06\x00\x00")])
    photo(source / "a-exif.jpg", 1, exif=ascii_resolution)
    photo(source / "b-exif.webp", 2, exif=ascii_resolution)
    # A TIFF with one damaged IFD entry (fuzz seed 20) on which Pillow raises TypeError("Missing dimensions").
    from fuzzing import base_files, mutate

    (source / "c-width.tif").write_bytes(mutate("tiff", base_files(0)["tiff"], 20))
    photo(source / "d-fine.png", 4)
    process = batch(source, "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 3, process.stderr
    assert "Traceback" not in process.stderr
    found = by_name(tmp_path / "out")
    assert set(found) == {"a-exif.jpg", "b-exif.webp", "c-width.tif", "d-fine.png"}
    for name in ("a-exif.jpg", "b-exif.webp"):
        assert found[name]["status"] == "ok" and "EXIF not copied" in found[name]["reason"], found[name]
    assert found["a-exif.jpg"]["width"] == 48 and found["a-exif.jpg"]["height"] == 64  # orientation 6 applied
    assert found["c-width.tif"]["status"] == "failed" and "TypeError" in found["c-width.tif"]["reason"]
    assert found["d-fine.png"]["status"] == "ok"


def mpegts_clip(size: tuple[int, int], frames: int, seed: int) -> bytes:
    """An H.264 MPEG-TS clip: two of them end to end make a stream whose frame size changes."""
    return small_video(seed, frames, size, container_format="mpegts")


def test_a_video_whose_frame_size_changes_keeps_the_frames_before_it(engine, tmp_path):
    pytest.importorskip("av")
    source = tmp_path / "src"
    source.mkdir()
    # Two MPEG-TS streams back to back: the second half's frames are another size.
    (source / "resized.ts.mkv").write_bytes(mpegts_clip((64, 48), 6, 1) + mpegts_clip((48, 64), 6, 2))
    photo(source / "fine.png", 4)
    process = batch(source, "-o", tmp_path / "out", "--engine", engine, "--preset", "ultrafast")
    assert "Traceback" not in process.stderr, process.stderr
    found = by_name(tmp_path / "out")
    assert set(found) == {"resized.ts.mkv", "fine.png"}
    video = found["resized.ts.mkv"]
    assert video["status"] == "partial" and "frame size changes" in video["reason"], video
    assert found["fine.png"]["status"] == "ok"


# 2. Only retint's own files are retint's.

def test_the_partial_sweep_removes_only_retints_own_partials(tmp_path):
    output = tmp_path / "out"
    (output / "sub").mkdir(parents=True)
    ours = output / "sub" / ".retint-partial-0123456789ab"
    users = output / "sub" / ".retint-partial-scan7.jpg"
    ours.write_bytes(b"half")
    users.write_bytes(b"a user's photo")
    source_inside = output / "sub" / "photos"
    source_inside.mkdir()
    in_source = source_inside / ".retint-partial-0123456789ab"
    in_source.write_bytes(b"a user's file, whatever its name")
    assert remove_partials(output, keep_out=(source_inside,)) == 1
    assert not ours.exists() and users.exists() and in_source.exists()


# 3. Something at an output path is done only if it is demonstrably retint's.

def test_a_folder_at_an_output_path_fails_its_input_on_every_run(engine, tmp_path):
    photo(tmp_path / "src" / "a.png", 1)
    photo(tmp_path / "src" / "b.png", 2)
    (tmp_path / "out" / "a.jpg").mkdir(parents=True)
    for _ in range(2):  # the rerun must not take the folder for a finished output
        process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine, "--format", "jpg")
        assert process.returncode == 3, process.stderr
        assert "Traceback" not in process.stderr
        found = by_name(tmp_path / "out")
        assert found["a.png"]["status"] == "failed" and "a folder is at its output path" in found["a.png"]["reason"]
        assert found["b.png"]["status"] == "ok"
        assert (tmp_path / "out" / "a.jpg").is_dir()
        assert not list((tmp_path / "out").rglob(".retint-partial-*"))


def test_a_strangers_file_at_an_output_path_is_not_taken_as_done(engine, tmp_path):
    photo(tmp_path / "src" / "a.png", 1)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.png").write_text("someone's notes, not a coloured photo")
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 3, process.stderr
    entry = by_name(tmp_path / "out")["a.png"]
    assert entry["status"] == "failed" and "did not write" in entry["reason"], entry
    assert (tmp_path / "out" / "a.png").read_text().startswith("someone's notes")
    replaced = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert by_name(tmp_path / "out")["a.png"]["status"] == "ok"
    Image.open(tmp_path / "out" / "a.png").load()


def test_outputs_of_a_run_killed_before_their_lines_are_kept_with_their_figures(engine, tmp_path):
    photo(tmp_path / "src" / "a.png", 1, size=(40, 56))
    photo(tmp_path / "src" / "b.png", 2)
    output = tmp_path / "out"
    assert batch(tmp_path / "src", "-o", output, "--engine", engine).returncode == 0
    first = by_name(output)
    # As if killed after the outputs were named and before their lines: the manifest has none.
    (output / "manifest.jsonl").write_text("")
    (output / "b.png").unlink()
    (output / "b.png").write_bytes(b"a different file at b's output path")
    process = batch(tmp_path / "src", "-o", output, "--engine", engine)
    assert process.returncode == 3, process.stderr
    found = by_name(output)
    assert found["a.png"] == first["a.png"]  # width, height and notes survive (defect 9)
    assert found["b.png"]["status"] == "failed" and "did not write" in found["b.png"]["reason"]
    _, summary = read_manifest(output)
    assert summary["already_done"] == 1
    assert (output / journal_name()).exists()


def test_an_output_named_after_planning_is_the_inputs_own_only_when_the_journal_proves_it(tmp_path):
    """A killed run's Ray worker can name an output after the rerun planned that input; the rerun's
    write then meets the file, and takes it as done only where the journal names that very file for
    the same input, output and guides (`journalled_output`)."""
    from dataclasses import replace

    from retint.batch.manifest import Entry, journal_entry, journalled_output
    from retint.files import write_bytes_atomically

    output = tmp_path / "out"
    entry = Entry(source="roll/a.jpg", output="roll/a.jpg", status="ok", width=4, height=3, milliseconds=12.5,
                  reason="a note")
    write_bytes_atomically(output / "roll" / "a.jpg", b"colours", replace=False,
                           before_publish=lambda finished: journal_entry(output, entry, finished))
    assert journalled_output(output, replace(entry, milliseconds=None, reason="")) == entry
    assert journalled_output(output, replace(entry, source="roll/b.jpg")) is None
    hinted = replace(entry, hints=[{"x": 0.5, "y": 0.5, "a": 20.0, "b": 30.0}])
    assert journalled_output(output, hinted) is None  # other guides: not this colouring
    (output / "roll" / "stranger.jpg").write_bytes(b"someone else's file")
    os.replace(output / "roll" / "stranger.jpg", output / "roll" / "a.jpg")
    assert journalled_output(output, entry) is None  # no longer the file the journal names


# 4. Names and paths over the limits.

def test_names_and_paths_over_the_limits_get_lines(engine, tmp_path):
    source = tmp_path / "src"
    stem = "n" * 248
    photo(source / f"{stem}.jpg", 1)
    photo(source / f"{stem}.png", 2)  # --format jpg renames it to NAME.png.jpg: 256 bytes, over 255
    deep = source
    for level in range(18):
        deep = deep / f"{level:02d}{'d' * 198}"
    photo(deep / "deep.png", 3)  # its input path fits in 4096 bytes; under the long -o, its output does not
    output = tmp_path / ("o" * 250) / ("o" * 250)
    process = batch(source, "-o", output, "--engine", engine, "--format", "jpg")
    assert process.returncode == 3, process.stderr
    assert "Traceback" not in process.stderr
    found = by_name(output)
    assert found[f"{stem}.jpg"]["status"] == "ok"
    assert found[f"{stem}.png"]["status"] == "failed" and "over the 255" in found[f"{stem}.png"]["reason"]
    assert found["deep.png"]["status"] == "failed" and "a path may have" in found["deep.png"]["reason"]


def test_an_uncertainty_map_name_over_the_limit_fails_its_input_up_front(tmp_path):
    task = Task(tmp_path / ("m" * 245 + ".png"), Path("m" * 245 + ".png"), str(tmp_path / ("m" * 245 + ".png")))
    planned = plan_outputs([task], tmp_path / "out", "keep", uncertainty_maps=True)
    assert planned[0].output is None and "over the 255" in planned[0].problem


# 5. A full disk at any byte: exit 2, one line, no partial file, earlier lines kept.

def test_a_full_disk_mid_file_is_exit_2_with_one_line(engine, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a-empty.png").write_bytes(b"")  # recorded first, as failed
    # A small output (it fits in the write buffer) on a disk that takes 1.5 KB a file: the
    # error comes from the flush, and again from close().
    photo(tmp_path / "src" / "b.png", 2, size=(40, 40))

    def small_files_only():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))

    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine, "--workers", 1,
                    preexec_fn=small_files_only)
    assert process.returncode == 2, process.stderr
    assert "File too large" in process.stderr and process.stderr.strip().count("\n") == 0, process.stderr
    entries, _ = read_manifest(tmp_path / "out")
    assert [(os.path.basename(e["source"]), e["status"]) for e in entries] == [("a-empty.png", "failed")]
    assert not (tmp_path / "out" / "b.png").exists()
    assert not list((tmp_path / "out").rglob(".retint-partial-*"))


# 6. Reads never block and never follow a swap.

def _finishes(function, seconds: float, release) -> bool:
    """Run `function` in a thread; True if it returned (or raised) within `seconds`."""
    done = threading.Event()

    def run():
        try:
            function()
        except BaseException:  # noqa: BLE001 - any outcome but a hang will do
            pass
        finally:
            done.set()

    threading.Thread(target=run, daemon=True).start()
    finished = done.wait(seconds)
    if not finished:
        release()
    return finished


def release_fifo(path: Path):
    def release():
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # a writer lets the blocked reader go
        os.close(fd)
    return release


def test_an_input_swapped_for_a_fifo_fails_at_once(tmp_path):
    fifo = tmp_path / "swapped.jpg"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read():
        try:
            decode(fifo, 150_000_000, False)
        except BaseException as error:  # noqa: BLE001
            outcome.append(error)

    assert _finishes(read, 5.0, release_fifo(fifo)), "decoding a FIFO blocked"
    assert isinstance(outcome[0], DecodeFailure) and "not a regular file" in str(outcome[0])


def test_a_video_swapped_for_a_fifo_fails_at_once(tmp_path):
    pytest.importorskip("av")
    from retint.batch.video.reader import VideoReader

    fifo = tmp_path / "swapped.mkv"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read():
        try:
            VideoReader(fifo, 4)
        except BaseException as error:  # noqa: BLE001
            outcome.append(error)

    assert _finishes(read, 5.0, release_fifo(fifo)), "opening a FIFO as a video blocked"
    assert isinstance(outcome[0], DecodeFailure) and "not a regular file" in str(outcome[0])


def test_a_photo_that_outlasts_the_time_limit_fails_and_the_run_goes_on(engine, tmp_path):
    rng = np.random.default_rng(0)
    noise = Image.fromarray((rng.random((3000, 3000)) * 255).astype(np.uint8))
    noise.save(tmp_path / "src" / "slow.png" if (tmp_path / "src").mkdir() is None else None, compress_level=1)
    photo(tmp_path / "src" / "zz-small.png", 2)
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine, "--timeout-per-input", 0.01,
                    "--workers", 1, timeout=120)
    assert process.returncode == 3, process.stderr
    found = by_name(tmp_path / "out")
    assert found["slow.png"]["status"] == "failed" and "--timeout-per-input" in found["slow.png"]["reason"]
    assert "zz-small.png" in found


def test_waiting_for_a_videos_frames_is_bounded_and_sees_ctrl_c(tmp_path):
    pytest.importorskip("av")

    from retint.batch.video.reader import VideoReader

    (tmp_path / "clip.mkv").write_bytes(small_video(1))
    # Not started: no frame ever comes, as from a read that hangs on a stalled share.
    with VideoReader(tmp_path / "clip.mkv", 4) as reader:
        began = time.monotonic()
        with pytest.raises(DecodeFailure, match="--timeout-per-input"):
            next(reader.items(stall_seconds=0.3))
        assert time.monotonic() - began < 5
        with pytest.raises(KeyboardInterrupt):
            next(reader.items(should_stop=lambda: True))


# 7. One input once; names FFmpeg would read as protocols.

def test_a_file_named_as_a_source_and_inside_a_folder_source_is_one_input(engine, tmp_path):
    photo(tmp_path / "src" / "a.png", 1)
    photo(tmp_path / "src" / "b.png", 2)
    process = batch(tmp_path / "src" / "a.png", tmp_path / "src", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 0, process.stderr
    entries, _ = read_manifest(tmp_path / "out")
    assert sorted(os.path.basename(e["source"]) for e in entries) == ["a.png", "b.png"]
    rerun = batch(tmp_path / "src" / "a.png", tmp_path / "src", "-o", tmp_path / "out", "--engine", engine)
    assert rerun.returncode == 0 and read_manifest(tmp_path / "out")[1]["already_done"] == 2


def test_one_folder_spelled_three_ways_is_one_source(engine, tmp_path):
    photo(tmp_path / "archive" / "a.png", 1)
    process = batch("archive", "./archive", tmp_path / "archive", "-o", "out", "--engine", engine, cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    entries, _ = read_manifest(tmp_path / "out")
    assert [e["output"] for e in entries] == ["a.png"]


def test_videos_named_like_ffmpeg_protocols_are_read_as_files(engine, tmp_path):
    pytest.importorskip("av")

    films = tmp_path / "films"
    films.mkdir()
    for name in ("pipe:0.mkv", "Scene1:Take2.mkv", "file:x.mkv"):
        (films / name).write_bytes(small_video(1))
    before = {path.name: path.read_bytes() for path in films.iterdir()}
    # A relative source whose paths have no folder in front: "pipe:0.mkv" was read from stdin,
    # "Scene1:Take2.mkv" failed "Protocol not found". (batchrun's snapshot would read "." as the
    # runner's folder: the originals are compared below.)
    for sources, output in ((["."], "../out-folder"), (["pipe:0.mkv", "Scene1:Take2.mkv"], "../out-files")):
        process = batch(*sources, "-o", output, "--engine", engine, "--preset", "ultrafast", cwd=films,
                        stdin=subprocess.DEVNULL, timeout=300, check_originals=False)
        assert process.returncode == 0, process.stderr
        found = by_name(tmp_path / output[3:])
        assert all(entry["status"] == "ok" for entry in found.values()), found
        assert len(found) == len(sources) if sources != ["."] else len(found) == 3
    assert {path.name: path.read_bytes() for path in films.iterdir()} == before


# 8. The CLI boundary.

@pytest.mark.parametrize("arguments, words", [
    (["--codec", "nonexistent"], "--codec nonexistent"),
    (["--preset", "nonexistent"], "--preset nonexistent"),
    (["--device", "cuda", "--backend", "openvino"], "--backend openvino"),
], ids=["codec", "preset", "openvino-cuda"])
def test_bad_options_are_one_line_and_exit_2_before_anything_is_created(engine, tmp_path, arguments, words):
    photo(tmp_path / "src" / "a.png")
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine, *arguments)
    assert process.returncode == 2, process.stderr
    assert words in process.stderr and process.stderr.strip().count("\n") == 0, process.stderr
    assert not (tmp_path / "out").exists()


def test_empty_paths_are_refused(engine, tmp_path):
    photo(tmp_path / "src" / "a.png")
    before = (tmp_path / "src" / "a.png").read_bytes()
    for arguments in (["src", "-o", ""], ["", "-o", "out"]):
        # batchrun's snapshot would read "" as the runner's own folder: the source is checked below.
        process = batch(*arguments, "--engine", engine, cwd=tmp_path, check_originals=False)
        assert process.returncode == 2, process.stderr
        assert "empty" in process.stderr and process.stderr.strip().count("\n") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    assert (tmp_path / "src" / "a.png").read_bytes() == before


def test_a_failed_start_creates_no_output_folder(tmp_path):
    photo(tmp_path / "src" / "a.png")
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", tmp_path / "bad.onnx")
    assert process.returncode == 2, process.stderr
    assert not (tmp_path / "out").exists()


def test_an_unavailable_device_has_its_own_exit_code(engine, tmp_path):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this host has ONNX Runtime's CUDA provider")
    photo(tmp_path / "src" / "a.png")
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine, "--device", "cuda")
    assert process.returncode == 5, process.stderr
    assert process.stderr.strip().count("\n") == 0, process.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("delay", [0.1, 0.2, 0.35, 0.5, 1.0])
def test_ctrl_c_during_start_up_exits_130(engine, tmp_path, delay):
    photo(tmp_path / "src" / "a.png")
    process = subprocess.Popen([*COMMAND, str(tmp_path / "src"), "-o", str(tmp_path / "out"), "--engine",
                                str(engine)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode in (130, 0), (process.returncode, stderr)  # 0: it finished before the signal
    assert "Traceback" not in stderr and "Aborted" not in stderr, stderr


# 9. Smaller defects.

def test_a_moved_archive_is_still_done(engine, tmp_path):
    photo(tmp_path / "old" / "archive" / "a.png", 1)
    photo(tmp_path / "old" / "archive" / "sub" / "b.png", 2)
    assert batch(tmp_path / "old" / "archive", "-o", tmp_path / "out", "--engine", engine).returncode == 0
    (tmp_path / "new").mkdir()
    (tmp_path / "old" / "archive").rename(tmp_path / "new" / "archive")
    process = batch(tmp_path / "new" / "archive", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 0, process.stderr
    entries, summary = read_manifest(tmp_path / "out")
    assert summary["already_done"] == 2 and len(entries) == 2
    assert all(entry["source"].startswith(str(tmp_path / "new")) for entry in entries)


def test_a_png_with_a_large_text_chunk_is_coloured(engine, tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("Log", "scanner log line\n" * 70_000, zip=True)  # 1.2 MB of text
    photo(tmp_path / "src" / "logged.png", 1, pnginfo=info)
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 0, process.stderr
    assert by_name(tmp_path / "out")["logged.png"]["status"] == "ok"


def test_gif_avif_and_other_image_names_get_lines(engine, tmp_path):
    source = tmp_path / "src"
    photo(source / "anim.gif", 1)
    photo(source / "phone.avif", 2)
    (source / "layers.psd").write_bytes(b"8BPS not really")
    (source / "raw.cr2").write_bytes(b"II*\x00 a camera raw")
    (source / "iphone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    process = batch(source, "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 3, process.stderr
    found = by_name(tmp_path / "out")
    assert found["anim.gif"]["status"] == "ok" and found["anim.gif"]["output"] == "anim.png"
    assert found["phone.avif"]["status"] == "ok" and found["phone.avif"]["output"] == "phone.png"
    for name in ("layers.psd", "raw.cr2"):
        assert found[name]["status"] == "failed" and "unsupported format" in found[name]["reason"]
    assert found["iphone.heic"]["status"] == "failed"


def test_the_archive_acceptance_run(engine, tmp_path):
    """500 photos, 50 damaged in the issue's ways: 450 ok, 50 failed; the rerun has nothing to do."""
    source = tmp_path / "archive"
    base = io.BytesIO()
    Image.fromarray(grey_photo(24, 32, 1)).save(base, format="JPEG")
    good = base.getvalue()
    ascii_resolution = raw_exif([(0x011A, 2, 3, b"72\x00\x00")])
    for index in range(450):
        folder = source / f"box{index % 7}"
        folder.mkdir(parents=True, exist_ok=True)
        if index % 3 == 0:  # damaged EXIF is not a failure: the photo is coloured, the EXIF left out
            Image.fromarray(grey_photo(24, 32, index)).save(folder / f"p{index:03d}.jpg", exif=ascii_resolution)
        else:
            (folder / f"p{index:03d}.jpg").write_bytes(good)
    for index in range(50):
        damaged = source / "damaged" / f"d{index:02d}.jpg"
        damaged.parent.mkdir(parents=True, exist_ok=True)
        damaged.write_bytes(b"" if index % 5 == 0 else good[: 100 + index] if index % 5 == 1 else
                            b"\x89PNG\r\n\x1a\n" + os.urandom(64) if index % 5 == 2 else
                            good[:2] + os.urandom(200) if index % 5 == 3 else b"GIF89a" + b"\x00" * 30)
    process = batch(source, "-o", tmp_path / "out", "--engine", engine, timeout=900)
    assert process.returncode == 3, process.stderr[-2000:]
    entries, summary = read_manifest(tmp_path / "out")
    statuses = [entry["status"] for entry in entries]
    assert len(entries) == 500 and statuses.count("ok") == 450 and statuses.count("failed") == 50, summary
    # The damaged files are unchanged, so they would fail again: their lines are kept, not redone.
    rerun = batch(source, "-o", tmp_path / "out", "--engine", engine, timeout=900)
    assert rerun.returncode == 0 and "nothing to do" in rerun.stderr, rerun.stderr
    entries, summary = read_manifest(tmp_path / "out")
    assert len(entries) == 500 and summary["already_done"] == 500
    (source / "damaged" / "d00.jpg").write_bytes(good)  # mended: the next run colours it
    mended = batch(source, "-o", tmp_path / "out", "--engine", engine, timeout=900)
    assert mended.returncode == 0 and "1 ok" in mended.stderr, mended.stderr


def test_manifest_lines_are_json_after_concurrent_writes(engine, tmp_path):
    for index in range(24):
        photo(tmp_path / "src" / f"{index:02d}.png", index, size=(20, 24))
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine, "--workers", 4)
    assert process.returncode == 0, process.stderr
    for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines():
        json.loads(line)
    for line in (tmp_path / "out" / journal_name()).read_text().splitlines():
        json.loads(line)


def test_a_large_grey_png_decodes_in_about_three_bytes_a_pixel(tmp_path):
    # The grey plane (1 byte a pixel) and Pillow's own copy while it hands the pixels over;
    # the decode made a third copy (convert("L") of an image already grey) before issue 29.
    height, width = 5000, 6000
    ramp = (np.arange(height)[:, None] // 20 + np.arange(width)[None, :] // 30).astype(np.uint8)
    Image.fromarray(ramp, "L").save(tmp_path / "scan.png", compress_level=1)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking (pytest) process.
    probe = ("import sys\nfrom pathlib import Path\nfrom retint.batch.decode import decode\n"
             "def peak():\n"
             "    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
             "before = peak()\n"
             "decoded = decode(Path(sys.argv[1]), 150_000_000, False)\n"
             "print((peak() - before) * 1024 / decoded.gray.size)\n")
    result = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "scan.png")], capture_output=True,
                            text=True, check=True)
    assert float(result.stdout) < 3.5, result.stdout


def test_the_max_pixels_reason_keeps_its_figures(tmp_path):
    photo(tmp_path / "a.png", size=(40, 50))
    with pytest.raises(DecodeFailure, match=r"0\.002 MP, over --max-pixels 1000 \(0\.001 MP\)"):
        decode(tmp_path / "a.png", 1000, False)
