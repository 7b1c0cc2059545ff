"""`colorize-batch --hints FILE.json`: which colour hints go with which input.

The file is one JSON object. Each key names an input as the output tree
mirrors it: its path relative to its source folder, with `/` between
folders (with several sources, under the source folder's name, as in OUT;
a file given as a source is its own name). Each value is that input's list
of hints in `retint.runtime.guides.hints`' format. The whole file is read and
checked before any work (`read_hints_file`: a bad file is one line, exit
2) and rides in `BatchConfig.hints` as an immutable `HintTable`. Once the
inputs are listed, `attach_hints` gives each planned photo its own hints;
keys that name no input are one warning line, and videos are coloured
automatically with a note in their manifest line (hints are for photos).

An empty list is the same as no entry: automatic colouring.

A value may also be an object, `{"hints": [...], "reference": "PHOTO"}`
(either key may be left out): `reference` names a colour photo whose palette
guides that input, or, where the key names a folder (a trailing `/` says so;
hints then have no place), every input under it (`batch/reference.py`).
Its path is relative to the hints file's folder; `null` means no reference
there, even under `--reference`.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

from retint.batch.decode import DecodeFailure, read_regular_file
from retint.batch.naming import PlannedOutput, is_video
from retint.runtime.capabilities import Capabilities
from retint.runtime.guides.hints import Hint, HintError, hints_from_json
from retint.runtime.refusals import guide_refusal

# A hints file this large is no hints file (a hint is some 50 bytes; this is a million photos' worth).
MAX_HINTS_FILE_BYTES = 64 * 2**20
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
    """`key` without its trailing / (a folder's mark); HintError where it is no relative path."""
    path = key[:-1] if key.endswith("/") else key
    normal = posixpath.normpath(path) if path else ""
    if (not path or path.startswith("/") or path != normal
            or normal == "." or normal == ".." or normal.startswith("../")):
        raise HintError(f"{where}: the key {key!r} is not an input's relative path: write it as the "
                        f"output tree mirrors it (e.g. \"album/photo.jpg\", or \"album/\" for a folder; "
                        f"no leading / or ./, no ..)")
    return path


@dataclass(frozen=True)
class HintsFile:
    """What a --hints file says: each photo's hints, and the reference photos it names."""

    hints: HintTable = HintTable()
    # key (no trailing /) -> its reference photo's path (resolved against the file's folder), or None
    references: dict[str, Path | None] = field(default_factory=dict)
    path: Path | None = None  # the file itself, for messages about its references


def _entry(value: object, key: str, where: str, folder: bool, base: Path) -> tuple[list[Hint], Path | None, bool]:
    """(hints, reference path, whether a reference entry is given) of one key's value."""
    if isinstance(value, list):
        if folder and value:
            raise HintError(f"{where}: {key!r} names a folder: hints belong to one photo; a folder takes "
                            f"{{\"reference\": \"PHOTO\"}}")
        return hints_from_json(value, f"{where}: {key!r}"), None, False
    if not isinstance(value, dict):
        raise HintError(f"{where}: {key!r}: expected a list of hints or an object with \"hints\" and/or "
                        f"\"reference\", got {type(value).__name__}")
    unknown = sorted(set(value) - {"hints", "reference"})
    if set(value) & {"x", "y", "a", "b", "rgb"}:  # a hint's own fields
        raise HintError(f"{where}: {key!r}: expected a list of hints, got dict (one hint? put it in [ ])")
    if unknown:
        raise HintError(f"{where}: {key!r}: unknown field {unknown[0]!r} (an entry takes \"hints\" and "
                        f"\"reference\")")
    if folder and value.get("hints"):
        raise HintError(f"{where}: {key!r} names a folder: hints belong to one photo; give them per photo")
    hints = hints_from_json(value.get("hints", []), f"{where}: {key!r}")
    reference = value.get("reference")
    if "reference" in value and reference is not None and (not isinstance(reference, str) or not reference):
        raise HintError(f"{where}: {key!r}: \"reference\" must be a photo's path (or null), got {reference!r}")
    return hints, (base / reference if reference else None), "reference" in value


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise HintError(f"the key {key!r} appears twice")
        seen[key] = value
    return seen


def read_hints_file(path: Path) -> HintsFile:
    """The hints file at `path`, read and checked whole (its references' files are read later, by
    `batch.reference.read_references`); HintError (one line) naming what is wrong."""
    where = f"--hints {path}"
    try:  # a FIFO would block the read, /dev/zero never end it: a regular file, opened without blocking
        data = read_regular_file(path, listed=False, limit=MAX_HINTS_FILE_BYTES)
    except DecodeFailure as failure:
        raise HintError(f"{where}: {failure}") from None
    if len(data) > MAX_HINTS_FILE_BYTES:
        raise HintError(f"{where}: larger than {MAX_HINTS_FILE_BYTES // 2**20} MB, the most a hints file may be")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HintError(f"{where}: not UTF-8 text ({error})") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except HintError as error:
        raise HintError(f"{where}: {error}") from None
    except (ValueError, RecursionError) as error:  # as the HTTP API reads hints: an integer of 5000 digits too
        detail = f"{error.msg} at line {error.lineno} column {error.colno}" \
            if isinstance(error, json.JSONDecodeError) else "nested too deeply" if isinstance(error, RecursionError) \
            else (str(error).splitlines() or [""])[0]
        raise HintError(f"{where}: not JSON ({detail})") from None
    if not isinstance(value, dict):
        raise HintError(f"{where}: expected an object of input path -> list of hints (or folder/photo path -> "
                        f"{{\"reference\": ...}}), got {type(value).__name__}")
    hints: dict[str, list[Hint]] = {}
    references: dict[str, Path | None] = {}
    for key, entry in value.items():
        checked = _checked_key(key, where)
        if checked in hints or checked in references:
            raise HintError(f"{where}: the key {checked!r} appears twice (with and without its trailing /)")
        folder = key.endswith("/")
        photo_hints, reference, has_reference = _entry(entry, key, where, folder, path.parent)
        if not folder and (isinstance(entry, list) or "hints" in entry):
            hints[checked] = photo_hints
        if has_reference:
            references[checked] = reference
    return HintsFile(HintTable(hints), references, path)


def unused_keys_warning(keys: Sequence[str], what: str) -> str:
    """The one warning line for hints-file keys that name nothing this run colours."""
    shown = ", ".join(keys[:UNKNOWN_KEYS_SHOWN]) + (", ..." if len(keys) > UNKNOWN_KEYS_SHOWN else "")
    return f"warning: --hints names {len(keys)} {what}, left unused: {shown}"


def require_hint_inputs(model_name: str, capabilities: Capabilities) -> None:
    """HintError (exit 2) where the model cannot take hints (`runtime.refusals`: an artefact copied
    without its stages)."""
    refusal = guide_refusal(model_name, capabilities, ["hints"])
    if refusal:
        raise HintError(f"--hints: {refusal}")


def applied_hints(item: PlannedOutput) -> tuple[Hint, ...]:
    """The hints `item` is coloured with: its own for a photo, none for a video."""
    return () if is_video(item) else item.hints


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
        log(unused_keys_warning(unknown, "input(s) not found in the sources"))
    videos = sum(1 for item in result if item.hints and is_video(item))
    if videos:
        log(f"warning: --hints has hints for {videos} video(s): videos are coloured automatically "
            f"(hints are for photos)")
    return result
