"""The training loop of `colorize-train`: L1 warm-up, then pix2pix GAN training.

One epoch = `crops_per_image` random crops of every training photo. After
each epoch, in this order and each written atomically: the sample grid, the
metrics log, `best.pth` (when validation improved) and `last.pth`, which is the
commit point a resumed run starts from. Every random choice is seeded from
(seed, epoch), so a resumed run repeats an uninterrupted one.

The loop runs on CPU or CUDA; `amp` uses float16 autocast with a gradient
scaler on CUDA and bfloat16 autocast on the CPU. By default (`amp=None`) it
is on only for a CPU with native bf16 (AMX or AVX512-BF16): elsewhere bf16 is
emulated and slower, so fp32 stays. Colour conversion and the losses always
run in float32; every metrics line names the precision used.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from retint.cpu import native_bf16_flags
from retint.errors import CheckpointError, InputError
from retint.model.checkpoint import generator_config_of, load_checkpoint, save_checkpoint
from retint.model.colour import (
    compose_rgb,
    denormalize_ab,
    grey_terms,
    normalize_ab,
    normalize_lightness,
    rgb_uint8_to_lab,
)
from retint.model.config import (
    RunOptions,
    TrainConfig,
    config_differences,
    config_to_dict,
    train_config_from_dict,
)
from retint.model.bins import annealed_mean, rebalancing_weights_by
from retint.model.data import RandomCropDataset, ValidationDataset, load_cut_outs, split_train_validation
from retint.model.distribution_training import (
    automatic_colouriser,
    colour_prior,
    distribution_loss,
    head_sized,
    simulate_global_hint,
    simulate_point_hints,
)
from retint.model.evaluate import evaluate, sample_grid
from retint.files import write_bytes_atomically, write_text_atomically
from retint.model.losses import (
    chroma_regulariser,
    discriminator_loss,
    generator_adversarial_loss,
    gradient_penalty,
    reconstruction_loss,
)
from retint.model.networks import build_generator
from retint.model.networks.patchgan import PatchGAN
from retint.model.photos import STATUS_GREY, STATUS_OK, find_images

SAMPLE_IMAGES = 4


def autocast_wanted(amp: bool | None, device: torch.device) -> bool:
    """--amp / --no-amp as given; by default only where the CPU does bf16 in hardware."""
    if amp is not None:
        return amp
    return device.type == "cpu" and bool(native_bf16_flags())


def resolve_device(name: str) -> torch.device:
    """The torch device --device names: `auto` is CUDA where torch sees a GPU, else the CPU; an
    unknown name, or `cuda` without a GPU, is an InputError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but torch sees no CUDA GPU")
    if name not in ("cpu", "cuda"):
        raise InputError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def a_quantile_per_sample(config: TrainConfig, degraded: torch.Tensor | None) -> float | torch.Tensor:
    """The a* quantile each sample fits: --a-quantile, or under
    --a-quantile-clean-only the median (0.5) for the samples `degraded` marks
    as damaged ([N, 1, 1, 1] then, on `degraded`'s device)."""
    if config.a_quantile_on_damaged or degraded is None or config.a_quantile == 0.5:
        return config.a_quantile
    return torch.where(degraded.view(-1, 1, 1, 1), 0.5, config.a_quantile).float()


def load_resumable(run_dir: Path) -> dict[str, Any]:
    """run_dir/last.pth, the checkpoint `--resume` continues: loaded once, by the caller, who
    also reads the run's config from it."""
    last = Path(run_dir) / "last.pth"
    if not last.exists():
        raise InputError(f"--resume: {last} does not exist; nothing to resume")
    return load_checkpoint(last)


def recorded_config(checkpoint: dict[str, Any]) -> TrainConfig:
    """The TrainConfig a checkpoint was trained with."""
    return train_config_from_dict(checkpoint.get("train_config", {}))


class Trainer:
    def __init__(self, config: TrainConfig, run_dir: Path, options: RunOptions,
                 resumed: dict[str, Any] | None = None):
        """A new run in `run_dir`, or (`resumed`: its last.pth, from `load_resumable`) the run there."""
        self.run_dir = Path(run_dir)
        self.options = options
        self.device = resolve_device(options.device)
        checkpoint = self._open_run(config, resumed)
        self.config = config

        paths = find_images(config.data)
        if not paths:
            raise InputError(f"no image files found in {', '.join(config.data)}")
        self.training_paths, self.validation_paths = split_train_validation(
            paths, config.val_fraction, config.seed, config.holdout)
        size = config.generator.render_size
        objects = load_cut_outs(Path(config.paste_objects)) if config.paste_objects else []
        self.training_set = RandomCropDataset(self.training_paths, size, config.crops_per_image, config.seed,
                                              degrade=config.degrade, progress=options.progress,
                                              objects=objects, paste_fraction=config.paste_fraction)
        self.validation_set = ValidationDataset(self.validation_paths, size)

        torch.manual_seed(config.seed)
        self.memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
        self.generator = build_generator(config.generator).to(self.device, memory_format=self.memory_format)
        self.distribution = config.generator.head == "distribution"
        # What validation, sample grids and the fixed-batch L1 call: L -> ab / 110.
        self.colouriser = automatic_colouriser(self.generator)
        norm = "none" if config.gan == "wgan-gp" else "batch"
        self.discriminator = PatchGAN(norm=norm).to(self.device, memory_format=self.memory_format)
        self.features = None
        if config.perceptual_weight:
            from retint.model.perceptual import ImageNetFeatures

            self.features = ImageNetFeatures().to(self.device, memory_format=self.memory_format)
        betas = (config.beta1, config.beta2)
        self.optimizer_g = torch.optim.Adam(self._generator_parameter_groups(), lr=config.lr, betas=betas)
        self.optimizer_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=betas)
        self.amp = autocast_wanted(options.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.device.type == "cuda")
        self.autocast_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.precision = f"{self.device.type} " + (
            f"{str(self.autocast_dtype).removeprefix('torch.')} autocast" if self.amp else "fp32")

        self.start_epoch = 0
        self.step = 0
        self.best = float("inf")
        self.history: list[dict[str, Any]] = []
        if checkpoint is not None:
            self._restore(checkpoint)
        elif config.init_from:
            self._initialise_from(Path(config.init_from))
        if self.distribution and checkpoint is None:
            # After --init-from, whose generator brings the weights of its own --rebalance;
            # a resumed run keeps its checkpoint's, fitted to the same photos.
            self._set_rebalancing_weights()
        self.fixed_batch = self._fixed_batch()

    def _set_rebalancing_weights(self) -> None:
        """Zhang's class rebalancing from the training crops' colour prior, into the generator's
        buffer (so the checkpoint carries them)."""
        centres = self.generator.bin_centres.cpu().numpy()
        prior = colour_prior([photo for photo, _ in self.training_set.photos], centres)
        weights = rebalancing_weights_by(prior, centres, self.config.rebalance, self.config.rebalance_by)
        self.generator.bin_weights.copy_(torch.from_numpy(weights))

    def _generator_parameter_groups(self) -> list[dict[str, Any]]:
        """The encoder (where the generator has one) at lr * encoder_lr_scale."""
        encoder = getattr(self.generator, "encoder", None)
        if encoder is None or self.config.encoder_lr_scale == 1.0:
            return [{"params": list(self.generator.parameters())}]
        encoder_ids = {id(parameter) for parameter in encoder.parameters()}
        rest = [p for p in self.generator.parameters() if id(p) not in encoder_ids]
        if self.config.encoder_lr_scale == 0.0:
            encoder.requires_grad_(False)
            return [{"params": rest}]
        return [{"params": rest},
                {"params": list(encoder.parameters()), "lr": self.config.lr * self.config.encoder_lr_scale}]

    # -- run folder -------------------------------------------------------

    def _open_run(self, config: TrainConfig, resumed: dict[str, Any] | None) -> dict[str, Any] | None:
        if resumed is None:
            if (self.run_dir / "last.pth").exists() or (self.run_dir / "metrics.jsonl").exists():
                raise InputError(
                    f"{self.run_dir} already holds a training run; pass --resume to continue it "
                    "or choose another output folder")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            return None
        differing = config_differences(config, recorded_config(resumed))
        if differing:
            changes = "; ".join(f"{name} {before!r} -> {after!r}" for name, (before, after) in differing.items())
            raise InputError(f"--resume: {self.run_dir} was trained with a different config ({changes}); "
                             "use the same options or a new output folder")
        return resumed

    def _initialise_from(self, path: Path) -> None:
        """Weights (not optimiser states or schedule) of another run's checkpoint."""
        source = load_checkpoint(path)
        wanted = self.config.generator
        found = generator_config_of(source)
        if (found.arch, found.base_channels) != (wanted.arch, wanted.base_channels):
            raise CheckpointError(f"--init-from {path}: its generator is {found.arch} width {found.base_channels}, "
                                  f"this run's is {wanted.arch} width {wanted.base_channels}")
        self.generator.load_state_dict(source["generator"])
        if "discriminator" in source:
            self.discriminator.load_state_dict(source["discriminator"])

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        self.generator.load_state_dict(checkpoint["generator"])
        self.discriminator.load_state_dict(checkpoint["discriminator"])
        self.optimizer_g.load_state_dict(checkpoint["optimizer_g"])
        self.optimizer_d.load_state_dict(checkpoint["optimizer_d"])
        if checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.start_epoch = int(checkpoint["epoch"])
        self.step = int(checkpoint["step"])
        self.best = float(checkpoint.get("best", float("inf")))
        metrics_path = self.run_dir / "metrics.jsonl"
        if metrics_path.exists():
            lines = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
            # Lines written after the checkpoint (a run killed mid-commit) are dropped.
            self.history = [line for line in lines if line.get("epoch", 0) <= self.start_epoch]

    def _fixed_batch(self) -> torch.Tensor:
        """Validation photos (else the first training photos), resized whole."""
        source = self.validation_set if len(self.validation_set) else ValidationDataset(
            self.training_paths[: self.config.batch_size], self.config.generator.render_size)
        images = [item["rgb"] for item in (source[i] for i in range(len(source)))
                  if int(item["status"]) == STATUS_OK]
        return torch.stack(images[: max(SAMPLE_IMAGES, self.config.batch_size)]) if images else torch.empty(0)

    # -- training ---------------------------------------------------------

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.amp)

    def _split_lab(self, lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lab [N,3,H,W] -> the generator's normalised L input and ab target."""
        return (normalize_lightness(lab[:, :1]).contiguous(memory_format=self.memory_format),
                normalize_ab(lab[:, 1:]).contiguous(memory_format=self.memory_format))

    def _input_lightness(self, clean: torch.Tensor, grey: torch.Tensor | None,
                         degraded: torch.Tensor | None) -> torch.Tensor:
        """The generator's input: the clean L, or for damaged samples the L of
        their damaged grey (g, g, g), as the engine computes it. `degraded` is
        on the device already."""
        if grey is None or degraded is None or not bool(degraded.any()):
            return clean
        damaged = normalize_lightness(grey_terms(grey.to(self.device)).lightness)
        chosen = torch.where(degraded.view(-1, 1, 1, 1), damaged, clean)
        return chosen.contiguous(memory_format=self.memory_format)

    def _generator_losses(self, lightness, target_ab, predicted_ab, adversarial: bool,
                          rgb: torch.Tensor, true_lightness: torch.Tensor,
                          degraded: torch.Tensor | None = None,
                          with_reconstruction: bool = True) -> dict[str, torch.Tensor]:
        """`rgb` is the true uint8 RGB and `true_lightness` its Lab L, both on
        the device; `degraded` marks the samples whose input was damaged.
        `with_reconstruction` False leaves out the L1 term (a distribution head has its own)."""
        config = self.config
        losses: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=predicted_ab.device)
        if with_reconstruction:
            losses["recon"] = reconstruction_loss(config.recon, predicted_ab.float(), target_ab,
                                                  a_quantile_per_sample(config, degraded))
            total = config.lambda_recon * losses["recon"]
        if config.chroma_weight:
            losses["chroma"] = chroma_regulariser(predicted_ab.float())
            total = total + config.chroma_weight * losses["chroma"]
        if self.features is not None:
            from retint.model.perceptual import perceptual_loss

            # The prediction composed with the true lightness: what a user sees.
            predicted_rgb = compose_rgb(true_lightness, denormalize_ab(predicted_ab.float()))
            with self._autocast():
                losses["perceptual"] = perceptual_loss(
                    self.features, predicted_rgb.contiguous(memory_format=self.memory_format),
                    (rgb.float() / 255.0).contiguous(memory_format=self.memory_format))
            total = total + config.perceptual_weight * losses["perceptual"]
        if adversarial:
            with self._autocast():
                logits = self.discriminator(lightness, predicted_ab)
            losses["g_adv"] = generator_adversarial_loss(config.gan, logits.float())
            total = total + losses["g_adv"]
        losses["g_total"] = total
        return losses

    def _discriminator_step(self, lightness, target_ab, predicted_ab) -> dict[str, torch.Tensor]:
        config = self.config
        self.discriminator.requires_grad_(True)
        fake = predicted_ab.detach()
        with self._autocast():
            real_logits = self.discriminator(lightness, target_ab)
            fake_logits = self.discriminator(lightness, fake)
        loss = discriminator_loss(config.gan, real_logits.float(), fake_logits.float())
        losses = {"d": loss}
        if config.gan == "wgan-gp":
            penalty = gradient_penalty(self.discriminator, lightness, target_ab, fake.float())
            losses["gp"] = penalty
            loss = loss + config.lambda_gp * penalty
        self.optimizer_d.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer_d)
        self.discriminator.requires_grad_(False)
        return losses

    def _train_step(self, rgb: torch.Tensor, adversarial: bool, grey: torch.Tensor | None = None,
                    degraded: torch.Tensor | None = None) -> dict[str, float]:
        rgb = rgb.to(self.device, non_blocking=True)
        # Moved once: both the generator's input and the a* quantile read it.
        degraded = None if degraded is None else degraded.to(self.device)
        lab = rgb_uint8_to_lab(rgb)
        clean_lightness, target_ab = self._split_lab(lab)
        # The discriminator judges chroma against the lightness it was drawn
        # for: the generator's own (possibly damaged) input.
        lightness = self._input_lightness(clean_lightness, grey, degraded)
        if self.distribution:
            losses = self._distribution_losses(lightness, target_ab, adversarial, degraded, rgb, lab[:, :1])
        else:
            with self._autocast():
                predicted_ab = self.generator(lightness)
            losses = {}
            if adversarial:
                losses |= self._discriminator_step(lightness, target_ab, predicted_ab)
            losses |= self._generator_losses(lightness, target_ab, predicted_ab, adversarial, rgb, lab[:, :1],
                                             degraded)
        self.optimizer_g.zero_grad(set_to_none=True)
        self.scaler.scale(losses["g_total"]).backward()
        self.scaler.step(self.optimizer_g)
        self.scaler.update()
        self.step += 1
        return {name: float(value.detach()) for name, value in losses.items()}

    def _distribution_losses(self, lightness: torch.Tensor, target_ab: torch.Tensor, adversarial: bool,
                             degraded: torch.Tensor | None, rgb: torch.Tensor,
                             true_lightness: torch.Tensor) -> dict[str, torch.Tensor]:
        """The distribution head's losses (the discriminator stepped where adversarial):
        simulated hints in, rebalanced cross-entropy on the bins; the PatchGAN (where adversarial), --decoded-l1-weight, --chroma-weight and
        --perceptual-weight judge the annealed-mean colours at the render size."""
        config = self.config
        true_ab = denormalize_ab(target_ab)
        hint_ab, hint_mask = simulate_point_hints(true_ab, config.hint_fraction)
        stride = self.generator.head_stride
        head_size = (lightness.shape[-2] // stride, lightness.shape[-1] // stride)
        small_truth = head_sized(true_ab, head_size)
        global_hint = (simulate_global_hint(small_truth, self.generator.bin_centres, config.global_hint_fraction)
                       if config.generator.global_hint else None)
        with self._autocast():
            logits = self.generator(lightness, hint_ab, hint_mask, global_hint)
        losses = {"recon": distribution_loss(logits, small_truth, self.generator.bin_centres,
                                             self.generator.bin_weights)}
        total = config.lambda_recon * losses["recon"]
        if adversarial or config.decoded_l1_weight or config.chroma_weight or self.features is not None:
            decoded = annealed_mean(logits.float(), self.generator.bin_centres)
            predicted_ab = normalize_ab(F.interpolate(decoded, size=lightness.shape[-2:], mode="bilinear",
                                                      align_corners=False))
            if config.decoded_l1_weight:
                losses["decoded_l1"] = F.l1_loss(predicted_ab, target_ab)
                total = total + config.decoded_l1_weight * losses["decoded_l1"]
            if adversarial:
                losses |= self._discriminator_step(lightness, target_ab, predicted_ab)
            # The regression's extra terms (chroma, perceptual, adversarial) on the decoded colours.
            extra = self._generator_losses(lightness, target_ab, predicted_ab, adversarial, rgb, true_lightness,
                                           degraded, with_reconstruction=False)
            losses |= {name: value for name, value in extra.items() if name != "g_total"}
            total = total + extra["g_total"]
        losses["g_total"] = total
        return losses

    @torch.no_grad()
    def fixed_batch_l1(self) -> float:
        """The generator's mean L1 error on the fixed batch's normalised a*b*, in eval mode (NaN without one):
        the same photos every epoch, so the figures compare across epochs."""
        if not len(self.fixed_batch):
            return float("nan")
        was_training = self.generator.training
        self.generator.eval()
        lightness, target_ab = self._split_lab(rgb_uint8_to_lab(self.fixed_batch.to(self.device)))
        value = float(torch.nn.functional.l1_loss(self.colouriser(lightness).float(), target_ab))
        self.generator.train(was_training)
        return value

    def run_epoch(self, epoch: int) -> dict[str, Any]:
        """Train epoch `epoch` (0-based), then validate and commit it."""
        config = self.config
        adversarial = epoch >= config.pretrain_epochs
        torch.manual_seed(_epoch_seed(config.seed, epoch))
        crop_size = config.crop_size(epoch)
        self.training_set.set_epoch(epoch, crop_size)
        loader = DataLoader(
            self.training_set, batch_size=config.batch_size, shuffle=True,
            generator=torch.Generator().manual_seed(_epoch_seed(config.seed, epoch)),
            num_workers=self.options.workers, pin_memory=self.device.type == "cuda",
            drop_last=False)
        l1_at_start = self.fixed_batch_l1()
        self.generator.train()
        self.discriminator.train()
        totals: dict[str, float] = {}
        steps = images = 0
        bad_status: list[int] = []
        started = time.perf_counter()
        phase = "gan" if adversarial else "warm-up"
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs} {phase}", unit="batch",
                   disable=not self.options.progress, leave=False)
        for batch in bar:
            ok = batch["status"] == STATUS_OK
            bad_status += batch["status"][~ok].tolist()
            if not bool(ok.any()):
                continue
            losses = self._train_step(batch["rgb"][ok], adversarial, batch["grey"][ok], batch["degraded"][ok])
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + value
            steps += 1
            images += int(ok.sum())
            rate = images / max(time.perf_counter() - started, 1e-9)
            bar.set_postfix({**{k: f"{v / steps:.3f}" for k, v in totals.items()}, "img/s": f"{rate:.1f}"})
        seconds = time.perf_counter() - started
        if images == 0:
            grey = sum(1 for status in bad_status if status == STATUS_GREY)
            raise InputError(
                f"no colour images to train on: of {len(self.training_paths)} training files, "
                f"{grey} crops were grey and {len(bad_status) - grey} unreadable")
        crops = self.config.crops_per_image
        record: dict[str, Any] = {
            "epoch": epoch + 1, "phase": phase, "step": self.step, "images": images,
            "crop_size": crop_size, "precision": self.precision,
            "skipped_grey_files": sum(1 for s in bad_status if s == STATUS_GREY) // crops,
            "skipped_unreadable_files": sum(1 for s in bad_status if s not in (STATUS_OK, STATUS_GREY)) // crops,
            "seconds": round(seconds, 3), "images_per_second": images / max(seconds, 1e-9),
            **{f"loss_{name}": value / steps for name, value in totals.items()},
            "fixed_batch_l1_start": l1_at_start, "fixed_batch_l1": self.fixed_batch_l1(),
        }
        validation = evaluate(self.colouriser, self._validation_batches(), self.device)
        record |= {f"val_{name}": value for name, value in validation.items()}
        self._commit(epoch, record)
        return record

    def _validation_batches(self):
        loader = DataLoader(self.validation_set, batch_size=self.config.batch_size,
                            num_workers=min(self.options.workers, 1))
        for batch in loader:
            ok = batch["status"] == STATUS_OK
            if bool(ok.any()):
                yield batch["rgb"][ok]

    def _commit(self, epoch: int, record: dict[str, Any]) -> None:
        if len(self.fixed_batch):
            grid = sample_grid(self.colouriser, self.fixed_batch[:SAMPLE_IMAGES], self.device)
            write_bytes_atomically(self.run_dir / "samples" / f"epoch-{epoch + 1:03d}.png", grid)
        self.history.append(record)
        write_text_atomically(self.run_dir / "metrics.jsonl",
                              "".join(json.dumps(line) + "\n" for line in self.history))
        improved = "val_ciede2000" in record and record["val_ciede2000"] < self.best
        if improved:
            self.best = record["val_ciede2000"]
        contents = self._checkpoint_contents(epoch + 1)
        if improved:
            save_checkpoint(self.run_dir / "best.pth", contents)
        save_checkpoint(self.run_dir / "last.pth", contents)

    def _checkpoint_contents(self, completed_epochs: int) -> dict[str, Any]:
        return {
            "generator_config": config_to_dict(self.config.generator),
            "train_config": config_to_dict(self.config),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "optimizer_g": self.optimizer_g.state_dict(),
            "optimizer_d": self.optimizer_d.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "epoch": completed_epochs,
            "step": self.step,
            "best": self.best,
        }

    def fit(self, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
        """Train the remaining epochs, handing each record to `on_epoch`, and stop after the first epoch
        that ends past `stop_after_minutes`; every epoch's record, resumed ones included."""
        started = time.monotonic()
        limit = self.options.stop_after_minutes
        for epoch in range(self.start_epoch, self.config.epochs):
            record = self.run_epoch(epoch)
            if on_epoch:
                on_epoch(record)
            if limit is not None and time.monotonic() - started > 60.0 * limit:
                break
        return self.history


def train(config: TrainConfig, run_dir: Path, options: RunOptions = RunOptions(),
          resumed: dict[str, Any] | None = None,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Train a new run in `run_dir`, or resume it from `resumed` (its last.pth, from
    `load_resumable`); returns every epoch's metrics record."""
    return Trainer(config, run_dir, options, resumed).fit(on_epoch)
