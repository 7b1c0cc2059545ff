"""Helpers for the serve tests: photos as file bytes, uploads of several files, and how colourful
an answer is."""

from __future__ import annotations

import io
import uuid

import numpy as np
from PIL import Image

from retint.benchmarks.serve_load import Answer, request


def encoded(pixels: np.ndarray, image_format: str = "JPEG", mode: str | None = None, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, format=image_format, **options)
    return buffer.getvalue()


def colourfulness(data: bytes) -> float:
    """Mean max-minus-min over the RGB channels: 0 for a grey image."""
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean())


def post_files(base_url: str, files: dict[str, tuple[str, bytes]], fields: dict[str, str] | None = None,
               route: str = "/colorize", query: str = "") -> Answer:
    """POST the text `fields`, then each file of `files` (field name -> (file name, bytes)), as one
    multipart/form-data body to the server's `route`."""
    boundary = uuid.uuid4().hex
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
             for name, value in (fields or {}).items()]
    parts += [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
              f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
              for name, (filename, data) in files.items()]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return request(f"{base_url}{route}{query}", "POST", body,
                   {"Content-Type": f"multipart/form-data; boundary={boundary}"})
