"""Find the inputs: files and folders, recursive, in a stable sorted order.

Suffixes match in any letter case. Symbolic links to folders are followed,
but a folder reached twice (a link loop, or two links to one place) is
walked once. The output folder is never read as input, even inside a source.

Nothing vanishes: a folder that cannot be listed, a dangling or looping
link with an image or video suffix, and a special file (a FIFO, a device)
with such a suffix each become an input with a `problem`, which the run
records as `failed` with that reason.

Identity: an input is named in the manifest by its canonical path, the real
path of its folder plus its own name, so `b`, `./b` and `/abs/path/b` name
the same inputs, while two links to one photo stay two inputs.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from retint.errors import InputError
from retint.media import UNSUPPORTED_IMAGE_SUFFIXES


@dataclass(frozen=True)
class Task:
    source: Path  # the input as found (what is opened)
    relative: Path  # its path in the output tree (before collision renaming)
    identity: str  # canonical absolute path: the manifest's `source`
    problem: str = ""  # set: this input cannot be read at all (the manifest's reason)
    final: bool = False  # the problem is the file's own (its format): a rerun keeps the line while it is unchanged


def identity_of(path: Path) -> str:
    """The canonical name of an input, however the path to it was spelled."""
    return os.path.join(os.path.realpath(path.parent), path.name)


def _stat_problem(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symbolic link loop: it never reaches a file"
    return f"cannot examine it ({error.strerror or error})"


def _walk(root: Path, relative: Path, suffixes: frozenset[str], skip: Path,
          seen: set[Path]) -> Iterator[Task]:
    real = root.resolve()
    if real in seen or real == skip:
        return
    seen.add(real)
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError as error:
        yield Task(root, relative, identity_of(root),
                   f"cannot list this folder ({error.strerror or error}): the files in it were not coloured")
        return
    for entry in entries:
        path = Path(entry.path)
        wanted = path.suffix.lower() in suffixes
        try:
            if entry.is_dir(follow_symlinks=True):
                yield from _walk(path, relative / entry.name, suffixes, skip, seen)
                continue
            if path.suffix.lower() in UNSUPPORTED_IMAGE_SUFFIXES and not wanted:
                yield Task(path, relative / entry.name, identity_of(path), unsupported(path), final=True)
                continue
            if not wanted:
                continue
            if entry.is_file(follow_symlinks=True):
                yield Task(path, relative / entry.name, identity_of(path))
            elif entry.is_symlink() and not path.exists():
                target = os.readlink(path)
                yield Task(path, relative / entry.name, identity_of(path),
                           f"dangling symbolic link: its target {target} does not exist")
            else:
                yield Task(path, relative / entry.name, identity_of(path),
                           "not a regular file (a FIFO, socket or device)")
        except OSError as error:
            if wanted or entry.is_symlink():
                yield Task(path, relative / entry.name, identity_of(path), _stat_problem(error))


def unsupported(path: Path) -> str:
    """The failure reason of a file in an image format colorize-batch does not read."""
    return f"unsupported format: colorize-batch does not read {path.suffix.lower()} files"


def distinct_sources(sources: tuple[Path, ...]) -> tuple[Path, ...]:
    """The sources with each place named once: `archive`, `./archive` and `/abs/archive` are one source."""
    seen: set[str] = set()
    distinct = []
    for source in sources:
        real = os.path.realpath(source)
        if real not in seen:
            seen.add(real)
            distinct.append(source)
    return tuple(distinct)


def check_sources(sources: tuple[Path, ...], output: Path) -> None:
    """Refuse, before anything is created, sources that cannot be used with this output folder."""
    if not sources:
        raise InputError("no sources given")
    sources = distinct_sources(sources)
    out = Path(os.path.realpath(output))
    names = [source.name or Path(os.path.realpath(source)).name for source in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if len(sources) > 1 and duplicates:
        raise InputError(f"several sources are named {', '.join(duplicates)}; their outputs would collide")
    for source in sources:
        if not os.path.lexists(source):
            raise InputError(f"source not found: {source}")
        real = Path(os.path.realpath(source))
        if source.is_dir() and real == out:
            raise InputError(f"the output folder {output} is the source folder {source}: the outputs would land "
                             f"on the originals; choose another -o")
        if real != out and real.is_relative_to(out):
            # Outputs would be written among the originals, and a rerun would read them back as inputs.
            raise InputError(f"the output folder {output} contains the source {source}: choose an -o outside "
                             f"the sources")


def find_tasks(sources: tuple[Path, ...], output: Path, suffixes: frozenset[str]) -> list[Task]:
    """Every input with its output-relative path, each input once.

    One folder source mirrors into the output folder itself; with several
    sources, each gets a subfolder named after it. A file source keeps its
    name. A file named both as a source and inside a folder source is one
    input (its first appearance).
    """
    check_sources(sources, output)
    sources = distinct_sources(sources)
    skip = Path(os.path.realpath(output))
    names = [source.name or Path(os.path.realpath(source)).name for source in sources]
    tasks: list[Task] = []
    seen: set[Path] = set()
    for source, name in zip(sources, names):
        prefix = Path() if len(sources) == 1 else Path(name)
        if source.is_dir():
            tasks.extend(_walk(source, prefix, suffixes, skip, seen))
            continue
        relative = Path(source.name)
        if source.is_file():
            tasks.append(Task(source, relative, identity_of(source)))
        else:  # named on the command line, so wanted whatever its suffix
            problem = "dangling symbolic link: its target does not exist" if source.is_symlink() else \
                "not a regular file (a FIFO, socket or device)"
            tasks.append(Task(source, relative, identity_of(source), problem))
    identities: set[str] = set()
    distinct = []
    for task in tasks:
        if task.identity not in identities:
            identities.add(task.identity)
            distinct.append(task)
    return distinct
