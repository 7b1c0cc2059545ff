"""Write a coloured video: H.264 frames with their timestamps, and copied audio/subtitle packets.

One encode thread encodes and muxes everything in order (muxing stays on
one thread). The file appears only when complete (`retint.files.atomic_file`).
Frames are encoded in the order they were decoded, each at its own time; a
frame whose time is not after the one before (a file with out-of-order
presentation times) is written one tick of the stream's time base after it,
since no encoder or container takes time running backwards
(`retimed_frames` counts them). Whatever the encoder or muxer refuses is an
`EncodeFailure`, never taken for a damaged input or a full disk;
`encoder_refusal` tries the encoder once at the start.
"""

from __future__ import annotations

import io
import queue
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

from retint.batch.decode import DecodeFailure, describe_exception
from retint.batch.video.options import EncoderOptions
from retint.batch.video.reader import END, GreyFrame, VideoReader, Worker, import_av

H264_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".m4v": "mp4", ".mkv": "matroska", ".avi": "avi"}
FALLBACK_CONTAINER = "matroska"  # for inputs whose own container cannot hold H.264 (.webm)
CHECK_SIDE = 64  # the start-up check's frames: small, even (yuv420p, as most videos are written)
CHECK_FRAMES = 3


class EncodeFailure(DecodeFailure):
    """The encoder or muxer refused this video: its manifest line's reason (neither a damaged
    input nor a full disk; the video pipeline tells the disk's errors apart first)."""


class MuxerOutput(Protocol):
    """What FFmpeg's muxer needs of the file it writes (a file object, or the video pipeline's guard of one)."""

    def write(self, data: bytes) -> int:
        """Write `data`; how many bytes were written."""

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to `offset` (counted from `whence`, as in `io`); the new position."""

    def tell(self) -> int:
        """The current position."""

    def flush(self) -> None:
        """Hand what is buffered on to the file."""

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (all that remain when negative)."""


def video_output_suffix(suffix: str) -> str:
    """The output's suffix: the input's own where it names a container retint writes H.264 into,
    else .mkv."""
    return suffix if suffix.lower() in H264_CONTAINERS else ".mkv"


class VideoWriter:
    """Muxes into `stream` (a binary file) in a thread; `put_frame`/`put_packet`, then `finish()`."""

    def __init__(self, stream: MuxerOutput, suffix: str, reader: VideoReader, options: EncoderOptions,
                 queue_size: int):
        self.av = import_av()
        self.options = options
        self.container = H264_CONTAINERS.get(suffix.lower(), FALLBACK_CONTAINER)
        try:
            self.output = self.av.open(stream, "w", format=self.container)
            self.video = add_video_stream(self.output, options, reader.width, reader.height, reader.frame_rate,
                                          reader.time_base)
            self.copies = {s.index: self.output.add_stream_from_template(s) for s in reader.copied}
        except Exception as error:
            raise self._failure(error) from error
        self.packets_copied = 0
        self.retimed_frames = 0  # frames written one tick after the frame before (see the module doc)
        self._last_pts: int | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = Worker(self._encode_all, "video-encode")
        self._thread.start()

    def _failure(self, error: BaseException) -> EncodeFailure:
        return EncodeFailure(f"cannot encode or mux it ({self.options.codec} into {self.container}: "
                             f"{describe_exception(error)})")

    def _join(self) -> None:
        """Wait for the encode thread; its error as an EncodeFailure."""
        try:
            self._thread.join_or_raise()
        except Exception as error:
            raise self._failure(error) from error

    def _put(self, item: Any) -> None:
        # Never block forever on a queue whose consumer has died: raise its error instead.
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._join()
                    raise EncodeFailure("the video encoder stopped")

    def put_frame(self, rgb: np.ndarray, frame: GreyFrame) -> None:
        """Queue a coloured RGB frame for encoding at its grey frame's timestamp; raises the encoder's
        error if the encoder has stopped."""
        self._put((rgb, frame))

    def put_packet(self, packet: Any) -> None:
        """Queue a copied audio or subtitle packet for muxing as it is."""
        # May pass frames still waiting for their batch: the muxer interleaves
        # by timestamp (at most one batch apart).
        self._put(packet)

    def _encode_all(self) -> None:
        while (item := self._queue.get()) is not END:
            if not isinstance(item, tuple):
                self.packets_copied += 1
                item.stream = self.copies[item.stream.index]
                self.output.mux(item)
                continue
            rgb, grey = item
            frame = self.av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = self._increasing(grey.pts), grey.time_base
            self.output.mux(self.video.encode(frame))
        self.output.mux(self.video.encode(None))
        self.output.close()

    def _increasing(self, pts: int | None) -> int | None:
        """`pts`, or one tick after the last frame's where it is not after it (see the module doc)."""
        if pts is None:
            return None
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
            self.retimed_frames += 1
        self._last_pts = pts
        return pts

    def finish(self) -> None:
        """Flush the encoder and close the container (or just stop, after an error); raises its
        error as an EncodeFailure."""
        self._put(END)
        self._join()


def add_video_stream(output: Any, options: EncoderOptions, width: int, height: int, rate: Any,
                     time_base: Fraction | None) -> Any:
    """The coloured video's stream in `output` (an open PyAV container), as every video is written."""
    video = output.add_stream(options.codec, rate=rate)
    video.width, video.height = width, height
    video.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    video.time_base = time_base
    video.codec_context.time_base = time_base
    if options.codec in ("libx264", "libx265"):
        video.options = {"crf": str(options.crf), "preset": options.preset} | (
            {"x265-params": "log-level=error"} if options.codec == "libx265" else {})  # x265 prints its settings
    return video


def encoder_refusal(options: EncoderOptions) -> str:
    """Why `options` cannot write video here, or '': a few small frames are encoded into the fallback
    container in memory, as a run writes them (an encoder PyAV lists may still fail to open: NVENC
    without an NVIDIA GPU, MJPEG and PNG on yuv420p)."""
    try:
        av = import_av()
    except DecodeFailure:
        return ""  # no video extra: each video then fails saying so, and the photos are still coloured
    rate = Fraction(25)
    try:
        with av.open(io.BytesIO(), "w", format=FALLBACK_CONTAINER) as output:
            video = add_video_stream(output, options, CHECK_SIDE, CHECK_SIDE, rate, 1 / rate)
            for index in range(CHECK_FRAMES):
                frame = av.VideoFrame.from_ndarray(np.full((CHECK_SIDE, CHECK_SIDE, 3), 40 * index, np.uint8),
                                                   format="rgb24")
                frame.pts, frame.time_base = index, 1 / rate
                output.mux(video.encode(frame))
            output.mux(video.encode(None))
    except Exception as error:
        return describe_exception(error)
    return ""
