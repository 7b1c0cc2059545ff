"""Read a video for colouring: its video stream's facts, then frames and copied packets, in a thread.

The decode thread demuxes the first video stream with every audio and
subtitle stream; frames go out as grey (luma) arrays with their timestamps,
audio and subtitle packets as they are (they are copied, never decoded).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from retint.batch.decode import DecodeFailure, describe_exception, open_regular_file
from retint.errors import MissingExtra, needs_extra

END = object()
WAIT_SLICE_SECONDS = 0.2  # how often a wait for the next frame looks at Ctrl-C and the stall limit
STOP_GRACE_SECONDS = 10.0  # how long stop() waits for the decode thread before leaving it behind


def import_av():
    """PyAV's `av` module; where the video extra is missing, a DecodeFailure that says so."""
    # Each video then fails with this line (the photos still get coloured), rather than the run.
    try:
        with needs_extra("video", "colouring video"):
            import av
    except MissingExtra as missing:
        raise DecodeFailure(str(missing)) from missing
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
        """Run the target, keeping its exception for `join_or_raise`."""
        try:
            self._target_function()
        except BaseException as error:  # handed to the calling thread
            self.error = error

    def join_or_raise(self) -> None:
        """Wait for the thread to end, then raise the exception its target raised, if any."""
        self.join()
        if self.error is not None:
            raise self.error


class VideoReader:
    """An open input video. Use as a context manager; `start()` begins decoding into `items()`."""

    def __init__(self, source: Path, queue_size: int):
        av = import_av()
        # FFmpeg is handed an open file, never a name: a name like `pipe:0.mkv` or `Scene1:Take2.mkv`
        # would be read as a protocol (stdin, or "Protocol not found"), and a FIFO swapped in after
        # the listing would block the open (see decode.open_regular_file).
        self._file = os.fdopen(open_regular_file(source), "rb")
        try:
            self.container = av.open(self._file, "r")
        except Exception as error:
            self._file.close()
            raise DecodeFailure(f"not a readable video ({error})") from error
        try:
            self._read_facts(av, queue_size)
        except BaseException as error:
            self.container.close()
            self._file.close()
            if isinstance(error, Exception) and not isinstance(error, DecodeFailure):
                # A damaged header makes PyAV return half-made objects (a codec context of None...).
                raise DecodeFailure(f"not a readable video ({describe_exception(error)})") from error
            raise

    def _read_facts(self, av, queue_size: int) -> None:
        if not self.container.streams.video:
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
        self._preroll_first_frame()
        # Set when the stream breaks off after some frames decoded (a cut-off file):
        # the frames before it are kept, and the video is reported partial.
        self.broken_off: str = ""
        self.stalled = False  # the decode thread was left behind, stuck in a read (see stop)
        self.frames_read = 0
        self._av_error = av.error.FFmpegError
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = Worker(self._decode_all, "video-decode")

    def _preroll_first_frame(self) -> None:
        """Demux and decode up to the first frame now: its size, not the header's, is the video's.

        A damaged or spliced file can declare one size and hold frames of another (two MPEG-TS
        streams back to back); the output stream is opened at the frames' size. What is read
        here (and an error, if reading failed) is handed on by the decode thread first.
        """
        self._packets = iter(self.container.demux(self.video, *self.copied))
        self._preroll: list[Any] = []  # copied packets, and lists of decoded frames
        self._preroll_error: Exception | None = None
        try:
            for packet in self._packets:
                if packet.stream.index != self.video.index:
                    if packet.dts is not None:
                        self._preroll.append(packet)
                    continue
                frames = list(packet.decode())
                self._preroll.append(frames)
                if frames:
                    self.width, self.height = frames[0].width, frames[0].height
                    return
        except Exception as error:  # raised by the decode thread, where it always was
            self._preroll_error = error

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
        try:
            self.stop()
        finally:
            # A decode thread stuck in a read still uses the container: closing it under that
            # thread could crash FFmpeg, so a stalled video's file is left open (the thread is a
            # daemon and dies with the process).
            if not self.stalled:
                self.container.close()
                self._file.close()

    def start(self) -> None:
        """Start the decode thread that feeds `items()`."""
        self._thread.start()

    def _decode_all(self) -> None:
        try:
            self._decode_packets()
        except Exception as error:
            if self.frames_read == 0:
                if isinstance(error, (self._av_error, DecodeFailure)):
                    raise
                raise DecodeFailure(f"corrupt video ({describe_exception(error)})") from error
            # Damage after some frames decoded (a cut-off or corrupted tail): keep those frames.
            self.broken_off = describe_exception(error)
        finally:
            self._queue.put(END)

    def _decode_packets(self) -> None:
        for item in self._preroll:
            if not isinstance(item, list):
                self._queue.put(item)
            elif not self._put_frames(item):
                return
        self._preroll = []
        if self._preroll_error is not None:
            raise self._preroll_error
        for packet in self._packets:
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
            if not self._put_frames(frames):
                return

    def _put_frames(self, frames) -> bool:
        """Queue decoded frames as grey; False when the frame size changed (the stream ends there)."""
        for frame in frames:
            if (frame.width, frame.height) != (self.width, self.height):
                # One output stream has one size: keep the frames before the change (partial).
                self.broken_off = (f"the frame size changes from {self.width}x{self.height} to "
                                   f"{frame.width}x{frame.height} after {self.frames_read} frames")
                return False
            self.frames_read += 1
            self._queue.put(GreyFrame(frame.to_ndarray(format="gray"), frame.pts, frame.time_base))
        return True

    def items(self, should_stop: Callable[[], bool] = lambda: False,
              stall_seconds: float | None = None) -> Iterator[Any]:
        """GreyFrame objects and copied packets, in demux order, until the end.

        Waits in short slices: raises KeyboardInterrupt once `should_stop()` (Ctrl-C), and
        DecodeFailure when nothing has come for `stall_seconds` (a read that hangs: a stalled
        disk or network share), so neither a stalled file nor Ctrl-C can hold the run.
        """
        last = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=WAIT_SLICE_SECONDS)
            except queue.Empty:
                if should_stop():
                    raise KeyboardInterrupt from None
                if stall_seconds is not None and time.monotonic() - last > stall_seconds:
                    raise DecodeFailure(f"no frame came for {stall_seconds:g} s (--timeout-per-input); "
                                        f"given up (a stalled disk or network share?)") from None
                continue
            if item is END:
                return
            last = time.monotonic()
            yield item

    def stop(self) -> None:
        """Stop the decode thread (draining its queue so it cannot block) and raise its error, if any.

        A thread that does not end within STOP_GRACE_SECONDS is stuck in a read: it is left
        behind (`stalled`), never waited for.
        """
        if self._thread.ident is None or self._stop.is_set():
            return  # never started, or already stopped
        self._stop.set()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self._thread.is_alive():
            if time.monotonic() > deadline:
                self.stalled = True
                return
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join_or_raise()
