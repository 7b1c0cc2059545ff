"""colorize-bench serve: a real colorize-serve per backend, loaded from this process on loopback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cv2

from retint.benchmarks.latency import parse_size
from retint.benchmarks.pipeline import photo_like
from retint.benchmarks.serve_load import ServerProcess, request, run_load
from retint.errors import InputError


def run_serve_report(engine: Path | None, backends: tuple[str, ...], requests: int, clients: int, warmup: int,
                     size: str) -> list[dict]:
    """Per backend, a real colorize-serve sent `requests` uploads of one photo-like grey JPEG of `size`
    by `clients` clients, after `warmup` requests: one row of figures each."""
    height, width = parse_size(size)
    # The same photo-like grey scan colorize-bench pipeline's archives are made of.
    photo = cv2.imencode(".jpg", photo_like(height, width, 0), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    rows = []
    with tempfile.TemporaryDirectory(prefix="retint-serve-bench-") as folder:
        for backend in backends:
            args = ["--backend", backend] + (["--engine", str(engine)] if engine else [])
            try:
                server = ServerProcess(Path(folder) / f"{backend}.log", *args)
            except RuntimeError as error:
                raise InputError(f"colorize-serve --backend {backend} did not start: {error}") from error
            with server:
                spec = json.loads(request(server.url + "/v1/spec").body)
                if warmup:
                    run_load(server.url, photo, warmup, clients)
                settled = server.peak_rss_mb()
                report = run_load(server.url, photo, requests, clients)
                figures = report.as_dict()
                rows.append({"backend": backend, "engine": spec["description"], **figures,
                             "peak_rss_mb_after_warmup": settled, "peak_rss_mb_after_load": server.peak_rss_mb()})
    return rows
