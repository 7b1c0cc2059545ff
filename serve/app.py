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
guides.py (hints as `retint.runtime.hints` words them, x and y in the image's
pixels; `reference`, a colour photo's file, by reference.py). Every POST has
the same upload limit (per file), admission and log line.

Errors are JSON `{"error": "..."}`: 400 a malformed request (a hint,
point, temperature or k that cannot be used, any reference photo that cannot,
hints or a reference for a model that takes none, suggestions or
uncertainty from an engine without them), 413 an upload
over --max-upload-mb, 415 not an image or an unsupported format, 422 too
many pixels or a side out of range, 500 the engine failed (the server keeps
serving), 503 busy (with Retry-After).
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
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from retint import __version__
from retint.runtime import EngineSpec
from retint.serve.colouriser import Admission, Coloured, Colouriser, Rejected, Suggested, check_format
from retint.serve.guides import capabilities, read_count, read_guides, read_points
from retint.serve.rejected import over_upload_limit

# Multipart framing around the files: boundaries and part headers.
MULTIPART_SLACK = 64 * 1024
# The photo and a reference photo, each held to the upload limit.
MAX_FILES = 2

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


class UploadTooLarge(Exception):
    pass


def _limited(receive, limit: int):
    """`receive` that raises once the body passes `limit` bytes (chunked uploads have no Content-Length)."""
    received = 0

    async def limited_receive():
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise UploadTooLarge()
        return message

    return limited_receive


def _too_large(max_upload_bytes: int) -> Rejected:
    return Rejected(413, over_upload_limit(max_upload_bytes))


class RequestLog:
    """ASGI middleware: one line per request: method, path, status, milliseconds, pixels."""

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
            log.info("%s %s %d %.1f ms %s px", scope["method"], scope["path"], status[0],
                     (time.perf_counter() - started) * 1000, pixels)


def _header_safe(text: str) -> str:
    """HTTP header values are latin-1; keep them ASCII."""
    return text.encode("ascii", "replace").decode("ascii")


def create_app(colouriser: Colouriser, admission: Admission, max_upload_bytes: int) -> FastAPI:
    """The FastAPI app serving the page, /colorize, /suggest, /uncertainty, /healthz and /v1/spec on
    `colouriser`; `admission` bounds the requests in progress and an upload over `max_upload_bytes`
    gets 413."""
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

    async def upload_route(request: Request, job: Job[Answer]) -> Answer:
        """The one way a POST with an upload is served: its size limit, admission, the form read
        by `job`, the work on the colouriser's pool, and the pixels for the log line."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise _too_large(max_upload_bytes)
        admission.enter()
        started = time.perf_counter()
        seconds = None
        try:
            limited = Request(request.scope, _limited(request.receive, max_body_bytes))
            try:
                async with limited.form(max_files=MAX_FILES, max_fields=8) as form:
                    upload = form.get("file")
                    if not isinstance(upload, UploadFile):
                        raise Rejected(400, "expected a multipart/form-data upload with the image in field 'file'")
                    if upload.size is not None and upload.size > max_upload_bytes:
                        raise _too_large(max_upload_bytes)
                    work = job(form)
                    upload.file.seek(0)
                    loop = asyncio.get_running_loop()
                    answer = await loop.run_in_executor(colouriser.pool, work, upload.file)
            except UploadTooLarge:
                raise _too_large(max_upload_bytes) from None
            seconds = time.perf_counter() - started
        finally:
            admission.leave(seconds)
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
                "capacity": admission.capacity}

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
        colouriser.require_suggestions("POST /suggest")
        suggested = await upload_route(request, lambda form: partial(
            colouriser.suggest, points=read_points(form), count=read_count(form),
            guides=read_guides(form, max_upload_bytes, takes_temperature=False)))
        return JSONResponse({"suggestions": suggested.suggestions}, headers=engine_header)

    @app.post("/uncertainty")
    async def uncertainty(request: Request) -> Response:
        colouriser.require_uncertainty("POST /uncertainty")
        heat = await upload_route(request, lambda form: partial(colouriser.uncertainty,
                                                                guides=read_guides(form, max_upload_bytes)))
        return image_response(heat)

    return app

