"""Colour a video file frame by frame, keeping its timing and its sound.

Three stages overlap: the reader's decode thread (demux, decode to grey),
inference in the calling thread on batches of frames, and the writer's
encode thread that encodes and muxes everything in order. Audio and
subtitle packets are copied without re-encoding; video frames keep their
presentation timestamps, so variable frame rates survive. The output is
H.264 (`--codec`, `--crf`, `--preset`) in the input's container when it can
hold H.264, else Matroska.

With temporal smoothing (alpha > 0) the graph runs by its stages: the
predicted chroma, at render size, is an exponential moving average over
frames (ab_t = alpha * ab_(t-1) + (1 - alpha) * predicted_t), reset at scene
cuts (the mean absolute difference of consecutive grey frames, at 64x64,
above SCENE_CUT_LEVELS), then composed with each frame's own lightness.
Videos are always coloured from their luma, whether or not they hold colour.

A file that ends before the frames its container declares (a cut-off
download, a half-copied file) is still coloured as far as it decodes, and
`figures["complete"]` is False with the shortfall in `figures["shortfall"]`:
the batch records it as `partial`, never `ok`.
"""

from __future__ import annotations

import errno
import os
import time
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Callable

import cv2
import numpy as np

from retint.batch.decode import DecodeFailure, describe_exception
from retint.batch.video.reader import GreyFrame, VideoReader, import_av
from retint.batch.video.options import VideoOptions
from retint.batch.video.writer import EncodeFailure, VideoWriter, video_output_suffix
from retint.errors import OutputError
from retint.files import FATAL_ERRNOS, atomic_file

__all__ = ["ChromaSmoother", "VideoOptions", "colour_video", "video_output_suffix"]

SCENE_CUT_LEVELS = 20.0
# Containers may count a frame or two that no decoder returns (edit lists,
# a trailing empty packet): a shortfall within this is not a truncation.
MISSING_FRAMES_TOLERATED = 2


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


class _FrameColourer:
    """Colours batches of frames, through the fused engine or, smoothed, by stages."""

    def __init__(self, engine, staged_engine, alpha: float, reference: np.ndarray | None = None):
        self.engine = engine
        self.staged_engine = staged_engine
        self.reference = reference  # a reference photo's thumbnail: its palette guides every frame
        self.smoother = ChromaSmoother(alpha) if alpha > 0 else None

    def __call__(self, frames: list[GreyFrame]) -> np.ndarray:
        grays = np.stack([frame.gray for frame in frames])[:, None]
        if self.smoother is None:
            return self.engine.colorize(grays, reference=self.reference)
        ab = self.staged_engine.predict(grays, reference=self.reference)
        smoothed = np.stack([self.smoother(frame.gray, ab[i]) for i, frame in enumerate(frames)])
        return self.staged_engine.compose(grays, smoothed.astype(np.float32))


def _shortfall(reader: VideoReader, frames: int, first: GreyFrame | None, last: GreyFrame | None) -> tuple[str, float | None]:
    """(why the file is short, or ''; seconds of video decoded)."""
    decoded_seconds = None
    if first is not None and last is not None and first.pts is not None and last.pts is not None and last.time_base:
        frame_seconds = 1.0 / reader.fps if reader.fps else 0.0
        decoded_seconds = float((last.pts - first.pts) * last.time_base) + frame_seconds
    promised = reader.promised_frames
    short = promised is not None and frames < promised - MISSING_FRAMES_TOLERATED
    if not short and not reader.broken_off:
        return "", decoded_seconds
    seconds = (f" ({decoded_seconds:.2f} of {reader.container_seconds:.2f} s)"
               if decoded_seconds is not None and reader.container_seconds else "")
    of_promised = f" of the {promised} its container declares" if promised else ""
    broken = f", then the stream breaks off ({reader.broken_off})" if reader.broken_off else ""
    return (f"the file ends early: {frames} frames{of_promised} decoded{seconds}{broken}; "
            f"those frames are coloured"), decoded_seconds


class _OutputStream:
    """The output file as the muxer sees it, remembering the first error the disk gave.

    FFmpeg reports a failed write as its own error, or as a broken container
    later on; this says whether the output disk (full, read-only) was the
    cause, so that is never mistaken for a corrupt input. A failed write or
    seek is handed to FFmpeg as its error code, not raised: PyAV keeps one
    raised exception per call and prints any second one as a traceback
    ("library exception being dropped"), and after a full disk FFmpeg writes
    again (the trailer, the flush at close). Once the disk has failed, later
    writes fail at once.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.error: OSError | None = None  # the first write, seek or flush that failed

    @property
    def disk_error(self) -> OSError | None:
        """The first error, where it says the output disk is unusable (full, read-only...)."""
        return self.error if self.error is not None and self.error.errno in FATAL_ERRNOS else None

    def _guard(self, call, *args) -> int:
        if self.error is not None:
            return -(self.error.errno or errno.EIO)
        try:
            return call(*args)
        except OSError as error:
            self.error = error
            return -(error.errno or errno.EIO)  # FFmpeg's AVERROR(errno)

    def write(self, data: bytes) -> int:
        return self._guard(self._stream.write, data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._guard(self._stream.seek, offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def flush(self) -> None:
        self._guard(self._stream.flush)

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)


def colour_video(source: Path, destination: Path, engine, staged_engine, options: VideoOptions,
                   on_frames: Callable[[int], None] = lambda count: None,
                   should_stop: Callable[[], bool] = lambda: False,
                   replace_existing: bool = True,
                   before_publish: Callable[[dict[str, Any], os.stat_result], None] | None = None,
                   on_open: Callable[[int | None], None] = lambda frames: None,
                   reference: np.ndarray | None = None) -> dict[str, Any]:
    """Write the coloured `source` to `destination`; returns the manifest's video figures.
    `reference`: a reference photo (uint8 RGB) whose palette guides every frame.

    A full or read-only output disk raises OutputError; `replace_existing` False never
    replaces a file that is at `destination` by the time the video is finished.
    `before_publish(figures, stat)` runs once the file is complete, just before it is named
    (`retint.files.atomic_file`), so the batch can journal the video's entry.

    When `should_stop()` turns true (Ctrl-C), raises KeyboardInterrupt between
    batches; the partial output is discarded.
    """
    av = import_av()
    began = time.perf_counter()
    queue_size = options.batch_size * 3
    colour = _FrameColourer(engine, staged_engine, options.temporal_smoothing, reference)
    frames_done = 0
    first: GreyFrame | None = None
    last: GreyFrame | None = None
    figures: dict[str, Any] = {}

    def publishing(finished: os.stat_result) -> None:
        if before_publish is not None:
            before_publish(figures, finished)

    with VideoReader(source, queue_size) as reader:
        on_open(reader.promised_frames)  # the frames its container declares: a progress bar's total
        refusal = engine.spec.limits.refusal(reader.height, reader.width)
        if refusal:
            raise DecodeFailure(refusal)
        with atomic_file(destination, replace=replace_existing, before_publish=publishing) as stream:
            output = _OutputStream(stream)
            try:
                writer = VideoWriter(output, destination.suffix, reader, options.encoder, queue_size)
                pending: list[GreyFrame] = []

                def flush() -> None:
                    nonlocal frames_done
                    if output.disk_error is not None:  # stop at once: nothing more can be written
                        raise _disk_failure(output.disk_error, destination)
                    if not pending:
                        return
                    for frame, rgb in zip(pending, colour(pending)):
                        writer.put_frame(rgb, frame)
                    frames_done += len(pending)
                    on_frames(len(pending))
                    pending.clear()

                reader.start()
                try:
                    for item in reader.items(should_stop, options.stall_seconds):
                        if should_stop():
                            raise KeyboardInterrupt
                        if not isinstance(item, GreyFrame):
                            writer.put_packet(item)
                            continue
                        first = first or item
                        last = item
                        pending.append(item)
                        if len(pending) >= options.batch_size:
                            flush()
                    flush()
                finally:
                    try:
                        reader.stop()
                    finally:
                        writer.finish()
                if output.disk_error is not None:  # FFmpeg may swallow a failed write: never publish such a file
                    raise _disk_failure(output.disk_error, destination)
                if output.error is not None:
                    raise EncodeFailure(f"cannot write it ({output.error.strerror or output.error})")
                if frames_done == 0:
                    raise DecodeFailure("the video stream has no decodable frames")
                shortfall, decoded_seconds = _shortfall(reader, frames_done, first, last)
                figures.update({
                    "frames": frames_done, "fps": reader.fps,
                    "duration_seconds": round(decoded_seconds, 3) if decoded_seconds is not None else None,
                    "container_frames": reader.promised_frames,
                    "container_duration_seconds": reader.container_seconds,
                    "complete": not shortfall, "shortfall": shortfall,
                    "width": reader.width, "height": reader.height,
                    "audio_streams_copied": sum(1 for s in reader.copied if s.type == "audio"),
                    "subtitle_streams_copied": sum(1 for s in reader.copied if s.type == "subtitle"),
                    "packets_copied": writer.packets_copied,
                    "temporal_smoothing": options.temporal_smoothing,
                    "scene_cuts": colour.smoother.cuts if colour.smoother else None,
                    "codec": options.encoder.codec, "retimed_frames": writer.retimed_frames,
                    "timing_note": _retimed_note(writer.retimed_frames, reader.time_base),
                    "seconds": time.perf_counter() - began})
            except (OutputError, KeyboardInterrupt):
                raise
            except Exception as error:
                # Told apart here, inside the atomic file: PyAV's errors are OSErrors too (NVENC's EPERM,
                # a damaged input's EIO), and the atomic file takes an OSError for its disk's.
                raise _failure(error, output, destination, av) from error
        return figures


def _disk_failure(error: OSError, destination: Path) -> OutputError:
    return OutputError(f"cannot write to {destination.parent}: {error.strerror or error}")


def _failure(error: Exception, output: _OutputStream, destination: Path, av) -> Exception:
    """What a video's error means: the output disk's (OutputError), the encoder's or the input's
    (DecodeFailure, its manifest line), else the error itself, never an OSError (see above)."""
    if output.disk_error is not None:
        return _disk_failure(output.disk_error, destination)
    if isinstance(error, DecodeFailure):
        return error
    if isinstance(error, av.error.FFmpegError):  # the writer's are EncodeFailures: this is the reader's
        return DecodeFailure(f"corrupt or truncated video ({error})")
    if isinstance(error, OSError):
        return DecodeFailure(f"cannot colour it ({describe_exception(error)})")
    return error


def _retimed_note(retimed: int, time_base: Fraction | None) -> str:
    """The manifest's note on frames written one tick after the frame before (see the writer)."""
    if not retimed:
        return ""
    tick = f"{float(time_base) * 1000:.3g} ms" if time_base else "one tick"
    return (f"{retimed} frame(s) came with a presentation time not after the frame before (out of order): "
            f"kept in decode order, each written {tick} after the frame before")
