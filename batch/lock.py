"""One run per output folder: an exclusive lock on `OUT/.retint-batch.lock`.

flock locks die with their process, so a killed run never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from retint.errors import InputError, OutputError

LOCK_NAME = ".retint-batch.lock"


class OutputLock:
    def __init__(self, output_root: Path):
        self.path = output_root / LOCK_NAME
        self._fd: int | None = None
        try:
            output_root.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise OutputError(f"cannot write to {output_root}: {error.strerror}") from error
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise InputError(f"another colorize-batch run (pid {holder}) is writing into {output_root}") from error
        try:  # the pid only names the holder in the message above: a full disk must not stop the run here
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass

    def release(self) -> None:
        """Unlock and close the lock file (it stays on disk); a second call does nothing."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
