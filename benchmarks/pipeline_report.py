"""`colorize-bench pipeline`: the figures of one archive run, side by side.

With several backends, each round runs colorize-batch end to end once per
backend, in turn, then the engine alone once per backend, so drifting load
hits all alike; each backend keeps its best round, and every round is kept
in the JSON.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from retint.benchmarks.pipeline import archive_photos, engine_alone, make_archive, photo_sizes, run_batch_process
from retint.errors import InputError


def describe_archive(report: dict) -> str:
    """'12 images 800x586' for one size, else '12 images of 3 sizes (800x586 to 800x640), 5.73 MP'."""
    sizes = report["sizes"]
    shown = [f"{size['width']}x{size['height']}" for size in sizes]
    if len(sizes) == 1:
        return f"{report['images']} images {shown[0]}"
    return f"{report['images']} images of {len(sizes)} sizes ({shown[0]} to {shown[-1]}), {report['megapixels']:.2f} MP"


def archive_source(source: Path | None, generate: int | None, scratch: Path) -> Path:
    """The archive to measure: SOURCE, first filled with `generate` JPEGs when asked."""
    if generate:
        source = make_archive(source or scratch / "archive", generate)
    if source is None or not source.is_dir():
        raise InputError("give an archive folder, or --generate N to make one")
    return source


def run_pipeline_report(source: Path | None, engine: Path | None, generate: int | None, batch: int | None,
                        workers: int, checkpoint: Path | None, streams: int | None = None,
                        backends: tuple[str, ...] = ("auto",), rounds: int = 1) -> dict:
    """colorize-batch end to end and the engine alone on the archive, per backend over `rounds`
    rounds, and against the sequential baseline when a `checkpoint` is given: the report."""
    with tempfile.TemporaryDirectory(prefix="retint-bench-") as scratch:
        scratch = Path(scratch)
        source = archive_source(source, generate, scratch)
        images = archive_photos(source)
        if not images:
            raise InputError(f"no photos in {source}")
        sizes = photo_sizes(images)
        runs: dict[str, list[dict]] = {backend: [] for backend in backends}
        alone: dict[str, list[dict]] = {backend: [] for backend in backends}
        for round_index in range(rounds):
            for backend in backends:
                output = scratch / f"out-{backend}-{round_index}"
                runs[backend].append(run_batch_process(source, output, engine, batch, workers, streams, backend))
            for backend in backends:
                alone[backend].append(engine_alone(engine, source, batch, streams=streams, backend=backend))
        report = {"images": len(images), "sizes": [{"width": width, "height": height, "images": count}
                                                   for (width, height), count in sorted(sizes.items())],
                  "megapixels": sum(width * height * count for (width, height), count in sizes.items()) / 1e6,
                  "workers": workers, "rounds": rounds,
                  "backends": [_backend_figures(backend, runs[backend], alone[backend]) for backend in backends]}
        if len(backends) > 1:
            first = report["backends"][0]["end_to_end"]["images_per_second"]
            for figures in report["backends"]:
                figures["end_to_end_vs_first_backend"] = figures["end_to_end"]["images_per_second"] / first
        if checkpoint is not None:
            from retint.benchmarks.sequential import colourise_sequentially

            sequential = colourise_sequentially(checkpoint, images, scratch / "sequential")
            report["sequential"] = sequential
            for figures in report["backends"]:
                figures["speedup_vs_sequential"] = (figures["end_to_end"]["images_per_second"]
                                                    / sequential["images_per_second"])
        return report


def _backend_figures(backend: str, runs: list[dict], alone: list[dict]) -> dict:
    best = max(runs, key=lambda run: run["summary"]["images_per_second"])
    best_alone = max(alone, key=lambda figures: figures["images_per_second"])
    summary = best["summary"]
    return {
        "backend": backend, "engine": summary.get("engine", {}).get("description", ""),
        "batch": best_alone["batch"], "streams": best_alone["streams"], "cpu_threads": best_alone["cpu_threads"],
        "end_to_end": {"images_per_second": summary["images_per_second"],
                       "megapixels_per_second": summary["megapixels_per_second"],
                       "wall_seconds": best["wall_seconds"], "peak_rss_mb": max(run["peak_rss_mb"] for run in runs),
                       "stage_seconds": summary["stage_seconds"], "counts": summary["counts"],
                       "every_round_images_per_second": [run["summary"]["images_per_second"] for run in runs]},
        "engine_alone": {**best_alone,
                         "every_round_images_per_second": [figures["images_per_second"] for figures in alone]},
        "ratio_end_to_end_vs_engine": summary["images_per_second"] / best_alone["images_per_second"],
    }
