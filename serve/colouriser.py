"""One request's work, off the event loop: decode the upload, colour it (or suggest colours, or
map the model's uncertainty), encode the answer.

The same decode rules as colorize-batch (`retint.batch.decode`): EXIF
orientation applied, alpha kept where the output format holds it, 16-bit
scaled to 8, the pixel limit judged from the header. A colour upload is
coloured from its own lightness (a browser user who drops one expects a
result, not a skip). A request's guides (hints, temperature, a reference
photo: guides.py) are checked by the engine's own rules before it runs
(`Engine.check_guides`: nothing is computed), so a hint outside the image or a
temperature for a model that has none is a 400, and only a failure of the
engine itself is a 500. Requests run on
a pool of as many threads as the engine's inference plan has streams;
`Admission` bounds how many may wait.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Sequence, TypeVar

import cv2
import numpy as np

from retint.batch.decode import DecodedImage, DecodeFailure, ImageTooLarge, UnreadableImage, decode_bytes
from retint.batch.encode import OUTPUT_FORMATS, encode, media_type, output_suffix, suffix_of_input_format
from retint.errors import EngineError
from retint.runtime import Engines
from retint.runtime.artefact import require_uncertainty_head
from retint.runtime.guides.suggestions import check_points, suggestion_source
from retint.runtime.uncertainty import heat_map, interval_width
from retint.serve.guides import Guides
from retint.serve.reference import decode_reference
from retint.serve.rejected import Rejected

__all__ = ["Admission", "Coloured", "Colouriser", "Rejected", "Suggested", "check_format"]

log = logging.getLogger("retint.serve")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Coloured:
    """An image answer: the coloured photo (or the uncertainty heat map), encoded."""

    body: bytes
    media_type: str
    width: int
    height: int
    notes: tuple[str, ...]

    @property
    def pixels(self) -> int:
        """Width times height, for the request's log line."""
        return self.width * self.height


@dataclass(frozen=True)
class Suggested:
    """A /suggest answer: per point, its suggestions as JSON objects, most probable first, and where
    they came from ("model", "reference palette" or "none": no suggestions, pick a colour)."""

    suggestions: list[list[dict[str, Any]]]
    width: int
    height: int
    source: str = "model"

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
    """Colours one upload at a time per stream; `colorize`, `suggest` and `uncertainty` run on the
    caller's (pool) thread."""

    def __init__(self, engines: Engines, max_pixels: int, quality: int):
        self.engines = engines
        self.engine = engines.main
        self.streams = engines.plan.streams
        self.max_pixels = max_pixels
        self.quality = quality
        self.pool = ThreadPoolExecutor(self.streams, thread_name_prefix="colorize")

    def colorize(self, upload: BinaryIO, requested_format: str | None, guides: Guides = Guides()) -> Coloured:
        """Decode the upload, colour it (with the guides' hints, temperature and reference) and encode it in
        `requested_format` (default: its own format); anything wrong is a Rejected with its HTTP status."""
        decoded = self._decode(upload)
        reference = self._guided(decoded.gray, guides)
        rgb = self._run_engine(decoded, lambda: self.engine.colorize(
            decoded.gray, hints=guides.per_image, temperature=guides.temperature, reference=reference)[0])
        suffix = output_suffix(requested_format or "keep", suffix_of_input_format(decoded.input_format))
        body = encode(np.ascontiguousarray(rgb), decoded, suffix, self.quality)
        height, width = decoded.size
        return Coloured(body, media_type(suffix), width, height, tuple(decoded.notes))

    def suggest(self, upload: BinaryIO, points: Sequence[tuple[float, float]], count: int,
                guides: Guides = Guides()) -> Suggested:
        """Up to `count` likely colours at each point of the upload, given the guides' hints and
        reference: from the model's distribution, else the reference's palette, else none."""
        decoded = self._decode(upload)
        height, width = decoded.size
        try:
            checked = check_points(points, height, width)
        except EngineError as error:
            raise Rejected(400, str(error)) from None
        reference = self._guided(decoded.gray, guides)
        found = self._run_engine(decoded, lambda: self.engine.suggest(decoded.gray, checked, count,
                                                                     hints=guides.hints, reference=reference))
        return Suggested([[suggestion.as_json() for suggestion in per_point] for per_point in found], width, height,
                         suggestion_source(self.engine.spec.capabilities, reference is not None))

    def uncertainty(self, upload: BinaryIO, guides: Guides = Guides()) -> Coloured:
        """A PNG heat map of the calibrated interval's width (runtime.uncertainty's scale), at the
        upload's size, for the colouring the guides give."""
        self.require_uncertainty("POST /uncertainty")
        decoded = self._decode(upload)
        reference = self._guided(decoded.gray, guides)
        _, interval = self._run_engine(decoded, lambda: self.engine.colorize(
            decoded.gray, with_uncertainty=True, hints=guides.per_image, temperature=guides.temperature,
            reference=reference))
        ok, png = cv2.imencode(".png", heat_map(interval_width(interval, channels_last=True)[0]))
        if not ok:
            raise Rejected(500, "the heat map could not be encoded as PNG")
        height, width = decoded.size
        return Coloured(png.tobytes(), "image/png", width, height, ())

    def require_uncertainty(self, purpose: str) -> None:
        """A 400 Rejected (the runtime's wording) unless the engine has an uncertainty head."""
        spec = self.engine.spec
        try:
            require_uncertainty_head(spec.model_name, spec.uncertainty_alpha, purpose)
        except EngineError as error:
            raise Rejected(400, str(error)) from None

    def _decode(self, upload: BinaryIO) -> DecodedImage:
        """The upload's grey pixels (batch's decode rules), within the server's and the engine's limits."""
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
        refusal = self.engine.spec.limits.refusal(*decoded.size)
        if refusal:
            raise Rejected(422, refusal)
        return decoded

    def _guided(self, gray: np.ndarray, guides: Guides) -> np.ndarray | None:
        """The engine's own checks of every guide (`Engine.check_guides`: a hint outside the image,
        a temperature out of range or for a model that has none, guides for an artefact without its
        stages) as a 400, before the engine runs; then the reference's pixels (None without one)."""
        try:
            self.engine.check_guides(gray.shape[:2], guides.per_image, guides.temperature,
                                     reference_given=guides.reference is not None)
        except EngineError as error:
            raise Rejected(400, str(error)) from None
        if guides.reference is None:
            return None
        guides.reference.seek(0)
        return decode_reference(guides.reference.read(), self.max_pixels)  # on the pool, as the photo's

    def _run_engine(self, decoded: DecodedImage, call: Callable[[], Result]) -> Result:
        """`call`, with any failure of the engine itself as a 500 (logged with its traceback)."""
        try:
            return call()
        except Exception as error:  # ONNX Runtime, OpenVINO and TensorRT raise their own types
            height, width = decoded.size
            log.exception("engine failed on a %dx%d image", width, height)
            first_line = (str(error).splitlines() or [type(error).__name__])[0]
            raise Rejected(500, f"the engine failed on this image ({first_line})") from error

    def close(self) -> None:
        """Wait for the requests in progress, then close the engines."""
        self.pool.shutdown(wait=True)
        self.engines.close()


class Admission:
    """At most `streams + queue` requests being coloured or waiting to be; the next gets 503 with
    Retry-After.

    Counted on the event loop's thread only, so a plain integer suffices. A
    request is admitted once its whole body is in (arrival.py bounds the
    bodies still arriving), so a slow client holds no place here; those
    admitted hold at most their spooled uploads.
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
