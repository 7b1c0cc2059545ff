"""Run colorize-batch as a user does, and check that it never changed an original.

Every test that runs colorize-batch over a source goes through `batch` (or
`start` + `originals_unchanged`): the files under each source are hashed
before the run and must be byte-identical after it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

COMMAND = [sys.executable, "-m", "retint.batch.cli", "--no-progress"]


def digest_tree(root: Path) -> dict[str, str]:
    """sha256 of every readable regular file under root (or of root itself), by path."""
    root = Path(root)
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    digests = {}
    for path in paths:
        try:
            digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            continue  # unreadable on purpose (the test made it so)
    return digests


def source_arguments(args) -> list[Path]:
    """The SOURCES of a colorize-batch argument list: the arguments before the first option."""
    sources = []
    for arg in map(str, args):
        if arg.startswith("-"):
            break
        sources.append(Path(arg))
    return sources


def output_argument(args) -> Path | None:
    args = list(map(str, args))
    for flag in ("-o", "--output"):
        if flag in args[:-1]:
            return Path(os.path.realpath(args[args.index(flag) + 1]))
    return None


def snapshot(args) -> dict[str, str]:
    """The digests of the sources' files, less what lies in the output folder (which may be inside one)."""
    output = output_argument(args)
    digests: dict[str, str] = {}
    for source in source_arguments(args):
        if os.path.exists(source):
            digests.update(digest_tree(source))
    if output is not None:
        digests = {path: digest for path, digest in digests.items()
                   if not Path(os.path.realpath(path)).is_relative_to(output)}
    return digests


def originals_unchanged(before: dict[str, str]) -> None:
    after = {path: digest_tree(Path(path)).get(path) for path in before}
    changed = sorted(path for path in before if after[path] != before[path])
    assert not changed, f"colorize-batch changed or removed originals: {changed}"


def batch(*args, check_originals: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """colorize-batch ARGS..., output captured; asserts the sources' files are byte-identical afterwards."""
    before = snapshot(args) if check_originals else {}
    process = subprocess.run([*COMMAND, *map(str, args)], capture_output=True, text=True, **kwargs)
    originals_unchanged(before)
    return process


def start(args, **kwargs) -> tuple[subprocess.Popen, dict[str, str]]:
    """A colorize-batch process in the background, and the snapshot to check with originals_unchanged."""
    before = snapshot(args)
    process = subprocess.Popen([*COMMAND, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, **kwargs)
    return process, before


def fused_graph_alone(fused: Path, folder: Path) -> Path:
    """A copy of a fused graph and its sidecar in `folder`, without the stages exported beside it:
    a model that cannot take guides."""
    folder.mkdir(parents=True)
    alone = folder / fused.name
    shutil.copy(fused, alone)
    shutil.copy(str(fused) + ".json", str(alone) + ".json")
    return alone
