"""The batch pipeline: decode workers -> batcher -> engine -> encode/write workers.

Decoding, inference and encoding run in thread pools (Pillow, OpenCV and ONNX
Runtime release the GIL while they work); the coordinating thread groups
decoded images of equal size into batches and records the results batch by
batch, in the order the batches were formed. Every stage is bounded (decodes
in flight, images waiting for a batch partner, batches in flight with their
encodes), so memory stays flat however large the archive is.

Inference plan: on ONNX Runtime's CPU provider two calls run at once, each
on half the cores, with one image per call. One call on all cores waits at
every operator for its slowest thread while the decode and encode threads
take those cores, and a batch of full-resolution images pushes every
intermediate plane out of the caches. Two rounds side by side on 2 cores,
500 1024x768 JPEGs end to end (`colorize-bench pipeline ARCHIVE --streams S
--batch B`; images/s, peak RSS): two streams of 1 image 22.8 and 20.4 at
0.3 GB; one stream of 1 on both cores 17.8 and 17.2 at 0.2 GB; two streams
of 8 20.3 and 18.4 at 1.3 GB; one stream of 8 17.6 and 15.6 at 0.8 GB.

GPU engines run one stream of 8: the device overlaps the work itself and
wants full batches. Videos run one stream on every core, 8 frames per call
on any device (15.0 frames/s against 13.1 at one frame per call, vtest
768x576 on 2 cores). `--batch` and `--streams` override these.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from retint.batch.config import IMAGE_SUFFIXES, BatchConfig
from retint.batch.decode import AlreadyColour, DecodedImage, DecodeFailure, decode
from retint.batch.encode import encode, output_suffix
from retint.batch.lock import OutputLock
from retint.batch.manifest import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED_COLOUR, Entry, Manifest
from retint.batch.output import OutputError, remove_partials, write_output
from retint.batch.sources import Task, find_tasks
from retint.batch.video import VIDEO_SUFFIXES, VideoOptions, colorize_video, video_output_suffix
from retint.errors import EngineError, RetintError
from retint.runtime import Engine, load_engine, runs_on_cpu


class Interrupted(RetintError):
    """Ctrl-C: in-flight writes were finished and the summary written."""

    exit_code = 130


@contextmanager
def ctrl_c_sets(stop: threading.Event):
    """While inside, SIGINT sets `stop` instead of raising KeyboardInterrupt.

    An exception raised at an arbitrary bytecode can fall between starting a
    write and recording it (a file with no manifest line); a flag is checked
    only at safe points. Outside the main thread signals cannot be handled,
    and Ctrl-C keeps its usual meaning.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class StageClock:
    """Seconds spent in each stage, summed over the threads doing it."""

    STAGES = ("decode", "infer", "encode", "write")

    def __init__(self):
        self.seconds = dict.fromkeys(self.STAGES, 0.0)
        self._lock = threading.Lock()

    def add(self, stage: str, seconds: float) -> None:
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

    def as_dict(self) -> dict:
        photo_seconds = max(self.photo_seconds if self.photo_seconds is not None else self.seconds, 1e-9)
        frames_per_second = self.video_frames / self.video_seconds if self.video_seconds > 0 else None
        return {"counts": dict(self.counts), "already_done": self.already_done, "seconds": round(self.seconds, 3),
                "images_per_second": self.photos / photo_seconds,
                "megapixels_per_second": self.megapixels / photo_seconds,
                "video_frames_per_second": frames_per_second,
                "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
                "interrupted": self.interrupted}

    @property
    def failed(self) -> int:
        return self.counts.get(STATUS_FAILED, 0)


@dataclass
class _Waiting:
    task: Task
    output: Path
    decoded: DecodedImage
    started: float


VIDEO_BATCH = 8  # frames per engine call unless --batch says otherwise (see module doc)


@dataclass(frozen=True)
class InferencePlan:
    """Batches through the engine at once, ONNX Runtime's threads for each, images per batch."""

    streams: int = 1
    cpu_threads: int = 0  # 0: ONNX Runtime's default, one per core
    batch_size: int = 8


def inference_plan(engine: Path | None, device: str, batch_size: int | None = None,
                   streams: int | None = None) -> InferencePlan:
    """See the module doc: on the CPU two half-machine streams of one image, else one stream of 8.
    `batch_size` and `streams` override the defaults; CPU streams share the cores evenly."""
    if not runs_on_cpu(engine, device):
        return InferencePlan(streams=streams or 1, batch_size=batch_size or 8)
    cores = os.cpu_count() or 1
    streams = streams or (2 if cores >= 2 else 1)
    return InferencePlan(streams=streams, cpu_threads=max(1, cores // streams), batch_size=batch_size or 1)


class BatchRun:
    def __init__(self, config: BatchConfig, engine: Engine, manifest: Manifest, tasks: list[Task],
                 log: Callable[[str], None], plan: InferencePlan = InferencePlan()):
        self.config = config
        self.engine = engine
        self.manifest = manifest
        self.tasks = tasks
        self.log = log
        self.plan = plan
        self.summary = Summary()
        self.groups: dict[tuple[int, int], list[_Waiting]] = {}
        # Batches in input order; each resolves to its entries (failures) or encode futures.
        self.batches: deque[Future[list[Entry | Future[Entry]]]] = deque()
        self.prefetch = plan.batch_size * 2 + plan.streams + config.workers
        self.bar = None
        self.clock = StageClock()
        self.summary.stage_seconds = self.clock.seconds
        self._split_engine = None  # the engine's halves, opened for the first smoothed video
        self._video_engine = None  # a one-stream engine, opened for the first video if needed
        self.stop = threading.Event()  # set by Ctrl-C

    def output_path(self, task: Task) -> Path:
        if task.relative.suffix.lower() in VIDEO_SUFFIXES:
            return self.config.output / task.relative.with_suffix(video_output_suffix(task.relative.suffix))
        relative = task.relative.with_suffix(output_suffix(task.relative, self.config.output_format))
        return self.config.output / relative

    def record(self, entry: Entry) -> None:
        self.manifest.record(entry)
        self.summary.counts[entry.status] = self.summary.counts.get(entry.status, 0) + 1
        if entry.status == STATUS_OK and entry.video:
            self.summary.video_frames += entry.video["frames"]
        elif entry.status == STATUS_OK and entry.width:
            self.summary.photos += 1
            self.summary.megapixels += entry.width * entry.height / 1e6
        if self.bar is not None:
            self.bar.update(1)
            elapsed = max(time.perf_counter() - self.started, 1e-9)
            self.bar.set_postfix(img_s=f"{self.summary.photos / elapsed:.1f}", failed=self.summary.failed)

    def _entry(self, waiting: _Waiting | None, task: Task, status: str, reason: str = "",
               output: Path | None = None, started: float | None = None) -> Entry:
        height, width = waiting.decoded.size if waiting else (None, None)
        milliseconds = (time.perf_counter() - started) * 1000.0 if started else None
        relative = str(output.relative_to(self.config.output)) if output else None
        return Entry(source=str(task.source), output=relative, status=status, reason=reason,
                     width=width, height=height,
                     milliseconds=round(milliseconds, 2) if milliseconds is not None else None)

    def run(self) -> Summary:
        config = self.config
        todo = []
        for task in self.tasks:
            output = self.output_path(task)
            if str(task.source) in self.manifest.done:
                self.summary.already_done += 1
            elif output.exists() and not config.overwrite:
                # Written by a run killed before its manifest line: complete, keep it.
                self.summary.already_done += 1
                self.manifest.record(Entry(str(task.source), str(output.relative_to(config.output)), STATUS_OK,
                                           reason="output already present"))
            else:
                todo.append((task, output))
        self.started = time.perf_counter()
        self.bar = tqdm(total=len(self.tasks), initial=self.summary.already_done, unit="img",
                        disable=not config.progress, desc="colouring")
        decoders = ThreadPoolExecutor(config.workers, thread_name_prefix="decode")
        self.inferrers = ThreadPoolExecutor(self.plan.streams, thread_name_prefix="infer")
        self.encoders = ThreadPoolExecutor(config.workers, thread_name_prefix="encode")
        pending: deque[tuple[Task, Path, float, Future]] = deque()
        videos = [(task, output) for task, output in todo if task.source.suffix.lower() in VIDEO_SUFFIXES]
        photos = iter([(task, output) for task, output in todo if task.source.suffix.lower() not in VIDEO_SUFFIXES])
        try:
            while True:
                if self.stop.is_set():
                    raise KeyboardInterrupt
                for task, output in photos:
                    pending.append((task, output, time.perf_counter(),
                                    decoders.submit(self._timed_decode, task.source)))
                    if len(pending) >= self.prefetch:
                        break
                if not pending:
                    break
                task, output, started, future = pending.popleft()
                self._decoded(task, output, started, future)
            for size in list(self.groups):
                self._infer(size)
            self._drain(0)
            self.summary.photo_seconds = time.perf_counter() - self.started
            for task, output in videos:
                if self.stop.is_set():
                    raise KeyboardInterrupt
                self._video(task, output)
        except KeyboardInterrupt:
            self.summary.interrupted = True
            for *_, future in pending:
                future.cancel()
            self._drain(0)
        finally:
            decoders.shutdown(wait=True, cancel_futures=True)
            self.inferrers.shutdown(wait=True)
            self.encoders.shutdown(wait=True)
            self.summary.seconds = time.perf_counter() - self.started
            self.bar.close()
        return self.summary

    def _video(self, task: Task, output: Path) -> None:
        config = self.config
        options = VideoOptions(codec=config.codec, crf=config.crf, preset=config.preset,
                               batch_size=config.batch_size or VIDEO_BATCH,
                               temporal_smoothing=config.temporal_smoothing)
        started = time.perf_counter()
        frames_bar = tqdm(unit="frame", desc=task.source.name, disable=not config.progress, leave=False)
        try:
            halves = self._halves() if options.temporal_smoothing > 0 else None
            figures = colorize_video(task.source, output, self._one_stream_engine(), halves, options,
                                     on_frames=frames_bar.update, should_stop=self.stop.is_set)
        except (DecodeFailure, EngineError) as failure:
            self.record(self._entry(None, task, STATUS_FAILED, str(failure), started=started))
            return
        finally:
            frames_bar.close()
        self.summary.video_seconds += time.perf_counter() - started
        entry = self._entry(None, task, STATUS_OK, output=output, started=started)
        self.record(replace(entry, width=figures["width"], height=figures["height"], video=figures))

    def _one_stream_engine(self) -> Engine:
        """Video runs one batch at a time: give it an engine that uses every core."""
        if self.plan.streams == 1:  # one stream already has every core (inference_plan)
            return self.engine
        if self._video_engine is None:
            self._video_engine = load_engine(self.config.engine, device=self.config.device)
        return self._video_engine

    def _halves(self):
        if self._split_engine is None:
            from retint.runtime import DEFAULT_MODEL
            from retint.runtime.split import SplitEngine

            self._split_engine = SplitEngine(self.config.engine or DEFAULT_MODEL, device=self.config.device)
        return self._split_engine

    def _timed_decode(self, source: Path) -> DecodedImage:
        began = time.perf_counter()
        try:
            return decode(source, self.config.max_pixels, self.config.include_colour)
        finally:
            self.clock.add("decode", time.perf_counter() - began)

    def _decoded(self, task: Task, output: Path, started: float, future: Future) -> None:
        try:
            decoded = future.result()
        except AlreadyColour:
            self.record(self._entry(None, task, STATUS_SKIPPED_COLOUR, "already in colour (--include-colour "
                                    "colours it from its own lightness)", started=started))
            return
        except DecodeFailure as failure:
            self.record(self._entry(None, task, STATUS_FAILED, str(failure), started=started))
            return
        waiting = _Waiting(task, output, decoded, started)
        limits = self.engine.spec.limits
        height, width = decoded.size
        if not (limits.min_side <= min(height, width) and max(height, width) <= limits.max_side):
            self.record(self._entry(waiting, task, STATUS_FAILED, f"{width}x{height} is outside the engine's "
                                    f"{limits.min_side}..{limits.max_side} px limits", started=started))
            return
        group = self.groups.setdefault(decoded.size, [])
        group.append(waiting)
        if len(group) >= self.plan.batch_size:
            self._infer(decoded.size)
        elif sum(len(g) for g in self.groups.values()) > self.plan.batch_size * 2:
            # Too many images wait for a partner of their size: run the largest group now.
            self._infer(max(self.groups, key=lambda size: len(self.groups[size])))

    def _infer(self, size: tuple[int, int]) -> None:
        self.batches.append(self.inferrers.submit(self._colorize_group, self.groups.pop(size)))
        # Enough batches queued to keep every stream busy while the oldest is encoded.
        self._drain(self.plan.streams + 1)

    def _colorize_group(self, group: list[_Waiting]) -> list[Entry | Future[Entry]]:
        batch = np.stack([waiting.decoded.gray for waiting in group])[:, None]
        began = time.perf_counter()
        try:
            rgb = self.engine.colorize(batch)
        except EngineError as error:
            return [self._entry(waiting, waiting.task, STATUS_FAILED, f"engine: {error}", started=waiting.started)
                    for waiting in group]
        finally:
            self.clock.add("infer", time.perf_counter() - began)
        return [self.encoders.submit(self._encode_and_write, waiting, image) for waiting, image in zip(group, rgb)]

    def _encode_and_write(self, waiting: _Waiting, rgb: np.ndarray) -> Entry:
        began = time.perf_counter()
        try:
            data = encode(rgb, waiting.decoded, waiting.output.suffix, self.config.quality)
        except (OSError, ValueError) as error:
            return self._entry(waiting, waiting.task, STATUS_FAILED, f"cannot encode: {error}",
                               started=waiting.started)
        finally:
            self.clock.add("encode", time.perf_counter() - began)
        began = time.perf_counter()
        write_output(waiting.output, data)  # OutputError stops the run
        self.clock.add("write", time.perf_counter() - began)
        reason = "; ".join(waiting.decoded.notes)
        return self._entry(waiting, waiting.task, STATUS_OK, reason, output=waiting.output,
                           started=waiting.started)

    def _drain(self, keep: int) -> None:
        """Record finished batches, oldest first, until at most `keep` remain in flight."""
        while len(self.batches) > keep:
            results = self.batches[0].result()
            # Record each result, then forget it: a Ctrl-C while waiting leaves the
            # rest queued, so that the interrupt handler still records them.
            while results:
                result = results[0]
                self.record(result.result() if isinstance(result, Future) else result)
                results.pop(0)
            self.batches.popleft()


def run_batch(config: BatchConfig, log: Callable[[str], None] = print) -> Summary:
    """Colour everything under config.sources into config.output; see module doc."""
    lock = OutputLock(config.output)
    try:
        removed = remove_partials(config.output)
        if removed:
            log(f"removed {removed} partial file(s) left by an interrupted run")
        tasks = find_tasks(config.sources, config.output, IMAGE_SUFFIXES | VIDEO_SUFFIXES)
        plan = inference_plan(config.engine, config.device, config.batch_size, config.streams)
        engine = load_engine(config.engine, device=config.device, cpu_threads=plan.cpu_threads)
        manifest = Manifest(config.output, config.overwrite)
        runner = BatchRun(config, engine, manifest, tasks, log, plan)
        try:
            with ctrl_c_sets(runner.stop):
                summary = runner.run()
        except OutputError:
            manifest.close(runner.summary.as_dict() | {"aborted": "output not writable"})
            raise
        manifest.close(summary.as_dict())
        if summary.interrupted:
            raise Interrupted("interrupted; finished outputs are kept, rerun to do the rest")
        return summary
    finally:
        lock.release()
