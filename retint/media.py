"""The file types retint reads: one list for training, export and the batch processor."""

from __future__ import annotations

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})
# colorize-batch also colours GIFs (the first frame) and AVIF (both through Pillow) and, with
# pillow-heif installed, HEIC/HEIF phone photos; training and export keep to IMAGE_SUFFIXES.
BATCH_IMAGE_SUFFIXES = IMAGE_SUFFIXES | {".gif", ".avif", ".heic", ".heif"}
# Image-like names colorize-batch does not read: each gets a `failed: unsupported format` line, so
# nothing in an archive vanishes unaccounted for.
UNSUPPORTED_IMAGE_SUFFIXES = frozenset({
    ".jp2", ".j2k", ".jpf", ".jpx", ".jxl", ".psd", ".psb", ".xcf", ".tga", ".pcx", ".ico", ".icns", ".svg",
    ".eps", ".ppm", ".pgm", ".pbm", ".pnm", ".jfif", ".jpe", ".raw", ".dng", ".cr2", ".cr3", ".crw", ".nef",
    ".nrw", ".arw", ".srf", ".sr2", ".orf", ".rw2", ".raf", ".pef", ".srw", ".x3f", ".3fr", ".erf", ".kdc",
    ".mrw", ".djvu", ".wdp", ".jxr", ".hdr", ".exr", ".dcm", ".fits", ".emf", ".wmf",
})

