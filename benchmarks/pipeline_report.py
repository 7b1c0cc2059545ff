"""`colorize-bench pipeline`: the figures of one archive run, side by side."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2

from retint.benchmarks.pipeline import engine_alone, make_archive, run_batch_process
from retint.errors import InputError


def run_pipeline_report(source: Path | None, engine: Path | None, generate: int | None, batch: int | None,
                        workers: int, checkpoint: Path | None, streams: int | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="retint-bench-") as scratch:
        scratch = Path(scratch)
        if generate:
            source = make_archive(source or scratch / "archive", generate)
        if source is None or not source.is_dir():
            raise InputError("give an archive folder, or --generate N to make one")
        images = sorted(source.rglob("*.jpg"))
        if not images:
            raise InputError(f"no .jpg files in {source}")
        height, width = cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE).shape
        end_to_end = run_batch_process(source, scratch / "out", engine, batch, workers, streams)
        alone = engine_alone(engine, source, batch, streams=streams)
        summary = end_to_end["summary"]
        report = {
            "images": len(images), "height": height, "width": width, "batch": alone["batch"], "workers": workers,
            "end_to_end": {"images_per_second": summary["images_per_second"],
                           "megapixels_per_second": summary["megapixels_per_second"],
                           "wall_seconds": end_to_end["wall_seconds"], "peak_rss_mb": end_to_end["peak_rss_mb"],
                           "stage_seconds": summary["stage_seconds"], "counts": summary["counts"]},
            "engine_alone": alone,
            "ratio_end_to_end_vs_engine": summary["images_per_second"] / alone["images_per_second"],
        }
        if checkpoint is not None:
            from retint.benchmarks.sequential import colourise_sequentially

            sequential = colourise_sequentially(checkpoint, images, scratch / "sequential")
            report["sequential"] = sequential
            report["speedup_vs_sequential"] = summary["images_per_second"] / sequential["images_per_second"]
        return report
