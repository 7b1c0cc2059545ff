"""The HTTP surface: routes, upload limits, JSON errors and one log line per request.

    GET  /             the web page (self-contained: no CDN, works offline)
    POST /colorize     multipart `file` [+ `hints`, `temperature`, `reference`] -> the coloured image
                       (?format=png|jpg; default: the input's format)
    POST /suggest      multipart `file` + `points` [+ `hints`, `reference`, `k`] -> JSON
                       {"suggestions": [[{"a", "b", "rgb", "probability"}, ...] per point]}
    POST /uncertainty  multipart `file` [+ `hints`, `temperature`, `reference`] -> a PNG heat map
                       of the calibrated interval's width, at the image's size
    GET  /healthz      {"status": "ok", ...}
    GET  /v1/spec      the engine's spec as JSON; its "guides" say whether this engine takes
                       hints and a reference, suggests colours and maps its uncertainty

The fields `hints`, `temperature`, `reference`, `points` and `k` are read by
guides.py (hints as `retint.runtime.guides.hints` words them, x and y in the image's
pixels; `reference`, a colour photo's file, by reference.py). Every POST has
the same upload limit (per file), deadline, admission and log line: its
body must arrive within --upload-timeout (arrival.py), and only then is it
admitted to the colouring queue.

Errors are JSON `{"error": "..."}`: 400 a malformed request (a hint,
point, temperature or k that cannot be used, any reference photo that cannot
be read, hints or a reference for a model that takes none, suggestions or
uncertainty from an engine without them), 408 a body that did not arrive
within --upload-timeout (the connection is then closed), 413 an upload (the
photo or a reference photo) over --max-upload-mb, 415 not an image or an
unsupported format, 422 too many pixels or a side out of range, 500 the
engine failed (the server keeps serving), 503 busy (with Retry-After). A
client that closes its connection during its upload gets no answer; its log
line says 499 (nginx's "client closed request") and how much had arrived.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from importlib import resources
from functools import partial
from typing import Any, BinaryIO, Callable, Mapping, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from retint import __version__
from retint.runtime import EngineSpec
from retint.serve.arrival import Arrival, Arrivals, UploadTimedOut, UploadTooLarge
from retint.serve.colouriser import Admission, Coloured, Colouriser, Rejected, Suggested, check_format
from retint.serve.guides import MAX_FIELD_CHARACTERS, capabilities, read_count, read_guides, read_points
from retint.serve.rejected import over_upload_limit

# Multipart framing around the files: boundaries and part headers.
MULTIPART_SLACK = 64 * 1024
# The photo and a reference photo, each held to the upload limit.
MAX_FILES = 2
# A text field's bytes held while the form arrives: the guides' longest field in UTF-8.
MAX_FIELD_BYTES = 4 * MAX_FIELD_CHARACTERS

log = logging.getLogger("retint.serve")
Answer = TypeVar("Answer", Coloured, Suggested)
# A route's reading of the form's fields (on the event loop: a malformed field is a 400 before any
# decoding) -> the work for the pool, given the upload's file.
Job = Callable[[Mapping[str, Any]], Callable[[BinaryIO], Answer]]


def spec_as_json(spec: EngineSpec) -> dict[str, Any]:
    """The engine's spec as GET /v1/spec serves it: the spec's own fields plus its path, render size,
    limits, metadata and retint's version."""
    return {**spec.as_dict(), "path": str(spec.path), "render_size": spec.render_size,
            "limits": asdict(spec.limits), "metadata": asdict(spec.metadata) if spec.metadata else None,
            "guides": capabilities(spec), "retint": __version__}


def _too_large(max_upload_bytes: int) -> Rejected:
    return Rejected(413, over_upload_limit(max_upload_bytes))


class RequestLog:
    """ASGI middleware: one line per request: method, path, status, milliseconds, pixels, and after
    them a note where the route left one (scope["retint"]["note"]: how much of a body arrived)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        scope.setdefault("retint", {})
        try:
            await self.app(scope, receive, send_and_note)
        finally:
            pixels = scope["retint"].get("pixels", "-")
            note = scope["retint"].get("note")
            log.info("%s %s %d %.1f ms %s px%s", scope["method"], scope["path"], status[0],
                     (time.perf_counter() - started) * 1000, pixels, f": {note}" if note else "")


def _note(request: Request, text: str) -> None:
    """`text` after the request's log line (RequestLog)."""
    request.scope.setdefault("retint", {})["note"] = text


def _header_safe(text: str) -> str:
    """HTTP header values are latin-1; keep them ASCII."""
    return text.encode("ascii", "replace").decode("ascii")


def create_app(colouriser: Colouriser, admission: Admission, arrivals: Arrivals, max_upload_bytes: int,
               upload_timeout: float) -> FastAPI:
    """The FastAPI app serving the page, /colorize, /suggest, /uncertainty, /healthz and /v1/spec on
    `colouriser`; `arrivals` bounds the bodies arriving at once, each within `upload_timeout` seconds
    (else 408) and with files of at most `max_upload_bytes` (else 413); `admission` bounds the
    requests in the colouring queue, which a request enters once its body is in."""
    app = FastAPI(title="retint", version=__version__, docs_url=None, redoc_url=None)
    app.add_middleware(RequestLog)
    page = resources.files("retint.serve").joinpath("page.html").read_text(encoding="utf-8")
    spec = spec_as_json(colouriser.engine.spec)
    engine_header = {"X-Retint-Engine": _header_safe(spec["label"])}
    max_body_bytes = MAX_FILES * max_upload_bytes + MULTIPART_SLACK

    @app.exception_handler(Rejected)
    async def rejected(request: Request, error: Rejected) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

    async def read_form(request: Request) -> FormData:
        """The request's form once its whole body is in: 413 over the size limit (declared or
        arrived), 503 when --max-uploads bodies are arriving, 408 (and the connection closed) when
        the body is not in within `upload_timeout`; a client that closes the connection meanwhile
        gets a 499 no one reads, for the log line. The caller closes the form."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise _too_large(max_upload_bytes)
        arrivals.enter()
        arrival = Arrival(request.receive, max_body_bytes, upload_timeout)
        expected = f" of {int(declared)}" if declared is not None and declared.isdigit() else ""
        try:
            return await Request(request.scope, arrival.receive).form(
                max_files=MAX_FILES, max_fields=8, max_part_size=MAX_FIELD_BYTES)
        except UploadTooLarge:
            raise _too_large(max_upload_bytes) from None
        except UploadTimedOut:
            _note(request, f"{arrival.received}{expected} bytes in {upload_timeout:g} s")
            raise Rejected(408, f"the upload took longer than the server's limit of {upload_timeout:g} s",
                           {"Connection": "close"}) from None
        except ClientDisconnect:
            _note(request, f"the client closed the connection after {arrival.received}{expected} bytes")
            raise Rejected(499, "the client closed the connection during its upload") from None
        finally:
            arrivals.leave()

    async def upload_route(request: Request, job: Job[Answer]) -> Answer:
        """The one way a POST with an upload is served: its body read (`read_form`), the form read
        by `job`, admission, the work on the colouriser's pool, and the pixels for the log line."""
        form = await read_form(request)
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Rejected(400, "expected a multipart/form-data upload with the image in field 'file'")
            if upload.size is not None and upload.size > max_upload_bytes:
                raise _too_large(max_upload_bytes)
            work = job(form)
            upload.file.seek(0)
            admission.enter()
            started = time.perf_counter()
            seconds = None
            try:
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(colouriser.pool, work, upload.file)
                seconds = time.perf_counter() - started
            finally:
                admission.leave(seconds)
        finally:
            await form.close()
        request.scope.setdefault("retint", {})["pixels"] = answer.pixels
        return answer

    def image_response(coloured: Coloured) -> Response:
        headers = dict(engine_header)
        if coloured.notes:
            headers["X-Retint-Notes"] = _header_safe("; ".join(coloured.notes))
        return Response(coloured.body, media_type=coloured.media_type, headers=headers)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "engine": spec["label"], "in_flight": admission.in_flight,
                "capacity": admission.capacity, "arriving": arrivals.arriving}

    @app.get("/v1/spec")
    async def engine_spec() -> dict[str, Any]:
        return spec

    @app.post("/colorize")
    async def colorize(request: Request) -> Response:
        requested = check_format(request.query_params.get("format"))
        coloured = await upload_route(request, lambda form: partial(
            colouriser.colorize, requested_format=requested, guides=read_guides(form, max_upload_bytes)))
        return image_response(coloured)

    @app.post("/suggest")
    async def suggest(request: Request) -> Response:
        suggested = await upload_route(request, lambda form: partial(
            colouriser.suggest, points=read_points(form), count=read_count(form),
            guides=read_guides(form, max_upload_bytes, takes_temperature=False)))
        return JSONResponse({"suggestions": suggested.suggestions, "from": suggested.source}, headers=engine_header)

    @app.post("/uncertainty")
    async def uncertainty(request: Request) -> Response:
        colouriser.require_uncertainty("POST /uncertainty")
        heat = await upload_route(request, lambda form: partial(colouriser.uncertainty,
                                                                guides=read_guides(form, max_upload_bytes)))
        return image_response(heat)

    return app

