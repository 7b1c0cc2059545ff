"""Open the engine, bind the socket and run uvicorn until Ctrl-C or SIGTERM."""

from __future__ import annotations

import logging
import signal
import socket
import sys
from typing import Callable

import uvicorn

from retint.errors import InputError
from retint.runtime import EngineRequest, open_engines
from retint.serve.app import create_app
from retint.serve.arrival import Arrivals, head_deadline_protocol
from retint.serve.colouriser import Admission, Colouriser
from retint.serve.config import ServeConfig


def open_colouriser(config: ServeConfig) -> Colouriser:
    """The engine on the inference plan's streams (CPU: two of one thread each), one image per call."""
    engines = open_engines(EngineRequest(path=config.engine, backend=config.backend, device=config.device,
                                         batch_size=1, streams=config.streams))
    return Colouriser(engines, config.max_pixels, config.quality)


def bind(host: str, port: int) -> socket.socket:
    """Listen before the server starts, so a taken port is one clear error (and port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise InputError(f"cannot listen on {host}:{port} ({error.strerror or error})") from error
    listener.listen(128)
    return listener


def _log_requests_to_stderr() -> None:
    logger = logging.getLogger("retint.serve")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(config: ServeConfig, announce: Callable[[str], None]) -> None:
    """Serve until interrupted; `announce` gets one line saying where and on what engine."""
    listener = bind(config.host, config.port)
    try:
        colouriser = open_colouriser(config)
    except BaseException:
        listener.close()
        raise
    try:
        admission = Admission(colouriser.streams, config.queue)
        app = create_app(colouriser, admission, Arrivals(config.max_uploads), config.max_upload_bytes,
                         config.upload_timeout)
        _log_requests_to_stderr()
        host, port = listener.getsockname()[:2]
        shown_host = f"[{host}]" if ":" in host else host
        announce(f"listening on http://{shown_host}:{port}/ ; engine: {colouriser.engine.spec.describe()}; "
                 f"{colouriser.streams} stream(s), {config.queue} may wait")
        server = uvicorn.Server(uvicorn.Config(app, http=head_deadline_protocol(config.upload_timeout),
                                               log_level="warning", access_log=False,
                                               timeout_graceful_shutdown=30))
        # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal with the handler it
        # found: this one makes SIGTERM end like Ctrl-C (exit 0), not kill the process after the fact.
        signal.signal(signal.SIGTERM, _interrupt)
        server.run(sockets=[listener])
    finally:
        listener.close()
        colouriser.close()
