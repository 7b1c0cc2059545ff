"""Reports: a Markdown table on stdout and the same figures as JSON."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any


def environment() -> dict[str, Any]:
    """The machine and software the figures come from: Python, ONNX Runtime, torch, the CPU's model
    and flags, any GPU, retint's version."""
    import onnxruntime

    info = {"python": platform.python_version(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "onnxruntime": onnxruntime.__version__}
    try:
        import os

        info["cpu_count"] = os.cpu_count()
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    from retint import __version__
    from retint.cpu import cpu_model, speed_flags

    info["cpu_model"] = cpu_model()
    info["cpu_flags"] = " ".join(speed_flags())
    info["retint"] = __version__
    return info


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table of `rows` under `headers`, floats to two decimals."""
    def cell(value: Any) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path | None, report: dict[str, Any]) -> None:
    """Write `report` to `path` as indented JSON, atomically; nothing when `path` is None."""
    if path is None:
        return
    from retint.files import write_text_atomically

    write_text_atomically(Path(path), json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")
