"""retint.model: colour maths, networks, losses, data, training, checkpoints.

With `retint.export` and the benchmarks that train or compare against PyTorch,
the only code that imports torch; runtime, batch and serve never do (CI's
import-linter contracts enforce it).

    from retint.model import load_generator
    generator = load_generator("runs/my-model/best.pth")   # eval mode, rebuilt from the file alone
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_generator"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `colorize-train --help` and the install advice
    # for a missing torch must work without importing torch here.
    if name == "load_generator":
        from retint.model.checkpoint import load_generator

        return load_generator
    raise AttributeError(f"module 'retint.model' has no attribute {name!r}")
