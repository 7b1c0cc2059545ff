"""`run_batch`: everything under the sources, coloured into the output folder.

The order of a run: check the sources (before anything is created), lock
the output folder, remove a killed run's partial files, list the inputs
(`sources`), decide every output name (`naming`), open the engine with the
inference plan (`plan`), then sort the inputs: done by an earlier run,
failing before any work (their reason goes straight to the manifest), or to
do. Photos run first (`photos`), then videos (`videos`); each result is
recorded as it completes (`recording`). Ctrl-C finishes the work in flight
and exits 130; a disk that cannot take the outputs or the manifest stops
the run with exit 2, keeping every line already written.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from tqdm import tqdm

from retint.batch.config import BatchConfig
from retint.batch.interrupt import ctrl_c_sets
from retint.batch.lock import OutputLock
from retint.batch.manifest import STATUS_FAILED, STATUS_OK, Manifest
from retint.batch.naming import PlannedOutput, plan_outputs, split_photos_and_videos
from retint.batch.photos import PhotoPipeline
from retint.batch.plan import InferencePlan, inference_plan
from retint.batch.recording import Recorder, StageClock, Summary, make_entry
from retint.batch.sources import check_sources, find_tasks
from retint.batch.videos import VideoPhase
from retint.errors import EngineError, Interrupted, OutputError
from retint.files import remove_partials
from retint.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from retint.runtime import Artefact, BackendChoice, Engine, choose_backend, open_engine, resolve_artefact


class LocalColouring:
    """Photos through this machine's pipeline, then videos one at a time, on one engine."""

    def __init__(self, config: BatchConfig, engine: Engine, plan: InferencePlan, artefact: Artefact,
                 choice: BackendChoice, log: Callable[[str], None]):
        self.config = config
        self.engine = engine
        self.plan = plan
        self.artefact = artefact
        self.choice = choice
        self.log = log

    def colour(self, todo: list[PlannedOutput], record: Callable, summary: Summary, stop: threading.Event) -> None:
        summary.engine = self.engine.spec.as_dict()
        clock = StageClock()
        summary.stage_seconds = clock.seconds
        started = time.perf_counter()
        photos, videos = split_photos_and_videos(todo)
        PhotoPipeline(self.config, self.engine, self.plan, clock, record, stop).run(photos)
        summary.photo_seconds = time.perf_counter() - started
        VideoPhase(self.config, self.engine, self.plan, summary, record, stop, self.artefact, self.choice,
                   self.log).run(videos)


class BatchRun:
    """Sort the planned inputs (done, failing up front, to do), colour the rest, record everything."""

    def __init__(self, config: BatchConfig, manifest: Manifest, planned: list[PlannedOutput], colouring):
        self.config = config
        self.manifest = manifest
        self.planned = planned
        self.colouring = colouring  # LocalColouring, or retint.batch.ray_runner.RayColouring
        self.summary = Summary()
        self.stop = threading.Event()  # set by Ctrl-C

    def _sort(self, record: Callable) -> list[PlannedOutput]:
        """Record what needs no work (done, failing up front, already present); return the rest."""
        config, manifest, todo = self.config, self.manifest, []
        for planned in self.planned:
            task = planned.task
            if task.identity in manifest.done:
                self.summary.already_done += 1
                continue
            if planned.output is None:
                record(make_entry(task, STATUS_FAILED, config.output, planned.problem))
                continue
            relative = str(planned.output.relative_to(config.output))
            if planned.output.exists() and not config.overwrite:
                owner = manifest.owners.get(relative)
                if owner is None:
                    # Written by a run killed before its manifest line: complete, keep it.
                    self.summary.already_done += 1
                    manifest.record(make_entry(task, STATUS_OK, config.output, "output already present",
                                               output=planned.output))
                else:
                    record(make_entry(task, STATUS_FAILED, config.output,
                                      f"its output {relative} holds {owner}, coloured by an earlier run; "
                                      f"rerun with --overwrite or another -o"))
                continue
            todo.append(planned)
        return todo

    def run(self) -> Summary:
        bar = tqdm(total=len(self.planned), unit="img", disable=not self.config.progress, desc="colouring")
        record = Recorder(self.manifest, self.summary, bar)
        started = time.perf_counter()
        try:
            todo = self._sort(record)
            bar.update(self.summary.already_done)
            self.colouring.colour(todo, record, self.summary, self.stop)
        except KeyboardInterrupt:
            self.summary.interrupted = True
        finally:
            self.summary.seconds = time.perf_counter() - started
            bar.close()
        return self.summary


def run_batch(config: BatchConfig, log: Callable[[str], None] = print) -> Summary:
    """Colour everything under config.sources into config.output; see module doc."""
    check_sources(config.sources, config.output)  # a mistyped source creates nothing
    lock = OutputLock(config.output)
    try:
        removed = remove_partials(config.output)
        if removed:
            log(f"removed {removed} partial file(s) left by an interrupted run")
        tasks = find_tasks(config.sources, config.output, IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        planned = plan_outputs(tasks, config.output, config.output_format, config.uncertainty)
        artefact = resolve_artefact(config.engine)
        if (config.uncertainty or config.mute_uncertain) and not artefact.uncertainty:
            option = "--uncertainty" if config.uncertainty else "--mute-uncertain"
            raise EngineError(f"{option}: {artefact.name} has no uncertainty head (export-trt writes "
                              "NAME.interval.onnx from a colorize-uncertainty checkpoint)")
        if config.ray:
            from retint.batch.ray_runner import RayColouring

            colouring = RayColouring(config, artefact, log)
        else:
            choice = choose_backend(artefact, config.backend, config.device)
            plan = inference_plan(choice, config.batch_size, config.streams)
            engine = open_engine(artefact, choice, cpu_threads=plan.cpu_threads, streams=plan.streams,
                                 mute_uncertain=config.mute_uncertain)
            colouring = LocalColouring(config, engine, plan, artefact, choice, log)
        manifest = Manifest(config.output, config.overwrite)
        runner = BatchRun(config, manifest, planned, colouring)
        try:
            with ctrl_c_sets(runner.stop):
                summary = runner.run()
        except OutputError:
            try:
                manifest.close(runner.summary.as_dict() | {"aborted": "output not writable"})
            except OutputError:
                pass  # the disk is full or gone: the first error is the one to report
            raise
        manifest.close(summary.as_dict())
        if summary.interrupted:
            raise Interrupted("interrupted; finished outputs are kept, rerun to do the rest")
        return summary
    finally:
        lock.release()
