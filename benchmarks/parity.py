"""`colorize-bench parity`: engines against PyTorch FP32, with the export gates' code."""

from __future__ import annotations

from pathlib import Path

from retint.export.parity import GATES, gate_failures, load_parity_images, measure_parity, parity_cases
from retint.runtime import load_engine


def run_parity(checkpoint: Path, engines: list[Path], image_folder: Path | None) -> list[dict]:
    from retint.benchmarks.latency import torch_colorizer

    reference, _, _ = torch_colorizer(checkpoint)
    cases = parity_cases(load_parity_images(image_folder))
    results = []
    for path in engines:
        engine = load_engine(path)
        probe = None
        if path.suffix == ".onnx":
            import onnx

            from retint.export.onnx_export import NonfiniteProbe

            probe = NonfiniteProbe(onnx.load(str(path)))
        report = measure_parity(reference, engine.colorize, cases, probe)
        precision = engine.spec.precision if engine.spec.precision in GATES else "fp32"
        results.append({"engine": str(path), "backend": engine.spec.backend, "provider": engine.spec.provider,
                        "precision": engine.spec.precision, **report.summary(),
                        "gate": precision, "gate_failures": gate_failures(report, GATES[precision]),
                        "per_case": report.per_case})
    return results
