"""Training throughput: images/s of real training steps (warm-up and GAN phase).

Runs the actual `Trainer` step on a batch of generated photo-like crops, so
the figure includes the Lab conversion, both networks, both optimisers and,
where asked, the perceptual loss. Several settings (precision, memory
layout, crop size) are built side by side and timed in alternating rounds,
so a drifting machine load hits them all alike.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from retint.benchmarks.timing import interleaved
from retint.model.config import GeneratorConfig, TrainConfig

PHASES = (("warm-up", False), ("gan", True))


@dataclass(frozen=True)
class TrainingSetting:
    """One way to run a training step: bf16 autocast or fp32, layout, crop size."""

    bf16: bool = False
    channels_last: bool = False
    size: int = 256

    @property
    def name(self) -> str:
        """The setting's label in reports, e.g. 'bf16 channels_last @128'."""
        return f"{'bf16' if self.bf16 else 'fp32'}{' channels_last' if self.channels_last else ''} @{self.size}"

    @classmethod
    def parse(cls, text: str) -> "TrainingSetting":
        """'fp32', 'bf16', 'bf16-cl', 'bf16-cl@128' ..."""
        body, _, size = text.partition("@")
        precision, _, layout = body.partition("-")
        if precision not in ("fp32", "bf16") or layout not in ("", "cl"):
            raise ValueError(f"unknown training setting {text!r}; use e.g. fp32, bf16, bf16-cl, bf16-cl@128")
        return cls(bf16=precision == "bf16", channels_last=layout == "cl", size=int(size or 256))


def _write_photos(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        low = rng.random((6, 6, 3)).astype(np.float32)
        image = (cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{index}.png"), image)


def training_throughput(arch: str, settings: tuple[TrainingSetting, ...], batch: int = 8,
                        min_seconds: float = 5.0, rounds: int = 2, device: str = "cpu",
                        perceptual_weight: float = 0.0) -> list[dict]:
    """Images/s per setting and phase, timed in alternating rounds (best round each)."""
    from retint.model.train import RunOptions, Trainer

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        trainers, batches = {}, {}
        for setting in settings:
            folder = scratch / f"data-{setting.size}"
            if not folder.exists():
                folder.mkdir()
                _write_photos(folder, batch, setting.size)
            generator = GeneratorConfig.for_arch(arch, pretrained_encoder=arch == "effnet-unet",
                                                 render_size=setting.size)
            config = TrainConfig(data=(str(folder),), generator=generator, batch_size=batch, val_fraction=0.0,
                                 perceptual_weight=perceptual_weight)
            options = RunOptions(device=device, amp=setting.bf16, channels_last=setting.channels_last,
                                 workers=0, progress=False)
            trainer = Trainer(config, scratch / f"run-{setting.name}", options)
            trainers[setting] = trainer
            batches[setting] = torch.stack([trainer.training_set[i]["rgb"] for i in range(batch)])
        results = {setting: {"arch": arch, "setting": setting.name, "batch": batch, "size": setting.size,
                             "device": device, "precision": trainers[setting].precision,
                             "channels_last": setting.channels_last, "perceptual_weight": perceptual_weight,
                             "torch_threads": torch.get_num_threads()} for setting in settings}
        for phase, adversarial in PHASES:
            calls = {setting: (lambda s=setting: trainers[s]._train_step(batches[s], adversarial))
                     for setting in settings}
            timings = interleaved(calls, items_per_run=batch, rounds=rounds, warmup=1, min_runs=3,
                                  min_seconds=min_seconds)
            for setting, timing in timings.items():
                results[setting][f"{phase}_images_per_second"] = timing.items_per_second
        return list(results.values())
