"""A feature cache: the frozen ImageNet encoder's skips of many augmented crops, computed once.

Colour model v2 keeps the EfficientNet-Lite0 encoder frozen at its ImageNet
weights (Larsson, Maire and Shakhnarovich 2016: what things are comes from
ImageNet, only the mapping to colours is learned). Its features of a crop
then never change, so they are computed once here and the colour head trains
on them many times over (`head_training`), hundreds of times faster than a
pass through the encoder on a 2-core CPU.

A cache is a folder outside the repository:

- `cache.json`: what made it (the config below, the photos and their sizes,
  the encoder, the retint version, the crop count and the shard size);
- `shard-NNNNN/`: one folder per `shard_crops` crops, written whole under a
  temporary name and renamed, holding `s4 s8 s16 s32.npy` (the skips that
  the hypercolumn head reads, float16 [n, C, S/stride, S/stride]), `ab.npy`
  (the true a*b* averaged over 2x2 pixels, float16 [n, 2, S/2, S/2]: the
  targets, finer than the head's stride 4, sampled where the head is trained)
  and `ok.npy` (false for the crops of a photo that could not be decoded).

Crops are those of `RandomCropDataset` (seeded by index: random resized
crops, flips, pasted cut-outs, old-photo damage on the grey input), so a
shard is the same whenever it is made, and a killed build resumes at the
first missing shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F

from retint import __version__
from retint.errors import InputError
from retint.files import write_text_atomically
from retint.model.colour import grey_terms, normalize_lightness, rgb_uint8_to_lab
from retint.model.data import RandomCropDataset, load_cut_outs, photos_of_sources, split_train_validation
from retint.model.photos import find_images

CACHE_FORMAT = "retint-feature-cache"
CACHE_FORMAT_VERSION = 1
SKIP_NAMES = ("s4", "s8", "s16", "s32")
# Crops encoded per forward pass.
ENCODE_BATCH = 32


@dataclass(frozen=True)
class FeatureCacheConfig:
    """Everything that decides a cache's contents (one field per option of the command)."""

    data: tuple[str, ...]
    holdout: tuple[str, ...] = ()
    crop_size: int = 128
    crops_per_image: int = 24
    # Share of crops whose grey input carries old-photo damage (model/degrade.py).
    degrade: float = 0.2
    paste_objects: str = ""
    paste_fraction: float = 0.3
    seed: int = 0
    shard_crops: int = 512
    encoder: str = "efficientnet-lite0"


@dataclass(frozen=True)
class CachedFeatures:
    """A cache loaded into memory: the skips (float16 tensors, coarsest last) and the target ab."""

    skips: list[torch.Tensor]
    ab: torch.Tensor

    def __len__(self) -> int:
        return int(self.ab.shape[0])


def _manifest(config: FeatureCacheConfig, paths: list[Path], crops: int) -> dict[str, Any]:
    listing = [[str(path), path.stat().st_size] for path in paths]
    return {
        "format": CACHE_FORMAT,
        "format_version": CACHE_FORMAT_VERSION,
        "retint_version": __version__,
        "config": {**asdict(config), "data": list(config.data), "holdout": list(config.holdout)},
        "photos": listing,
        "photos_digest": hashlib.sha256(json.dumps(listing).encode()).hexdigest(),
        "crops": crops,
        "skips": list(SKIP_NAMES),
    }


def _encoder(config: FeatureCacheConfig) -> torch.nn.Module:
    """The frozen encoder, as colour model v2's generator holds it (ImageNet weights, eval mode);
    its `encode` gives the skips the cache stores."""
    from retint.model.bins import gamut_bin_centres
    from retint.model.networks.hypercolumn import HypercolumnColourNet

    model = HypercolumnColourNet(torch.from_numpy(gamut_bin_centres()), pretrained=True, encoder=config.encoder)
    return model.eval().requires_grad_(False)


def shard_name(index: int) -> str:
    """The folder name of shard `index`."""
    return f"shard-{index:05d}"


def build_feature_cache(config: FeatureCacheConfig, cache_dir: Path,
                        progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Make (or finish) the cache in `cache_dir`; returns its manifest. A folder made by another
    config or other photos is refused, never mixed."""
    cache_dir = Path(cache_dir)
    from retint.model.networks.efficientnet_lite import lite_variant

    lite_variant(config.encoder)  # an unknown encoder is refused before anything is written
    paths = find_images(config.data)
    paths, _ = split_train_validation(paths, 0.0, config.seed, config.holdout)
    if not paths:
        raise InputError(f"no training photos in {', '.join(config.data)} (after leaving out the held-out sources)")
    crops = len(paths) * config.crops_per_image
    manifest = _manifest(config, paths, crops)
    manifest_path = cache_dir / "cache.json"
    if manifest_path.exists():
        found = json.loads(manifest_path.read_text())
        if {k: found.get(k) for k in ("config", "photos_digest", "format_version")} != \
                {k: manifest[k] for k in ("config", "photos_digest", "format_version")}:
            raise InputError(f"{cache_dir} holds a feature cache made from other photos or settings; "
                             "choose another folder")
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(manifest_path, json.dumps(manifest, indent=1) + "\n")
    for leftover in cache_dir.glob(".tmp-shard-*"):
        shutil.rmtree(leftover, ignore_errors=True)

    shards = (crops + config.shard_crops - 1) // config.shard_crops
    missing = [index for index in range(shards) if not (cache_dir / shard_name(index)).is_dir()]
    if not missing:
        return manifest
    objects = load_cut_outs(Path(config.paste_objects)) if config.paste_objects else []
    dataset = RandomCropDataset(paths, config.crop_size, config.crops_per_image, config.seed,
                                degrade=config.degrade, progress=progress is not None, objects=objects,
                                paste_fraction=config.paste_fraction)
    encoder = _encoder(config)
    done = (shards - len(missing)) * config.shard_crops
    for index in missing:
        start, stop = index * config.shard_crops, min(crops, (index + 1) * config.shard_crops)
        arrays = _encode_range(dataset, encoder, start, stop)
        _write_shard(cache_dir, index, arrays)
        done = min(crops, done + (stop - start))
        if progress:
            progress(done, crops)
    return manifest


def _encode_range(dataset: RandomCropDataset, encoder: torch.nn.Module, start: int,
                  stop: int) -> dict[str, np.ndarray]:
    """The skips and head-sized target ab of crops start..stop-1 (unreadable photos' crops kept as
    zeros with a zero target: they are dropped when the cache is loaded)."""
    collected: dict[str, list[np.ndarray]] = {name: [] for name in (*SKIP_NAMES, "ab", "ok")}
    for first in range(start, stop, ENCODE_BATCH):
        samples = [dataset[i] for i in range(first, min(stop, first + ENCODE_BATCH))]
        rgb = torch.stack([sample["rgb"] for sample in samples])
        lab = rgb_uint8_to_lab(rgb)
        lightness = normalize_lightness(lab[:, :1])
        degraded = torch.stack([sample["degraded"] for sample in samples])
        if bool(degraded.any()):
            grey = torch.stack([sample["grey"] for sample in samples])
            damaged = normalize_lightness(grey_terms(grey).lightness)
            lightness = torch.where(degraded.view(-1, 1, 1, 1), damaged, lightness)
        with torch.no_grad():
            skips = encoder.encode(lightness)
        for name, skip in zip(SKIP_NAMES, skips):
            collected[name].append(skip.to(torch.float16).numpy())
        collected["ab"].append(F.avg_pool2d(lab[:, 1:], 2).to(torch.float16).numpy())
        collected["ok"].append(np.array([int(sample["status"]) == 0 for sample in samples]))
    return {name: np.concatenate(parts) for name, parts in collected.items()}


def _write_shard(cache_dir: Path, index: int, arrays: dict[str, np.ndarray]) -> None:
    temporary = cache_dir / f".tmp-{shard_name(index)}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    for name, array in arrays.items():
        with open(temporary / f"{name}.npy", "wb") as stream:
            np.save(stream, array)
            stream.flush()
            os.fsync(stream.fileno())
    os.replace(temporary, cache_dir / shard_name(index))


def load_feature_cache(cache_dir: Path, leave_out: tuple[str, ...] = ()) -> tuple[CachedFeatures, dict[str, Any]]:
    """Every complete shard of the cache in memory (crops of unreadable photos dropped), and its
    manifest. A cache with missing shards is refused: finish it first. `leave_out` names sources
    (as --holdout does) whose photos' crops are dropped too: a head trained without them can be
    tuned on them, away from the held-out sources that judge it."""
    cache_dir = Path(cache_dir)
    manifest_path = cache_dir / "cache.json"
    if not manifest_path.is_file():
        raise InputError(f"{cache_dir} is not a feature cache (no cache.json); build it first")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != CACHE_FORMAT or manifest.get("format_version", 0) > CACHE_FORMAT_VERSION:
        raise InputError(f"{cache_dir}: not a feature cache this retint can read")
    shard_crops = int(manifest["config"]["shard_crops"])
    shards = (int(manifest["crops"]) + shard_crops - 1) // shard_crops
    absent = [shard_name(i) for i in range(shards) if not (cache_dir / shard_name(i)).is_dir()]
    if absent:
        raise InputError(f"{cache_dir}: {len(absent)} of {shards} shards are missing (first {absent[0]}); "
                         "run the cache build again to finish it")
    folders = [cache_dir / shard_name(index) for index in range(shards)]
    kept = [torch.from_numpy(np.load(folder / "ok.npy")) for folder in folders]
    if leave_out:
        kept = _without_sources(kept, manifest, leave_out, shard_crops)
    total = sum(int(mask.sum()) for mask in kept)
    loaded: dict[str, torch.Tensor] = {}
    for name in (*SKIP_NAMES, "ab"):
        # Filled shard by shard into one tensor: the cache is a few GB, and a list of parts
        # joined at the end would need twice that.
        row = 0
        for folder, mask in zip(folders, kept):
            part = torch.from_numpy(np.load(folder / f"{name}.npy", mmap_mode="r")[mask.numpy()])
            if name not in loaded:
                loaded[name] = torch.empty((total, *part.shape[1:]), dtype=part.dtype)
            loaded[name][row: row + len(part)] = part
            row += len(part)
    return CachedFeatures(skips=[loaded[name] for name in SKIP_NAMES], ab=loaded["ab"]), manifest


def _without_sources(kept: list[torch.Tensor], manifest: dict[str, Any], sources: tuple[str, ...],
                     shard_crops: int) -> list[torch.Tensor]:
    """Each shard's kept-crop mask with the crops of `sources`' photos cleared. Crop i of the cache
    is of photo i % len(photos), in the manifest's order (`RandomCropDataset`)."""
    photos = [Path(path) for path, _ in manifest["photos"]]
    matched, unmatched = photos_of_sources(photos, sources)
    if unmatched:
        raise InputError(f"--tune-out {', '.join(unmatched)}: no photo of the cache is of that source")
    left_out = set(matched)
    if len(left_out) == len(photos):
        raise InputError("--tune-out takes every photo of the cache; nothing is left to train on")
    photo_left_out = torch.tensor([path in left_out for path in photos])
    masks = []
    for index, mask in enumerate(kept):
        crops = torch.arange(index * shard_crops, index * shard_crops + len(mask))
        masks.append(mask & ~photo_left_out[crops % len(photos)])
    return masks
