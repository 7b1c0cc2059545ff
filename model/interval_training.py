"""Train the uncertainty head on a frozen generator, calibrate it, and measure it.

A distribution head (colour model v2) needs no head: its intervals are its own
distribution's spread about the colour it shows (`bins.distribution_spreads`),
and only lambda is calibrated, at the default temperature.

Three disjoint sets of photos, each decided by whole source:
- training: the generator's own training photos (the head learns how wrong
  the generator tends to be, not the colours);
- calibration: sources the generator never saw, where lambda-hat is chosen;
- test (optional): other unseen sources, where coverage and width are only
  measured.
Every photo is resized whole to the render size, as the quality benchmark
does, and greyed from its Lab L; training photos add seeded random crops.
"""

from __future__ import annotations

import time
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from retint.errors import InputError
from retint.model.config import HeadTrainingConfig
from retint.model.colour import denormalize_ab, grey_terms, normalize_lightness, rgb_uint8_to_lab
from retint.model.data import photos_of_sources, random_resized_crop, shrink_for_training
from retint.model.photos import STATUS_OK, decode_colour, resize_for_validation
from retint.model.degrade import grey_from_rgb
from retint.model.bins import decode_ab, decoding_of, distribution_spreads
from retint.model.uncertainty import (
    DISTRIBUTION_METHOD,
    Calibration,
    CalibrationError,
    IntervalHead,
    calibrate,
    constant_width_for,
    interval_pinball_loss,
    interval_width,
    minimum_calibration_photos,
    miscoverage,
    scale_needed,
)

# HeadTrainingConfig fields that, where given, become the release's GeneratorConfig fields of the same
# name (colorize-uncertainty --decode, --chroma-gain, --temperature).
RELEASE_DECODING_FIELDS = ("decode", "chroma_gain", "temperature")

GENERATOR_BATCH = 8


@dataclass
class Prepared:
    """What the head sees and must bracket, at render size: float32 tensors."""

    lightness: torch.Tensor  # [N,1,R,R] L/50 - 1 of the grey
    ab: torch.Tensor  # [N,2,R,R] the generator's prediction, Lab units
    truth: torch.Tensor  # [N,2,R,R] the photo's own ab
    names: list[str]
    # A distribution head's own spreads about ab [N,4,R,R] (bins.distribution_spreads); None for a
    # regression, whose spreads come from the interval head.
    spreads: torch.Tensor | None = None


def require_photos_for_alpha(alpha: float, photos: int) -> None:
    """Refuse, before any work, an --alpha that `photos` calibration photos cannot guarantee:
    the shipped head is calibrated at it, so there is nothing to fall back on."""
    needed = minimum_calibration_photos(alpha)
    if photos < needed:
        raise CalibrationError(f"--alpha {alpha} needs at least {needed} calibration photos and --calibrate-on "
                               f"has {photos}: calibrate on more photos, or raise --alpha (the smallest "
                               f"{photos} photos can guarantee is {1 / (photos + 1):.3g})")


def report_alphas_for(config: HeadTrainingConfig, photos: int) -> tuple[list[float], list[float]]:
    """(the alphas to report, the report alphas left out): --report-alphas only adds figures, so
    one that `photos` calibration photos cannot guarantee is left out with a note, never refused."""
    wanted = sorted({*config.report_alphas, config.alpha})
    left_out = [alpha for alpha in wanted
                if alpha != config.alpha and photos < minimum_calibration_photos(alpha)]
    return [alpha for alpha in wanted if alpha not in left_out], left_out


def left_out_note(left_out: list[float], photos: int) -> str:
    """The one line saying which report alphas are left out, and why."""
    needs = ", ".join(f"{alpha} needs {minimum_calibration_photos(alpha)}" for alpha in left_out)
    return (f"--report-alphas: leaving out {', '.join(map(str, left_out))}: {photos} calibration photos are "
            f"too few ({needs}); calibrate on more photos to report them")


def sources_of(paths: list[Path], prefixes: tuple[str, ...], option: str) -> list[Path]:
    """The photos among the held-out `paths` that belong to the sources `prefixes`; a source none of
    them belongs to is an InputError naming `option`."""
    chosen, unmatched = photos_of_sources(paths, prefixes)
    if unmatched:
        raise InputError(f"{option} {', '.join(unmatched)}: no photo among the generator's held-out "
                         "photos belongs to it (a photo the generator trained on cannot calibrate it)")
    return chosen


@torch.no_grad()
def prepare(paths: list[Path], generator: nn.Module, render_size: int, crops: int, seed: int,
            progress: Callable[[int], None] = lambda done: None) -> Prepared:
    """Each colour photo resized whole (plus `crops` seeded random crops), greyed, coloured."""
    images, names = [], []
    for index, path in enumerate(paths):
        rgb, status = decode_colour(path)
        if status != STATUS_OK:
            continue
        images.append(resize_for_validation(rgb, render_size))
        names.append(str(path))
        if crops:
            rng = np.random.default_rng((seed, index))
            kept = shrink_for_training(rgb, render_size)
            images += [random_resized_crop(kept, render_size, rng) for _ in range(crops)]
            names += [f"{path}#crop{k}" for k in range(crops)]
    if not images:
        raise InputError(f"no colour photos among {len(paths)} files")
    lightness, predicted, truth, spreads = [], [], [], []
    distribution = hasattr(generator, "bin_centres")
    for start in range(0, len(images), GENERATOR_BATCH):
        rgb = np.stack(images[start: start + GENERATOR_BATCH])
        grey = torch.from_numpy(np.stack([grey_from_rgb(image) for image in rgb]))[:, None]
        # The deployed graph's input: the L of the grey (g, g, g), not the photo's own L.
        normalized = normalize_lightness(grey_terms(grey).lightness)
        lightness.append(normalized)
        if distribution:
            ab, spread = distribution_ab_and_spreads(generator, normalized)
            predicted.append(ab)
            spreads.append(spread)
        else:
            predicted.append(denormalize_ab(generator(normalized).float()))
        truth.append(rgb_uint8_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2))[:, 1:])
        progress(len(rgb))
    return Prepared(torch.cat(lightness), torch.cat(predicted), torch.cat(truth), names,
                    torch.cat(spreads) if distribution else None)


def distribution_ab_and_spreads(generator: nn.Module, lightness: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A distribution head's automatic ab (its checkpoint's decode at the default temperature) and its
    spreads, computed at the head's size and upsampled to the render size as the runtime
    upsamples them (bilinear, half-pixel centres): ([N,2,R,R], [N,4,R,R])."""
    logits = generator(lightness).float()
    decode, families, chroma_gain, temperature = decoding_of(generator)
    ab = decode_ab(logits, generator.bin_centres, decode, families, temperature, chroma_gain)
    spreads = distribution_spreads(logits, generator.bin_centres, ab)
    size = lightness.shape[-2:]
    return tuple(F.interpolate(value, size=size, mode="bilinear", align_corners=False) for value in (ab, spreads))


def train_head(data: Prepared, config: HeadTrainingConfig,
               log: Callable[[str], None] = print) -> IntervalHead:
    """A new interval head trained on `data` (the frozen generator's predictions) by pinball loss,
    with random flips and a cosine schedule; returned in eval mode."""
    torch.manual_seed(config.seed)
    head = IntervalHead(config.head_width)
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(config.epochs, 1))
    generator = torch.Generator().manual_seed(config.seed)
    count = len(data.names)
    for epoch in range(config.epochs):
        started, total, steps = time.perf_counter(), 0.0, 0
        order = torch.randperm(count, generator=generator)
        head.train()
        for start in range(0, count, config.batch_size):
            index = order[start: start + config.batch_size]
            lightness, ab, truth = data.lightness[index], data.ab[index], data.truth[index]
            if bool(torch.rand(1, generator=generator) < 0.5):
                lightness, ab, truth = lightness.flip(-1), ab.flip(-1), truth.flip(-1)
            loss = interval_pinball_loss(ab, head(lightness, ab), truth)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        schedule.step()
        seconds = time.perf_counter() - started
        log(f"head epoch {epoch + 1}/{config.epochs}: pinball {total / steps:.3f} "
            f"({count / seconds:.1f} img/s)")
    return head.eval()


@torch.no_grad()
def spreads_of(head: IntervalHead, data: Prepared, batch: int = 16) -> np.ndarray:
    """The head's spreads (a_down, a_up, b_down, b_up, Lab units) for every photo of `data`,
    computed `batch` photos at a time."""
    return torch.cat([head(data.lightness[i: i + batch], data.ab[i: i + batch])
                      for i in range(0, len(data.names), batch)]).numpy()


def measure(spreads: np.ndarray, data: Prepared, calibration: Calibration) -> dict[str, float]:
    """Coverage and width at `calibration`'s lambda, and the constant-width interval that covers as much."""
    ab, truth = data.ab.numpy(), data.truth.numpy()
    needed = scale_needed(ab, spreads, truth)
    coverage = 1.0 - float(miscoverage(needed, calibration.scale).mean())
    width = float(interval_width(spreads, calibration.scale).mean())
    constant = constant_width_for(coverage, ab, truth)
    return {"photos": len(data.names), "coverage": coverage, "mean_width": width,
            "constant_width_same_coverage": constant, "width_ratio": width / constant}


def calibration_report(head: IntervalHead | None, calibration_set: Prepared, test_set: Prepared | None,
                       config: HeadTrainingConfig) -> tuple[Calibration, list[dict[str, Any]], list[float]]:
    """lambda-hat at `config.alpha` (what ships), at each report alpha its figures on both sets,
    and the report alphas left out (too few calibration photos decoded for them). `head` None:
    the sets carry a distribution head's own spreads."""
    def spreads(data: Prepared) -> np.ndarray:
        return data.spreads.numpy() if head is None else spreads_of(head, data)

    calibration_spreads = spreads(calibration_set)
    needed = scale_needed(calibration_set.ab.numpy(), calibration_spreads, calibration_set.truth.numpy())
    test_spreads = spreads(test_set) if test_set is not None else None
    rows, shipped = [], None
    reported, left_out = report_alphas_for(config, len(calibration_set.names))
    for alpha in reported:
        calibration = calibrate(needed, alpha)
        if alpha == config.alpha:
            shipped = calibration
        row: dict[str, Any] = {**calibration.as_dict(),
                               "calibration": measure(calibration_spreads, calibration_set, calibration)}
        if test_set is not None:
            row["test"] = measure(test_spreads, test_set, calibration)
        rows.append(row)
    return shipped, rows, left_out


GUARANTEE = ("For a new photo exchangeable with the calibration photos (drawn like them), the expected "
             "fraction of its pixels whose true (a, b) falls outside [a_low, a_high] x [b_low, b_high] "
             "is at most alpha. The intervals are computed at render size on the photo resized whole and "
             "upsampled; the guarantee holds only for photos like the calibration set.")


def give_uncertainty_head(checkpoint: Path, output: Path, config: HeadTrainingConfig,
                          data: tuple[str, ...] | None = None,
                          log: Callable[[str], None] = print) -> dict[str, Any]:
    """colorize-uncertainty's job: train the head on CHECKPOINT's frozen generator over its own
    training photos, calibrate and measure it on held-out sources, write OUTPUT (the
    generator-only checkpoint with the head) and OUTPUT.json; returns that report. `data`: where
    the training photos are now [default: as recorded]; `log` hears notes and training lines."""
    from tqdm import tqdm

    from retint.files import write_text_atomically
    from retint.model.checkpoint import generator_of, generator_only, load_checkpoint, save_checkpoint
    from retint.model.config import train_config_from_dict
    from retint.model.data import split_train_validation
    from retint.model.photos import find_images

    payload = load_checkpoint(checkpoint)
    if "train_config" not in payload:
        raise InputError(f"{checkpoint} has no training config: cannot tell which photos its generator saw")
    train_config = train_config_from_dict(payload["train_config"])
    # The interval head brackets one regressed colour; a distribution head's intervals come from
    # its own distribution, so it has no head to train: only lambda to calibrate.
    distribution = train_config.generator.head == "distribution"
    # The release decodes as these say, and its intervals are calibrated around what it shows.
    decoding = {field: getattr(config, field) for field in RELEASE_DECODING_FIELDS if getattr(config, field) is not None}
    if decoding and not distribution:
        options = ", ".join("--" + field.replace("_", "-") for field in decoding)
        raise InputError(f"{options}: these set how a distribution head's bins are read; "
                         f"{checkpoint} is a regression model")
    payload = {**payload, "generator_config": {**payload["generator_config"], **decoding}}
    paths = find_images(data or train_config.data)
    training, held_out = split_train_validation(paths, train_config.val_fraction, train_config.seed,
                                                train_config.holdout)
    calibration_paths = sources_of(held_out, config.calibrate_on, "--calibrate-on")
    test_paths = sources_of(held_out, config.test_on, "--test-on") if config.test_on else []
    if set(calibration_paths) & set(test_paths):
        raise InputError("--calibrate-on and --test-on share photos; they must be different sources")
    # Checked before minutes of head training; calibration_report checks again on the photos that decode.
    require_photos_for_alpha(config.alpha, len(calibration_paths))
    _, left_out = report_alphas_for(config, len(calibration_paths))
    if left_out:
        log(left_out_note(left_out, len(calibration_paths)))
    generator = generator_of(payload, checkpoint).requires_grad_(False)
    render_size = generator.retint_config.render_size

    def prepared(paths: list[Path], crops: int, what: str):
        with tqdm(total=len(paths) * (1 + crops), desc=f"colouring {what} photos", unit="photo",
                  leave=False) as bar:
            return prepare(paths, generator, render_size, crops, config.seed, bar.update)

    head = None
    if not distribution:
        head = train_head(prepared(training, config.crops_per_image, "training"), config, log=log)
    calibration_set = prepared(calibration_paths, 0, "calibration")
    test_set = prepared(test_paths, 0, "test") if test_paths else None
    calibration, rows, left_out = calibration_report(head, calibration_set, test_set, config)
    uncertainty = {**calibration.as_dict(), "calibration_sources": list(config.calibrate_on),
                   "test_sources": list(config.test_on), "training_photos": len(training),
                   "render_size": render_size, "guarantee": GUARANTEE}
    release = generator_only(payload)
    if distribution:
        uncertainty.update(method=DISTRIBUTION_METHOD, temperature=generator.retint_config.temperature,
                           decode=generator.retint_config.decode, chroma_gain=generator.retint_config.chroma_gain)
    else:
        uncertainty["head_width"] = config.head_width
        release["uncertainty_head"] = head.state_dict()
    release["uncertainty"] = uncertainty
    save_checkpoint(output, release)
    report = {"checkpoint": output.name, "source_checkpoint": str(checkpoint),
              "config": asdict(config), "uncertainty": uncertainty, "alphas": rows,
              "left_out_report_alphas": left_out}
    write_text_atomically(Path(str(output) + ".json"), json.dumps(report, indent=2) + "\n")
    return report
