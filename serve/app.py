"""The HTTP surface: routes, upload limits, JSON errors and one log line per request.

    GET  /          the web page (self-contained: no CDN, works offline)
    POST /colorize  multipart field `file` -> the coloured image (?format=png|jpg)
    GET  /healthz   {"status": "ok", ...}
    GET  /v1/spec   the engine's spec as JSON

Errors are JSON `{"error": "..."}`: 400 a malformed request, 413 an upload
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
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from retint import __version__
from retint.runtime import EngineSpec
from retint.serve.colouriser import Admission, Colouriser, Rejected, check_format

# Multipart framing around the file: boundaries and part headers.
MULTIPART_SLACK = 64 * 1024

log = logging.getLogger("retint.serve")


def spec_as_json(spec: EngineSpec) -> dict[str, Any]:
    """The engine's spec as GET /v1/spec serves it: the spec's own fields plus its path, render size,
    limits, metadata and retint's version."""
    return {**spec.as_dict(), "path": str(spec.path), "render_size": spec.render_size,
            "limits": asdict(spec.limits), "metadata": asdict(spec.metadata) if spec.metadata else None,
            "retint": __version__}


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
    return Rejected(413, f"upload over the server's limit of {max_upload_bytes // (1024 * 1024)} MB")


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
    """The FastAPI app serving the page, /colorize, /healthz and /v1/spec on `colouriser`; `admission`
    bounds the requests in progress and an upload over `max_upload_bytes` gets 413."""
    app = FastAPI(title="retint", version=__version__, docs_url=None, redoc_url=None)
    app.add_middleware(RequestLog)
    page = resources.files("retint.serve").joinpath("page.html").read_text(encoding="utf-8")
    spec = spec_as_json(colouriser.engine.spec)

    @app.exception_handler(Rejected)
    async def rejected(request: Request, error: Rejected) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)

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
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_upload_bytes + MULTIPART_SLACK:
            raise _too_large(max_upload_bytes)
        admission.enter()
        started = time.perf_counter()
        seconds = None
        try:
            limited = Request(request.scope, _limited(request.receive, max_upload_bytes + MULTIPART_SLACK))
            try:
                async with limited.form(max_files=1, max_fields=8) as form:
                    upload = form.get("file")
                    if not isinstance(upload, UploadFile):
                        raise Rejected(400, "expected a multipart/form-data upload with the image in field 'file'")
                    if upload.size is not None and upload.size > max_upload_bytes:
                        raise _too_large(max_upload_bytes)
                    upload.file.seek(0)
                    loop = asyncio.get_running_loop()
                    coloured = await loop.run_in_executor(colouriser.pool, colouriser.colorize, upload.file,
                                                          requested)
            except UploadTooLarge:
                raise _too_large(max_upload_bytes) from None
            seconds = time.perf_counter() - started
        finally:
            admission.leave(seconds)
        request.scope.setdefault("retint", {})["pixels"] = coloured.pixels
        headers = {"X-Retint-Engine": _header_safe(spec["label"])}
        if coloured.notes:
            headers["X-Retint-Notes"] = _header_safe("; ".join(coloured.notes))
        return Response(coloured.body, media_type=coloured.media_type, headers=headers)

    return app
