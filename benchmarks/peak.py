"""The machine's measured single-precision matrix-multiply peak (GFLOP/s)."""

from __future__ import annotations

import numpy as np

from retint.benchmarks.timing import time_calls


def matmul_peak_gflops(size: int = 2048, min_seconds: float = 2.0) -> float:
    """GFLOP/s of a float32 size x size matmul (NumPy's BLAS, all cores)."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    timing = time_calls(lambda: a @ b, items_per_run=1, min_seconds=min_seconds)
    return 2.0 * size**3 / (timing.p50_ms / 1000.0) / 1e9
