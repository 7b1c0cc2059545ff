"""`colorize-bench ray`: what --ray costs on one machine, and the driver's ceilings.

1. Overhead: colorize-batch with and without --ray on the same archive,
   alternating rounds in one run: images/s over the colouring (the summary's
   rate) and wall seconds (Ray's start included).
2. The driver's ceilings, with a fast engine, so that colouring costs
   almost nothing: a real ONNX graph that copies grey into RGB (`fast_engine`),
   run through --ray on an archive of tiny PNGs. Rows/s through the whole
   Ray path (manifest rate with Ray's per-task overhead), per-task seconds
   (units of 16 photos), and the driver's bare recording rate (manifest
   lines and counts, no Ray), which bounds any cluster.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from retint.batch.manifest import STATUS_OK, Manifest
from retint.batch.ray.worker import PHOTOS_PER_UNIT
from retint.batch.recording import Recorder, Summary, make_entry
from retint.batch.sources import Task
from retint.benchmarks.fast_engine import write_grey_copy_engine
from retint.benchmarks.pipeline import run_batch_process
from retint.benchmarks.pipeline_report import archive_source


def tiny_archive(folder: Path, count: int) -> Path:
    """`count` random 16x16 grey PNGs in `folder`, a thousand to a subfolder: inputs that cost the
    engine next to nothing."""
    rng = np.random.default_rng(0)
    for index in range(count):
        path = folder / f"box-{index // 1000:03d}" / f"tiny-{index:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(path)
    return folder


def driver_recording_rate(folder: Path, count: int) -> float:
    """Manifest lines per second the driver can write (with counts and a disabled bar), no Ray."""
    from tqdm import tqdm

    manifest = Manifest(folder, overwrite=True)
    recorder = Recorder(manifest, Summary(), tqdm(disable=True))
    tasks = [Task(folder / f"f{index}.jpg", Path(f"f{index}.jpg"), str(folder / f"f{index}.jpg"))
             for index in range(count)]
    began = time.perf_counter()
    for task in tasks:
        recorder(make_entry(task, STATUS_OK, folder, output=folder / task.relative, size=(768, 1024)))
    seconds = time.perf_counter() - began
    manifest.close({})
    return count / seconds


def run_ray_report(source: Path | None, generate: int | None, rounds: int, tiny: int) -> dict:
    """colorize-batch with and without --ray on the archive in alternating rounds and, with `tiny`,
    the driver's ceilings on that many tiny files: the report."""
    with tempfile.TemporaryDirectory(prefix="retint-ray-bench-") as scratch:
        scratch = Path(scratch)
        source = archive_source(source, generate, scratch)
        runs: dict[str, list[dict]] = {"local": [], "ray": []}
        for round_index in range(rounds):
            for arrangement, extra in (("local", ()), ("ray", ("--ray",))):
                output = scratch / f"out-{arrangement}-{round_index}"
                runs[arrangement].append(run_batch_process(source, output, None, None, 2, extra=extra))
        figures = {arrangement: {
            "images_per_second": max(run["summary"]["images_per_second"] for run in runs[arrangement]),
            "wall_seconds": min(run["wall_seconds"] for run in runs[arrangement]),
            "every_round_images_per_second": [run["summary"]["images_per_second"] for run in runs[arrangement]],
            "every_round_wall_seconds": [run["wall_seconds"] for run in runs[arrangement]],
            "engine": runs[arrangement][0]["summary"]["engine"].get("description", ""),
            "peak_rss_mb_driver": max(run["peak_rss_mb"] for run in runs[arrangement]),
        } for arrangement in runs}
        images = runs["local"][0]["images"]
        report = {"images": images, "rounds": rounds, "local": figures["local"], "ray": figures["ray"],
                  "ray_vs_local_images_per_second": figures["ray"]["images_per_second"]
                  / figures["local"]["images_per_second"]}
        if tiny:
            engine = write_grey_copy_engine(scratch)
            archive = tiny_archive(scratch / "tiny", tiny)
            fast = run_batch_process(archive, scratch / "tiny-out", engine, None, 2, backend="onnxruntime",
                                     extra=("--ray",))
            rows_per_second = fast["summary"]["images_per_second"]
            report["fast_engine"] = {
                "files": tiny, "units": -(-tiny // PHOTOS_PER_UNIT), "engine": fast["summary"]["engine"]["description"],
                "rows_per_second": rows_per_second, "seconds_per_unit": PHOTOS_PER_UNIT / rows_per_second,
                "wall_seconds": fast["wall_seconds"],
                "driver_recording_lines_per_second": driver_recording_rate(scratch / "recording", 100_000)}
        return report
