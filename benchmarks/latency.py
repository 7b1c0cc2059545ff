"""Latency and throughput per backend, on real-looking inputs (not zeros)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from retint.benchmarks.pipeline import photo_like
from retint.benchmarks.timing import Timing, time_calls


def parse_size(text: str) -> tuple[int, int]:
    """'256' -> (256, 256); '1024x768' -> height 768, width 1024 (W x H, as people write it)."""
    from retint.errors import InputError

    try:
        if "x" in text.lower():
            width, height = (int(part) for part in text.lower().split("x"))
        else:
            width = height = int(text)
    except ValueError as error:
        raise InputError(f"size {text!r} must be N or WxH, e.g. 256 or 1920x1080") from error
    return height, width


def torch_colouriser(checkpoint: Path) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[], None], str]:
    """PyTorch eager deploy module (CUDA when there is one): call, synchronise, device."""
    import torch

    from retint.export.deploy import DeployColouriser
    from retint.model.checkpoint import load_generator

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator = load_generator(checkpoint, device=device)
    module = DeployColouriser(generator, generator.retint_config.render_size).to(device)

    def run(gray: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(gray).to(device)).cpu().numpy()

    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    return run, synchronize, str(device)


@dataclass(frozen=True)
class Contender:
    """One backend to time: its call and, for asynchronous devices, how to wait for it."""

    name: str
    run: Callable[[np.ndarray], np.ndarray]
    synchronize: Callable[[], None] = lambda: None


def measure_latency(contenders: list[Contender], batches: list[int], sizes: list[tuple[int, int]],
                    min_seconds: float, rounds: int = 2) -> list[dict]:
    """Every backend on every size and batch, in alternating rounds (so drifting machine load
    hits all alike); each row is the backend's best round by median."""
    rows = []
    for height, width in sizes:
        image = photo_like(height, width, seed=height * 7 + width)
        for batch in batches:
            gray = np.stack([image] * batch)[:, None].copy()
            best: dict[str, Timing] = {}
            for _ in range(rounds):
                for contender in contenders:
                    timing = time_calls(lambda: contender.run(gray), items_per_run=batch, min_seconds=min_seconds,
                                        synchronize=contender.synchronize)
                    if contender.name not in best or timing.p50_ms < best[contender.name].p50_ms:
                        best[contender.name] = timing
            for contender in contenders:
                timing = best[contender.name]
                rows.append({"backend": contender.name, "batch": batch, "height": height, "width": width,
                             "p50_ms": timing.p50_ms, "p95_ms": timing.p95_ms, "runs": timing.runs,
                             "rounds": rounds, "images_per_second": timing.items_per_second,
                             "megapixels_per_second": timing.items_per_second * height * width / 1e6})
    return rows
