"""Results as they complete: the manifest line, the summary's counts and rates, the progress bar."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from retint.batch.manifest import (STATUS_FAILED, STATUS_OK, STATUS_PARTIAL, STATUS_SKIPPED_COLOUR, Entry, Manifest,
                                   file_signature)
from retint.batch.sources import Task

# The inputs without a complete result that the run's end names on stderr, one line each; the
# rest are counted there and named in the manifest.
NOTED_STATUSES = (STATUS_FAILED, STATUS_PARTIAL, STATUS_SKIPPED_COLOUR)
NOTES_SHOWN = 20


class StageClock:
    """Seconds spent in each stage, summed over the threads doing it."""

    STAGES = ("decode", "infer", "encode", "write")

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(self.STAGES, 0.0)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
        """Add `seconds` to `stage`'s total (safe from any thread)."""
        with self._lock:
            self.seconds[stage] += seconds


@dataclass
class Summary:
    """Counts by status, and the rates of the two phases: photos first, then videos.

    A video counts once in `counts` but by its frames in the video rate, and
    each phase's rate uses its own wall time, so neither dilutes the other.
    """

    counts: dict[str, int] = field(default_factory=dict)
    already_done: int = 0
    seconds: float = 0.0
    photos: int = 0
    photo_seconds: float | None = None  # None until the photo phase ends (or the run does)
    megapixels: float = 0.0
    video_frames: int = 0
    video_seconds: float = 0.0
    interrupted: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)
    engine: dict[str, str | float | bool | None] = field(default_factory=dict)  # EngineSpec.as_dict()
    abandoned_inputs: int = 0  # decodes given up on after --timeout-per-input (their threads may never end)
    # The first NOTES_SHOWN failed, partial and skipped inputs (status, source, reason), and how many there were.
    noted: list[tuple[str, str, str]] = field(default_factory=list)
    noted_count: int = 0

    def as_dict(self) -> dict:
        """The figures of the manifest's summary line: counts, each phase's rates over its own wall time,
        stage seconds and the engine."""
        photo_seconds = max(self.photo_seconds if self.photo_seconds is not None else self.seconds, 1e-9)
        frames_per_second = self.video_frames / self.video_seconds if self.video_seconds > 0 else None
        return {"counts": dict(self.counts), "already_done": self.already_done, "seconds": round(self.seconds, 3),
                "images_per_second": self.photos / photo_seconds,
                "megapixels_per_second": self.megapixels / photo_seconds,
                "video_frames_per_second": frames_per_second,
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
                "interrupted": self.interrupted, "engine": dict(self.engine)}

    @property
    def failed(self) -> int:
        """Inputs without a complete result: failed, or (videos) partial."""
        return self.counts.get(STATUS_FAILED, 0) + self.counts.get(STATUS_PARTIAL, 0)


def make_entry(task: Task, status: str, output_root: Path, reason: str = "", output: Path | None = None,
               size: tuple[int, int] | None = None, started: float | None = None,
               final_failure: bool = False) -> Entry:
    """A manifest entry; `size` is (height, width), `started` a perf_counter() time. `final_failure`:
    the file itself cannot be read as an image or video, so a rerun keeps the line while it is unchanged."""
    height, width = size if size else (None, None)
    milliseconds = round((time.perf_counter() - started) * 1000.0, 2) if started else None
    relative = str(output.relative_to(output_root)) if output else None
    signature = file_signature(task.source) if final_failure and status == STATUS_FAILED else None
    return Entry(source=task.identity, output=relative, status=status, reason=reason, width=width,
                 height=height, milliseconds=milliseconds, file_signature=signature)


class Recorder:
    """Writes each entry to the manifest and counts it; drives the progress bar."""

    def __init__(self, manifest: Manifest, summary: Summary, bar) -> None:
        self.manifest = manifest
        self.summary = summary
        self.bar = bar
        self.started = time.perf_counter()

    def __call__(self, entry: Entry) -> None:
        self.manifest.record(entry)
        summary = self.summary
        summary.counts[entry.status] = summary.counts.get(entry.status, 0) + 1
        if entry.status in NOTED_STATUSES:
            summary.noted_count += 1
            if len(summary.noted) < NOTES_SHOWN:
                summary.noted.append((entry.status, entry.source, entry.reason))
        if entry.status in (STATUS_OK, STATUS_PARTIAL) and entry.video:
            summary.video_frames += entry.video["frames"]
        elif entry.status == STATUS_OK and entry.width and entry.height:
            summary.photos += 1
            summary.megapixels += entry.width * entry.height / 1e6
        self.bar.update(1)
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix(img_s=f"{summary.photos / elapsed:.1f}", failed=summary.failed, refresh=False)
