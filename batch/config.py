"""`colorize-batch` configuration: one field per option."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retint.runtime import EngineRequest

from retint.batch.encode import OUTPUT_FORMATS
from retint.batch.hints import HintTable
from retint.batch.reference import ReferenceTable
from retint.batch.video.options import EncoderOptions

__all__ = ["OUTPUT_FORMATS", "BatchConfig"]


@dataclass(frozen=True)
class BatchConfig:
    sources: tuple[Path, ...]
    output: Path
    engine: Path | None = None  # None: the bundled default model
    backend: str = "auto"  # auto, onnxruntime, openvino or tensorrt (retint.runtime.backends)
    device: str = "auto"
    batch_size: int | None = None  # None: the inference plan's (1 on the CPU, 8 on a GPU)
    streams: int | None = None  # engine calls at once; None: the inference plan's (runtime/plan.py)
    workers: int = 2
    output_format: str = "keep"
    quality: int = 95
    max_pixels: int = 150_000_000
    include_colour: bool = False
    overwrite: bool = False
    progress: bool = True
    timeout_per_input: float = 600.0  # seconds a photo's read and decode, or a video's wait for a frame, may take
    # video
    encoder: EncoderOptions = EncoderOptions()  # --codec, --crf, --preset
    temporal_smoothing: float = 0.0
    # uncertainty (photos only; the engine needs an interval stage, see retint.runtime.uncertainty)
    uncertainty: bool = False  # <output stem>.uncertainty.png beside each output, widths in the manifest
    mute_uncertain: bool = False  # chroma shrunk toward grey where the interval is wide
    # colour model v2 engines: the annealed mean's temperature (None: the artefact's default)
    temperature: float | None = None
    # --hints: input key (its path in the output tree) -> its colour hints (retint.batch.hints)
    hints: HintTable = HintTable()
    # --reference and the hints file's "reference" entries: which palette guides which input
    references: ReferenceTable = ReferenceTable()
    # scale out (retint.batch.ray.runner)
    ray: bool = False  # colour on a Ray cluster (RAY_ADDRESS, else a local instance)
    ray_actors: int | None = None  # engine actors; None: one per GPU, else one per 4 CPUs, leaving CPUs free

    def engine_request(self, cores: int | None = None) -> EngineRequest:
        """What this run asks of the runtime (`cores`: a Ray actor plans for its share of a node)."""
        return EngineRequest(path=self.engine, backend=self.backend, device=self.device, batch_size=self.batch_size,
                             streams=self.streams, cores=cores, mute_uncertain=self.mute_uncertain,
                             temperature=self.temperature, uncertainty_for="--uncertainty" if self.uncertainty else "")
