"""The Ray side of `colorize-batch --ray`: work units as rows, and the actor that colours them.

A work unit is one row: up to PHOTOS_PER_UNIT photos, or one video (a video
is one task on one actor, so its frames stay in order). The actor holds one
engine, opened from the same artefact and backend rules as a local run, and
colours a unit with the same code a local run uses (`PhotoPipeline`,
`VideoPhase`), so the tone rule, `--include-colour`, `--overwrite`,
`--format` and `--max-pixels` mean the same. It writes each output into OUT
atomically and returns one manifest entry per input. Failures are caught per
file inside the actor: a file that breaks the code gets a failed entry with
the reason, and the rest of its unit still runs. Only an output folder that
cannot be written stops the run, as it does locally.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from retint.batch.config import BatchConfig
from retint.batch.lock import WorkersLock
from retint.batch.manifest import STATUS_FAILED, Entry
from retint.batch.naming import PlannedOutput, split_photos_and_videos
from retint.batch.photos import PhotoPipeline
from retint.batch.recording import StageClock, Summary, make_entry
from retint.batch.reference import ReferencePhoto
from retint.batch.sources import Task
from retint.batch.tiles import LargePhotos
from retint.batch.video.phase import VideoPhase
from retint.errors import OutputError
from retint.runtime import open_engines

PHOTOS_PER_UNIT = 16  # photos per task: small enough to spread, large enough to keep a pipeline busy
CORES_PER_CPU_ACTOR = 4  # a CPU actor plans its engine for this many of its node's cores at most


def work_units(todo: list[PlannedOutput]) -> list[dict[str, str]]:
    """Rows for Ray Data: photos in groups of PHOTOS_PER_UNIT, each video alone. Paths are absolute,
    so a worker on another node opens the same files (the sources and OUT must be shared); each
    input carries its --hints and names its reference photo (`_as_json`)."""
    photos, videos = split_photos_and_videos(todo)
    groups = [photos[i: i + PHOTOS_PER_UNIT] for i in range(0, len(photos), PHOTOS_PER_UNIT)]
    groups += [[video] for video in videos]
    return [{"files": json.dumps([_as_json(planned) for planned in group])} for group in groups]


def _as_json(planned: PlannedOutput) -> dict[str, Any]:
    assert planned.output is not None  # inputs that fail up front are recorded by the driver
    # Each input carries its own --hints (as exact floats: JSON keeps a float's every digit), its
    # reference's identity (the actors' config holds the reference photos) and whether it writes
    # over its own earlier output; the actors' config has no hints table.
    return {"source": os.path.abspath(planned.task.source), "relative": str(planned.task.relative),
            "identity": planned.task.identity, "output": os.path.abspath(planned.output), "note": planned.note,
            "hints": [list(hint) for hint in planned.hints], "replaces_own": planned.replaces_own,
            "reference": list(planned.reference.identity) if planned.reference else None}


def _planned(raw: dict[str, Any], references: dict[tuple[str, str], ReferencePhoto]) -> PlannedOutput:
    task = Task(source=Path(raw["source"]), relative=Path(raw["relative"]), identity=raw["identity"])
    hints = tuple((float(x), float(y), float(a), float(b)) for x, y, a, b in raw["hints"])
    return PlannedOutput(task, Path(raw["output"]), note=raw["note"], hints=hints,
                         replaces_own=bool(raw["replaces_own"]),
                         reference=references[tuple(raw["reference"])] if raw["reference"] else None)


def entry_from_json(text: str) -> Entry:
    """The manifest entry an actor sent back as JSON text."""
    return Entry(**json.loads(text))


class EngineActor:
    """A Ray Data callable class: `map_batches(EngineActor, compute=ActorPoolStrategy(...), ...)`."""

    def __init__(self, config: BatchConfig):
        # Held for the actor's life (the process's end releases it): a later run of the same folder
        # waits for it before planning, so this actor never writes into a folder another run plans.
        self.workers_lock = WorkersLock(config.output)
        # The driver spreads one actor per CORES_PER_CPU_ACTOR cores of a node: plan for that share.
        cores = min(CORES_PER_CPU_ACTOR, os.cpu_count() or 1)
        # Open for the actor's life: Ray ends the actor's process, and its engines with it.
        self.engines = open_engines(config.engine_request(cores))
        self.config = replace(config, progress=False)  # the driver's bar counts the rows
        self.spec_json = json.dumps(self.engines.main.spec.as_dict())  # the driver's summary names it
        self.no_stop = threading.Event()  # the driver stops the run; a unit always finishes
        self.videos = VideoPhase(self.config, self.engines, Summary(), self._record, self.no_stop,
                                 log=lambda line: print(line, file=sys.stderr))
        self.entries: dict[str, Entry] = {}

    def _record(self, entry: Entry) -> None:
        self.entries[entry.source] = entry

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.entries = {}
        references = self.config.references.photos()
        planned = [_planned(raw, references) for text in batch["files"] for raw in json.loads(text)]
        photos, videos = split_photos_and_videos(planned)
        self._guarded(photos, lambda: PhotoPipeline(self.config, self.engines.main, self.engines.plan, StageClock(),
                                                   self._record, self.no_stop, LargePhotos.of(self.engines)).run(photos))
        for video in videos:
            self._guarded([video], lambda: self.videos.run([video]))
        entries = [json.dumps(asdict(self.entries[item.task.identity])) for item in planned]
        return {"entry": np.array(entries, dtype=object),
                "engine": np.array([self.spec_json] * len(entries), dtype=object)}

    def _guarded(self, files: list[PlannedOutput], work) -> None:
        """Run `work`; whatever it leaves unrecorded after an unexpected error fails with the reason."""
        try:
            work()
        except OutputError:
            raise  # OUT cannot be written: the run stops, as a local run does
        except Exception as error:  # one bad file must not take its unit's good files with it
            first_line = (str(error).splitlines() or [""])[0]
            reason = f"internal error in the worker: {type(error).__name__}: {first_line}"
            for item in files:
                if item.task.identity not in self.entries:
                    self.entries[item.task.identity] = make_entry(item.task, STATUS_FAILED, self.config.output,
                                                                  reason)
