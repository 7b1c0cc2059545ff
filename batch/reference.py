"""A reference photo's palette for colorize-batch: `--reference PHOTO` for a whole run, and
`"reference"` entries per folder (or photo) in the `--hints` file.

A colour photo of the same place and time tells every model which colours
the archive's world has: its palette by lightness guides the model's colours
(`runtime.guides.palette`), and a colour model v2 with a global-hint input
also takes its a*b* histogram (Zhang, Zhu et al. 2017). Each reference file
is read once, before any work (`read_reference`: a file that cannot serve is
one line, exit 2), and kept as the small thumbnail its palette is taken from
(`runtime.guides.palette.reference_thumbnail`), so a run of a million
photos, or a Ray work unit, carries kilobytes, not the photo. The run names
the references it uses (`ReferenceTable.describe`) once the model is known
to take them.

Which reference an input gets (`ReferenceTable.for_input`): that of the
longest hints-file key that is its own key or one of its folders, else
`--reference`'s, else none; `"reference": null` in the file means none
there, even under `--reference`. The manifest records it as its path and
sha256 (`recorded`); a rerun colours again the inputs whose reference's
sha256 changed (a moved file with the same bytes is the same reference).

A black-and-white or toned reference is refused (`batch.decode.palette_refusal`,
as colorize-serve refuses one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Callable, Collection

import numpy as np

from retint.batch.decode import DecodeFailure, decode_palette_photo, palette_refusal, read_regular_file
from retint.batch.hints import HintsFile, input_key, unused_keys_warning
from retint.batch.naming import PlannedOutput
from retint.batch.reference_photo import ReferencePhoto
from retint.errors import InputError
from retint.runtime.capabilities import Capabilities
from retint.runtime.guides.palette import REFERENCE_SIDE, reference_thumbnail
from retint.runtime.refusals import guide_refusal


class ReferenceError(InputError):
    """A reference photo that cannot serve (exit 2); the message is one line naming it."""


def read_reference(path: Path, max_pixels: int, where: str = "--reference") -> ReferencePhoto:
    """The reference photo at `path`, read once and checked; ReferenceError (one line) where it
    cannot be read or is not a colour photo. `where` names the option or hints-file key."""
    shown = f"{where} {path}"
    try:
        data = read_regular_file(path, listed=False)
    except DecodeFailure as failure:
        raise ReferenceError(f"{shown}: {failure}") from None
    try:
        rgb = decode_palette_photo(data, max_pixels, REFERENCE_SIDE)
    except DecodeFailure as failure:
        raise ReferenceError(f"{shown}: {failure}") from None
    thumbnail = np.ascontiguousarray(reference_thumbnail(rgb))
    refusal = palette_refusal(thumbnail)
    if refusal:
        raise ReferenceError(f"{shown}: {refusal}")
    return ReferencePhoto(path=str(Path(path).absolute()), sha256=hashlib.sha256(data).hexdigest(),
                          pixels=thumbnail.tobytes(), shape=(thumbnail.shape[0], thumbnail.shape[1]))


@dataclass(frozen=True)
class ReferenceTable:
    """Which reference each input gets (see the module doc): immutable, hashable, picklable."""

    default: ReferencePhoto | None = None  # --reference
    by_key: tuple[tuple[str, ReferencePhoto | None], ...] = ()  # hints-file key -> its reference (None: none)

    def __bool__(self) -> bool:
        return self.default is not None or any(photo is not None for _, photo in self.by_key)

    @cached_property
    def _entries(self) -> dict[str, ReferencePhoto | None]:
        # Built once, not once per input (a run asks for_input of every input it lists).
        return dict(self.by_key)

    def for_input(self, key: str) -> ReferencePhoto | None:
        """The reference of the input whose hints-file key is `key` (its path as OUT mirrors it)."""
        path = PurePosixPath(key)
        for candidate in [path, *path.parents]:
            if str(candidate) in self._entries:
                return self._entries[str(candidate)]
        return self.default

    def photos(self) -> dict[tuple[str, str], ReferencePhoto]:
        """(sha256, path) -> each reference photo (two files of the same bytes are two: the manifest
        names the one the user gave for each input)."""
        found = [self.default] + [photo for _, photo in self.by_key]
        return {photo.identity: photo for photo in found if photo is not None}

    def describe(self) -> str:
        """The run's line naming its references ('' without one): "reference palette: square.jpg (sha256
        prefix)"."""
        photos = list(self.photos().values())
        if not photos:
            return ""
        return (f"reference palette{'s' if len(photos) > 1 else ''}: "
                + ", ".join(f"{Path(photo.path).name} ({photo.sha256[:12]})" for photo in photos))

    def unused_keys(self, input_keys: set[str]) -> list[str]:
        """The file's reference keys that are neither an input nor a folder of one."""
        folders = {str(parent) for key in input_keys for parent in PurePosixPath(key).parents}
        return [key for key, _ in self.by_key if key not in input_keys and key not in folders]


def read_references(default: Path | None, hints_file: HintsFile, max_pixels: int) -> ReferenceTable:
    """Every reference named by `--reference` (`default`) and the hints file (its paths resolved
    already), each file read once; ReferenceError at the first that cannot serve."""
    read: dict[Path, ReferencePhoto] = {}

    def photo(path: Path, where: str) -> ReferencePhoto:
        resolved = Path(path).absolute()
        if resolved not in read:
            read[resolved] = read_reference(path, max_pixels, where)
        return read[resolved]

    return ReferenceTable(
        default=photo(default, "--reference") if default is not None else None,
        by_key=tuple((key, photo(path, f"--hints {hints_file.path}: {key!r}: reference") if path is not None
                      else None) for key, path in sorted(hints_file.references.items())))


def attach_references(planned: list[PlannedOutput], table: ReferenceTable, hint_keys: Collection[str],
                      log: Callable[[str], None]) -> list[PlannedOutput]:
    """`planned` with each input's reference from `table`; one warning line for the file's reference
    keys that name neither an input nor a folder of one (those that also hold hints are the hints'
    warning's)."""
    if not table:
        return planned
    result = [replace(item, reference=reference) if (reference := table.for_input(input_key(item.task.relative)))
              else item for item in planned]
    unused = [key for key in table.unused_keys({input_key(item.task.relative) for item in planned})
              if key not in hint_keys]
    if unused:
        log(unused_keys_warning(unused, "reference key(s) that are neither an input nor a folder of inputs"))
    return result


def require_reference_input(model_name: str, capabilities: Capabilities) -> None:
    """ReferenceError (exit 2) where the model cannot take a reference (`runtime.refusals`: an artefact
    copied without its stages)."""
    refusal = guide_refusal(model_name, capabilities, ["reference"])
    if refusal:
        raise ReferenceError(f"--reference: {refusal}")
