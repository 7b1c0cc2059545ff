"""One request's work, off the event loop: decode the upload, colour it, encode it.

The same decode rules as colorize-batch (`retint.batch.decode`): EXIF
orientation applied, alpha kept where the output format holds it, 16-bit
scaled to 8, the pixel limit judged from the header. A colour upload is
coloured from its own lightness (a browser user who drops one expects a
result, not a skip). Requests run on a pool of as many threads as the
engine's inference plan has streams; `Admission` bounds how many may wait.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from retint.batch.decode import DecodeFailure, ImageTooLarge, UnreadableImage, decode_bytes
from retint.batch.encode import OUTPUT_FORMATS, encode, media_type, output_suffix, suffix_of_input_format
from retint.runtime import Engines


log = logging.getLogger("retint.serve")


class Rejected(Exception):
    """A request the server answers with `status` and a JSON body {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True)
class Coloured:
    body: bytes
    media_type: str
    width: int
    height: int
    notes: tuple[str, ...]

    @property
    def pixels(self) -> int:
        """Width times height, for the request's log line."""
        return self.width * self.height


def check_format(requested: str | None) -> str | None:
    """The ?format= value when it is absent or one of OUTPUT_FORMATS; else a 400 Rejected."""
    if requested is not None and requested not in OUTPUT_FORMATS:
        raise Rejected(400, f"format must be one of {', '.join(OUTPUT_FORMATS)}, not {requested!r}")
    return requested


class Colouriser:
    """Colours one upload at a time per stream; `colorize` runs on the caller's (pool) thread."""

    def __init__(self, engines: Engines, max_pixels: int, quality: int):
        self.engines = engines
        self.engine = engines.main
        self.streams = engines.plan.streams
        self.max_pixels = max_pixels
        self.quality = quality
        self.pool = ThreadPoolExecutor(self.streams, thread_name_prefix="colorize")

    def colorize(self, upload: BinaryIO, requested_format: str | None) -> Coloured:
        """Decode the upload, colour it and encode it in `requested_format` (default: its own format);
        anything wrong is a Rejected with its HTTP status."""
        data = upload.read()  # on the pool: a waiting request holds only its spooled upload
        try:
            decoded = decode_bytes(data, self.max_pixels, include_colour=True)
        except UnreadableImage as error:
            raise Rejected(415, str(error)) from error
        except ImageTooLarge as error:
            raise Rejected(422, str(error).replace("--max-pixels", "the server's limit of")) from error
        except DecodeFailure as error:
            raise Rejected(422, str(error)) from error
        del data
        height, width = decoded.size
        refusal = self.engine.spec.limits.refusal(height, width)
        if refusal:
            raise Rejected(422, refusal)
        try:
            rgb = self.engine.colorize(decoded.gray)[0]
        except Exception as error:  # ONNX Runtime, OpenVINO and TensorRT raise their own types
            log.exception("engine failed on a %dx%d image", width, height)
            first_line = (str(error).splitlines() or [type(error).__name__])[0]
            raise Rejected(500, f"the engine failed on this image ({first_line})") from error
        suffix = output_suffix(requested_format or "keep", suffix_of_input_format(decoded.input_format))
        body = encode(np.ascontiguousarray(rgb), decoded, suffix, self.quality)
        return Coloured(body, media_type(suffix), width, height, tuple(decoded.notes))

    def close(self) -> None:
        """Wait for the requests in progress, then close the engines."""
        self.pool.shutdown(wait=True)
        self.engines.close()


class Admission:
    """At most `streams + queue` requests in the server at once; the next gets 503 with Retry-After.

    Counted on the event loop's thread only, so a plain integer suffices. A
    request is admitted before its body is read: one turned away costs no
    memory, and those admitted hold at most their spooled uploads.
    """

    def __init__(self, streams: int, queue: int):
        self.capacity = streams + queue
        self.streams = streams
        self.in_flight = 0
        self.seconds_per_request = 0.5  # a running mean of service times, for Retry-After

    def enter(self) -> None:
        """Admit one request, or raise a 503 Rejected whose Retry-After is estimated from recent
        service times."""
        if self.in_flight >= self.capacity:
            wait = self.seconds_per_request * self.in_flight / self.streams
            raise Rejected(503, f"busy: {self.in_flight} requests in progress; retry shortly",
                           {"Retry-After": str(max(1, math.ceil(wait)))})
        self.in_flight += 1

    def leave(self, seconds: float | None) -> None:
        """One request has left; its `seconds` (None when it failed) update the running mean service time."""
        self.in_flight -= 1
        if seconds is not None:
            self.seconds_per_request = 0.8 * self.seconds_per_request + 0.2 * seconds
