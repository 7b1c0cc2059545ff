"""The video phase of a batch: one video at a time, each on an engine that uses every core."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Callable

from tqdm import tqdm

from retint.batch.config import BatchConfig
from retint.batch.decode import DecodeFailure, describe_exception
from retint.batch.guides import recorded_guides
from retint.batch.hints import HINTS_NOT_APPLIED
from retint.batch.manifest import STATUS_FAILED, STATUS_OK, STATUS_PARTIAL, Entry, journal_entry
from retint.batch.naming import PlannedOutput
from retint.batch.recording import Summary, make_entry
from retint.batch.video.options import VideoOptions
from retint.batch.video.pipeline import colour_video
from retint.errors import EngineError, OutputError
from retint.runtime import VIDEO_BATCH, Engine, Engines


def _set_total(bar: tqdm, frames: int | None) -> None:
    """Give the frame bar its total (and so an ETA) once the container has said how many frames."""
    if frames:
        bar.total = frames
        bar.refresh()


class VideoPhase:
    """Each video on `engines.for_video()` (or, with temporal smoothing, `by_stages()`), one line each."""

    def __init__(self, config: BatchConfig, engines: Engines, summary: Summary, record: Callable[[Entry], None],
                 stop: threading.Event, log: Callable[[str], None]):
        self.config = config
        self.engines = engines
        self.summary = summary
        self.record = record
        self.stop = stop
        self.log = log
        self._told_where_smoothing_runs = False
        self.options = VideoOptions(encoder=config.encoder,
                                    batch_size=config.batch_size or VIDEO_BATCH,
                                    temporal_smoothing=config.temporal_smoothing,
                                    stall_seconds=config.timeout_per_input)

    def run(self, videos: list[PlannedOutput]) -> None:
        """Colour each video in turn, one manifest line each; Ctrl-C stops the phase before the next."""
        for planned in videos:
            if self.stop.is_set():
                raise KeyboardInterrupt
            self._one(planned)

    def _one(self, planned: PlannedOutput) -> None:
        config, task, output = self.config, planned.task, planned.output
        assert output is not None  # inputs that fail before any work never reach a phase
        started = time.perf_counter()
        frames_bar = tqdm(unit="frame", desc=task.source.name, disable=not config.progress, leave=False)
        try:
            staged_engine = self._by_stages() if self.options.temporal_smoothing > 0 else None
            figures = colour_video(task.source, output, self.engines.for_video(), staged_engine, self.options,
                                     on_frames=frames_bar.update, should_stop=self.stop.is_set,
                                     replace_existing=config.overwrite or planned.replaces_own,
                                     on_open=lambda frames: _set_total(frames_bar, frames),
                                     reference=planned.reference.rgb() if planned.reference else None,
                                     before_publish=lambda figures, finished: journal_entry(
                                         config.output, self._entry(planned, figures, staged_engine, started),
                                         finished))
        except (DecodeFailure, EngineError) as failure:
            self.record(make_entry(task, STATUS_FAILED, config.output, str(failure), started=started))
            return
        except (OutputError, KeyboardInterrupt):
            raise  # the output disk is unusable, or Ctrl-C: the run stops
        except Exception as error:  # anything else is this video's failure, never the run's end
            self.record(make_entry(task, STATUS_FAILED, config.output,
                                   f"cannot colour it ({describe_exception(error)})", started=started))
            return
        finally:
            frames_bar.close()
        self.summary.video_seconds += time.perf_counter() - started
        self.record(self._entry(planned, figures, staged_engine, started))

    def _entry(self, planned: PlannedOutput, figures: dict, staged_engine: Engine | None, started: float) -> Entry:
        """A coloured video's line: ok, or partial when its file ended early."""
        status = STATUS_OK if figures["complete"] else STATUS_PARTIAL
        photos_only = "no uncertainty map: --uncertainty maps photos only" if self.config.uncertainty else ""
        unhinted = HINTS_NOT_APPLIED if planned.hints else ""
        reason = "; ".join(part for part in (figures["shortfall"], figures.get("timing_note"), planned.note,
                                             photos_only, unhinted) if part)
        entry = make_entry(planned.task, status, self.config.output, reason, output=planned.output, started=started)
        figures = {key: value for key, value in figures.items() if key != "timing_note"} | {
            "engine": (staged_engine or self.engines.for_video()).spec.label()}
        return replace(entry, width=figures["width"], height=figures["height"], video=figures,
                       **recorded_guides(planned))

    def _by_stages(self) -> Engine:
        """The engine by stages, for smoothing chroma between predict and compose; the log says so
        once where it runs on another backend than the run's (a TensorRT plan's ONNX stages)."""
        engine = self.engines.by_stages()
        if not self._told_where_smoothing_runs and engine.spec.backend != self.engines.main.spec.backend:
            self.log(f"temporal smoothing runs on {engine.spec.describe()}")
        self._told_where_smoothing_runs = True
        return engine
