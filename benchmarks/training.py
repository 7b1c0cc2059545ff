"""Training throughput: images/s of real training steps (warm-up and GAN phase).

Runs the actual `Trainer` step on a batch of generated photo-like crops, so
the figure includes the Lab conversion, both networks and both optimisers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from retint.benchmarks.timing import time_calls
from retint.model.config import GeneratorConfig, TrainConfig


def _write_photos(folder: Path, count: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for index in range(count):
        low = rng.random((6, 6, 3)).astype(np.float32)
        image = (cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1) * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{index}.png"), image)


def training_throughput(arch: str, batch: int = 8, size: int = 256, min_seconds: float = 10.0,
                        device: str = "cpu") -> dict:
    from retint.model.train import RunOptions, Trainer

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "data").mkdir()
        _write_photos(scratch / "data", batch, size)
        generator = GeneratorConfig.for_arch(arch, pretrained_encoder=arch == "effnet-unet", render_size=size)
        config = TrainConfig(data=(str(scratch / "data"),), generator=generator, batch_size=batch,
                             val_fraction=0.0)
        trainer = Trainer(config, scratch / "run", RunOptions(device=device, workers=0, progress=False),
                          resume=False)
        rgb = torch.stack([trainer.training_set[i]["rgb"] for i in range(batch)])
        results = {"arch": arch, "batch": batch, "size": size, "device": device,
                   "torch_threads": torch.get_num_threads()}
        for phase, adversarial in (("warm-up", False), ("gan", True)):
            timing = time_calls(lambda: trainer._train_step(rgb, adversarial), items_per_run=batch,
                                warmup=1, min_runs=3, min_seconds=min_seconds)
            results[f"{phase}_images_per_second"] = timing.items_per_second
        return results
