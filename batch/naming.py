"""Which file each input is written to, decided for the whole run before anything is written.

An output is the input's path mirrored under OUT, with the output format's
suffix (`--format`, or H.264's container for a video). Two rules keep every
result:

- **Shared names.** When several inputs would get one output name
  (`photo.jpg` and `photo.png` with `--format jpg`; `clip.mkv` and
  `clip.webm`), the one whose own suffix is already the output's keeps the
  plain name and each other keeps its suffix inside the name:
  `photo.png -> photo.png.jpg`, `clip.webm -> clip.webm.mkv`. The rule looks
  only at each input's own name, never at the order, so reruns agree. If a
  renamed output still meets another input's, the later input (in sorted
  order) fails with the reason.
- **Never onto an input.** An output that is an input (the same file under
  any spelling, through links, or a hard link) is never written: that input
  fails with the reason.

An output or map name longer than the output filesystem takes (NAME_MAX
bytes a name, PATH_MAX a path) fails its input with the reason, before
any work: the run never meets ENAMETOOLONG halfway.

With `--uncertainty` each photo also gets `<output stem>.uncertainty.png`.
Where that name is another input's output or map (`a.jpg` and `a.png` under
`--format keep`), the map keeps the output's whole name
(`a.png.uncertainty.png`); if that is taken too, or is an input, the photo
fails with the reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from retint.batch.encode import output_suffix
from retint.batch.reference_photo import ReferencePhoto
from retint.batch.sources import Task
from retint.batch.video.pipeline import video_output_suffix
from retint.media import VIDEO_SUFFIXES
from retint.runtime.guides.hints import Hint


@dataclass(frozen=True)
class PlannedOutput:
    task: Task
    output: Path | None  # None: the input fails before any work (see `problem`)
    problem: str = ""
    note: str = ""  # why the output name differs from the plain mirror, if it does
    uncertainty_map: Path | None = None  # --uncertainty: the heat map beside the output
    hints: tuple[Hint, ...] = ()  # --hints: this input's (batch/hints.py; a video's are not applied)
    reference: ReferencePhoto | None = None  # --reference / the hints file's: its palette (batch/reference.py)
    # Its output is its own from an earlier run whose guides (hints, reference) differ: written over (run.BatchRun).
    replaces_own: bool = False

UNCERTAINTY_MAP_SUFFIX = ".uncertainty.png"


def is_video(item: PlannedOutput) -> bool:
    """Whether the input is a video (by its suffix)."""
    return item.task.source.suffix.lower() in VIDEO_SUFFIXES


def split_photos_and_videos(planned: list[PlannedOutput]) -> tuple[list[PlannedOutput], list[PlannedOutput]]:
    """(photos, videos), each in the given order: runs colour photos first, then videos one by one."""
    photos: list[PlannedOutput] = []
    videos: list[PlannedOutput] = []
    for item in planned:
        (videos if is_video(item) else photos).append(item)
    return photos, videos


def _plain_output(relative: Path, output_format: str) -> Path:
    if relative.suffix.lower() in VIDEO_SUFFIXES:
        return relative.with_suffix(video_output_suffix(relative.suffix))
    return relative.with_suffix(output_suffix(output_format, relative.suffix))


def _name_limits(output_root: Path) -> tuple[int, int]:
    """(longest name, longest path) in bytes on the output's filesystem (Linux's 255 and 4096 where unknown)."""
    folder = output_root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX"), os.pathconf(folder, "PC_PATH_MAX")
    except (OSError, ValueError):
        return 255, 4096


def too_long(path: Path, limits: tuple[int, int]) -> str:
    """Why `path` cannot be created on a filesystem with these limits, or ''."""
    name_max, path_max = limits
    longest = max(path.parts, key=lambda part: len(os.fsencode(part)))
    if len(os.fsencode(longest)) > name_max:
        return (f"a name in it is {len(os.fsencode(longest))} bytes, over the {name_max} the output "
                f"filesystem takes")
    if len(os.fsencode(os.path.abspath(path))) >= path_max:
        return f"it is {len(os.fsencode(os.path.abspath(path)))} bytes, over the {path_max - 1} a path may have"
    return ""


def _file_key(path: Path) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def plan_outputs(tasks: list[Task], output_root: Path, output_format: str,
                 uncertainty_maps: bool = False) -> list[PlannedOutput]:
    """One PlannedOutput per task, in the tasks' order (see the module doc)."""
    planned = _plan_outputs(tasks, output_root, output_format)
    return _with_uncertainty_maps(planned, output_root) if uncertainty_maps else planned


def _with_uncertainty_maps(planned: list[PlannedOutput], output_root: Path) -> list[PlannedOutput]:
    outputs = {item.output for item in planned if item.output is not None}
    inputs = {key for item in planned if (key := _file_key(item.task.source))}
    limits = _name_limits(output_root)
    claimed: set[Path] = set()
    result = []
    for item in planned:
        if item.output is None or is_video(item):
            result.append(item)
            continue
        candidates = (item.output.with_name(item.output.stem + UNCERTAINTY_MAP_SUFFIX),
                      item.output.with_name(item.output.name + UNCERTAINTY_MAP_SUFFIX))
        if too_long(candidates[0], limits):
            result.append(PlannedOutput(item.task, None, f"its uncertainty map {candidates[0].name} cannot be "
                                                         f"written: {too_long(candidates[0], limits)}"))
            continue
        free = [path for path in candidates if path not in outputs and path not in claimed
                and not too_long(path, limits) and _file_key(path) not in inputs]
        if not free:
            result.append(PlannedOutput(item.task, None, f"its uncertainty map {candidates[0].name} (or "
                                                         f"{candidates[1].name}) is another input's output or map"))
            continue
        claimed.add(free[0])
        result.append(PlannedOutput(item.task, item.output, item.problem, item.note, free[0]))
    return result


def _plan_outputs(tasks: list[Task], output_root: Path, output_format: str) -> list[PlannedOutput]:
    plain = [_plain_output(task.relative, output_format) for task in tasks]
    sharing: dict[Path, list[int]] = {}
    for index, task in enumerate(tasks):
        if not task.problem:
            sharing.setdefault(plain[index], []).append(index)

    chosen: dict[int, tuple[Path, str]] = {}
    for name, members in sharing.items():
        if len(members) == 1:
            chosen[members[0]] = (name, "")
            continue
        others = ", ".join(sorted(tasks[i].relative.name for i in members))
        for index in members:
            relative = tasks[index].relative
            if relative.suffix == name.suffix:
                chosen[index] = (name, "")
            else:
                chosen[index] = (relative.with_name(relative.name + name.suffix),
                                 f"output renamed: {others} would all be {name.name}")

    # Every input file by (device, inode), so that an output is recognised as an
    # input under any spelling, through links, or as a hard link.
    input_files = {key: task.identity for task in tasks if not task.problem and (key := _file_key(task.source))}
    limits = _name_limits(output_root)
    claimed: dict[Path, int] = {}
    planned = []
    for index, task in enumerate(tasks):
        if task.problem:
            planned.append(PlannedOutput(task, None, task.problem))
            continue
        relative, note = chosen[index]
        output = output_root / relative
        if too_long(output, limits):
            planned.append(PlannedOutput(task, None, f"its output {relative} cannot be written: "
                                                     f"{too_long(output, limits)}"))
            continue
        if relative in claimed:
            first = tasks[claimed[relative]].relative
            planned.append(PlannedOutput(task, None, f"its output name {relative} is already the output of {first}"))
            continue
        claimed[relative] = index
        key = _file_key(output)
        if key is not None and key in input_files:
            planned.append(PlannedOutput(task, None, f"its output {output} is an input ({input_files[key]}); an "
                                                     f"original is never overwritten: choose an -o outside the sources"))
            continue
        planned.append(PlannedOutput(task, output, "", note))
    return planned
