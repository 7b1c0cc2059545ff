"""Write outputs so that a reader (or a rerun) never sees half a file.

On Linux the bytes go into an unnamed file (O_TMPFILE) in the destination
folder, which is linked into place only when complete: if the process is
killed, the kernel discards the unnamed file and nothing is left behind.
Where the filesystem cannot do that, a hidden `.retint-partial-*` file is
written and renamed into place; a later run removes any such leftovers.
Errors that mean the output disk is unusable (full, read-only, no
permission) raise OutputError, which stops the run.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from retint.errors import RetintError

PARTIAL_PREFIX = ".retint-partial-"
_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400
_FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO,
                 errno.ENOTDIR}
_libc = ctypes.CDLL(None, use_errno=True)
_tmpfile_supported = hasattr(os, "O_TMPFILE")


class OutputError(RetintError):
    """The output folder cannot be written (full, read-only, not permitted)."""


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


FILE_MODE = 0o666 & ~_umask()


def _link_fd(fd: int, destination: Path) -> None:
    """Give the unnamed file `fd` the name `destination` (which must not exist)."""
    source = f"/proc/self/fd/{fd}".encode()
    if _libc.linkat(_AT_FDCWD, source, _AT_FDCWD, os.fsencode(destination), _AT_SYMLINK_FOLLOW) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(destination))


def _open_unnamed(folder: Path) -> int | None:
    """An O_TMPFILE descriptor in `folder`, or None where the filesystem cannot."""
    global _tmpfile_supported
    if not _tmpfile_supported:
        return None
    try:
        return os.open(folder, os.O_TMPFILE | os.O_RDWR, FILE_MODE)
    except OSError as error:
        if error.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            _tmpfile_supported = False
            return None
        raise


def _publish_unnamed(fd: int, folder: Path, path: Path) -> None:
    try:
        _link_fd(fd, path)
    except FileExistsError:
        # Overwriting: name it privately first, then rename over the old file.
        partial = folder / f"{PARTIAL_PREFIX}{secrets.token_hex(6)}"
        _link_fd(fd, partial)
        os.replace(partial, path)


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A seekable binary file that appears at `path` only once the block completes.

    If the block raises (or the process dies), nothing appears and any old
    file at `path` is left as it was.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = _open_unnamed(folder)
        partial = None
        if fd is None:
            partial = folder / f"{PARTIAL_PREFIX}{secrets.token_hex(6)}"
            fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        stream = os.fdopen(fd, "w+b")
    except OSError as error:
        _reraise(error, folder)
    try:
        yield stream
        stream.flush()
        os.fsync(stream.fileno())
        if partial is None:
            _publish_unnamed(stream.fileno(), folder, path)
        else:
            os.replace(partial, path)
            partial = None
    except OSError as error:
        _reraise(error, folder)
    finally:
        stream.close()
        if partial is not None:
            partial.unlink(missing_ok=True)


def _reraise(error: OSError, folder: Path) -> None:
    """Errors that make the output folder unusable become OutputError (they stop the run)."""
    if error.errno in _FATAL_ERRNOS:
        raise OutputError(f"cannot write to {folder}: {error.strerror}") from error
    raise error


def write_output(path: Path, data: bytes) -> None:
    """Put `data` at `path` all at once (replacing any old file)."""
    with atomic_file(path) as stream:
        stream.write(data)


def remove_partials(output_root: Path) -> int:
    """Delete `.retint-partial-*` leftovers of a killed run; returns how many."""
    removed = 0
    for folder, _, names in os.walk(output_root):
        for name in names:
            if name.startswith(PARTIAL_PREFIX):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed
