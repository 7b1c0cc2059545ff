"""The file types retint reads: one list for training, export and the batch processor."""

from __future__ import annotations

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})


def is_image(name: str) -> bool:
    return name[name.rfind("."):].lower() in IMAGE_SUFFIXES if "." in name else False


def is_video(name: str) -> bool:
    return name[name.rfind("."):].lower() in VIDEO_SUFFIXES if "." in name else False
