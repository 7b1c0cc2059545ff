"""`colorize-bench quality --reference MODE`: what a reference photo's palette (issue 33) does to
the colours, next to automatic colouring of the same photos in the same run.

Modes (`REFERENCE_MODES`):

- `truth`: each photo's own colour original is its reference: an upper bound (the palette is
  exactly right; where things go is still the model's to find);
- `same-source`: the next photo of the same source, in name order (cyclic), is its reference: the
  real use, a colour photo of the same place and time. A source's photos are those whose names
  start with the longest matching `--source PREFIX`, else those of one folder. A source of one
  photo has no other photo: its photo is left out of the run, and the report says so.

Per source and over all photos (`compare_with_automatic`): mean CIEDE2000 automatic and guided,
the share of photos the reference brings closer to the truth, and the share of reference pixels
of chroma 10 or more in the right colour family (`colour_metrics.colour_families`), each pooled
over the source. Scoring is quality.py's (numpy, no torch): against the truth's a*b* on the
input's own lightness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

REFERENCE_MODES = ("none", "truth", "same-source")


def source_of(name: str, prefixes: tuple[str, ...]) -> str:
    """The source of the photo at `name`: the longest of `prefixes` its file name starts with, else
    its folder (as given: two folders of one name are two sources)."""
    base = Path(name).name
    matching = [prefix for prefix in prefixes if base.startswith(prefix)]
    return max(matching, key=len) if matching else str(Path(name).parent)


def reference_indices(names: list[str], mode: str, prefixes: tuple[str, ...]) -> list[int | None]:
    """Per photo, the index of the photo whose truth is its reference (None: it has none)."""
    if mode == "truth":
        return list(range(len(names)))
    if mode != "same-source":
        return [None] * len(names)
    members: dict[str, list[int]] = {}
    for index in sorted(range(len(names)), key=lambda i: Path(names[i]).name):
        members.setdefault(source_of(names[index], prefixes), []).append(index)
    chosen: list[int | None] = [None] * len(names)
    for group in members.values():
        if len(group) > 1:
            for position, index in enumerate(group):
                chosen[index] = group[(position + 1) % len(group)]
    return chosen


def compare_with_automatic(names: list[str], prefixes: tuple[str, ...], truth: np.ndarray, grey: np.ndarray,
                           automatic: np.ndarray, guided: np.ndarray) -> dict[str, Any]:
    """{"all": the figures in the module doc over every photo, "by_source": source -> the same}.
    RGB uint8 [N,S,S,3] each; `grey` is the engine's input shown as RGB."""
    from retint.benchmarks.quality import mean_ciede2000, reference_colours
    from retint.colour_metrics import colour_families, rgb_uint8_to_lab

    reference_lab = reference_colours(rgb_uint8_to_lab(truth), grey)
    automatic_lab, guided_lab = rgb_uint8_to_lab(automatic), rgb_uint8_to_lab(guided)
    automatic_error = mean_ciede2000(automatic_lab, reference_lab)
    guided_error = mean_ciede2000(guided_lab, reference_lab)
    groups: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        groups.setdefault(source_of(name, prefixes), []).append(index)

    def figures(chosen: list[int]) -> dict[str, Any]:
        automatic_family = colour_families(automatic_lab[chosen], reference_lab[chosen])
        guided_family = colour_families(guided_lab[chosen], reference_lab[chosen])
        automatic_mean, guided_mean = automatic_error[chosen].mean(), guided_error[chosen].mean()
        return {
            "photos": len(chosen),
            "automatic_ciede2000": float(automatic_mean),
            "guided_ciede2000": float(guided_mean),
            "ciede2000_change": float(guided_mean / max(automatic_mean, 1e-9) - 1),
            "share_closer_than_automatic": float((guided_error[chosen] < automatic_error[chosen]).mean()),
            "automatic_family_right": automatic_family.right,
            "guided_family_right": guided_family.right,
        }

    return {"all": figures(list(range(len(names)))),
            "by_source": {source: figures(chosen) for source, chosen in sorted(groups.items())}}


def reference_report(mode: str, figures: dict[str, Any], left_out: list[str]) -> str:
    """The comparison in Markdown: a line on the mode, a table by source, the photos left out."""
    what = ("each photo's own colour original (an upper bound)" if mode == "truth" else
            "the next photo of the same source in name order (a colour photo of the same place)")
    lines = ["", f"Reference photo: {what}. The figures above are of the guided colours; guided and automatic "
             f"colouring of the same photos in this run:", "",
             "| source | photos | CIEDE2000 automatic | guided | change | photos closer | family right "
             "automatic | guided |",
             "|---|---|---|---|---|---|---|---|"]
    rows = [*figures["by_source"].items(), ("**all**", figures["all"])]
    for source, row in rows:
        lines.append(f"| {source} | {row['photos']} | {row['automatic_ciede2000']:.2f} | "
                     f"{row['guided_ciede2000']:.2f} | {100 * row['ciede2000_change']:+.1f}% | "
                     f"{100 * row['share_closer_than_automatic']:.0f}% | {100 * row['automatic_family_right']:.0f}% | "
                     f"{100 * row['guided_family_right']:.0f}% |")
    if left_out:
        lines.append(f"Left out ({len(left_out)}, the only photo of their source: no other photo to take a "
                     f"reference from): {', '.join(Path(name).name for name in left_out)}.")
    return "\n".join(lines) + "\n"
