"""`colorize-bench video`: flicker with and without temporal smoothing, and frames/s.

Colours CLIP twice with `colorize-batch` (smoothing off, then on), reports the
flicker index of each (see benchmarks/flicker.py), the mean CIEDE2000 between
the two outputs, end-to-end frames/s, and the engine alone on the same frames
(pre-decoded, same batch size).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from retint.batch.manifest import read_manifest
from retint.benchmarks.flicker import flicker_index, mean_ciede2000, read_frames
from retint.benchmarks.timing import time_calls
from retint.runtime import VIDEO_BATCH, load_engine


def _colour(clip: Path, output: Path, engine: Path | None, batch: int, alpha: float) -> dict:
    command = [sys.executable, "-m", "retint.batch.cli", str(clip), "-o", str(output), "--no-progress",
               "--batch", str(batch), "--temporal-smoothing", str(alpha)]
    if engine is not None:
        command += ["--engine", str(engine)]
    began = time.perf_counter()
    process = subprocess.run(command, capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(process.stderr.strip()[-400:])
    entries, _ = read_manifest(output)
    video = entries[0]["video"]
    return {"wall_seconds": time.perf_counter() - began, **video,
            "frames_per_second": video["frames"] / video["seconds"]}


def video_report(clip: Path, engine: Path | None, batch: int | None, alpha: float, frames: int | None) -> dict:
    """`batch` None: colorize-batch's default for videos."""
    batch = batch or VIDEO_BATCH
    with tempfile.TemporaryDirectory(prefix="retint-video-") as scratch:
        scratch = Path(scratch)
        plain = _colour(clip, scratch / "plain", engine, batch, 0.0)
        smooth = _colour(clip, scratch / "smooth", engine, batch, alpha)
        name = next((scratch / "plain").glob(clip.stem + ".*")).name
        grey = [frame[..., 0] for frame in read_frames(clip, frames)]
        plain_frames = read_frames(scratch / "plain" / name, frames)
        smooth_frames = read_frames(scratch / "smooth" / name, frames)
        flicker_plain = flicker_index(plain_frames, grey)
        flicker_smooth = flicker_index(smooth_frames, grey)
        engine_object = load_engine(engine)
        stack = np.stack(grey[:batch])[:, None].copy()
        alone = time_calls(lambda: engine_object.colorize(stack), items_per_run=len(stack), min_seconds=5.0)
        return {
            "clip": str(clip), "frames_compared": len(grey), "batch": batch, "alpha": alpha,
            "flicker_index": {"off": flicker_plain, "on": flicker_smooth,
                              "reduction": 1.0 - flicker_smooth / flicker_plain if flicker_plain else None},
            "mean_ciede2000_between_outputs": mean_ciede2000(plain_frames, smooth_frames),
            "end_to_end": {"off": plain, "on": smooth},
            "engine_alone_frames_per_second": alone.items_per_second,
            "ratio_end_to_end_vs_engine": plain["frames_per_second"] / alone.items_per_second,
        }
