"""Write a coloured video: H.264 frames with their timestamps, and copied audio/subtitle packets.

One encode thread encodes and muxes everything in order (muxing stays on
one thread). The file appears only when complete (`retint.files.atomic_file`).
"""

from __future__ import annotations

import queue
from typing import Any, Protocol

import numpy as np

from retint.batch.video.options import EncoderOptions
from retint.batch.video.reader import END, GreyFrame, VideoReader, Worker, import_av

H264_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".m4v": "mp4", ".mkv": "matroska", ".avi": "avi"}


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
        self.output = self.av.open(stream, "w", format=H264_CONTAINERS.get(suffix.lower(), "matroska"))
        video = self.output.add_stream(options.codec, rate=reader.frame_rate)
        video.width, video.height = reader.width, reader.height
        video.pix_fmt = "yuv420p" if reader.width % 2 == 0 and reader.height % 2 == 0 else "yuv444p"
        video.time_base = reader.time_base
        video.codec_context.time_base = reader.time_base
        if options.codec in ("libx264", "libx265"):
            video.options = {"crf": str(options.crf), "preset": options.preset}
        self.video = video
        self.copies = {s.index: self.output.add_stream_from_template(s) for s in reader.copied}
        self.packets_copied = 0
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._thread = Worker(self._encode_all, "video-encode")
        self._thread.start()

    def _put(self, item: Any) -> None:
        # Never block forever on a queue whose consumer has died: raise its error instead.
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._thread.join_or_raise()
                    raise RuntimeError("the video encoder stopped")

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
            frame.pts, frame.time_base = grey.pts, grey.time_base
            self.output.mux(self.video.encode(frame))
        self.output.mux(self.video.encode(None))
        self.output.close()

    def finish(self) -> None:
        """Flush the encoder and close the container (or just stop, after an error); raises its error."""
        self._put(END)
        self._thread.join_or_raise()
