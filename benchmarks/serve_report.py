"""colorize-bench serve: a real colorize-serve per backend, loaded from this process on loopback."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from retint.benchmarks.latency import parse_size
from retint.benchmarks.serve_load import ServerProcess, request, run_load
from retint.errors import InputError


def grey_jpeg(width: int, height: int, seed: int = 0) -> bytes:
    """A photo-like grey JPEG: smooth regions plus grain, so it encodes like a scan."""
    rng = np.random.default_rng(seed)
    low = rng.random((max(2, height // 48), max(2, width // 48)), dtype=np.float32)
    smooth = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC))
    grain = rng.normal(0, 6, (height, width))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def run_serve_report(engine: Path | None, backends: tuple[str, ...], requests: int, clients: int, warmup: int,
                     size: str) -> list[dict]:
    height, width = parse_size(size)
    photo = grey_jpeg(width, height)
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
