"""`colorize-bench parity`: engines against PyTorch FP32, with the export gates' code.

Each engine file runs on each requested backend; a row is gated by the
precision its engine reports (fp32, fp16, or bf16 for OpenVINO on a CPU with
native bf16). With ONNX Runtime among the backends, every other backend's
row also gives its distance to ONNX Runtime's output of the same file.
"""

from __future__ import annotations

from pathlib import Path

from retint.progress import StepProgress, Steps
from retint.export.parity import GATES, gate_failures, load_parity_images, measure_parity, parity_cases
from retint.runtime import load_engine


def run_parity(checkpoint: Path, engines: list[Path], image_folder: Path | None,
               backends: tuple[str, ...] = ("onnxruntime",), progress: StepProgress | None = None) -> list[dict]:
    """One row per engine file and backend; `progress` hears of each step as it begins (a
    PyTorch reference and each row take seconds to a minute)."""
    from retint.benchmarks.latency import torch_colouriser

    steps = Steps(["PyTorch reference"] + [f"{path.name} on {backend}" for path in engines for backend in backends],
                  progress)
    steps.begin("PyTorch reference")
    reference, _, _ = torch_colouriser(checkpoint)
    cases = parity_cases(load_parity_images(image_folder))
    results = []
    for path in engines:
        on_onnxruntime = None
        for backend in backends:
            steps.begin(f"{path.name} on {backend}")
            engine = load_engine(path, backend=backend)
            probe = None
            if engine.spec.backend == "onnxruntime" and path.suffix == ".onnx":
                import onnx

                from retint.export.onnx_export import NonfiniteProbe

                probe = NonfiniteProbe(onnx.load(str(path)))
            report = measure_parity(reference, engine.colorize, cases, probe)
            precision = engine.spec.precision if engine.spec.precision in GATES else "fp32"
            row = {"engine": str(path), "backend": engine.spec.backend, "provider": engine.spec.provider,
                   "precision": engine.spec.precision, "reason": engine.spec.reason, **report.summary(),
                   "gate": precision, "gate_failures": gate_failures(report, GATES[precision]),
                   "per_case": report.per_case}
            if engine.spec.backend == "onnxruntime" and on_onnxruntime is None:
                on_onnxruntime = engine
            elif on_onnxruntime is not None:
                versus = measure_parity(on_onnxruntime.colorize, engine.colorize, cases).summary()
                row["versus_onnxruntime"] = {key: versus[key] for key in
                                             ("mean_ciede2000", "p99_ciede2000", "max_abs_error")}
            results.append(row)
    steps.finish()
    return results
