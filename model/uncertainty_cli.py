"""`colorize-uncertainty CKPT -o OUT.pth --calibrate-on SOURCE`: give a generator a calibrated uncertainty head.

Trains `IntervalHead` on the generator's own training photos (the generator
stays frozen: the colours do not change), calibrates it by conformal risk
control on whole sources the generator never saw, measures it on other unseen
sources (`--test-on`), and writes OUT.pth: the generator-only checkpoint with
the head and its calibration, which `export-trt` turns into the artefact's
interval stage. OUT.pth.json holds the coverage and width figures.

Exit codes: 0 done, 2 bad input (unknown or trained-on sources, too few
calibration photos for --alpha, a checkpoint without its training config),
5 the 'train' extra is missing, 130 interrupted.
A --report-alphas value the calibration photos are too few for is left out
of the report with a note; it never stops the run.
"""

from __future__ import annotations

from pathlib import Path

import click

from retint.commands import RetintCommand
from retint.errors import needs_extra
from retint.model.config import DECODES, HeadTrainingConfig


def _alphas(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}") from error


@click.command(cls=RetintCommand, program="colorize-uncertainty", context_settings={"help_option_names": ["-h", "--help"]})
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
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=HeadTrainingConfig.alpha,
              show_default=True, help="Allowed expected fraction of pixels outside the interval.")
@click.option("--report-alphas", default=",".join(map(str, HeadTrainingConfig.report_alphas)), show_default=True,
              help="Also report coverage and width calibrated at these alphas (those the calibration "
                   "photos are too few for are left out, with a note).")
@click.option("--epochs", type=click.IntRange(1), default=HeadTrainingConfig.epochs, show_default=True)
@click.option("--crops-per-image", type=click.IntRange(0), default=HeadTrainingConfig.crops_per_image,
              show_default=True,
              help="Seeded random crops of each training photo, besides the whole photo.")
@click.option("--seed", type=int, default=HeadTrainingConfig.seed, show_default=True)
@click.option("--decode", type=click.Choice(DECODES), default=None,
              help="A distribution head's release reads its bins so: annealed-mean, or family-favoured "
                   "(each bin weighted by its colour family's probability: MODEL_CARD.md) "
                   "[default: as the checkpoint says].")
@click.option("--chroma-gain", type=click.FloatRange(0.5, 2.0), default=None,
              help="A distribution head's release stretches the chroma of the colours it decodes, beyond "
                   "chroma 8 (the grey family's), by this: more colour, no hue turned, near-greys left alone "
                   "(MODEL_CARD.md) [default: as the checkpoint says; 1 for a new head].")
@click.option("--temperature", type=click.FloatRange(0.05, 2.0), default=None,
              help="A distribution head's release decodes at this annealed-mean temperature unless a user "
                   "asks for another (lower: bolder, closer to the most probable colour) "
                   "[default: as the checkpoint says; 0.38 for a new head].")
def main(checkpoint: Path, output: Path, calibrate_on: tuple[str, ...], test_on: tuple[str, ...],
         data: tuple[str, ...], alpha: float, report_alphas: str, epochs: int, crops_per_image: int,
         seed: int, decode: str | None, chroma_gain: float | None, temperature: float | None) -> None:
    """Train, calibrate and measure an uncertainty head for CHECKPOINT's generator."""
    with needs_extra("train", "training the head"):
        from retint.model.interval_training import give_uncertainty_head

    config = HeadTrainingConfig(calibrate_on=calibrate_on, test_on=test_on, alpha=alpha,
                                report_alphas=_alphas(report_alphas), epochs=epochs,
                                crops_per_image=crops_per_image, seed=seed, decode=decode,
                                chroma_gain=chroma_gain, temperature=temperature)
    report = give_uncertainty_head(checkpoint, output, config, data or None,
                                   log=lambda line: click.echo(line, err=True))
    for row in report["alphas"]:
        test = row.get("test")
        where = (f"test coverage {test['coverage']:.3f}, width {test['mean_width']:.1f} = "
                 f"{test['width_ratio']:.2f}x a constant interval" if test else "no test sources")
        click.echo(f"alpha {row['alpha']}: lambda {row['lambda']:.3f}; {where}")
    for alpha in report["left_out_report_alphas"]:
        click.echo(f"alpha {alpha}: left out, too few calibration photos (see --report-alphas)")


if __name__ == "__main__":
    main()
