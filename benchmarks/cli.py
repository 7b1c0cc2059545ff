"""`colorize-bench`: how fast and how faithful each backend is, in numbers.

Subcommands print a Markdown table and write the same figures as JSON with
`--json PATH`. Timings are taken side by side in one run (interleaved rounds),
so ratios between backends are fair on a busy machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from retint.errors import RetintError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def main() -> None:
    """Benchmark retint's backends."""


@main.command()
@click.option("--arch", "arches", multiple=True, default=["effnet-unet", "unet256"],
              type=click.Choice(["effnet-unet", "unet256"]))
@click.option("--batch", type=click.IntRange(1), default=8)
@click.option("--render-size", type=click.IntRange(32), default=256)
@click.option("--seconds", type=click.FloatRange(0.1), default=3.0, help="Minimum timed seconds per round.")
@click.option("--rounds", type=click.IntRange(1), default=3)
@click.option("--no-fp16", is_flag=True, help="Skip the FP16 ONNX Runtime variant.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def generators(arches: tuple[str, ...], batch: int, render_size: int, seconds: float, rounds: int,
               no_fp16: bool, json_path: Path | None) -> None:
    """PyTorch eager vs ONNX Runtime (CPU) on the same generator weights."""
    from retint.benchmarks.generators import benchmark_generator
    from retint.benchmarks.peak import matmul_peak_gflops
    from retint.benchmarks.report import environment, markdown_table, write_json

    try:
        peak = matmul_peak_gflops()
        rows, results = [], []
        for arch in arches:
            result = benchmark_generator(arch, batch=batch, render_size=render_size,
                                         include_fp16=not no_fp16, min_seconds=seconds, rounds=rounds)
            baseline = result.timings["pytorch-eager-fp32"].items_per_second
            for backend, timing in result.timings.items():
                achieved = timing.items_per_second * result.gflops_per_image
                rows.append([arch, backend, timing.items_per_second, timing.p50_ms, timing.p95_ms,
                             timing.items_per_second / baseline, achieved, achieved / peak])
                results.append({"arch": arch, "backend": backend, "parameters": result.parameters,
                                "gflops_per_image": result.gflops_per_image, "batch": batch,
                                "render_size": render_size, "images_per_second": timing.items_per_second,
                                "p50_ms": timing.p50_ms, "p95_ms": timing.p95_ms, "runs": timing.runs,
                                "speedup_vs_pytorch": timing.items_per_second / baseline,
                                "achieved_gflops": achieved, "fraction_of_matmul_peak": achieved / peak})
        click.echo(f"matmul peak (float32, NumPy BLAS): {peak:.1f} GFLOP/s; batch {batch}, {render_size}x{render_size}")
        click.echo(markdown_table(["arch", "backend", "img/s", "p50 ms", "p95 ms", "x PyTorch", "GFLOP/s",
                                   "of peak"], rows))
        write_json(json_path, {"benchmark": "generators", "environment": environment(),
                               "matmul_peak_gflops": peak, "results": results})
    except RetintError as error:
        click.echo(f"colorize-bench: error: {error}", err=True)
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
