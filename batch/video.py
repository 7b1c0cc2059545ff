"""Colour a video file frame by frame, keeping its timing and its sound.

Three stages overlap: a decode thread (demux, decode to grey), inference in
the calling thread on batches of frames, and one encode thread that encodes
and muxes everything in order (muxing stays on one thread). Audio and
subtitle packets are copied without re-encoding; video frames keep their
presentation timestamps, so variable frame rates survive. The output is
H.264 (`--codec`, `--crf`, `--preset`) in the input's container when it can
hold H.264, else Matroska.

With temporal smoothing (alpha > 0) the graph runs as its two halves: the
predicted chroma, at render size, is an exponential moving average over
frames (ab_t = alpha * ab_(t-1) + (1 - alpha) * predicted_t), reset at scene
cuts (the mean absolute difference of consecutive grey frames, at 64x64,
above SCENE_CUT_LEVELS), then composed with each frame's own lightness.
Videos are always coloured from their luma, whether or not they hold colour.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from retint.batch.decode import DecodeFailure
from retint.batch.output import atomic_file

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
H264_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".m4v": "mp4", ".mkv": "matroska", ".avi": "avi"}
SCENE_CUT_LEVELS = 20.0
_END = object()


@dataclass(frozen=True)
class VideoOptions:
    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"
    batch_size: int = 8
    temporal_smoothing: float = 0.0


def video_output_suffix(suffix: str) -> str:
    return suffix if suffix.lower() in H264_CONTAINERS else ".mkv"


def _import_av():
    try:
        import av
    except ImportError as error:
        raise DecodeFailure("video needs PyAV: pip install 'retint[video]'") from error
    return av


class ChromaSmoother:
    """Exponential moving average of ab over frames, reset at scene cuts."""

    def __init__(self, alpha: float):
        self.alpha = alpha
        self.state: np.ndarray | None = None
        self.previous: np.ndarray | None = None
        self.cuts = 0

    def __call__(self, gray: np.ndarray, ab: np.ndarray) -> np.ndarray:
        thumbnail = cv2.resize(gray, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
        cut = self.previous is not None and float(np.abs(thumbnail - self.previous).mean()) > SCENE_CUT_LEVELS
        self.cuts += int(cut)
        self.state = ab if self.state is None or cut else self.alpha * self.state + (1.0 - self.alpha) * ab
        self.previous = thumbnail
        return self.state


class _Worker(threading.Thread):
    """A thread whose exception is re-raised by `join_or_raise`."""

    def __init__(self, target: Callable[[], None], name: str):
        super().__init__(name=name, daemon=True)
        self._target_function = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._target_function()
        except BaseException as error:  # handed to the calling thread
            self.error = error

    def join_or_raise(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


def colorize_video(source: Path, destination: Path, engine, halves, options: VideoOptions,
                   on_frames: Callable[[int], None] = lambda count: None,
                   should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Write the coloured `source` to `destination`; returns the manifest's video figures.

    When `should_stop()` turns true (Ctrl-C), raises KeyboardInterrupt between
    batches; the partial output is discarded.
    """
    av = _import_av()
    began = time.perf_counter()
    try:
        container = av.open(str(source))
    except (av.error.FFmpegError, OSError) as error:
        raise DecodeFailure(f"not a readable video ({error})") from error
    with container:
        if not container.streams.video:
            raise DecodeFailure("no video stream")
        video_in = container.streams.video[0]
        copied = [s for s in container.streams if s.type in ("audio", "subtitle")]
        width, height = video_in.codec_context.width, video_in.codec_context.height
        limits = engine.spec.limits
        if not (limits.min_side <= min(width, height) and max(width, height) <= limits.max_side):
            raise DecodeFailure(f"{width}x{height} is outside the engine's {limits.min_side}..{limits.max_side} px limits")
        frames_done = 0
        smoother = ChromaSmoother(options.temporal_smoothing) if options.temporal_smoothing > 0 else None
        try:
            with atomic_file(destination) as stream:
                output = av.open(stream, "w", format=H264_CONTAINERS.get(destination.suffix.lower(), "matroska"))
                video_out = output.add_stream(options.codec, rate=video_in.average_rate or video_in.guessed_rate or 25)
                video_out.width, video_out.height = width, height
                video_out.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
                video_out.time_base = video_in.time_base
                video_out.codec_context.time_base = video_in.time_base
                if options.codec in ("libx264", "libx265"):
                    video_out.options = {"crf": str(options.crf), "preset": options.preset}
                copies = {s.index: output.add_stream_from_template(s) for s in copied}
                decoded: queue.Queue = queue.Queue(maxsize=options.batch_size * 3)
                encoded: queue.Queue = queue.Queue(maxsize=options.batch_size * 3)
                copied_packets = {index: 0 for index in copies}

                stop = threading.Event()

                def decode_all() -> None:
                    try:
                        for packet in container.demux(video_in, *copied):
                            if stop.is_set():  # the consumer gave up (error or Ctrl-C)
                                break
                            if packet.stream.index in copies:
                                if packet.dts is not None:
                                    decoded.put(("packet", packet))
                                continue
                            for frame in packet.decode():
                                decoded.put(("frame", frame.to_ndarray(format="gray"), frame.pts, frame.time_base))
                    finally:
                        decoded.put(_END)

                def encode_all() -> None:
                    while (item := encoded.get()) is not _END:
                        if item[0] == "packet":
                            packet = item[1]
                            copied_packets[packet.stream.index] += 1
                            packet.stream = copies[packet.stream.index]
                            output.mux(packet)
                            continue
                        _, rgb, pts, time_base = item
                        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                        frame.pts, frame.time_base = pts, time_base
                        output.mux(video_out.encode(frame))
                    output.mux(video_out.encode(None))
                    output.close()

                decoder = _Worker(decode_all, "video-decode")
                encoder = _Worker(encode_all, "video-encode")
                decoder.start()
                encoder.start()
                pending: list[tuple] = []

                def flush() -> None:
                    nonlocal frames_done
                    if not pending:
                        return
                    grays = np.stack([item[1] for item in pending])[:, None]
                    if smoother is None:
                        rgb = engine.colorize(grays)
                    else:
                        ab = halves.predict(grays)
                        smoothed = np.stack([smoother(item[1], ab[i]) for i, item in enumerate(pending)])
                        rgb = halves.compose(grays, smoothed.astype(np.float32))
                    for item, image in zip(pending, rgb):
                        encoded.put(("frame", image, item[2], item[3]))
                    frames_done += len(pending)
                    on_frames(len(pending))
                    pending.clear()

                try:
                    while (item := decoded.get()) is not _END:
                        if should_stop():
                            raise KeyboardInterrupt
                        if item[0] == "packet":
                            # May pass frames still waiting for their batch: the muxer
                            # interleaves by timestamp (at most one batch apart).
                            encoded.put(item)
                        else:
                            pending.append(item)
                            if len(pending) >= options.batch_size:
                                flush()
                    flush()
                finally:
                    encoded.put(_END)
                    stop.set()
                    while decoder.is_alive():  # unblock a decoder waiting on a full queue
                        try:
                            decoded.get(timeout=0.05)
                        except queue.Empty:
                            pass
                    decoder.join_or_raise()
                    encoder.join_or_raise()
        except av.error.FFmpegError as error:
            raise DecodeFailure(f"corrupt or truncated video ({error})") from error
        if frames_done == 0:
            raise DecodeFailure("the video stream has no decodable frames")
        rate = video_in.average_rate
        # Read everything from the streams before the container closes (PyAV
        # segfaults on a closed container's streams).
        return {"frames": frames_done, "fps": float(rate) if rate else None,
                "duration_seconds": float(container.duration / 1_000_000) if container.duration else None,
                "width": width, "height": height,
                "audio_streams_copied": sum(1 for s in copied if s.type == "audio"),
                "subtitle_streams_copied": sum(1 for s in copied if s.type == "subtitle"),
                "packets_copied": sum(copied_packets.values()),
                "temporal_smoothing": options.temporal_smoothing,
                "scene_cuts": smoother.cuts if smoother else None,
                "codec": options.codec, "seconds": time.perf_counter() - began}
