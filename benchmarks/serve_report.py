"""colorize-bench serve: a real colorize-serve per backend, loaded from this process on loopback."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cv2

from retint.benchmarks.latency import parse_size
from retint.benchmarks.pipeline import photo_like
from retint.benchmarks.serve_load import ServerProcess, random_hints, request, run_load
from retint.errors import InputError


def run_serve_report(engine: Path | None, backends: tuple[str, ...], requests: int, clients: int, warmup: int,
                     size: str, hints: int = 0) -> list[dict]:
    """Per backend, a real colorize-serve sent `requests` uploads of one photo-like grey JPEG of `size`
    by `clients` clients, after `warmup` requests: one row of figures each. With `hints`, each
    request carries that many seeded random hints (a colour model v2 engine re-colouring as a
    page's user guides it); an engine that takes no hints is an InputError before any load."""
    height, width = parse_size(size)
    fields = (lambda number: random_hints(hints, width, height, seed=number)) if hints else None
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
                if hints and not spec.get("guides", {}).get("hints"):
                    raise InputError(f"--hints: the engine {spec['label']} takes no hints "
                                     "(colour model v2 artefacts do); pass one with --engine")
                if warmup:
                    run_load(server.url, photo, warmup, clients, fields=fields)
                settled = server.peak_rss_mb()
                report = run_load(server.url, photo, requests, clients, fields=fields)
                figures = report.as_dict()
                rows.append({"backend": backend, "engine": spec["description"], "hints": hints, **figures,
                             "peak_rss_mb_after_warmup": settled, "peak_rss_mb_after_load": server.peak_rss_mb()})
    return rows
