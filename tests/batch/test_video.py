"""Video through colorize-batch: timing, sound, colour, resume, bad files, flicker."""

from fractions import Fraction

import av
import numpy as np
import pytest

from retint.batch.manifest import read_manifest
from retint.runtime import choose_backend, resolve_artefact
from retint.benchmarks.flicker import read_frames

from batchrun import batch


def make_clip(path, frames=24, size=(128, 96), fps=25, audio=True, vfr=False, seed=0, faststart=False):
    """Moving shapes on a textured background; an AAC track; optionally variable frame rate;
    optionally an MP4 with its index first (movflags=faststart), as streamed files are."""
    rng = np.random.default_rng(seed)
    width, height = size
    texture = (rng.random((height, width)) * 60 + 80).astype(np.uint8)
    container = av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {})
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    video.codec_context.time_base = Fraction(1, 1000)
    pts = 0
    for index in range(frames):
        grey = texture.copy()
        grey[20:50, (4 * index) % (width - 30):(4 * index) % (width - 30) + 30] = 230
        grey[60:80, 10:40] = 30
        frame = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, -1), format="rgb24")
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        pts += (80 if index % 4 == 3 else 33) if vfr else 1000 // fps
        container.mux(video.encode(frame))
    container.mux(video.encode(None))
    container.close()
    if audio:
        _add_audio(path)
    return path


def _add_audio(path):
    """Remux the clip with a sine AAC track (PyAV adds streams before the first packet only)."""
    source = av.open(str(path))
    target_path = path.with_name("with-audio-" + path.name)
    target = av.open(str(target_path), "w")
    video_in = source.streams.video[0]
    video_out = target.add_stream_from_template(video_in)
    audio = target.add_stream("aac", rate=22050)
    audio.layout = "mono"
    for packet in source.demux(video_in):
        if packet.dts is None:
            continue
        packet.stream = video_out
        target.mux(packet)
    samples = 0
    for _ in range(30):
        tone = (np.sin(np.arange(samples, samples + 1024) / 8.0) * 0.3).astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 22050, samples
        samples += 1024
        target.mux(audio.encode(frame))
    target.mux(audio.encode(None))
    target.close()
    source.close()
    target_path.replace(path)


def packets(path, kind):
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        return [bytes(p) for p in container.demux(stream) if p.dts is not None]


def timestamps(path):
    with av.open(str(path)) as container:
        return [float(f.pts * f.time_base) for f in container.decode(video=0)]




@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    make_clip(folder / "film.mp4", audio=True)
    make_clip(folder / "vfr.mkv", audio=False, vfr=True, frames=20)
    return folder


@pytest.fixture(scope="module")
def coloured(clips, exported, tmp_path_factory):
    output = tmp_path_factory.mktemp("coloured")
    process = batch(clips, "-o", output, "--engine", exported["effnet-unet"].artefacts[0], "--batch", 4)
    return output, process


def test_video_keeps_frames_size_timestamps_and_sound(clips, coloured):
    output, process = coloured
    assert process.returncode == 0, process.stderr
    for name in ("film.mp4", "vfr.mkv"):
        assert timestamps(output / name) == pytest.approx(timestamps(clips / name), abs=1e-3)
        with av.open(str(output / name)) as result, av.open(str(clips / name)) as original:
            assert (result.streams.video[0].width, result.streams.video[0].height) == \
                (original.streams.video[0].width, original.streams.video[0].height)
            assert result.streams.video[0].codec_context.name == "h264"
    assert packets(output / "film.mp4", "audio") == packets(clips / "film.mp4", "audio")


def test_summary_rates_videos_by_frames_not_as_images(coloured):
    output, process = coloured
    _, summary = read_manifest(output)
    assert summary["counts"] == {"ok": 2}
    assert summary["images_per_second"] == 0 and summary["video_frames_per_second"] > 0
    last_line = process.stderr.strip().splitlines()[-1]
    assert "video frames/s" in last_line and "img/s" not in last_line


def test_variable_frame_rate_survives(clips, coloured):
    output, _ = coloured
    gaps = np.diff(timestamps(output / "vfr.mkv"))
    assert gaps.min() == pytest.approx(0.033, abs=2e-3) and gaps.max() == pytest.approx(0.080, abs=2e-3)


def test_frames_are_coloured_and_manifest_has_video_figures(clips, coloured, exported):
    import cv2

    from retint.runtime import load_engine

    def ab(rgb):
        return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)[..., 1:]

    output, _ = coloured
    engine = load_engine(exported["effnet-unet"].artefacts[0])
    originals, results = read_frames(clips / "film.mp4"), read_frames(output / "film.mp4")
    for index in (0, 10, 20):
        direct = engine.colorize(originals[index][..., 0])[0]
        # each frame carries the engine's colours (up to H.264 loss) ...
        assert np.abs(ab(results[index]) - ab(direct)).mean() < 0.6
        # ... which the grey source does not have
        assert np.linalg.norm(ab(results[index]).mean((0, 1))) > 5 * np.linalg.norm(ab(originals[index]).mean((0, 1)))
    entries, _ = read_manifest(output)
    film = next(e for e in entries if e["source"].endswith("film.mp4"))
    assert film["status"] == "ok"
    assert film["video"]["frames"] == 24 and film["video"]["audio_streams_copied"] == 1
    assert film["video"]["fps"] == pytest.approx(25, rel=0.05) and film["video"]["temporal_smoothing"] == 0.0


def test_rerun_skips_finished_videos(clips, coloured, exported):
    output, _ = coloured
    process = batch(clips, "-o", output, "--engine", exported["effnet-unet"].artefacts[0])
    assert process.returncode == 0
    entries, summary = read_manifest(output)
    assert summary["already_done"] == 2 and len(entries) == 2


def test_truncated_and_videoless_files_fail_without_output(tmp_path, exported):
    make_clip(tmp_path / "whole.mp4", audio=False, frames=30)
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (tmp_path / "src" / "text.mov").write_text("not a video")
    audio_only = av.open(str(tmp_path / "src" / "sound.mkv"), "w")
    stream = audio_only.add_stream("aac", rate=22050)
    stream.layout = "mono"
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    frame.sample_rate, frame.pts = 22050, 0
    audio_only.mux(stream.encode(frame))
    audio_only.mux(stream.encode(None))
    audio_only.close()
    output = tmp_path / "out"
    process = batch(tmp_path / "src", "-o", output, "--engine", exported["effnet-unet"].artefacts[0])
    assert process.returncode == 3, process.stderr
    entries, _ = read_manifest(output)
    reasons = {e["source"].rsplit("/", 1)[-1]: (e["status"], e["reason"]) for e in entries}
    assert reasons["sound.mkv"] == ("failed", "no video stream")
    assert reasons["text.mov"][0] == "failed"
    # Cut before its index (which an MP4 keeps at the end by default): nothing can be decoded.
    assert reasons["truncated.mp4"][0] == "failed"
    assert not (output / "truncated.mp4").exists()
    assert not list(output.glob("*.mkv")) and not (output / "text.mov").exists()
    assert not list(output.glob(".retint-partial-*"))


def test_a_video_cut_short_is_partial_never_ok(tmp_path, exported):
    make_clip(tmp_path / "whole.mp4", audio=False, frames=240, faststart=True)
    data = (tmp_path / "whole.mp4").read_bytes()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "cut.mp4").write_bytes(data[: len(data) // 2])
    output = tmp_path / "out"
    process = batch(tmp_path / "src", "-o", output, "--engine", exported["effnet-unet"].artefacts[0])
    assert process.returncode == 3, process.stderr
    assert "1 partial" in process.stderr.splitlines()[-1]
    (entry,), summary = read_manifest(output)
    figures = entry["video"]
    assert entry["status"] == "partial" and "ends early" in entry["reason"], entry
    assert figures["container_frames"] == 240 and 0 < figures["frames"] < 200 and not figures["complete"]
    assert figures["duration_seconds"] < figures["container_duration_seconds"] - 1
    assert len(timestamps(output / "cut.mp4")) == figures["frames"]  # the frames that decoded, kept
    rerun = batch(tmp_path / "src", "-o", output, "--engine", exported["effnet-unet"].artefacts[0])
    assert rerun.returncode == 0 and read_manifest(output)[1]["already_done"] == 1
    assert [e["status"] for e in read_manifest(output)[0]] == ["partial"]


def test_a_whole_video_is_complete(clips, coloured):
    output, _ = coloured
    entries, _ = read_manifest(output)
    film = next(e for e in entries if e["source"].endswith("film.mp4"))
    assert film["status"] == "ok" and film["video"]["complete"] and film["video"]["container_frames"] == 24


def test_videos_that_would_share_an_output_name_both_keep_their_result(tmp_path, exported):
    (tmp_path / "src").mkdir()
    make_clip(tmp_path / "src" / "clip.mkv", audio=False, frames=6, seed=1)
    make_clip(tmp_path / "src" / "other.mkv", audio=False, frames=6, seed=2)
    (tmp_path / "src" / "other.mkv").rename(tmp_path / "src" / "clip.webm")
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", exported["effnet-unet"].artefacts[0])
    assert process.returncode == 0, process.stderr
    entries, _ = read_manifest(tmp_path / "out")
    assert sorted(e["output"] for e in entries) == ["clip.mkv", "clip.webm.mkv"]
    assert len(timestamps(tmp_path / "out" / "clip.mkv")) == len(timestamps(tmp_path / "out" / "clip.webm.mkv")) == 6


def test_webm_is_written_as_matroska(tmp_path, exported):
    make_clip(tmp_path / "clip.mkv", audio=False, frames=8)
    (tmp_path / "src").mkdir()
    (tmp_path / "clip.mkv").rename(tmp_path / "src" / "clip.webm")  # a Matroska file named .webm
    process = batch(tmp_path / "src", "-o", tmp_path / "out", "--engine", exported["effnet-unet"].artefacts[0])
    assert process.returncode == 0, process.stderr
    assert (tmp_path / "out" / "clip.mkv").is_file()


def test_chroma_smoother_damps_noise_and_resets_at_cuts():
    from retint.batch.video.pipeline import ChromaSmoother

    rng = np.random.default_rng(0)
    scene = np.full((64, 64), 100, np.uint8)
    truth = np.ones((2, 8, 8), np.float32) * 10
    noisy = [truth + rng.normal(0, 3, truth.shape).astype(np.float32) for _ in range(60)]
    smoother = ChromaSmoother(0.7)
    smoothed = [smoother(scene, ab).copy() for ab in noisy]
    jitter = lambda seq: np.mean([np.abs(b - a).mean() for a, b in zip(seq[10:], seq[11:])])  # noqa: E731
    assert jitter(smoothed) < 0.5 * jitter(noisy)
    new_scene = np.full((64, 64), 200, np.uint8)  # a cut: the next shot starts from its own prediction
    fresh = np.full((2, 8, 8), -20.0, np.float32)
    assert np.array_equal(smoother(new_scene, fresh), fresh) and smoother.cuts == 1


def auto_backend(engine) -> str:
    """The backend `auto` runs `engine` on here (it depends on this CPU's flags)."""
    return choose_backend(resolve_artefact(engine), "auto", "cpu").backend


def test_smoothing_runs_through_the_stages_and_sees_scene_cuts(tmp_path, exported):
    first = make_clip(tmp_path / "a.mkv", audio=False, frames=12, seed=1)
    second = make_clip(tmp_path / "b.mkv", audio=False, frames=12, seed=2)
    joined = tmp_path / "cut.mkv"
    with av.open(str(joined), "w") as target:
        stream = None
        offset = 0
        for part in (first, second):
            with av.open(str(part)) as source:
                for frame in source.decode(video=0):
                    image = frame.to_ndarray(format="rgb24")
                    if part is second:
                        image = 255 - image  # a different shot
                    if stream is None:
                        stream = target.add_stream("libx264", rate=25)
                        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
                    out = av.VideoFrame.from_ndarray(image, format="rgb24")
                    out.pts, out.time_base = offset, Fraction(1, 25)
                    offset += 1
                    target.mux(stream.encode(out))
        target.mux(stream.encode(None))
    engine = exported["effnet-unet"].artefacts[0]
    process = batch(joined, "-o", tmp_path / "out", "--engine", engine, "--temporal-smoothing", 0.7, "--batch", 5)
    assert process.returncode == 0, process.stderr
    entries, _ = read_manifest(tmp_path / "out")
    assert entries[0]["video"]["temporal_smoothing"] == 0.7
    assert entries[0]["video"]["scene_cuts"] == 1 and entries[0]["video"]["frames"] == 24
    # Smoothing runs the stages on the backend auto chooses for this CPU: OpenVINO where it has
    # native bf16 (and RETINT_CPU_HIDE_FLAGS does not hide it), else ONNX Runtime.
    assert entries[0]["video"]["engine"].startswith(f"{auto_backend(engine)} ")


def test_an_engine_failure_mid_video_leaves_no_output_and_no_hung_thread(tmp_path, exported):
    """The decoder must not stay blocked on its queue when inference stops early."""
    import threading

    from retint.batch.video.options import VideoOptions
    from retint.batch.video.pipeline import colour_video
    from retint.errors import EngineError
    from retint.runtime import load_engine

    clip = make_clip(tmp_path / "long.mp4", audio=False, frames=60)
    engine = load_engine(exported["effnet-unet"].artefacts[0])
    calls = {"count": 0}
    real_colorize = engine.colorize

    def failing_colorize(gray, **controls):  # a real engine that stops working after two batches
        calls["count"] += 1
        if calls["count"] > 2:
            raise EngineError("the GPU went away")
        return real_colorize(gray, **controls)

    engine.colorize = failing_colorize
    before = threading.active_count()
    with pytest.raises(EngineError):
        colour_video(clip, tmp_path / "out" / "long.mp4", engine, None, VideoOptions(batch_size=2))
    assert not (tmp_path / "out" / "long.mp4").exists()
    assert threading.active_count() == before
