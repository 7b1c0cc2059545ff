"""Error types shared by every retint package.

Library code raises these; the command-line entry points turn them into one
line on stderr and the error's `exit_code`. Exit codes (also in README.md):

    0  success
    1  unexpected internal error (a bug: please report it)
    2  bad input: arguments, data, checkpoint, engine file, image
    3  partial result: some work could not be done here (a batch with failed
       files, TensorRT or a GPU missing for `export-trt`)
    4  a parity gate failed (the exported graph disagrees with PyTorch)
  130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import sys
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


def missing_extra_message(command: str, what: str, error: ImportError) -> str:
    """The one line a command prints when an optional package is missing."""
    return f"{command}: error: {what} needs the 'train' extra (missing {error.name}): {TRAIN_EXTRA_HINT}"


@contextmanager
def exits_when_extra_missing(command: str, what: str) -> Iterator[None]:
    """Around a command's imports of optional packages: a missing one prints
    `missing_extra_message` and exits 2; an ImportError inside retint propagates (a bug)."""
    try:
        yield
    except ImportError as error:
        if not is_missing_dependency(error):
            raise
        print(missing_extra_message(command, what, error), file=sys.stderr)
        sys.exit(2)


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
    """TensorRT, CUDA or a GPU is not available where it was asked for."""

    exit_code = 3
