"""Training data: find colour photos, split off whole held-out sources,
decode each photo once, random resized crops and flips, optional old-photo
damage on the grey input, photographic cut-outs pasted onto crops, and a
deterministic validation view.

A file that cannot be decoded, or that holds a grey image, is skipped and
counted, never a crash: the dataset yields a status code with every sample and
the trainer drops the bad ones from the batch. Augmentation is seeded by
(seed, epoch, index), so a sample is the same whichever worker decodes it and
whether or not the run was interrupted.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from retint.errors import InputError
from retint.model.degrade import degrade_grey, grey_from_rgb
from retint.model.photos import decode_colour, find_images, resize_for_validation

# Random resized crop: fraction of the image area and aspect ratio range.
CROP_AREA_RANGE = (0.25, 1.0)
CROP_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
# Photos are kept in memory shrunk to this many render sizes on their longest
# side: a crop covers at least a quarter of the area, so a crop is still
# downscaled (never upscaled) to the render size, and 400 photos take about
# 250 MB instead of being decoded again for every crop.
KEPT_SIDE_IN_RENDER_SIZES = 2
# A pasted cut-out's longest side, as a share of the crop's side.
PASTE_SIZE_RANGE = (0.25, 0.6)
# Cut-outs are kept with their longest side at most this many pixels.
CUT_OUT_KEPT_SIDE = 256


def split_train_validation(paths: list[Path], val_fraction: float, seed: int,
                           holdout: tuple[str, ...] = ()) -> tuple[list[Path], list[Path]]:
    """Training and validation photos.

    With `holdout`, validation is every photo of the held-out sources: a
    photo belongs to source P when its file name starts with P or one of its
    folders is named P. Whole sources are held out because a random split
    leaks near-duplicates (frames of one video, views of one place) into
    training and flatters the figures. Without it, a seeded random split by
    `val_fraction` (at least one photo when the fraction is positive).
    """
    if holdout:
        validation, unmatched = photos_of_sources(paths, holdout)
        if unmatched:
            raise InputError(f"--holdout {', '.join(unmatched)}: no photo's name starts with it "
                             "and no folder is named so")
        held = set(validation)
        training = [path for path in paths if path not in held]
        if not training:
            raise InputError("--holdout takes every photo; nothing is left to train on")
        return training, validation
    if val_fraction <= 0 or len(paths) < 2:
        return list(paths), []
    count = min(len(paths) - 1, max(1, round(len(paths) * val_fraction)))
    order = np.random.default_rng(seed).permutation(len(paths))
    validation = sorted(paths[i] for i in order[:count])
    training = sorted(paths[i] for i in order[count:])
    return training, validation


def photos_of_sources(paths: list[Path], sources: tuple[str, ...]) -> tuple[list[Path], list[str]]:
    """(the photos of `sources`, the sources no photo belongs to). A photo belongs to source P
    when its file name starts with P or one of its folders is named P."""
    chosen = [path for path in paths if any(_in_source(path, source) for source in sources)]
    unmatched = [source for source in sources if not any(_in_source(path, source) for path in paths)]
    return chosen, unmatched


def _in_source(path: Path, prefix: str) -> bool:
    return path.name.startswith(prefix) or prefix in path.parent.parts


def load_cut_outs(folder: Path) -> list[np.ndarray]:
    """The RGBA cut-outs (uint8 [H,W,4], at most CUT_OUT_KEPT_SIDE on a side) of `folder`;
    files without an alpha channel or that do not decode are skipped."""
    if not folder.is_dir():
        raise InputError(f"--paste-objects {folder}: not a folder")
    cut_outs = []
    for path in find_images([str(folder)]):
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None or image.ndim != 3 or image.shape[2] != 4:
            continue
        cut_outs.append(shrink_to_side(cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA), CUT_OUT_KEPT_SIDE))
    if not cut_outs:
        raise InputError(f"--paste-objects {folder}: no image with an alpha channel in it")
    return cut_outs


def paste_cut_out(crop: np.ndarray, cut_out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`crop` (RGB uint8 [S,S,3]) with the RGBA `cut_out` alpha-blended at a random size and place."""
    size = crop.shape[0]
    height, width = cut_out.shape[:2]
    scale = rng.uniform(*PASTE_SIZE_RANGE) * size / max(height, width)
    new_w, new_h = max(2, round(width * scale)), max(2, round(height * scale))
    resized = cv2.resize(cut_out, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        resized = resized[:, ::-1]
    top = int(rng.integers(0, size - new_h + 1))
    left = int(rng.integers(0, crop.shape[1] - new_w + 1))
    alpha = resized[..., 3:].astype(np.float32) / 255.0
    region = crop[top: top + new_h, left: left + new_w].astype(np.float32)
    blended = region * (1.0 - alpha) + resized[..., :3].astype(np.float32) * alpha
    pasted = crop.copy()
    pasted[top: top + new_h, left: left + new_w] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return pasted


def random_resized_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop (area share CROP_AREA_RANGE, aspect CROP_ASPECT_RANGE) resized to size x size
    and mirrored half the time; the whole image where no such crop fits."""
    height, width = image.shape[:2]
    area = height * width
    for _ in range(10):
        target_area = area * rng.uniform(*CROP_AREA_RANGE)
        aspect = math.exp(rng.uniform(math.log(CROP_ASPECT_RANGE[0]), math.log(CROP_ASPECT_RANGE[1])))
        crop_w = int(round(math.sqrt(target_area * aspect)))
        crop_h = int(round(math.sqrt(target_area / aspect)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            break
    else:  # a very elongated image: take the central square-ish region
        crop_h, crop_w = height, width
        top = left = 0
    crop = image[top: top + crop_h, left: left + crop_w]
    interpolation = cv2.INTER_AREA if crop_h >= size and crop_w >= size else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (size, size), interpolation=interpolation)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return crop


def shrink_for_training(image: np.ndarray, render_size: int) -> np.ndarray:
    """The photo with its longest side at most KEPT_SIDE_IN_RENDER_SIZES render sizes."""
    return shrink_to_side(image, KEPT_SIDE_IN_RENDER_SIZES * render_size)


def shrink_to_side(image: np.ndarray, longest: int) -> np.ndarray:
    """`image` area-downscaled so that its longest side is at most `longest` (never enlarged)."""
    height, width = image.shape[:2]
    if max(height, width) <= longest:
        return image
    scale = longest / max(height, width)
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _to_sample(rgb: np.ndarray | None, status: int, size: int,
               damaged_grey: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """rgb uint8 [3,S,S], status, and the damaged grey input uint8 [1,S,S] with
    `degraded` true, or zeros and false (the input is then the clean L of rgb)."""
    if rgb is None:
        tensor = torch.zeros(3, size, size, dtype=torch.uint8)
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    degraded = damaged_grey is not None
    grey = (torch.from_numpy(np.ascontiguousarray(damaged_grey))[None] if degraded
            else torch.zeros(1, *tensor.shape[1:], dtype=torch.uint8))
    return {"rgb": tensor, "status": torch.tensor(status), "grey": grey, "degraded": torch.tensor(degraded)}


class RandomCropDataset(Dataset):
    """`crops_per_image` seeded random crops of each training photo per epoch.

    Every photo is decoded once, here, and kept shrunk (`shrink_for_training`);
    DataLoader workers share the decoded photos. With `degrade` > 0, that
    share of the crops also carry a damaged grey version of themselves.
    """

    def __init__(self, paths: list[Path], size: int, crops_per_image: int, seed: int,
                 degrade: float = 0.0, progress: bool = False, objects: list[np.ndarray] | None = None,
                 paste_fraction: float = 0.0):
        self.paths = paths
        self.size = size
        self.render_size = size
        self.crops_per_image = crops_per_image
        self.seed = seed
        self.degrade = degrade
        self.objects = objects or []
        self.paste_fraction = paste_fraction if self.objects else 0.0
        self.epoch = 0
        self.photos: list[tuple[np.ndarray | None, int]] = []
        from tqdm import tqdm

        for path in tqdm(paths, desc="decoding training photos", unit="photo", disable=not progress,
                         leave=False):
            rgb, status = decode_colour(path)
            self.photos.append((shrink_for_training(rgb, size) if rgb is not None else None, status))

    def set_epoch(self, epoch: int, size: int | None = None) -> None:
        """Workers are re-created every epoch (no persistent workers), so they see this.
        `size` is this epoch's crop size (progressive resizing)."""
        self.epoch = epoch
        self.size = size or self.render_size

    def __len__(self) -> int:
        return len(self.paths) * self.crops_per_image

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rgb, status = self.photos[index % len(self.paths)]
        damaged = None
        if rgb is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            rgb = random_resized_crop(rgb, self.size, rng)
            if self.paste_fraction and rng.random() < self.paste_fraction:
                rgb = paste_cut_out(rgb, self.objects[int(rng.integers(len(self.objects)))], rng)
            if self.degrade and rng.random() < self.degrade:
                damaged = degrade_grey(grey_from_rgb(rgb), rng)
        return _to_sample(rgb, status, self.size, damaged)


class ValidationDataset(Dataset):
    """Each validation photo once, resized whole to size x size."""

    def __init__(self, paths: list[Path], size: int):
        self.paths = paths
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rgb, status = decode_colour(self.paths[index])
        if rgb is not None:
            rgb = resize_for_validation(rgb, self.size)
        return _to_sample(rgb, status, self.size)
