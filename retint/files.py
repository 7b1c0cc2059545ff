"""Atomic file writes for every retint package: a reader sees the old file or the whole new one.

On Linux the bytes go into an unnamed file (O_TMPFILE) in the destination
folder, which is linked into place only when complete: if the process is
killed, the kernel discards the unnamed file and nothing is left behind.
Where the filesystem cannot do that, a hidden `.retint-partial-*` file is
written and renamed into place; a later batch run removes any such
leftovers. Errors that mean the destination disk is unusable (full,
read-only, no permission) raise `OutputError`.

This lives in the root package because training, export and the batch
processor all write this way, and `retint.batch` may not import
`retint.model` (DESIGN.md's package direction).
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from retint.errors import OutputError

PARTIAL_PREFIX = ".retint-partial-"
_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400
FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG,
                          errno.EIO, errno.ENOTDIR})
_libc = ctypes.CDLL(None, use_errno=True)
_tmpfile_supported = hasattr(os, "O_TMPFILE")


def _umask() -> int:
    # Read once at import: os.umask can only be read by setting it.
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


def raise_if_fatal(error: OSError, folder: Path) -> None:
    """Errors that make a destination folder unusable become OutputError; others are re-raised."""
    if error.errno in FATAL_ERRNOS:
        raise OutputError(f"cannot write to {folder}: {error.strerror}") from error
    raise error


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A seekable binary file that appears at `path` only once the block completes.

    If the block raises (or the process dies), nothing appears and any old
    file at `path` is left as it was.
    """
    path = Path(path)
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
        raise_if_fatal(error, folder)
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
        raise_if_fatal(error, folder)
    finally:
        stream.close()
        if partial is not None:
            partial.unlink(missing_ok=True)


def write_bytes_atomically(path: Path | str, data: bytes) -> None:
    """Put `data` at `path` all at once (replacing any old file)."""
    with atomic_file(Path(path)) as stream:
        stream.write(data)


def write_text_atomically(path: Path | str, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))


def remove_partials(root: Path) -> int:
    """Delete `.retint-partial-*` leftovers of a killed run below `root`; returns how many."""
    removed = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if name.startswith(PARTIAL_PREFIX):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed
