"""The inference plan: how many engine calls run at once, on how many threads, with how many images.

On ONNX Runtime's CPU provider two calls run at once, each on half the
cores, with one image per call. One call on all cores waits at every
operator for its slowest thread while the decode and encode threads take
those cores, and a batch of full-resolution images pushes every
intermediate plane out of the caches. Two rounds side by side on 2 cores,
500 1024x768 JPEGs end to end (`colorize-bench pipeline ARCHIVE --streams S
--batch B`; images/s, peak RSS): two streams of 1 image 22.8 and 20.4 at
0.3 GB; one stream of 1 on both cores 17.8 and 17.2 at 0.2 GB; two streams
of 8 20.3 and 18.4 at 1.3 GB; one stream of 8 17.6 and 15.6 at 0.8 GB.

The OpenVINO backend (lightness on ONNX Runtime, generator and compose on
OpenVINO) runs one image per call on one thread per stage, with one stream
more than there are cores, OpenVINO compiled with one stream per pipeline
stream. Each call hands its image from runtime to runtime three times, and
the extra stream keeps the cores busy across those hand-overs: on 2 cores,
500 1024x768 JPEGs, 2 streams gave 65.7 and 62.9 images/s, 3 streams 76.4
and 76.5, 4 streams 76.5 and 76.9 (ONNX Runtime: 47.4 and 47.1 at 3
streams, 47.7 at 2; `benchmarks/README.md`).

GPU engines run one stream of 8: the device overlaps the work itself and
wants full batches. Videos run one stream on every core, 8 frames per call
on any device (15.0 frames/s against 13.1 at one frame per call, vtest
768x576 on 2 cores). `--batch` and `--streams` override these.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from retint.runtime import BackendChoice

VIDEO_BATCH = 8  # frames per engine call unless --batch says otherwise


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
