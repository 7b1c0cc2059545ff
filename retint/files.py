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
`retint.model` (ARCHITECTURE.md's package direction).
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from retint.errors import OutputError

PARTIAL_PREFIX = ".retint-partial-"
# Exactly the names atomic_file gives its partial files: a user's `.retint-partial-scan7.jpg` is not one.
PARTIAL_NAME = re.compile(re.escape(PARTIAL_PREFIX) + r"[0-9a-f]{12}")
_AT_FDCWD = -100
_AT_SYMLINK_FOLLOW = 0x400
# ENOTDIR and EEXIST are not here: a file where one output's folder should be is that output's
# problem (its input's failed line), not the whole output disk's.
FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG,
                          errno.EIO})
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


def _publish_unnamed(fd: int, folder: Path, path: Path, replace: bool) -> None:
    try:
        _link_fd(fd, path)
    except FileExistsError:
        if not replace:
            raise
        # Overwriting: name it privately first, then rename over the old file.
        partial = folder / f"{PARTIAL_PREFIX}{secrets.token_hex(6)}"
        _link_fd(fd, partial)
        try:
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)  # a folder at `path`, say: leave nothing behind
            raise


def raise_if_fatal(error: OSError, folder: Path) -> None:
    """Errors that make a destination folder unusable become OutputError; others are re-raised."""
    if error.errno in FATAL_ERRNOS:
        raise OutputError(f"cannot write to {folder}: {error.strerror}") from error
    raise error


@contextmanager
def atomic_file(path: Path, replace: bool = True,
                before_publish: Callable[[os.stat_result], None] | None = None) -> Iterator[BinaryIO]:
    """A seekable binary file that appears at `path` only once the block completes.

    If the block raises (or the process dies), nothing appears and any old
    file at `path` is left as it was. With `replace` False, a file that is
    at `path` by then is never replaced: FileExistsError instead.
    `before_publish` is called with the complete file's stat (its device and
    inode stay the same once it is named), just before it appears at `path`.
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
        if before_publish is not None:
            before_publish(os.fstat(stream.fileno()))
        if partial is None:
            _publish_unnamed(stream.fileno(), folder, path, replace)
        elif replace:
            os.replace(partial, path)
            partial = None
        else:
            os.link(partial, path)  # fails with FileExistsError rather than replace a file
    except OSError as error:
        raise_if_fatal(error, folder)
    finally:
        _close_quietly(stream)
        if partial is not None:
            partial.unlink(missing_ok=True)


def _close_quietly(stream: BinaryIO) -> None:
    """Close without raising: on a full disk, close() flushes what is still buffered and fails
    with ENOSPC again, which would replace the OutputError already on its way (or, after a
    successful publish, there is nothing left to lose)."""
    try:
        stream.close()
    except OSError:
        try:
            os.close(stream.fileno())
        except (OSError, ValueError):
            pass


def write_bytes_atomically(path: Path | str, data: bytes, replace: bool = True,
                           before_publish: Callable[[os.stat_result], None] | None = None) -> None:
    """Put `data` at `path` all at once (replacing any old file unless `replace` is False);
    `before_publish` as in `atomic_file`."""
    with atomic_file(Path(path), replace, before_publish) as stream:
        stream.write(data)


def write_text_atomically(path: Path | str, text: str) -> None:
    """Put `text` at `path` as UTF-8, all at once, replacing any old file."""
    write_bytes_atomically(path, text.encode("utf-8"))


def remove_partials(root: Path, keep_out: tuple[Path, ...] = ()) -> int:
    """Delete the partial files a killed run left below `root`; returns how many.

    Only names atomic_file itself makes (PARTIAL_NAME) and only regular
    files; folders in `keep_out` (the sources, where one lies inside the
    output tree) and everything below them are never entered: a user's
    file there is never retint's to delete, whatever its name.
    """
    kept_out = {os.path.realpath(folder) for folder in keep_out}
    removed = 0
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if os.path.realpath(os.path.join(folder, name)) not in kept_out]
        for name in names:
            path = Path(folder, name)
            if PARTIAL_NAME.fullmatch(name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed += 1
    return removed
