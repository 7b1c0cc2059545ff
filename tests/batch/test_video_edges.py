"""Issue 41, items 2 and 5: an encoder that cannot work here, a disk that fills mid-video, and a
file whose presentation times run out of order. Real files, real PyAV, real processes."""

from __future__ import annotations

import resource
import signal
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from retint.batch.manifest import read_manifest
from retint.batch.video.options import EncoderOptions, VideoOptions

from archive import photo
from batchrun import batch
from fuzzing import small_video


def moving_frames(count: int, size: tuple[int, int], seed: int = 0):
    """Grey frames (uint8 [h, w]) of a block moving over noise; size = (width, height)."""
    rng = np.random.default_rng(seed)
    width, height = size
    texture = (rng.random((height, width)) * 60 + 80).astype(np.uint8)
    for index in range(count):
        grey = texture.copy()
        grey[height // 5:height // 2, (4 * index) % (width - 30):(4 * index) % (width - 30) + 30] = 230
        yield grey


def out_of_order_clip(path: Path, order: list[int], size: tuple[int, int] = (128, 96)) -> list[int]:
    """An intra-only (MJPEG) Matroska file whose frames, in decode order, carry the presentation times
    40 ms * order[i]: a file players play, with times that run backwards where `order` does. Each
    packet's dts is the smallest pts still to come, so the muxer takes it. Returns the pts in decode order."""
    container = av.open(str(path), "w")
    video = container.add_stream("mjpeg", rate=25)
    video.width, video.height, video.pix_fmt = *size, "yuvj420p"
    video.time_base = video.codec_context.time_base = Fraction(1, 1000)
    encoded = []
    for index, grey in enumerate(moving_frames(len(order), size)):
        frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, -1), format="rgb24")
        frame.pts, frame.time_base = index * 40, Fraction(1, 1000)
        encoded += list(video.encode(frame))
    encoded += list(video.encode(None))
    times = [position * 40 for position in order]
    for index, packet in enumerate(encoded):
        packet.pts, packet.dts = times[index], min(times[index:])
        container.mux(packet)
    container.close()
    return times


def refusal(options: EncoderOptions) -> str:
    """`encoder_refusal` (imported here: the code before issue 41 has none, and a test fails, not all)."""
    from retint.batch.video.writer import encoder_refusal

    return encoder_refusal(options)


def decoded_times(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [frame.pts for frame in container.decode(video=0)]


# 2. An encoder that cannot work here is refused at the start, and its errors are never the disk's.

@pytest.mark.parametrize("codec", ["mjpeg", "png", "h264_nvenc"])
def test_a_codec_that_cannot_encode_here_is_refused_before_any_output(engine, tmp_path, codec):
    if codec == "h264_nvenc" and not refusal(EncoderOptions(codec)):
        pytest.skip(f"{codec} encodes on this host")
    (tmp_path / "clip.mkv").write_bytes(small_video(1))
    photo(tmp_path / "photo.jpg")
    process = batch(tmp_path / "clip.mkv", tmp_path / "photo.jpg", "-o", tmp_path / "out", "--engine", engine,
                    "--codec", codec)
    assert process.returncode == 2, process.stderr
    assert process.stderr.strip().count("\n") == 0, process.stderr
    assert f"--codec {codec}: cannot encode video here" in process.stderr
    assert "cannot write to" not in process.stderr
    assert not (tmp_path / "out").exists()


def test_the_default_encoder_passes_the_start_up_check():
    assert refusal(EncoderOptions()) == ""
    assert refusal(EncoderOptions("libx265", 28, "ultrafast")) == ""


def test_an_encoders_refusal_is_the_videos_failure_not_a_full_disk(engine, tmp_path):
    # NVENC without an NVIDIA GPU fails to open with EPERM, which PyAV raises as an OSError: it was
    # taken for the output disk's "Operation not permitted", ending the run with exit 2.
    from retint.batch.video.pipeline import colour_video
    from retint.batch.video.writer import EncodeFailure
    from retint.runtime import load_engine

    options = EncoderOptions("h264_nvenc")
    if not refusal(options):
        pytest.skip("h264_nvenc encodes on this host")
    (tmp_path / "clip.mkv").write_bytes(small_video(2))
    with pytest.raises(EncodeFailure, match="h264_nvenc"):
        colour_video(tmp_path / "clip.mkv", tmp_path / "out" / "clip.mkv", load_engine(engine), None,
                     VideoOptions(encoder=options))
    assert not (tmp_path / "out" / "clip.mkv").exists()


def test_a_container_that_cannot_hold_the_codec_fails_that_video_only(engine, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "clip.avi").write_bytes(small_video(3, container_format="avi"))
    photo(tmp_path / "src" / "photo.jpg")
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", engine, "--codec", "libx265",
                    "--preset", "ultrafast")
    assert process.returncode == 3, process.stderr
    entries = {Path(entry["source"]).name: entry for entry in read_manifest(tmp_path / "out")[0]}
    assert entries["photo.jpg"]["status"] == "ok"
    assert entries["clip.avi"]["status"] == "failed"
    assert entries["clip.avi"]["reason"].startswith("cannot encode or mux it (libx265 into avi")


# 5. A disk that fills mid-video: one line, no PyAV traceback.

def test_a_disk_that_fills_mid_video_is_one_line_without_a_traceback(engine, tmp_path):
    (tmp_path / "src").mkdir()
    clip = tmp_path / "src" / "clip.mkv"
    out_of_order_clip(clip, list(range(40)), size=(320, 240))  # in order: a plain 40-frame clip
    whole = batch(clip, "-o", tmp_path / "whole", "--engine", engine)
    assert whole.returncode == 0, whole.stderr
    size = (tmp_path / "whole" / "clip.mkv").stat().st_size
    assert size > 40_000
    # Where the file stops decides which of FFmpeg's writes fail first. Before the fix a stop a little
    # under its first 32 KiB buffer (31,000 bytes) printed "PyAV library exception being dropped" and
    # a traceback before the line: the failed flush, then the trailer's write, each raised in PyAV.
    for limit in (15_000, 31_000, int(size * 0.8)):

        def small_files_only(limit=limit):
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        output = tmp_path / f"out-{limit}"
        process = batch(clip, "-o", output, "--engine", engine, preexec_fn=small_files_only)
        assert process.returncode == 2, (limit, process.stderr)
        assert process.stderr.strip().count("\n") == 0, (limit, process.stderr)
        assert "File too large" in process.stderr and "Traceback" not in process.stderr
        assert not (output / "clip.mkv").exists()
        assert not list(output.glob(".retint-partial-*"))


# 5. Out-of-order presentation times: every frame coloured, in decode order.

def test_a_file_whose_presentation_times_run_backwards_is_coloured_whole(engine, tmp_path):
    order = list(range(24))
    order[5], order[6] = order[6], order[5]
    order[12], order[15] = order[15], order[12]
    times = out_of_order_clip(tmp_path / "shuffled.mkv", order)
    assert decoded_times(tmp_path / "shuffled.mkv") == times  # it plays: every frame decodes, times as muxed
    process = batch(tmp_path / "shuffled.mkv", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 0, process.stderr
    (entry,), _ = read_manifest(tmp_path / "out")
    assert entry["status"] == "ok" and entry["video"]["frames"] == 24
    assert "4 frame(s) came with a presentation time not after the frame before" in entry["reason"]
    assert entry["video"]["retimed_frames"] == 4
    written = decoded_times(tmp_path / "out" / "shuffled.mkv")
    expected, last = [], -1
    for time in times:  # each frame at its own time, or 1 ms after the frame before where that is later
        last = max(time, last + 1)
        expected.append(last)
    assert written == expected
