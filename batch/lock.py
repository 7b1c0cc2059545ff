"""One run per output folder: an exclusive lock on `OUT/.retint-batch.lock`.

flock locks die with their process, so a killed run never leaves a stale lock
(only the file, which the next run takes and removes). A run removes the file
when it ends, while it still holds the lock; so that a second run that opened
the file just before cannot then lock a file no longer in the folder (while a
third locks a new one), a run that gets the lock checks that the file it
locked is still the one at the path, and otherwise opens it again.

A `--ray` run's actors are processes of their own, and they can outlive a
driver killed with SIGKILL by a few seconds, still writing outputs and
journal lines. So each actor holds a shared lock on `OUT/.retint-batch.workers`
for its life (`WorkersLock`), and a run, once it holds the folder's lock and
before it looks at anything in the folder, takes that file's exclusive lock
(`wait_for_workers`): it waits until every earlier run's actor has stopped.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Callable

from retint.errors import InputError, OutputError

LOCK_NAME = ".retint-batch.lock"
WORKERS_LOCK_NAME = ".retint-batch.workers"
# How long a run waits for an earlier run's Ray actors to stop (Ray ends a dead driver's actors
# within seconds); past it the run stops with exit 2, as for a locked folder.
WORKERS_STOP_TIMEOUT_S = 120.0
_WORKERS_POLL_S = 0.1


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


def _open_at_path(path: Path, shared: bool, blocking: bool) -> int | None:
    """Open `path` (creating it) and flock it shared or exclusive; the fd, or None where a
    non-blocking lock is held by another process. Retries where the file it locked was removed from
    the path meanwhile (a run's `wait_for_workers` removes it when no actor holds it)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise OutputError(f"cannot write to {path.parent}: {error.strerror}") from error
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            at_path = os.stat(path, follow_symlinks=False)
            held = os.fstat(fd)
            if (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino):
                return fd
        except OSError:
            pass
        os.close(fd)


class WorkersLock:
    """A Ray actor's shared lock on OUT/.retint-batch.workers, held until `release` or the actor's end."""

    def __init__(self, output_root: Path):
        self._fd: int | None = _open_at_path(output_root / WORKERS_LOCK_NAME, shared=True, blocking=True)

    def release(self) -> None:
        """Unlock and close (a second call does nothing); the process's end does the same."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def wait_for_workers(output_root: Path, log: Callable[[str], None],
                     timeout_s: float = WORKERS_STOP_TIMEOUT_S) -> None:
    """Return once no process holds a `WorkersLock` on `output_root` (at once where none does),
    having removed the workers' lock file; InputError (exit 2) after `timeout_s`. Called by a run
    holding the folder's `OutputLock`, so no new actor of another run can start meanwhile."""
    deadline = time.monotonic() + timeout_s
    told = False
    while not remove_workers_lock_if_free(output_root):
        if time.monotonic() >= deadline:
            raise InputError(f"an earlier run's Ray workers still write into {output_root} after "
                             f"{timeout_s:g} s; stop them (ray stop) and rerun")
        if not told:
            log(f"waiting for an earlier run's Ray workers to stop writing into {output_root}")
            told = True
        time.sleep(_WORKERS_POLL_S)


def remove_workers_lock_if_free(output_root: Path) -> bool:
    """Remove OUT/.retint-batch.workers where no process holds a `WorkersLock` on it; True when it is
    gone (or never was), False while some actor still holds it."""
    path = output_root / WORKERS_LOCK_NAME
    if not os.path.lexists(path):
        return True
    fd = _open_at_path(path, shared=False, blocking=False)
    if fd is None:
        return False
    try:
        os.unlink(path)  # under the exclusive lock: no actor holds it, and a later one opens a new file
    except OSError:
        pass  # a read-only folder: the file stays, unlocked, and the next run finds it so
    finally:
        os.close(fd)
    return True
