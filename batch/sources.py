"""Find the inputs: files and folders, recursive, in a stable sorted order.

Suffixes match in any letter case. Symbolic links to folders are followed,
but a folder reached twice (a link loop, or two links to one place) is
walked once. The output folder is never read as input, even inside a source.
Each input is paired with its output path: a mirror of its source's tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from retint.errors import InputError


@dataclass(frozen=True)
class Task:
    source: Path  # the input file
    relative: Path  # its path in the output tree


def _walk(root: Path, suffixes: frozenset[str], skip: Path, seen: set[Path]) -> Iterator[Path]:
    real = root.resolve()
    if real in seen or real == skip:
        return
    seen.add(real)
    try:
        entries = sorted(os.scandir(root), key=lambda entry: entry.name)
    except OSError:
        return  # an unreadable folder: nothing in it can be listed
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_dir(follow_symlinks=True):
                yield from _walk(path, suffixes, skip, seen)
            elif entry.is_file(follow_symlinks=True) and path.suffix.lower() in suffixes:
                yield path
        except OSError:
            continue


def find_tasks(sources: tuple[Path, ...], output: Path, suffixes: frozenset[str]) -> list[Task]:
    """Every input with its output-relative path.

    One folder source mirrors into the output folder itself; with several
    sources, each gets a subfolder named after it. A file source keeps its name.
    """
    if not sources:
        raise InputError("no sources given")
    skip = output.resolve()
    names = [source.name or source.resolve().name for source in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if len(sources) > 1 and duplicates:
        raise InputError(f"several sources are named {', '.join(duplicates)}; their outputs would collide")
    tasks: list[Task] = []
    seen: set[Path] = set()
    for source, name in zip(sources, names):
        if not source.exists():
            raise InputError(f"source not found: {source}")
        if source.is_file():
            tasks.append(Task(source, Path(source.name)))
            continue
        prefix = Path() if len(sources) == 1 else Path(name)
        for path in _walk(source, suffixes, skip, seen):
            tasks.append(Task(path, prefix / path.relative_to(source)))
    return tasks
