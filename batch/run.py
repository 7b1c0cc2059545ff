"""`run_batch`: everything under the sources, coloured into the output folder.

The order of a run: check the sources and open the engines
(`retint.runtime.open_engines`, which plans their streams) before anything
is created, so a start that cannot work leaves no folder; then lock the
output folder, remove a killed run's partial files, list the inputs
(`sources`), decide every output name (`naming`), give each its `--hints`
(`hints`) and reference photo (`reference`), and sort the inputs: done by an
earlier run (with the same guides), failing before any work (their reason goes straight to the
manifest), or to do. Photos run first (`photos`), then videos
(`video/phase`); each result is
recorded as it completes (`recording`). Ctrl-C finishes the work in flight
and exits 130; a disk that cannot take the outputs or the manifest stops
the run with exit 2, keeping every line already written.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from typing import Callable

from tqdm import tqdm

from retint.batch.config import BatchConfig
from retint.batch.decode import describe_exception
from retint.batch.guides import guides_by_identity
from retint.batch.hints import attach_hints, require_hint_inputs
from retint.batch.interrupt import ctrl_c_sets
from retint.batch.lock import OutputLock, remove_workers_lock_if_free, wait_for_workers
from retint.batch.manifest import STATUS_FAILED, Manifest
from retint.batch.naming import PlannedOutput, plan_outputs, split_photos_and_videos
from retint.batch.photos import PhotoPipeline
from retint.batch.reference import attach_references, require_reference_input
from retint.batch.recording import Recorder, StageClock, Summary, make_entry
from retint.batch.sources import check_sources, find_tasks
from retint.batch.tiles import LargePhotos
from retint.batch.video.phase import VideoPhase
from retint.errors import InputError, Interrupted, OutputError
from retint.files import remove_partials
from retint.media import BATCH_IMAGE_SUFFIXES, VIDEO_SUFFIXES
from retint.runtime import Engines, check_request, open_engines
from retint.runtime.capabilities import Capabilities, capabilities_of


class LocalColouring:
    """Photos through this machine's pipeline, then videos one at a time, on one set of engines."""

    def __init__(self, config: BatchConfig, engines: Engines, log: Callable[[str], None]):
        self.config = config
        self.engines = engines
        self.log = log

    def colour(self, todo: list[PlannedOutput], record: Callable, summary: Summary, stop: threading.Event) -> None:
        """Colour `todo` here: the photos through the pipeline, then the videos one at a time, recording
        each result as it completes."""
        summary.engine = self.engines.main.spec.as_dict()
        clock = StageClock()
        summary.stage_seconds = clock.seconds
        started = time.perf_counter()
        photos, videos = split_photos_and_videos(todo)
        pipeline = PhotoPipeline(self.config, self.engines.main, self.engines.plan, clock, record, stop,
                                 LargePhotos.of(self.engines))
        try:
            pipeline.run(photos)
        finally:
            summary.abandoned_inputs = pipeline.abandoned
        summary.photo_seconds = time.perf_counter() - started
        VideoPhase(self.config, self.engines, summary, record, stop, self.log).run(videos)

    def close(self) -> None:
        """Close the engines."""
        self.engines.close()


class BatchRun:
    """Sort the planned inputs (done, failing up front, to do), colour the rest, record everything."""

    def __init__(self, config: BatchConfig, manifest: Manifest, planned: list[PlannedOutput], colouring):
        self.config = config
        self.manifest = manifest
        self.planned = planned
        self.colouring = colouring  # LocalColouring, or retint.batch.ray.runner.RayColouring
        self.summary = Summary()
        self.stop = threading.Event()  # set by Ctrl-C

    def _sort(self, record: Callable) -> list[PlannedOutput]:
        """Record what needs no work (done, failing up front, blocked output); return the rest."""
        todo = []
        for planned in self.planned:
            try:
                problem = self._problem(planned)
            except Exception as error:  # a path the system refuses to examine, or a bug: this input's line
                problem = f"cannot examine its output path ({describe_exception(error)})"
            if problem is None:
                todo.append(self._own_output_replaced(planned))
            elif problem:
                final = planned.task.final and problem == planned.task.problem
                record(make_entry(planned.task, STATUS_FAILED, self.config.output, problem, final_failure=final))
        return todo

    def _problem(self, planned: PlannedOutput) -> str | None:
        """None: to do; '': done by an earlier run; else why the input fails before any work.

        Something already at the output path is retint's finished output only when the
        manifest (or its journal) says so (see `retint.batch.manifest`); a folder or a file
        retint cannot prove it wrote fails the input and is left alone.
        """
        config, manifest, task = self.config, self.manifest, planned.task
        if task.identity in manifest.done:
            self.summary.already_done += 1
            return ""
        if planned.output is None:
            return planned.problem
        relative = str(planned.output.relative_to(config.output))
        if os.path.isdir(planned.output):
            return (f"a folder is at its output path {relative}: it is never replaced; move it away "
                    f"or choose another -o")
        if not os.path.lexists(planned.output) or config.overwrite:
            return None
        owner = manifest.owners.get(relative)
        if owner == task.identity:
            return None  # its own output, made with other guides (manifest.stale): coloured again over it
        if owner is not None:
            return (f"its output {relative} holds {owner}, coloured by an earlier run; "
                    f"rerun with --overwrite or another -o")
        return (f"its output path {relative} already holds a file that retint did not write for it "
                f"(no manifest line names it); move it away, or rerun with --overwrite to replace it")

    def _own_output_replaced(self, planned: PlannedOutput) -> PlannedOutput:
        """`planned`, told to write over its output where that is its own from an earlier run with
        other guides (an output is otherwise never replaced without --overwrite)."""
        if planned.output is None or planned.task.identity not in self.manifest.stale:
            return planned
        own = self.manifest.owners.get(str(planned.output.relative_to(self.config.output))) == planned.task.identity
        return replace(planned, replaces_own=True) if own and os.path.lexists(planned.output) else planned

    def run(self) -> Summary:
        """Sort the inputs, colour those to do and return the summary; Ctrl-C marks it interrupted
        instead of raising."""
        bar = tqdm(total=len(self.planned), unit="input", disable=not self.config.progress, desc="colouring")
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


def _open_colouring(config: BatchConfig, log: Callable[[str], None]):
    """The engines (or, with --ray, the checked request the actors will open), before anything is
    created: a start that fails (a bad engine, no CUDA, no uncertainty head, --hints or --reference
    for a model that takes none) leaves no output folder and no lock."""
    if config.ray:
        from retint.batch.ray.runner import RayColouring

        artefact = check_request(config.engine_request())
        _require_guide_inputs(config, artefact.name, capabilities_of(artefact), log)
        return RayColouring(config, log)
    engines = open_engines(config.engine_request())
    try:
        _require_guide_inputs(config, engines.artefact.name, engines.main.spec.capabilities, log)
    except InputError:
        engines.close()
        raise
    return LocalColouring(config, engines, log)


def _require_guide_inputs(config: BatchConfig, model_name: str, capabilities: Capabilities,
                          log: Callable[[str], None]) -> None:
    """InputError (exit 2) where the run gives hints or a reference to a model that cannot take them;
    else the line naming the references, if any."""
    if config.hints:
        require_hint_inputs(model_name, capabilities)
    if config.references:
        require_reference_input(model_name, capabilities)
        log(config.references.describe())


def run_batch(config: BatchConfig, log: Callable[[str], None] = print) -> Summary:
    """Colour everything under config.sources into config.output; see module doc."""
    check_sources(config.sources, config.output)  # a mistyped source creates nothing
    colouring = _open_colouring(config, log)
    try:
        return _run_locked(config, colouring, log)
    finally:
        colouring.close()


def _run_locked(config: BatchConfig, colouring, log: Callable[[str], None]) -> Summary:
    """run_batch's work once the engines are open: under the output folder's lock."""
    lock = OutputLock(config.output)
    try:
        # A --ray run's actors can outlive its killed driver by seconds, still writing here: nothing in
        # the folder is looked at before they have stopped.
        wait_for_workers(config.output, log)
        removed = remove_partials(config.output, keep_out=config.sources)
        if removed:
            log(f"removed {removed} partial file(s) left by an interrupted run")
        tasks = find_tasks(config.sources, config.output, BATCH_IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        planned = attach_hints(plan_outputs(tasks, config.output, config.output_format, config.uncertainty),
                               config.hints, log)
        planned = attach_references(planned, config.references, set(config.hints), log)
        writers = {str(item.output.relative_to(config.output)): item.task.identity
                   for item in planned if item.output is not None}
        manifest = Manifest(config.output, config.overwrite, writers, guides_by_identity(planned),
                            inputs={item.task.identity for item in planned})
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
        try:  # this run's actors have ended unless Ray is slow to end them (then the next run waits)
            remove_workers_lock_if_free(config.output)
        except OutputError:
            pass  # a folder that can no longer be written: the error that stopped the run is the one to report
        lock.release()
