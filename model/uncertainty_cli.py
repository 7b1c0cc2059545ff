"""`colorize-uncertainty CKPT -o OUT.pth --calibrate-on SOURCE`: give a generator a calibrated uncertainty head.

Trains `IntervalHead` on the generator's own training photos (the generator
stays frozen: the colours do not change), calibrates it by conformal risk
control on whole sources the generator never saw, measures it on other unseen
sources (`--test-on`), and writes OUT.pth: the generator-only checkpoint with
the head and its calibration, which `export-trt` turns into the artefact's
interval stage. OUT.pth.json holds the coverage and width figures.

Exit codes: 0 done, 2 bad input (unknown or trained-on sources, too few
calibration photos for --alpha, a checkpoint without its training config).
A --report-alphas value the calibration photos are too few for is left out
of the report with a note; it never stops the run.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from retint.errors import RetintError, exits_when_extra_missing

GUARANTEE = ("For a new photo exchangeable with the calibration photos (drawn like them), the expected "
             "fraction of its pixels whose true (a, b) falls outside [a_low, a_high] x [b_low, b_high] "
             "is at most alpha. The intervals are computed at render size on the photo resized whole and "
             "upsampled; the guarantee holds only for photos like the calibration set.")


def _alphas(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}") from error


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The generator checkpoint with its calibrated head (and OUTPUT.json, the report).")
@click.option("--calibrate-on", multiple=True, required=True,
              help="A source (file-name prefix or folder name) among the generator's held-out photos; "
                   "lambda-hat is chosen on these (repeatable).")
@click.option("--test-on", multiple=True,
              help="Held-out sources used for neither training nor calibration: coverage and width are "
                   "measured there (repeatable).")
@click.option("--data", multiple=True, help="Where the training photos are now [default: as recorded].")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.1,
              show_default=True, help="Allowed expected fraction of pixels outside the interval.")
@click.option("--report-alphas", default="0.05,0.1,0.2", show_default=True,
              help="Also report coverage and width calibrated at these alphas (those the calibration "
                   "photos are too few for are left out, with a note).")
@click.option("--epochs", type=click.IntRange(1), default=8, show_default=True)
@click.option("--crops-per-image", type=click.IntRange(0), default=2, show_default=True,
              help="Seeded random crops of each training photo, besides the whole photo.")
@click.option("--seed", type=int, default=0, show_default=True)
def main(checkpoint: Path, output: Path, calibrate_on: tuple[str, ...], test_on: tuple[str, ...],
         data: tuple[str, ...], alpha: float, report_alphas: str, epochs: int, crops_per_image: int,
         seed: int) -> None:
    """Train, calibrate and measure an uncertainty head for CHECKPOINT's generator."""
    with exits_when_extra_missing("colorize-uncertainty", "training the head"):
        from retint.model.interval_training import HeadTrainingConfig

    config = HeadTrainingConfig(calibrate_on=calibrate_on, test_on=test_on, alpha=alpha,
                                report_alphas=_alphas(report_alphas), epochs=epochs,
                                crops_per_image=crops_per_image, seed=seed)
    try:
        report = run(checkpoint, output, config, data or None)
    except RetintError as error:
        click.echo(f"colorize-uncertainty: error: {error}", err=True)
        sys.exit(error.exit_code)
    for row in report["alphas"]:
        test = row.get("test")
        where = (f"test coverage {test['coverage']:.3f}, width {test['mean_width']:.1f} = "
                 f"{test['width_ratio']:.2f}x a constant interval" if test else "no test sources")
        click.echo(f"alpha {row['alpha']}: lambda {row['lambda']:.3f}; {where}")
    for alpha in report["left_out_report_alphas"]:
        click.echo(f"alpha {alpha}: left out, too few calibration photos (see --report-alphas)")


def run(checkpoint: Path, output: Path, config, data: tuple[str, ...] | None) -> dict:
    from tqdm import tqdm

    from retint.errors import InputError
    from retint.files import write_text_atomically
    from retint.model.checkpoint import generator_of, generator_only, load_checkpoint, save_checkpoint
    from retint.model.config import train_config_from_dict
    from retint.model.data import find_images, split_train_validation
    from retint.model.interval_training import (
        calibration_report,
        left_out_note,
        prepare,
        report_alphas_for,
        require_photos_for_alpha,
        sources_of,
        train_head,
    )

    payload = load_checkpoint(checkpoint)
    if "train_config" not in payload:
        raise InputError(f"{checkpoint} has no training config: cannot tell which photos its generator saw")
    train_config = train_config_from_dict(payload["train_config"])
    if train_config.generator.head != "regression":
        # The interval head brackets one regressed colour; a distribution head's intervals come
        # from its own distribution (issue 32), not from this head.
        raise InputError(f"{checkpoint} has a {train_config.generator.head} head; colorize-uncertainty "
                         "trains an interval head for regression models only")
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
        click.echo(left_out_note(left_out, len(calibration_paths)), err=True)
    generator = generator_of(payload, checkpoint).requires_grad_(False)
    render_size = generator.retint_config.render_size

    def prepared(paths, crops, what):
        with tqdm(total=len(paths) * (1 + crops), desc=f"colouring {what} photos", unit="photo",
                  leave=False) as bar:
            return prepare(paths, generator, render_size, crops, config.seed, bar.update)

    training_set = prepared(training, config.crops_per_image, "training")
    calibration_set = prepared(calibration_paths, 0, "calibration")
    test_set = prepared(test_paths, 0, "test") if test_paths else None
    head = train_head(training_set, config, log=lambda line: click.echo(line, err=True))
    calibration, rows, left_out = calibration_report(head, calibration_set, test_set, config)
    uncertainty = {**calibration.as_dict(), "calibration_sources": list(config.calibrate_on),
                   "test_sources": list(config.test_on), "training_photos": len(training),
                   "head_width": config.head_width, "render_size": render_size, "guarantee": GUARANTEE}
    release = generator_only(payload)
    release["uncertainty_head"] = head.state_dict()
    release["uncertainty"] = uncertainty
    save_checkpoint(output, release)
    report = {"checkpoint": output.name, "source_checkpoint": str(checkpoint),
              "config": dataclasses.asdict(config), "uncertainty": uncertainty, "alphas": rows,
              "left_out_report_alphas": left_out}
    write_text_atomically(Path(str(output) + ".json"), json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
