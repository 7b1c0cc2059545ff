"""`colorize-serve` configuration: one field per option."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class ServeConfig:
    engine: Path | None = None  # None: the bundled default model
    backend: str = "auto"  # auto, onnxruntime, openvino or tensorrt (retint.runtime.backends)
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_mb: int = 50
    max_pixels: int = 50_000_000
    streams: int | None = None  # engine calls at once; None: the inference plan's
    queue: int = 8  # requests that may wait for a stream before the server answers 503
    upload_timeout: float = 30.0  # seconds a request's head, then its body, may take to arrive (else 408)
    max_uploads: int = 64  # request bodies that may arrive at once before the server answers 503
    quality: int = 95  # JPEG / WebP quality

    @property
    def max_upload_bytes(self) -> int:
        """--max-upload-mb in bytes."""
        return self.max_upload_mb * MEGABYTE
