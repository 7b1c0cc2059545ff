"""What the guides cost: `python -m retint.benchmarks.guides_cost [--engine X] [--photos DIR] [--json OUT]`.

For photos of 1024x768 (the given colour photos' greys, resized, or generated ones), on one
engine: the guides' own time per photo (`BatchGuides.apply` between the generator and the compose:
5 seeded hints, a reference's palette, both; the reference's palette taken once, as a batch or a
server does), the whole guided call (`Engine.colorize` with them) and the automatic call, each
as p50 over rounds that alternate between them. Automatic colouring does not pass through the
guides at all; its images/s here is the number to compare with an earlier checkout's (the README
of benchmarks/ says how). The page's click is measured by `colorize-bench serve --hints 5`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from retint.runtime import load_engine
from retint.runtime.guides.apply import BatchGuides
from retint.runtime.split import StagedEngine

SIZE = (768, 1024)  # height, width
HINTS = 5


def _photos(folder: Path | None, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(greys, colour photos) of SIZE: from `folder`'s photos, or generated (smooth colour fields)."""
    colours = []
    if folder is not None:
        for path in sorted(folder.iterdir())[:count]:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                colours.append(cv2.cvtColor(cv2.resize(image, SIZE[::-1], interpolation=cv2.INTER_AREA),
                                            cv2.COLOR_BGR2RGB))
    rng = np.random.default_rng(0)
    while len(colours) < count:
        field = rng.random((6, 8, 3)).astype(np.float32) * 255
        colours.append(cv2.resize(field, SIZE[::-1], interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8))
    greys = [cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) for rgb in colours]
    return greys, colours


def _p50(seconds: list[float]) -> float:
    return float(np.median(seconds)) * 1000.0


def measure(engine_path: Path | None, folder: Path | None, count: int, rounds: int) -> dict:
    """The figures of the module doc, as a dict (milliseconds, images/s)."""
    engine = load_engine(engine_path)
    # The stages the guides run between (a fused engine's side stages).
    staged = engine if isinstance(engine, StagedEngine) else engine._side("its stages")
    greys, colours = _photos(folder, count)
    rng = np.random.default_rng(1)
    hints = [[(float(rng.uniform(0, SIZE[1])), float(rng.uniform(0, SIZE[0])), float(rng.uniform(-40, 40)),
               float(rng.uniform(-40, 40))) for _ in range(HINTS)] for _ in greys]
    references = [colours[(index + 1) % len(colours)] for index in range(len(greys))]
    # The generator's chroma and lightness of each photo, computed once: the guides alone are timed on them.
    stages = [staged._lightness_and_ab(np.ascontiguousarray(grey[None, None])) for grey in greys]
    cases: dict[str, Callable[[int], object]] = {
        "guides alone, 5 hints": lambda i: BatchGuides.of(1, SIZE, [hints[i]], None).apply(stages[i][1], stages[i][0]),
        "guides alone, reference": lambda i: BatchGuides.of(1, SIZE, None, references[i]).apply(stages[i][1],
                                                                                              stages[i][0]),
        "guides alone, 5 hints + reference": lambda i: BatchGuides.of(1, SIZE, [hints[i]], references[i]).apply(
            stages[i][1], stages[i][0]),
        "colorize, automatic": lambda i: engine.colorize(greys[i]),
        "colorize, 5 hints": lambda i: engine.colorize(greys[i], hints=[hints[i]]),
        "colorize, reference": lambda i: engine.colorize(greys[i], reference=references[i]),
    }
    for case in cases.values():  # warm up: sessions, the side stages, each reference's palette
        for index in range(len(greys)):
            case(index)
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            for index in range(len(greys)):
                started = time.perf_counter()
                case(index)
                seconds[name].append(time.perf_counter() - started)
    engine.close()
    return {"engine": engine.spec.describe(), "size": f"{SIZE[1]}x{SIZE[0]}", "photos": len(greys), "rounds": rounds,
            "p50_ms": {name: _p50(values) for name, values in seconds.items()},
            "automatic_images_per_second": len(seconds["colorize, automatic"]) / sum(seconds["colorize, automatic"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", type=Path, default=None, help="an .onnx or .plan (default: the bundled model)")
    parser.add_argument("--photos", type=Path, default=None, help="a folder of colour photos (default: generated)")
    parser.add_argument("--count", type=int, default=8, help="photos")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args()
    from retint.benchmarks.report import environment

    figures = {"environment": environment(), **measure(arguments.engine, arguments.photos, arguments.count,
                                                       arguments.rounds)}
    print(f"{figures['photos']} photos {figures['size']}, {figures['rounds']} rounds; {figures['engine']}; "
          f"CPU: {figures['environment']['cpu_model']}")
    for name, milliseconds in figures["p50_ms"].items():
        print(f"| {name} | {milliseconds:.1f} ms p50 |")
    print(f"automatic: {figures['automatic_images_per_second']:.2f} images/s")
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
