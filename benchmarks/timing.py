"""Timing helpers: warm-up, repeated runs, percentiles; interleaved comparisons."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Timing:
    runs: int
    items_per_run: int
    p50_ms: float
    p95_ms: float
    mean_ms: float

    @property
    def items_per_second(self) -> float:
        """Throughput at the median run time."""
        return self.items_per_run / (self.p50_ms / 1000.0)


def time_calls(call: Callable[[], object], items_per_run: int, warmup: int = 2, min_runs: int = 5,
               min_seconds: float = 3.0, synchronize: Callable[[], None] = lambda: None) -> Timing:
    """Time `call` after `warmup` calls: at least `min_runs` runs and `min_seconds`."""
    for _ in range(warmup):
        call()
        synchronize()
    durations = []
    started = time.perf_counter()
    while len(durations) < min_runs or time.perf_counter() - started < min_seconds:
        begin = time.perf_counter()
        call()
        synchronize()
        durations.append(time.perf_counter() - begin)
    milliseconds = np.array(durations) * 1000.0
    return Timing(runs=len(durations), items_per_run=items_per_run,
                  p50_ms=float(np.percentile(milliseconds, 50)),
                  p95_ms=float(np.percentile(milliseconds, 95)), mean_ms=float(milliseconds.mean()))


def interleaved(calls: dict[str, Callable[[], object]], items_per_run: int, rounds: int = 3,
                **options) -> dict[str, Timing]:
    """Time several contenders in alternating rounds so drifting machine load hits all alike;
    each contender's result is its best round (by median)."""
    best: dict[str, Timing] = {}
    for _ in range(rounds):
        for name, call in calls.items():
            timing = time_calls(call, items_per_run, **options)
            if name not in best or timing.p50_ms < best[name].p50_ms:
                best[name] = timing
    return best
