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
from PIL import Image

from retint.batch.manifest import read_manifest
from retint.media import IMAGE_SUFFIXES
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


def archive_photos(source: Path) -> list[Path]:
    """The photos colorize-batch would colour under `source` (its image suffixes), in order."""
    return sorted(path for path in source.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())


def photo_sizes(photos: list[Path]) -> dict[tuple[int, int], int]:
    """(width, height) -> how many of `photos` have it, read from their headers."""
    sizes: dict[tuple[int, int], int] = {}
    for path in photos:
        with Image.open(path) as image:
            sizes[image.size] = sizes.get(image.size, 0) + 1
    return sizes


def engine_alone(engine_path: Path | None, source: Path, batch: int | None, min_seconds: float = 5.0,
                 streams: int | None = None, backend: str = "auto", distinct: int = 50) -> dict:
    """Images/s of the engine on the archive's photos (the first `distinct` of each size,
    pre-decoded), as colorize-batch runs it: its backend choice and inference plan (batch size,
    streams, threads per stream), each call a batch of one size."""
    greys: dict[tuple[int, ...], list[np.ndarray]] = {}
    for path in archive_photos(source):
        gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if gray is not None and len(greys.setdefault(gray.shape, [])) < distinct:
            greys[gray.shape].append(gray)
    # colorize-batch's default device, and its request
    engines = open_engines(EngineRequest(path=engine_path, backend=backend, batch_size=batch, streams=streams))
    engine, plan = engines.main, engines.plan
    batch = plan.batch_size
    stacks = [np.stack([same[(start + i) % len(same)] for i in range(batch)])[:, None].copy()
              for same in greys.values() for start in range(0, len(same), batch)]
    for stack in stacks[:2] * 2:  # warm-up: ONNX Runtime plans its memory on the first calls
        engine.colorize(stack)
    done = [0] * plan.streams
    pixels = [0] * plan.streams
    began = time.perf_counter()
    deadline = began + min_seconds

    def stream(index: int) -> None:
        call = index
        while time.perf_counter() < deadline:
            stack = stacks[call % len(stacks)]
            engine.colorize(stack)
            done[index] += batch
            pixels[index] += stack.size
            call += plan.streams

    threads = [threading.Thread(target=stream, args=(index,)) for index in range(plan.streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - began
    engines.close()
    return {"images_per_second": sum(done) / seconds, "megapixels_per_second": sum(pixels) / seconds / 1e6,
            "streams": plan.streams, "cpu_threads": plan.cpu_threads, "sizes": len(greys), "batch": batch,
            "engine": engine.spec.describe()}
