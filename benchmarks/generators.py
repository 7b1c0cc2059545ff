"""Generator speed: PyTorch eager vs ONNX Runtime (FP32 and FP16) on the same weights.

The generator alone (L -> ab at render size), batch N, on the CPU; also FLOPs
per image, so throughput converts to achieved GFLOP/s.
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from retint.benchmarks.timing import Timing, interleaved
from retint.model.config import GeneratorConfig
from retint.model.networks import build_generator


@dataclass(frozen=True)
class GeneratorResult:
    arch: str
    parameters: int
    gflops_per_image: float
    timings: dict[str, Timing]


def count_flops(generator: torch.nn.Module, render_size: int) -> float:
    """FLOPs (2 per multiply-add) of one image, from torch's flop counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        generator(torch.zeros(1, 1, render_size, render_size))
    return float(counter.get_total_flops())


def export_generator(generator: torch.nn.Module, batch: int, render_size: int, path: Path,
                     half: bool = False) -> None:
    """Write a copy of `generator` (FP16 when `half`) to `path` as an ONNX graph, lightness in and
    ab out, for batches of `batch` at render size."""
    module = copy.deepcopy(generator).eval()
    example = torch.zeros(batch, 1, render_size, render_size)
    if half:
        module = module.half()
        example = example.half()
    program = torch.onnx.export(module, (example,), input_names=["lightness"], output_names=["ab"],
                                opset_version=20, external_data=False, dynamo=True, verbose=False)
    program.save(str(path))


def benchmark_generator(arch: str, batch: int = 8, render_size: int = 256, include_fp16: bool = True,
                        min_seconds: float = 3.0, rounds: int = 3) -> GeneratorResult:
    """Time an untrained `arch` generator on random lightness batches in PyTorch eager and through
    ONNX Runtime (FP32, and FP16 when asked), with its parameter count and FLOPs per image."""
    torch.manual_seed(0)
    generator = build_generator(GeneratorConfig.for_arch(arch, pretrained_encoder=False)).eval()
    rng = np.random.default_rng(0)
    lightness = (rng.random((batch, 1, render_size, render_size), dtype=np.float32) * 2 - 1)
    torch_input = torch.from_numpy(lightness)
    calls = {}

    def run_torch():
        with torch.inference_mode():
            generator(torch_input)

    calls["pytorch-eager-fp32"] = run_torch
    with tempfile.TemporaryDirectory() as folder:
        variants = [("onnxruntime-cpu-fp32", False)] + ([("onnxruntime-cpu-fp16", True)] if include_fp16 else [])
        for name, half in variants:
            path = Path(folder) / f"{name}.onnx"
            export_generator(generator, batch, render_size, path, half=half)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            feed = {"lightness": lightness.astype(np.float16) if half else lightness}
            calls[name] = (lambda s=session, f=feed: s.run(None, f))
        timings = interleaved(calls, items_per_run=batch, rounds=rounds, min_seconds=min_seconds)
    return GeneratorResult(arch=arch, parameters=sum(p.numel() for p in generator.parameters()),
                           gflops_per_image=count_flops(generator, render_size) / 1e9, timings=timings)
