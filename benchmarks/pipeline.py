"""End-to-end archive throughput: `colorize-batch` next to the engine alone.

`make_archive` writes generated photo-like JPEGs; `run_batch_process` runs the
real command in a subprocess (so its peak RSS is its own); `engine_alone`
times the engine on the same images pre-decoded in memory, same batch size
and the same inference plan as `colorize-batch` (streams, threads per stream).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from retint.batch.manifest import read_manifest
from retint.runtime import EngineRequest, open_engines


def photo_like(height: int, width: int, seed: int) -> np.ndarray:
    """A grey uint8 image with smooth regions, edges and grain, like a scanned print."""
    rng = np.random.default_rng(seed)
    low = rng.random((max(2, height // 48), max(2, width // 48))).astype(np.float32)
    image = cv2.resize(low, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(8):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(image, centre, int(rng.integers(height // 12, height // 3)), float(rng.random()), -1)
    image += rng.normal(0, 0.04, image.shape).astype(np.float32)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def make_archive(folder: Path, count: int, height: int = 768, width: int = 1024, distinct: int = 50) -> Path:
    """`count` JPEGs (quality 90) in subfolders of 100; `distinct` different pictures reused."""
    folder.mkdir(parents=True, exist_ok=True)
    encoded = [cv2.imencode(".jpg", photo_like(height, width, seed), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
               for seed in range(distinct)]
    for index in range(count):
        path = folder / f"roll-{index // 100:03d}" / f"scan-{index:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        if not path.exists():
            path.write_bytes(encoded[index % distinct])
    return folder


def run_batch_process(source: Path, output: Path, engine: Path | None, batch: int | None, workers: int,
                      streams: int | None = None, backend: str = "auto", extra: tuple[str, ...] = (),
                      allowed_exit_codes: tuple[int, ...] = (0,)) -> dict:
    """Run `colorize-batch` in a child process: wall time, its summary and its own peak RSS (MB).
    `batch` and `streams` None: colorize-batch's own defaults; `extra`: more options (`--ray`)."""
    rss_file = output.parent / f".{output.name}.rss.json"
    command = [sys.executable, "-m", "retint.benchmarks.peak_rss", str(rss_file), "--", str(source),
               "-o", str(output), "--no-progress", "--workers", str(workers), "--backend", backend]
    if batch is not None:
        command += ["--batch", str(batch)]
    if streams is not None:
        command += ["--streams", str(streams)]
    if engine is not None:
        command += ["--engine", str(engine)]
    command += list(extra)
    began = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if process.returncode not in allowed_exit_codes:
        raise RuntimeError(f"colorize-batch failed ({process.returncode}): {process.stderr.strip()[-400:]}")
    entries, summary = read_manifest(output)
    peak = json.loads(rss_file.read_text())["peak_rss_mb"]
    rss_file.unlink()
    return {"wall_seconds": wall, "summary": summary, "images": len(entries), "peak_rss_mb": peak}


def engine_alone(engine_path: Path | None, source: Path, batch: int | None, min_seconds: float = 5.0,
                 streams: int | None = None, backend: str = "auto") -> dict:
    """Images/s of the engine on pre-decoded images of the archive's size, as colorize-batch runs it:
    its backend choice and inference plan (batch size, streams, threads per stream)."""
    first = next(source.rglob("*.jpg"))
    gray = cv2.imread(str(first), cv2.IMREAD_GRAYSCALE)
    # colorize-batch's default device, and its request
    engines = open_engines(EngineRequest(path=engine_path, backend=backend, batch_size=batch, streams=streams))
    engine, plan = engines.main, engines.plan
    batch = plan.batch_size
    stack = np.stack([gray] * batch)[:, None].copy()
    for _ in range(2):  # warm-up: ONNX Runtime plans its memory on the first calls
        engine.colorize(stack)
    done = [0] * plan.streams
    began = time.perf_counter()
    deadline = began + min_seconds

    def stream(index: int) -> None:
        while time.perf_counter() < deadline:
            engine.colorize(stack)
            done[index] += batch

    threads = [threading.Thread(target=stream, args=(index,)) for index in range(plan.streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    engines.close()
    return {"images_per_second": sum(done) / seconds, "streams": plan.streams, "cpu_threads": plan.cpu_threads,
            "height": gray.shape[0], "width": gray.shape[1], "batch": batch, "engine": engine.spec.describe()}
