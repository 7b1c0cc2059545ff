"""Read a video for colouring: its video stream's facts, then frames and copied packets, in a thread.

The decode thread demuxes the first video stream with every audio and
subtitle stream; frames go out as grey (luma) arrays with their timestamps,
audio and subtitle packets as they are (they are copied, never decoded).
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from retint.batch.decode import DecodeFailure

END = object()


def import_av():
    try:
        import av
    except ImportError as error:
        raise DecodeFailure("video needs PyAV: pip install 'retint[video]'") from error
    return av


@dataclass(frozen=True)
class GreyFrame:
    gray: np.ndarray  # uint8 [H, W]
    pts: int | None
    time_base: Fraction | None


class Worker(threading.Thread):
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


class VideoReader:
    """An open input video. Use as a context manager; `start()` begins decoding into `items()`."""

    def __init__(self, source: Path, queue_size: int):
        av = import_av()
        try:
            self.container = av.open(str(source))
        except (av.error.FFmpegError, OSError) as error:
            raise DecodeFailure(f"not a readable video ({error})") from error
        if not self.container.streams.video:
            self.container.close()
            raise DecodeFailure("no video stream")
        self.video = self.container.streams.video[0]
        self.copied = [s for s in self.container.streams if s.type in ("audio", "subtitle")]
        self.width = self.video.codec_context.width
        self.height = self.video.codec_context.height
        # Read before the container closes: PyAV segfaults on a closed container's streams.
        rate = self.video.average_rate
        self.fps = float(rate) if rate else None
        self.frame_rate = rate or self.video.guessed_rate or 25
        self.time_base = self.video.time_base
        self.container_seconds = self.container.duration / 1_000_000 if self.container.duration else None
        self.promised_frames = self._promised_frames()
        # Set when the stream breaks off after some frames decoded (a cut-off file):
        # the frames before it are kept, and the video is reported partial.
        self.broken_off: str = ""
        self.frames_read = 0
        self._av_error = av.error.FFmpegError
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = Worker(self._decode_all, "video-decode")

    def _promised_frames(self) -> int | None:
        """The frame count the container declares (or its duration times its rate), if it says."""
        if self.video.frames:
            return int(self.video.frames)
        seconds = float(self.video.duration * self.video.time_base) if self.video.duration and self.video.time_base \
            else self.container_seconds
        return round(seconds * self.fps) if seconds and self.fps else None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
        self.container.close()

    def start(self) -> None:
        self._thread.start()

    def _decode_all(self) -> None:
        try:
            for packet in self.container.demux(self.video, *self.copied):
                if self._stop.is_set():  # the consumer gave up (error or Ctrl-C)
                    break
                if packet.stream.index != self.video.index:
                    if packet.dts is not None:
                        self._queue.put(packet)
                    continue
                try:
                    frames = packet.decode()
                except self._av_error as error:
                    if self.frames_read == 0:
                        raise
                    self.broken_off = str(error)
                    break
                for frame in frames:
                    self.frames_read += 1
                    self._queue.put(GreyFrame(frame.to_ndarray(format="gray"), frame.pts, frame.time_base))
        finally:
            self._queue.put(END)

    def items(self) -> Iterator[Any]:
        """GreyFrame objects and copied packets, in demux order, until the end."""
        while (item := self._queue.get()) is not END:
            yield item

    def stop(self) -> None:
        """Stop the decode thread (draining its queue so it cannot block) and raise its error, if any."""
        if self._thread.ident is None or self._stop.is_set():
            return  # never started, or already stopped
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join_or_raise()
