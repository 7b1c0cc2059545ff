"""`colorize-batch --hints FILE.json`: which colour hints go with which input.

The file is one JSON object. Each key names an input as the output tree
mirrors it: its path relative to its source folder, with `/` between
folders (with several sources, under the source folder's name, as in OUT;
a file given as a source is its own name). Each value is that input's list
of hints in `retint.runtime.hints`' format. The whole file is read and
checked before any work (`read_hints_file`: a bad file is one line, exit
2) and rides in `BatchConfig.hints` as an immutable `HintTable`. Once the
inputs are listed, `attach_hints` gives each planned photo its own hints;
keys that name no input are one warning line, and videos are coloured
automatically with a note in their manifest line (hints are for photos).

An empty list is the same as no entry: automatic colouring.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from retint.batch.naming import PlannedOutput, is_video
from retint.runtime.colour_controls import ColourBins, Hint
from retint.runtime.hints import HintError, hints_as_json, hints_from_json

# How many of the keys that name no input the warning line spells out.
UNKNOWN_KEYS_SHOWN = 3
HINTS_NOT_APPLIED = "hints not applied: a video is coloured automatically (--hints is for photos)"


class HintTable(Mapping[str, tuple[Hint, ...]]):
    """Input key (see the module doc) -> its hints: immutable, hashable and picklable."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Mapping[str, Sequence[Hint]] | None = None):
        self._entries: dict[str, tuple[Hint, ...]] = {
            key: tuple((float(x), float(y), float(a), float(b)) for x, y, a, b in hints)
            for key, hints in (entries or {}).items()}

    def __getitem__(self, key: str) -> tuple[Hint, ...]:
        return self._entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __hash__(self) -> int:
        return hash(frozenset(self._entries.items()))

    def __repr__(self) -> str:
        return f"HintTable({len(self)} inputs)"

    def __reduce__(self):
        return HintTable, (self._entries,)


def input_key(relative: Path) -> str:
    """How a hints file names the input whose output-tree path is `relative`."""
    return relative.as_posix()


def _checked_key(key: str, where: str) -> str:
    normal = posixpath.normpath(key) if key else ""
    if (not key or key.startswith("/") or key != normal
            or normal == "." or normal == ".." or normal.startswith("../")):
        raise HintError(f"{where}: the key {key!r} is not an input's relative path: write it as the "
                        f"output tree mirrors it (e.g. \"album/photo.jpg\", no leading / or ./, no ..)")
    return key


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise HintError(f"the key {key!r} appears twice")
        seen[key] = value
    return seen


def read_hints_file(path: Path) -> HintTable:
    """The hints file at `path`, read and checked whole; HintError (one line) naming what is wrong."""
    where = f"--hints {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise HintError(f"{where}: cannot read it ({reason})") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except HintError as error:
        raise HintError(f"{where}: {error}") from None
    except (json.JSONDecodeError, RecursionError) as error:
        detail = f"{error.msg} at line {error.lineno} column {error.colno}" \
            if isinstance(error, json.JSONDecodeError) else "nested too deeply"
        raise HintError(f"{where}: not JSON ({detail})") from None
    if not isinstance(value, dict):
        raise HintError(f"{where}: expected an object of input path -> list of hints, got {type(value).__name__}")
    return HintTable({_checked_key(key, where): hints_from_json(hints, f"{where}: {key!r}")
                      for key, hints in value.items()})


def require_hint_inputs(model_name: str, bins: ColourBins | None) -> None:
    """HintError (exit 2) where the model takes no hints: a regression model (no colour bins)."""
    if bins is None:
        raise HintError(f"--hints: {model_name} is a regression model (one colour per pixel): it takes no "
                        f"hints; colour model v2 artefacts do")


def recorded_hints(hints: Sequence[Hint]) -> list[dict[str, float]] | None:
    """What a manifest line records of the hints an input was coloured with (None: none)."""
    return hints_as_json(hints) if hints else None


def applied_hints(item: PlannedOutput) -> tuple[Hint, ...]:
    """The hints `item` is coloured with: its own for a photo, none for a video."""
    return () if is_video(item) else item.hints


def recorded_by_identity(planned: list[PlannedOutput]) -> dict[str, list[dict[str, float]]]:
    """Identity -> the hints (as its manifest line records them) of each input coloured with some."""
    return {item.task.identity: hints_as_json(applied_hints(item)) for item in planned if applied_hints(item)}


def attach_hints(planned: list[PlannedOutput], table: Mapping[str, Sequence[Hint]],
                 log: Callable[[str], None]) -> list[PlannedOutput]:
    """`planned` with each input's hints from `table` (a video's are not applied: the video phase
    notes it). Logs one line for the keys that name no input and one for the videos."""
    if not table:
        return planned
    known: set[str] = set()
    result = []
    for item in planned:
        key = input_key(item.task.relative)
        known.add(key)
        hints = tuple(table.get(key, ()))
        result.append(replace(item, hints=hints) if hints else item)
    unknown = [key for key in table if key not in known]
    if unknown:
        shown = ", ".join(unknown[:UNKNOWN_KEYS_SHOWN]) + (", ..." if len(unknown) > UNKNOWN_KEYS_SHOWN else "")
        log(f"warning: --hints names {len(unknown)} input(s) not found in the sources, left unused: {shown}")
    videos = sum(1 for item in result if item.hints and is_video(item))
    if videos:
        log(f"warning: --hints has hints for {videos} video(s): videos are coloured automatically "
            f"(hints are for photos)")
    return result
