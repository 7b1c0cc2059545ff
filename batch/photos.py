"""The photo pipeline: decode workers -> batcher -> engine -> encode/write workers.

Decoding, inference and encoding run in thread pools (Pillow, OpenCV and ONNX
Runtime release the GIL while they work); the coordinating thread groups
decoded images of equal size into batches and records the results batch by
batch, in the order the batches were formed. Every stage is bounded (decodes
in flight, images waiting for a batch partner, batches in flight with their
encodes), so memory stays flat however large the archive is. The plan
(streams, threads, images per call) is `retint.runtime.plan`'s.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np
from PIL import Image

from retint.batch.config import BatchConfig
from retint.batch.decode import (AlreadyColour, DecodedImage, DecodeFailure, UnreadableImage, decode,
                                 describe_exception)
from retint.batch.encode import encode
from retint.batch.guides import recorded_guides
from retint.batch.manifest import (STATUS_FAILED, STATUS_OK, STATUS_SKIPPED_COLOUR, Entry, journal_entry,
                                   journalled_output)
from retint.batch.naming import PlannedOutput
from retint.batch.recording import StageClock, make_entry
from retint.batch.tiles import LargePhotos
from retint.errors import EngineError, OutputError
from retint.files import write_bytes_atomically
from retint.runtime import Engine, InferencePlan
from retint.runtime.guides.hints import checked_hints
from retint.runtime.uncertainty import heat_map, interval_width, width_summary

WAIT_SLICE_SECONDS = 0.2  # how often a wait for a decode looks at Ctrl-C and the time limit


class InputTimedOut(DecodeFailure):
    """One input's read and decode outlasted --timeout-per-input."""


ALREADY_COLOUR_REASON = "already in colour (--include-colour colours it from its own lightness)"
EARLIER_OUTPUT_KEPT = "its earlier output (coloured with other hints or reference) is left as it was"


@dataclass
class _Waiting:
    planned: PlannedOutput
    decoded: DecodedImage
    started: float

    @property
    def output(self) -> Path:
        assert self.planned.output is not None  # planned outputs with a problem never reach decode
        return self.planned.output


class PhotoPipeline:
    def __init__(self, config: BatchConfig, engine: Engine, plan: InferencePlan, clock: StageClock,
                 record: Callable[[Entry], None], stop: threading.Event, large: LargePhotos | None = None):
        self.config = config
        self.engine = engine
        self.large = large  # how photos over LARGE_PHOTO_PIXELS are coloured (`tiles`); None: whole
        self.plan = plan
        self.clock = clock
        self.record = record
        self.stop = stop
        # (height, width, reference sha256 or "") -> decoded photos waiting for batch partners: a batch
        # shares its size and its reference (the engine takes one reference per call).
        self.groups: dict[tuple[int, int, str], list[_Waiting]] = {}
        # Batches in input order; each resolves to its entries (failures) or encode futures.
        self.batches: deque[Future[list[Entry | Future[Entry]]]] = deque()
        self.prefetch = plan.batch_size * 2 + plan.streams + config.workers
        self.abandoned = 0  # decodes given up on (--timeout-per-input), perhaps still stuck in their thread

    def _entry(self, planned: PlannedOutput, status: str, reason: str = "", output: Path | None = None,
               decoded: DecodedImage | None = None, started: float | None = None,
               final_failure: bool = False) -> Entry:
        if status == STATUS_FAILED and planned.replaces_own:
            reason = f"{reason}; {EARLIER_OUTPUT_KEPT}"
        entry = make_entry(planned.task, status, self.config.output, reason, output,
                           decoded.size if decoded else None, started, final_failure)
        return replace(entry, **recorded_guides(planned))

    def run(self, photos: Iterable[PlannedOutput]) -> None:
        """Colour `photos`; raises KeyboardInterrupt after recording the work in flight when stopped."""
        decoders = ThreadPoolExecutor(self.config.workers, thread_name_prefix="decode")
        self.inferrers = ThreadPoolExecutor(self.plan.streams, thread_name_prefix="infer")
        self.encoders = ThreadPoolExecutor(self.config.workers, thread_name_prefix="encode")
        pending: deque[tuple[PlannedOutput, float, Future]] = deque()
        photos = iter(photos)
        interrupted = False
        try:
            while True:
                if self.stop.is_set():
                    raise KeyboardInterrupt
                for planned in photos:
                    pending.append((planned, time.perf_counter(), decoders.submit(self._timed_decode, planned.task.source)))
                    if len(pending) >= self.prefetch:
                        break
                if not pending:
                    break
                planned, started, future = pending.popleft()
                self._decoded(planned, started, self._await_decode(future))
            for key in list(self.groups):
                self._infer(key)
            self._drain(0)
        except KeyboardInterrupt:
            interrupted = True
            for *_, future in pending:
                future.cancel()
            self._drain(0)
            raise
        finally:
            # A decode given up on (see _await_decode), or one in flight at Ctrl-C, may be stuck in a
            # read that never returns: do not wait for it (its result would be discarded anyway).
            decoders.shutdown(wait=not (self.abandoned or interrupted), cancel_futures=True)
            self.inferrers.shutdown(wait=True)
            self.encoders.shutdown(wait=True)

    def _timed_decode(self, source: Path) -> DecodedImage:
        began = time.perf_counter()
        try:
            return decode(source, self.config.max_pixels, self.config.include_colour)
        finally:
            self.clock.add("decode", time.perf_counter() - began)

    def _await_decode(self, future: Future) -> Future:
        """`future` once it is done; or, past --timeout-per-input seconds of waiting for it, a future
        holding InputTimedOut. Waits in short slices, so Ctrl-C is seen while a read stalls."""
        waited_since = time.perf_counter()
        limit = self.config.timeout_per_input
        while True:
            try:
                future.result(timeout=min(WAIT_SLICE_SECONDS, max(0.005, limit - (time.perf_counter() - waited_since))))
                return future
            except FutureTimeout:
                if self.stop.is_set():
                    raise KeyboardInterrupt from None
                if time.perf_counter() - waited_since >= limit:
                    self.abandoned += 1
                    gave_up: Future = Future()
                    gave_up.set_exception(InputTimedOut(
                        f"reading and decoding it took over {self.config.timeout_per_input:g} s "
                        f"(--timeout-per-input); given up (a stalled disk or network share?)"))
                    return gave_up
            except BaseException:
                return future  # done, with its exception: _decoded records it

    def _decoded(self, planned: PlannedOutput, started: float, future: Future) -> None:
        try:
            decoded = future.result()
        except AlreadyColour:
            self.record(self._entry(planned, STATUS_SKIPPED_COLOUR, ALREADY_COLOUR_REASON, started=started))
            return
        except DecodeFailure as failure:
            self.record(self._entry(planned, STATUS_FAILED, str(failure), started=started,
                                    final_failure=isinstance(failure, UnreadableImage)))
            return
        except Exception as error:  # a bug in retint must still cost only this input's line
            self.record(self._entry(planned, STATUS_FAILED, f"cannot decode it ({describe_exception(error)})",
                                    started=started))
            return
        by_tiles = self._by_tiles(planned, decoded)
        refusal = (None if by_tiles else self.engine.spec.limits.refusal(*decoded.size)) \
            or self._hints_refusal(planned, decoded)
        if refusal:
            self.record(self._entry(planned, STATUS_FAILED, refusal, decoded=decoded, started=started))
            return
        if by_tiles:
            # One large photo in flight at a time (its output image is 4 bytes a pixel): the batches
            # before it, and the large photo before it, are written first.
            self._drain(0)
            self.batches.append(self.inferrers.submit(self._colour_large, _Waiting(planned, decoded, started)))
            return
        key = (*decoded.size, planned.reference.sha256 if planned.reference else "")
        group = self.groups.setdefault(key, [])
        group.append(_Waiting(planned, decoded, started))
        if len(group) >= self.plan.batch_size:
            self._infer(key)
        elif sum(len(g) for g in self.groups.values()) > self.plan.batch_size * 2:
            # Too many images wait for a partner of their size: run the largest group now.
            self._infer(max(self.groups, key=lambda waiting: len(self.groups[waiting])))

    def _by_tiles(self, planned: PlannedOutput, decoded: DecodedImage) -> bool:
        """Whether this photo is coloured tile by tile (`tiles`): a large one, without hints or
        --uncertainty, which need the whole photo in one engine call."""
        return (self.large is not None and self.large.wants(*decoded.size) and not planned.hints
                and not self.config.uncertainty)

    def _colour_large(self, waiting: _Waiting) -> list[Entry | Future[Entry]]:
        """One large photo, by tiles, then its encode (as `_colour_group` does for a batch)."""
        assert self.large is not None  # only _by_tiles photos come here
        reference = waiting.planned.reference.rgb() if waiting.planned.reference else None
        began = time.perf_counter()
        try:
            image = self.large.colour(waiting.decoded.gray, reference)
        except Exception as error:
            return self._engine_failures([waiting], error)
        finally:
            self.clock.add("infer", time.perf_counter() - began)
        # Coloured, the grey plane is needed no more, only its size (the manifest's): its bytes are
        # let go before the encode, which holds the output image and the encoded file at once.
        waiting.decoded.gray = np.broadcast_to(np.zeros((), np.uint8), waiting.decoded.gray.shape)
        return [self.encoders.submit(self._encode_and_write, waiting, image)]

    def _engine_failures(self, group: list[_Waiting], error: Exception) -> list[Entry | Future[Entry]]:
        """Each photo of `group` failed with what the engine raised (only their line, not the run)."""
        reason = f"engine: {error}" if isinstance(error, EngineError) else f"engine: {describe_exception(error)}"
        return [self._entry(waiting.planned, STATUS_FAILED, reason, decoded=waiting.decoded, started=waiting.started)
                for waiting in group]

    def _hints_refusal(self, planned: PlannedOutput, decoded: DecodedImage) -> str:
        """Why this photo's hints cannot be taken (one outside the image), or ''. Checked here, photo
        by photo, so that a bad hint fails its photo and not its batch partners."""
        if not planned.hints:
            return ""
        try:
            checked_hints([planned.hints], 1, decoded.gray.shape[:2])
        except EngineError as error:
            return f"--hints: {error}"
        return ""

    def _infer(self, key: tuple[int, int, str]) -> None:
        self.batches.append(self.inferrers.submit(self._colour_group, self.groups.pop(key)))
        # Enough batches queued to keep every stream busy while the oldest is encoded.
        self._drain(self.plan.streams + 1)

    def _colour_group(self, group: list[_Waiting]) -> list[Entry | Future[Entry]]:
        batch = np.stack([waiting.decoded.gray for waiting in group])[:, None]
        # Only a batch with hinted photos passes hints: the rest colour exactly as without --hints.
        hints = [list(waiting.planned.hints) for waiting in group] if any(w.planned.hints for w in group) else None
        reference = group[0].planned.reference.rgb() if group[0].planned.reference else None
        began = time.perf_counter()
        widths: list[np.ndarray | None] = [None] * len(group)
        try:
            if self.config.uncertainty:
                rgb, interval = self.engine.colorize(batch, with_uncertainty=True, hints=hints, reference=reference)
                widths = list(interval_width(interval, channels_last=True))
            else:
                rgb = self.engine.colorize(batch, hints=hints, reference=reference)
        except Exception as error:  # whatever the engine raises fails this batch's inputs, not the run
            return self._engine_failures(group, error)
        finally:
            self.clock.add("infer", time.perf_counter() - began)
        return [self.encoders.submit(self._encode_and_write, waiting, image, width)
                for waiting, image, width in zip(group, rgb, widths)]

    def _write_uncertainty_map(self, waiting: _Waiting, width: np.ndarray) -> dict:
        """The heat map beside the output (written first: the output is the commit), and its figures."""
        path = waiting.planned.uncertainty_map
        assert path is not None  # planned by plan_outputs whenever --uncertainty is on
        ok, data = cv2.imencode(".png", heat_map(width))
        if not ok:
            raise ValueError("PNG encoder failed on the uncertainty map")
        # Replaced when present: a map is written before its output, so a run killed between the two
        # leaves one behind; the planner made sure no input lies at this path.
        write_bytes_atomically(path, data.tobytes())
        return {"map": str(path.relative_to(self.config.output)), **width_summary(width)}

    def _encode_and_write(self, waiting: _Waiting, rgb: np.ndarray | Image.Image,
                          width: np.ndarray | None = None) -> Entry:
        """This input's entry: ok, or failed with whatever went wrong. Only OutputError (a disk that
        cannot take outputs at all) escapes, and stops the run."""
        try:
            return self._encode_and_write_or_raise(waiting, rgb, width)
        except OutputError:
            raise
        except Exception as error:
            return self._entry(waiting.planned, STATUS_FAILED, f"cannot write it ({describe_exception(error)})",
                               decoded=waiting.decoded, started=waiting.started)

    def _encode(self, waiting: _Waiting, rgb: np.ndarray | Image.Image) -> tuple[bytes, list[str]]:
        """(the output file's bytes, notes). Metadata an encoder refuses is left out, with a note,
        rather than costing the photo."""
        try:
            return encode(rgb, waiting.decoded, waiting.output.suffix, self.config.quality), []
        except Exception as error:
            if not (waiting.decoded.exif or waiting.decoded.icc):
                raise
            bare = replace(waiting.decoded, exif=None, icc=None)
            note = f"metadata not copied: the encoder refused it ({describe_exception(error)})"
            return encode(rgb, bare, waiting.output.suffix, self.config.quality), [note]

    def _encode_and_write_or_raise(self, waiting: _Waiting, rgb: np.ndarray | Image.Image,
                                   width: np.ndarray | None) -> Entry:
        began = time.perf_counter()
        try:
            data, notes = self._encode(waiting, rgb)
        except Exception as error:
            return self._entry(waiting.planned, STATUS_FAILED, f"cannot encode: {describe_exception(error)}",
                               decoded=waiting.decoded, started=waiting.started)
        finally:
            self.clock.add("encode", time.perf_counter() - began)
        began = time.perf_counter()
        uncertainty = self._write_uncertainty_map(waiting, width) if width is not None else None
        notes = waiting.decoded.notes + notes
        reason = "; ".join(notes + ([waiting.planned.note] if waiting.planned.note else []))
        entry = self._entry(waiting.planned, STATUS_OK, reason, output=waiting.output, decoded=waiting.decoded,
                            started=waiting.started)
        entry = replace(entry, uncertainty=uncertainty) if uncertainty else entry
        # Never over a file that is not retint's (unless --overwrite); OutputError stops the run.
        try:
            write_bytes_atomically(waiting.output, data, replace=self.config.overwrite or waiting.planned.replaces_own,
                                   before_publish=lambda finished: journal_entry(self.config.output, entry, finished))
        except FileExistsError:
            # Named since this run planned it: by a killed run's worker, if the journal proves it.
            earlier = journalled_output(self.config.output, entry)
            if earlier is None:
                raise
            entry = earlier
        self.clock.add("write", time.perf_counter() - began)
        return entry

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
