"""`colorize-train DATA... -o RUN`: train a colouriser on folders of colour photos.

Exit codes: 0 done, 2 bad input (no images, an existing run without
--resume, a corrupt checkpoint, ...), 5 the 'train' extra is missing, 130
interrupted (last.pth holds the last completed epoch; rerun with --resume).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from retint.commands import RetintCommand
from retint.errors import RetintError, needs_extra
from retint.model.config import (
    DEFAULT_BASE_CHANNELS,
    DEFAULT_HEAD_FOR_NEW_RUNS,
    GAN_MODES,
    GENERATOR_ARCHITECTURES,
    GENERATOR_HEADS,
    REBALANCE_BY,
    RECONSTRUCTION_LOSSES,
    TRAINING_DEVICES,
    GeneratorConfig,
    RunOptions,
    TrainConfig,
)

# click option name -> TrainConfig field (generator fields are prefixed "generator.").
CONFIG_OPTIONS = {
    "arch": "generator.arch",
    "base_channels": "generator.base_channels",
    "pretrained_encoder": "generator.pretrained_encoder",
    "render_size": "generator.render_size",
    "head": "generator.head",
    "global_hint": "generator.global_hint",
    "rebalance": "rebalance",
    "rebalance_by": "rebalance_by",
    "hint_fraction": "hint_fraction",
    "global_hint_fraction": "global_hint_fraction",
    "paste_objects": "paste_objects",
    "paste_fraction": "paste_fraction",
    "decoded_l1_weight": "decoded_l1_weight",
    "epochs": "epochs",
    "pretrain_epochs": "pretrain_epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "gan": "gan",
    "recon": "recon",
    "lambda_recon": "lambda_recon",
    "a_quantile": "a_quantile",
    "a_quantile_on_damaged": "a_quantile_on_damaged",
    "chroma_weight": "chroma_weight",
    "val_fraction": "val_fraction",
    "crops_per_image": "crops_per_image",
    "seed": "seed",
    "holdout": "holdout",
    "degrade": "degrade",
    "perceptual_weight": "perceptual_weight",
    "encoder_lr_scale": "encoder_lr_scale",
    "low_res_epochs": "low_res_epochs",
    "low_res_size": "low_res_size",
    "init_from": "init_from",
}


def build_config(data: tuple[str, ...], values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Apply option values onto `base` (a resumed run's config) or the defaults."""
    generator_values = {}
    train_values: dict[str, Any] = {"data": tuple(str(Path(d)) for d in data)}
    for option, value in values.items():
        field = CONFIG_OPTIONS[option]
        if field.startswith("generator."):
            generator_values[field.removeprefix("generator.")] = value
        else:
            train_values[field] = value
    if base is None:
        arch = generator_values.pop("arch", GeneratorConfig.arch)
        return TrainConfig(generator=GeneratorConfig.for_arch(arch, **generator_values), **train_values)
    return dataclasses.replace(base, generator=dataclasses.replace(base.generator, **generator_values),
                               **train_values)


@click.command(cls=RetintCommand, program="colorize-train", renamed={"--size": "--render-size"},
               interrupted_note="; last.pth holds the last completed epoch (rerun with --resume)",
               context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True, file_okay=True))
@click.option("-o", "--output", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: last.pth, best.pth, metrics.jsonl, samples/.")
@click.option("--arch", type=click.Choice(GENERATOR_ARCHITECTURES), default=GeneratorConfig.arch)
@click.option("--base-channels", type=click.IntRange(1), default=None,
              help="Width: ngf for unet256, decoder width for effnet-unet  [default: "
                   + ", ".join(f"{width} for {arch}" for arch, width in DEFAULT_BASE_CHANNELS.items()) + "].")
@click.option("--pretrained-encoder/--no-pretrained-encoder", default=True,
              help="effnet-unet: start from the ImageNet EfficientNet-Lite0 weights.")
@click.option("--render-size", type=click.IntRange(32), default=GeneratorConfig.render_size,
              help="Crop size for training = render size of the exported engine.")
@click.option("--head", type=click.Choice(GENERATOR_HEADS), default=DEFAULT_HEAD_FOR_NEW_RUNS,
              help="distribution: logits over a*b* bins with hint inputs (colour model v2); "
                   "regression: the first model's L1 a*b* regression.")
@click.option("--global-hint/--no-global-hint", default=True,
              help="distribution head: the generator also takes an a*b* histogram (a reference photo's palette).")
@click.option("--rebalance", type=click.FloatRange(0, 1), default=TrainConfig.rebalance,
              help="distribution head: class rebalancing, the colour prior mixed with a uniform one by this "
                   "share (Zhang et al.: 0.5; 1 = no rebalancing).")
@click.option("--rebalance-by", type=click.Choice(REBALANCE_BY), default=TrainConfig.rebalance_by, show_default=True,
              help="distribution head: what the rebalancing evens out, each bin's frequency (Zhang's) or each "
                   "chroma ring's (the balance between hues kept).")
@click.option("--hint-fraction", type=click.FloatRange(0, 1), default=TrainConfig.hint_fraction,
              help="distribution head: share of training samples given simulated point hints.")
@click.option("--global-hint-fraction", type=click.FloatRange(0, 1), default=TrainConfig.global_hint_fraction,
              help="distribution head: share of training samples given the global hint.")
@click.option("--paste-objects", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of cut-outs with alpha to paste onto training crops (copy-paste augmentation).")
@click.option("--paste-fraction", type=click.FloatRange(0, 1), default=TrainConfig.paste_fraction,
              help="Share of training crops that get a pasted cut-out (with --paste-objects).")
@click.option("--decoded-l1-weight", type=click.FloatRange(0), default=TrainConfig.decoded_l1_weight,
              help="distribution head: weight of L1 on the annealed-mean a*b* (0 = off).")
@click.option("--epochs", type=click.IntRange(1), default=TrainConfig.epochs, help="Total epochs, warm-up included.")
@click.option("--pretrain-epochs", type=click.IntRange(0), default=TrainConfig.pretrain_epochs,
              help="L1-only generator warm-up epochs before the GAN phase.")
@click.option("--batch-size", type=click.IntRange(1), default=TrainConfig.batch_size)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=TrainConfig.lr,
              help="Adam learning rate (betas 0.5, 0.999) of both networks.")
@click.option("--gan", type=click.Choice(GAN_MODES), default=TrainConfig.gan)
@click.option("--recon", type=click.Choice(RECONSTRUCTION_LOSSES), default=TrainConfig.recon)
@click.option("--lambda-recon", type=click.FloatRange(0), default=TrainConfig.lambda_recon)
@click.option("--a-quantile", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=TrainConfig.a_quantile,
              help="--recon l1 only: fit this quantile of a* instead of its median (0.5); above 0.5 an "
                   "uncertain colour leans red-warm rather than green.")
@click.option("--a-quantile-on-damaged/--a-quantile-clean-only", default=TrainConfig.a_quantile_on_damaged,
              help="Fit --a-quantile on --degrade's damaged inputs too, or plain L1 (the median) on them.")
@click.option("--chroma-weight", type=click.FloatRange(0), default=TrainConfig.chroma_weight,
              help="Weight of -E[sqrt(a^2+b^2)], against greyish output (0 = off).")
@click.option("--holdout", multiple=True, default=(),
              help="Validate on this whole source: photos whose file name starts with it, or in a folder "
                   "named so (repeatable). Without it, a random --val-fraction split, which leaks "
                   "near-duplicates into training.")
@click.option("--val-fraction", type=click.FloatRange(0, 0.9), default=TrainConfig.val_fraction,
              help="Random validation share when no --holdout is given.")
@click.option("--degrade", type=click.FloatRange(0, 1), default=TrainConfig.degrade,
              help="Share of training inputs given old-photo damage (blur, noise, downscaling, JPEG, "
                   "fading, grain, scratches, dust); the target stays the clean colour.")
@click.option("--perceptual-weight", type=click.FloatRange(0), default=TrainConfig.perceptual_weight,
              help="Weight of the frozen ImageNet EfficientNet-Lite0 feature loss on the composed RGB (0 = off).")
@click.option("--encoder-lr-scale", type=click.FloatRange(0), default=TrainConfig.encoder_lr_scale,
              help="effnet-unet: the encoder learns at --lr times this (0 freezes it).")
@click.option("--low-res-epochs", type=click.IntRange(0), default=TrainConfig.low_res_epochs,
              help="Progressive resizing: the first N epochs train on --low-res-size crops.")
@click.option("--low-res-size", type=click.IntRange(32), default=TrainConfig.low_res_size)
@click.option("--init-from", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from this checkpoint's weights (e.g. a GAN phase branched from a warm-up run).")
@click.option("--crops-per-image", type=click.IntRange(1), default=TrainConfig.crops_per_image,
              help="Random crops per photo per epoch (useful with small datasets).")
@click.option("--seed", type=int, default=TrainConfig.seed)
@click.option("--resume", is_flag=True, help="Continue the run in the output folder.")
@click.option("--device", type=click.Choice(TRAINING_DEVICES), default=RunOptions.device)
@click.option("--amp/--no-amp", default=None,
              help="Mixed precision (float16 on CUDA, bfloat16 on the CPU)  [default: on only for a CPU "
                   "with native bf16 (AMX or AVX512-BF16); every metrics line names the precision].")
@click.option("--channels-last", is_flag=True, help="channels_last memory layout for both networks.")
@click.option("--workers", type=click.IntRange(0), default=RunOptions.workers, help="DataLoader decode workers.")
@click.option("--no-progress", is_flag=True, help="No progress bar (one line per epoch instead).")
@click.option("--stop-after", type=click.FloatRange(0, min_open=True), default=None, metavar="MINUTES",
              help="Stop after the first epoch that ends past this many minutes (resume with --resume).")
@click.pass_context
def main(ctx: click.Context, data: tuple[str, ...], run_dir: str, resume: bool, device: str, amp: bool | None,
         channels_last: bool, workers: int, no_progress: bool, stop_after: float | None,
         **options: Any) -> None:
    """Train a pix2pix colouriser on DATA (folders of colour photos)."""
    with needs_extra("train", "training"):
        from retint.model.train import load_resumable, train

    for unset in ("base_channels", "init_from", "paste_objects"):
        if options[unset] is None:
            options.pop(unset)
    resumed = load_resumable(Path(run_dir)) if resume else None
    if resumed is not None:
        config = _resumed_config(ctx, resumed, Path(run_dir), data, options)
    else:
        config = build_config(data, options)
    if config.generator.head == "distribution" and config.generator.arch != "effnet-unet":
        raise RetintError("--head distribution needs --arch effnet-unet")
    if config.generator.head == "distribution" and (config.a_quantile != 0.5 or config.recon != "l1"):
        raise RetintError("--a-quantile and --recon shape the regression head's L1; the distribution head "
                          "is trained by cross-entropy (pass --head regression to use them)")
    if config.a_quantile != 0.5 and config.recon != "l1":
        raise RetintError(f"--a-quantile needs --recon l1 (got --recon {config.recon})")
    run_options = RunOptions(device=device, amp=amp, channels_last=channels_last, workers=workers,
                             progress=not no_progress, stop_after_minutes=stop_after)

    def report(record: dict[str, Any]) -> None:
        validation = ""
        if "val_ciede2000" in record:
            validation = (f" | val dE2000 {record['val_ciede2000']:.2f} (grey {record['val_grey_ciede2000']:.2f})"
                          f" PSNR {record['val_psnr']:.2f}")
        click.echo(f"epoch {record['epoch']}/{config.epochs} {record['phase']} {record['crop_size']}px: "
                   f"recon {record.get('loss_recon', float('nan')):.4f}"
                   f" {record['images_per_second']:.1f} img/s ({record['precision']}){validation}"
                   f"{skipped_files(record)}", err=True)

    train(config, Path(run_dir), run_options, resumed=resumed, on_epoch=report)


def skipped_files(record: dict[str, Any]) -> str:
    """' | skipped 3 grey, 1 unreadable files' when an epoch skipped any (the counts are in metrics.jsonl too)."""
    grey, unreadable = record.get("skipped_grey_files", 0), record.get("skipped_unreadable_files", 0)
    return f" | skipped {grey} grey, {unreadable} unreadable files" if grey or unreadable else ""


def _resumed_config(ctx: click.Context, checkpoint: dict[str, Any], run_dir: Path, data: tuple[str, ...],
                    options: dict[str, Any]) -> TrainConfig:
    """The saved config, with only the options given on this command line applied; an option
    the run may not change is refused by its own name."""
    from retint.model.config import config_differences
    from retint.model.train import recorded_config

    saved = recorded_config(checkpoint)
    explicit = {name: value for name, value in options.items()
                if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    config = build_config(data, explicit, base=saved)
    differing = config_differences(config, saved)
    if differing:
        option_of_field = {field: "--" + option.replace("_", "-") for option, field in CONFIG_OPTIONS.items()}
        changes = "; ".join(f"{option_of_field.get(name, name.upper())} was {before!r}, now {after!r}"
                            for name, (before, after) in differing.items())
        raise RetintError(f"--resume: {run_dir} was trained with other settings ({changes}); "
                          "use the same options or a new output folder")
    return config


if __name__ == "__main__":
    main()
