"""One run per output folder: an exclusive lock on `OUT/.retint-batch.lock`.

flock locks die with their process, so a killed run never leaves a stale lock
(only the file, which the next run takes and removes). A run removes the file
when it ends, while it still holds the lock; so that a second run that opened
the file just before cannot then lock a file no longer in the folder (while a
third locks a new one), a run that gets the lock checks that the file it
locked is still the one at the path, and otherwise opens it again.
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
        except OSError as error:
            raise OutputError(f"cannot write to {output_root}: {error.strerror}") from error
        while self._fd is None:
            fd = self._open(output_root)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise InputError(f"another colorize-batch run (pid {holder}) is writing into {output_root}") from error
            if self._is_at_path(fd):
                self._fd = fd
            else:  # the run that held it removed it on its way out: lock the file at the path now
                os.close(fd)
        try:  # the pid only names the holder in the message above: a full disk must not stop the run here
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, str(os.getpid()).encode(), 0)
        except OSError:
            pass

    def _open(self, output_root: Path) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise OutputError(f"cannot write to {output_root}: {error.strerror}") from error

    def _is_at_path(self, fd: int) -> bool:
        """Whether the open file `fd` is still the file at the lock's path."""
        try:
            at_path = os.stat(self.path, follow_symlinks=False)
        except OSError:
            return False
        held = os.fstat(fd)
        return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        """Remove the lock file (while still holding the lock, and only where it is still this run's
        file), then unlock and close it; a second call does nothing."""
        if self._fd is None:
            return
        try:
            if self._is_at_path(self._fd):
                os.unlink(self.path)
        except OSError:
            pass  # a read-only or vanished folder: the file stays, and the next run takes it as before
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
