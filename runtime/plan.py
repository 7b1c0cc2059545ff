"""The inference plan: how many engine calls run at once, on how many threads, with how many images.

On ONNX Runtime's CPU provider two calls run at once, each on half the
cores, with one image per call. One call on all cores waits at every
operator for its slowest thread while the decode and encode threads take
those cores, and a batch of full-resolution images pushes every
intermediate plane out of the caches.

The OpenVINO backend (lightness on ONNX Runtime, generator and compose on
OpenVINO) runs one image per call on one thread per stage, with one stream
more than there are cores, OpenVINO compiled with one stream per pipeline
stream: each call hands its image from runtime to runtime three times, and
the extra stream keeps the cores busy across those hand-overs.

GPU engines run one stream of 8: the device overlaps the work itself and
wants full batches. Videos run one stream on every core, VIDEO_BATCH frames
per call on any device. `--batch` and `--streams` override these. The
measurements behind each choice are in benchmarks/README.md ("Inference
plans compared", "Archives", "Video").
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from retint.runtime import BackendChoice

VIDEO_BATCH = 8  # frames per engine call unless --batch says otherwise
# How the commands' help words inference_plan's default number of streams.
DEFAULT_STREAMS_TEXT = "2 on the CPU with ONNX Runtime, one per core plus one with OpenVINO, 1 on a GPU"


@dataclass(frozen=True)
class InferencePlan:
    """Batches through the engine at once, ONNX Runtime's threads for each, images per batch."""

    streams: int = 1
    cpu_threads: int = 0  # 0: ONNX Runtime's default, one per core
    batch_size: int = 8


def inference_plan(choice: BackendChoice, batch_size: int | None = None, streams: int | None = None,
                   cores: int | None = None) -> InferencePlan:
    """See the module doc: on the CPU two half-machine streams of one image (OpenVINO: cores + 1
    streams of one thread), else one stream of 8. `batch_size` and `streams` override the defaults;
    CPU streams share the cores evenly (`cores`, by default every core of this machine: a Ray actor
    that shares its node plans for its own share)."""
    if choice.device != "cpu":
        return InferencePlan(streams=streams or 1, batch_size=batch_size or 8)
    cores = cores or os.cpu_count() or 1
    if choice.backend == "openvino":
        streams = streams or cores + 1
    streams = streams or (2 if cores >= 2 else 1)
    return InferencePlan(streams=streams, cpu_threads=max(1, cores // streams), batch_size=batch_size or 1)
