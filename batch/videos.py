"""The video phase of a batch: one video at a time, each on an engine that uses every core."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Callable

from tqdm import tqdm

from retint.batch.config import BatchConfig
from retint.batch.decode import DecodeFailure, describe_exception
from retint.batch.manifest import STATUS_FAILED, STATUS_OK, STATUS_PARTIAL, Entry, journal_entry
from retint.batch.naming import PlannedOutput
from retint.batch.plan import VIDEO_BATCH, InferencePlan
from retint.batch.recording import Summary, make_entry
from retint.batch.video import VideoOptions, colorize_video
from retint.errors import EngineError, OutputError
from retint.runtime import Artefact, BackendChoice, Engine, open_engine


def _set_total(bar: tqdm, frames: int | None) -> None:
    """Give the frame bar its total (and so an ETA) once the container has said how many frames."""
    if frames:
        bar.total = frames
        bar.refresh()


class VideoPhase:
    def __init__(self, config: BatchConfig, engine: Engine, plan: InferencePlan, summary: Summary,
                 record: Callable[[Entry], None], stop: threading.Event, artefact: Artefact, choice: BackendChoice,
                 log: Callable[[str], None]):
        self.config = config
        self.engine = engine
        self.plan = plan
        self.summary = summary
        self.record = record
        self.stop = stop
        self.artefact = artefact
        self.choice = choice
        self.log = log
        self._staged_engine: Engine | None = None  # the engine by stages, opened for the first smoothed video
        self._video_engine: Engine | None = None  # a one-stream engine, opened for the first video if needed
        self.options = VideoOptions(codec=config.codec, crf=config.crf, preset=config.preset,
                                    batch_size=config.batch_size or VIDEO_BATCH,
                                    temporal_smoothing=config.temporal_smoothing,
                                    stall_seconds=config.timeout_per_input)

    def run(self, videos: list[PlannedOutput]) -> None:
        for planned in videos:
            if self.stop.is_set():
                raise KeyboardInterrupt
            self._one(planned)

    def _one(self, planned: PlannedOutput) -> None:
        config, task, output = self.config, planned.task, planned.output
        started = time.perf_counter()
        frames_bar = tqdm(unit="frame", desc=task.source.name, disable=not config.progress, leave=False)
        try:
            halves = self._halves() if self.options.temporal_smoothing > 0 else None
            figures = colorize_video(task.source, output, self._one_stream_engine(), halves, self.options,
                                     on_frames=frames_bar.update, should_stop=self.stop.is_set,
                                     replace_existing=config.overwrite,
                                     on_open=lambda frames: _set_total(frames_bar, frames),
                                     before_publish=lambda figures, finished: journal_entry(
                                         config.output, self._entry(planned, figures, halves, started), finished))
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
        self.record(self._entry(planned, figures, halves, started))

    def _entry(self, planned: PlannedOutput, figures: dict, halves: Engine | None, started: float) -> Entry:
        """A coloured video's line: ok, or partial when its file ended early."""
        status = STATUS_OK if figures["complete"] else STATUS_PARTIAL
        photos_only = "no uncertainty map: --uncertainty maps photos only" if self.config.uncertainty else ""
        reason = "; ".join(part for part in (figures["shortfall"], planned.note, photos_only) if part)
        entry = make_entry(planned.task, status, self.config.output, reason, output=planned.output, started=started)
        figures = figures | {"engine": (halves or self._one_stream_engine()).spec.describe()}
        return replace(entry, width=figures["width"], height=figures["height"], video=figures)

    def _one_stream_engine(self) -> Engine:
        """Video runs one batch at a time: give it an engine that uses every core."""
        if self.plan.streams == 1:  # one stream already has every core (inference_plan)
            return self.engine
        if self._video_engine is None:
            self._video_engine = open_engine(self.artefact, self.choice,
                                             mute_uncertain=self.engine.spec.mute_uncertain,
                                             temperature=self.engine.spec.temperature)
        return self._video_engine

    def _halves(self) -> Engine:
        """The engine by stages, for smoothing chroma between predict and compose. A TensorRT plan has
        no stages: its ONNX stages run on ONNX Runtime, and the log and the manifest say so."""
        if self._staged_engine is None:
            choice = self.choice
            if choice.backend == "tensorrt":
                choice = BackendChoice("onnxruntime", choice.device, "temporal smoothing: a TensorRT plan has no "
                                 "stages, so its ONNX stages run on ONNX Runtime")
            self._staged_engine = open_engine(self.artefact, choice, staged=True,
                                              mute_uncertain=self.engine.spec.mute_uncertain,
                                              temperature=self.engine.spec.temperature)
            if choice is not self.choice:
                self.log(f"temporal smoothing runs on {self._staged_engine.spec.describe()}")
        return self._staged_engine
