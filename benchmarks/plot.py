"""Throughput plots (matplotlib, the `plot` extra)."""

from __future__ import annotations

from pathlib import Path

from retint.errors import InputError


def plot_throughput(rows: list[dict], path: Path) -> None:
    """Save a plot of images/s against batch size, one line per backend and image size, to `path`."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise InputError("--plot needs matplotlib (pip install 'retint[plot]')") from error
    figure, axis = plt.subplots(figsize=(7, 4.5))
    series: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        label = f"{row['backend']} {row['width']}x{row['height']}"
        series.setdefault(label, []).append((row["batch"], row["images_per_second"]))
    for label, points in series.items():
        points.sort()
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    axis.set_xlabel("batch size")
    axis.set_ylabel("images / s")
    axis.set_title("retint throughput")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
