"""Colour model v2's head, trained on a feature cache with the encoder frozen.

The generator is the hypercolumn distribution model (networks/
hypercolumn.py) whose encoder keeps its ImageNet weights: only the context
layers, the projections, the per-pixel MLP over the a*b* bins and the
global-hint layer learn, from the cached skips (`feature_cache`), each crop
judged at `points_per_crop` random points (Larsson et al.'s sparse
training: the MLP's cost is per point, not per pixel). The checkpoint is an ordinary retint
checkpoint of the whole generator (encoder included), so `export-trt`,
`colorize-bench` and the runtime take it like any other v2.

Loss: cross-entropy against soft-encoded targets (`distribution_loss`),
with Zhang's rebalancing mixed by `rebalance` (1 = none), of each bin or of
each chroma ring (`rebalance_by`); a share of the
samples get the global hint (the histogram of a window of their own truth)
so a reference photo's palette reaches the colours. AdamW with a one-cycle
schedule; bf16 autocast where the CPU does bf16 in hardware.

`tune_out` sources of the cache are left out of training (and recorded as
held out), so settings can be chosen on them apart from the held-out photos.

A run folder holds `last.pth` after every epoch (resumable: `--resume`),
`metrics.jsonl`, and nothing else.
"""

from __future__ import annotations

import json
import time
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn import functional as F

from retint.errors import InputError
from retint.files import write_text_atomically
from retint.model.bins import gamut_bin_centres, nearest_bin, rebalancing_weights_by
from retint.model.checkpoint import load_checkpoint, save_checkpoint
from retint.model.config import REBALANCE_BY_BIN, GeneratorConfig, TrainConfig, config_to_dict
from retint.model.distribution_training import distribution_loss, simulate_global_hint
from retint.model.feature_cache import CachedFeatures, load_feature_cache
from retint.model.networks import build_generator
from retint.cpu import native_bf16_flags

# The prior for rebalancing is counted on this many cached crops.
PRIOR_CROPS = 2000
PRIOR_CHUNK = 64
GLOBAL_HINT_POOL = 4


@dataclass(frozen=True)
class HeadTrainConfig:
    """One field per option of `colorize-train-head` that shapes the result."""

    cache: str
    render_size: int = 256
    decoder_width: int = 32
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    # Zhang's rebalancing: prior mixed with a uniform one by this share (1 = no rebalancing).
    rebalance: float = 1.0
    # What the rebalancing evens out: each bin's prior (Zhang's), or each chroma ring's (the hues'
    # balance kept: `chroma_rebalancing_weights`).
    rebalance_by: str = REBALANCE_BY_BIN
    global_hint_fraction: float = 0.2
    points_per_crop: int = 256
    seed: int = 0
    # Gaussian noise added to the cached skips, as a share of each batch's spread of each skip.
    # OpenVINO bf16 runs Lite2's encoder with errors of about 6-11% of that spread (MODEL_CARD.md);
    # a head trained on features that noisy colours alike in bf16 and FP32. 0: none.
    feature_noise: float = 0.0
    # Sources of the cache whose crops the head does not train on (--tune-out): its decode and
    # temperature can be chosen on them without looking at the held-out sources.
    tune_out: tuple[str, ...] = ()

    def generator_config(self, encoder: str) -> GeneratorConfig:
        """The generator this head belongs to: effnet-unet, distribution head, hypercolumn decoder,
        global hint, over the frozen `encoder` its cache was made with."""
        return GeneratorConfig(arch="effnet-unet", base_channels=self.decoder_width, pretrained_encoder=True,
                               render_size=self.render_size, head="distribution",
                               bin_count=len(gamut_bin_centres()), global_hint=True, decoder="hypercolumn",
                               encoder=encoder)


def _batches(count: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    order = torch.randperm(count, generator=generator)
    return [order[i: i + batch_size] for i in range(0, count - batch_size + 1, batch_size)]


class HeadTrainer:
    """Trains the decoder and head of a frozen-encoder v2 generator on a loaded cache."""

    def __init__(self, config: HeadTrainConfig, run_dir: Path, resume: bool = False):
        self.config = config
        self.run_dir = Path(run_dir)
        self.features, self.cache_manifest = load_feature_cache(Path(config.cache), config.tune_out)
        if len(self.features) < config.batch_size:
            raise InputError(f"the cache holds {len(self.features)} crops, fewer than one batch")
        torch.manual_seed(config.seed)
        self.generator_config = config.generator_config(self.cache_manifest["config"]["encoder"])
        self.generator = build_generator(self.generator_config)
        self.generator.encoder.requires_grad_(False).eval()
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
        steps = config.epochs * (len(self.features) // config.batch_size)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=config.lr,
                                                             total_steps=max(1, steps), pct_start=0.1)
        self.amp = bool(native_bf16_flags())
        self.start_epoch = 0
        self.history: list[dict[str, Any]] = []
        last = self.run_dir / "last.pth"
        if resume:
            self._restore(last)
        elif last.exists():
            raise InputError(f"{self.run_dir} already holds a run; pass --resume to continue it "
                             "or choose another output folder")
        else:
            self._set_rebalancing_weights()
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def _set_rebalancing_weights(self) -> None:
        """Zhang's rebalancing weights from the cached targets' colour prior (ones at rebalance 1)."""
        if self.config.rebalance >= 1.0:
            return
        centres = self.generator.bin_centres
        step = max(1, len(self.features) // PRIOR_CROPS)
        counts = torch.zeros(len(centres), dtype=torch.float64)
        for start in range(0, len(self.features), step * PRIOR_CHUNK):
            # A few crops at a time, at a quarter of the side: distances to every bin are
            # [crops, Q, H, W], gigabytes for the whole cache at once.
            chunk = F.avg_pool2d(self.features.ab[start: start + step * PRIOR_CHUNK: step].float(), 4)
            counts += torch.bincount(nearest_bin(chunk, centres).flatten(), minlength=len(centres)).double()
        weights = rebalancing_weights_by(counts.numpy(), centres.numpy(), self.config.rebalance,
                                         self.config.rebalance_by)
        self.generator.bin_weights.copy_(torch.from_numpy(weights))

    def _restore(self, path: Path) -> None:
        checkpoint = load_checkpoint(path)
        # A field added since the run began holds its default there.
        defaults = {field.name: field.default for field in fields(HeadTrainConfig) if field.default is not MISSING}
        saved = {**defaults, **checkpoint.get("head_config", {})}
        if saved != asdict(self.config):
            changed = sorted(k for k in set(saved) | set(asdict(self.config))
                             if saved.get(k) != asdict(self.config).get(k))
            raise InputError(f"--resume: {self.run_dir} was trained with other settings ({', '.join(changed)}); "
                             "use the same options or a new output folder")
        self.generator.load_state_dict(checkpoint["generator"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.start_epoch = int(checkpoint["epoch"])
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists():
            lines = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            self.history = [line for line in lines if line["epoch"] <= self.start_epoch]

    def _step(self, index: torch.Tensor, generator: torch.Generator) -> float:
        skips = [skip[index].float() for skip in self.features.skips]
        if self.config.feature_noise > 0:
            skips = [skip + self.config.feature_noise * skip.std() * torch.randn(skip.shape, generator=generator)
                     for skip in skips]
        truth = self.features.ab[index].float()
        centres = self.generator.bin_centres
        points = torch.rand(len(index), self.config.points_per_crop, 2, generator=generator) * 2 - 1
        target = F.grid_sample(truth, points[:, :, None, :], mode="bilinear", padding_mode="border",
                               align_corners=False)  # [N,2,K,1]
        # The palette of a window of the truth, counted on a 4x coarser grid: its histogram needs
        # every pixel's distance to every bin, seconds per batch at the cached size.
        hint = simulate_global_hint(F.avg_pool2d(truth, GLOBAL_HINT_POOL), centres,
                                    self.config.global_hint_fraction, generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.amp):
            logits = self.generator.decode_at(skips, points, hint)
        loss = distribution_loss(logits, target, centres, self.generator.bin_weights)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return float(loss.detach())

    def run_epoch(self, epoch: int, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """One pass over the cache in a seeded order; the epoch's record."""
        self.generator.train()
        self.generator.encoder.eval()
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        batches = _batches(len(self.features), self.config.batch_size, generator)
        started = time.monotonic()
        total = 0.0
        for done, index in enumerate(batches, 1):
            total += self._step(index, generator)
            if progress:
                progress(done, len(batches))
        seconds = time.monotonic() - started
        record = {"epoch": epoch + 1, "loss": total / max(1, len(batches)),
                  "crops_per_second": len(batches) * self.config.batch_size / max(seconds, 1e-9),
                  "lr_end": self.scheduler.get_last_lr()[0],
                  "precision": "cpu bf16 autocast" if self.amp else "cpu fp32"}
        self._commit(epoch, record)
        return record

    def _commit(self, epoch: int, record: dict[str, Any]) -> None:
        self.history.append(record)
        write_text_atomically(self.run_dir / "metrics.jsonl",
                              "".join(json.dumps(line) + "\n" for line in self.history))
        save_checkpoint(self.run_dir / "last.pth", {
            "generator_config": config_to_dict(self.generator_config),
            "head_config": asdict(self.config),
            # What the generator saw, as colorize-train records it: colorize-uncertainty and the
            # release tools find the held-out sources from it.
            "train_config": config_to_dict(self.training_record()),
            "feature_cache": {key: self.cache_manifest[key] for key in ("config", "photos_digest", "crops")},
            "generator": self.generator.eval().state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": epoch + 1,
            "note": "colour model v2: frozen ImageNet encoder, head trained on a feature cache",
        })

    def training_record(self) -> TrainConfig:
        """A TrainConfig naming this head's photos and held-out sources (from the cache's manifest)."""
        made_by = self.cache_manifest["config"]
        return TrainConfig(data=tuple(made_by["data"]), generator=self.generator_config,
                           epochs=self.config.epochs, batch_size=self.config.batch_size, lr=self.config.lr,
                           val_fraction=0.0, crops_per_image=int(made_by["crops_per_image"]),
                           seed=self.config.seed, holdout=(*made_by["holdout"], *self.config.tune_out),
                           degrade=float(made_by["degrade"]), rebalance=self.config.rebalance,
                           rebalance_by=self.config.rebalance_by,
                           global_hint_fraction=self.config.global_hint_fraction,
                           paste_objects=made_by["paste_objects"], paste_fraction=float(made_by["paste_fraction"]))

    def fit(self, on_epoch: Callable[[dict[str, Any]], None] | None = None,
            stop_after_minutes: float | None = None,
            progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
        """The remaining epochs (stopping after the first that ends past `stop_after_minutes`);
        `progress(batches done, batches)` within each epoch."""
        started = time.monotonic()
        for epoch in range(self.start_epoch, self.config.epochs):
            record = self.run_epoch(epoch, progress)
            if on_epoch:
                on_epoch(record)
            if stop_after_minutes is not None and time.monotonic() - started > 60 * stop_after_minutes:
                break
        return self.history

