"""Parity: how far an exported artefact's pixels are from PyTorch's.

`parity_cases` builds real-looking grey inputs at several sizes and aspect
ratios (batch 1 and 4) plus synthetic extremes; `measure_parity` runs a
reference and a candidate on every case and reports uint8 error, CIEDE2000,
PSNR and non-finite values; `check_gate` applies the export gates. The same
code serves `export-trt` and `colorize-bench parity`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from retint.errors import InputError, ParityError
from retint.model.colour import rgb_uint8_to_lab
from retint.media import IMAGE_SUFFIXES
from retint.model.metrics import ciede2000, psnr

SHIPPED_PARITY_IMAGES = Path(__file__).parent / "parity_images"

Colouriser = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ParityCase:
    name: str
    gray: np.ndarray  # uint8 [N,1,H,W]


@dataclass(frozen=True)
class Gate:
    """Limits a candidate must stay within; None means "not gated"."""

    name: str
    min_fraction_within_one_level: float | None = None
    max_mean_ciede2000: float | None = None
    max_p99_ciede2000: float | None = None
    max_nonfinite: int | None = 0


FP32_GATE = Gate("fp32", min_fraction_within_one_level=0.999, max_mean_ciede2000=0.1)
FP16_GATE = Gate("fp16", max_mean_ciede2000=0.5, max_p99_ciede2000=2.0)
# bf16 (OpenVINO on a CPU with AMX or AVX512-BF16) keeps fewer mantissa bits than fp16: the same limits.
BF16_GATE = Gate("bf16", max_mean_ciede2000=0.5, max_p99_ciede2000=2.0)
GATES = {"fp32": FP32_GATE, "fp16": FP16_GATE, "bf16": BF16_GATE}


@dataclass
class ParityReport:
    cases: int = 0
    pixels: int = 0
    max_abs_error: int = 0
    p999_abs_error: float = 0.0
    fraction_within_one_level: float = 1.0
    mean_ciede2000: float = 0.0
    p99_ciede2000: float = 0.0
    max_ciede2000: float = 0.0
    psnr_db: float = float("inf")
    nonfinite: int = 0
    per_case: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """The figures without the per-case detail (for sidecars)."""
        figures = asdict(self)
        figures.pop("per_case")
        return {key: (round(value, 6) if isinstance(value, float) else value) for key, value in figures.items()}


def load_parity_images(folder: Path | None) -> list[np.ndarray]:
    """Grey uint8 images from `folder`, else the ones retint ships."""
    folder = Path(folder) if folder else SHIPPED_PARITY_IMAGES
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    images = [image for image in (cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths) if image is not None]
    if not images:
        raise InputError(f"no readable images for the parity gates in {folder}")
    return images


def parity_cases(images: list[np.ndarray], seed: int = 0) -> list[ParityCase]:
    """Several sizes and aspect ratios, batch 1 and 4, and synthetic extremes."""
    rng = np.random.default_rng(seed)
    cases = []

    def resized(image: np.ndarray, height: int, width: int) -> np.ndarray:
        interpolation = cv2.INTER_AREA if height * width < image.size else cv2.INTER_LINEAR
        return cv2.resize(image, (width, height), interpolation=interpolation)

    for index, image in enumerate(images[:4]):
        cases.append(ParityCase(f"native-{index}-{image.shape[1]}x{image.shape[0]}", image[None, None]))
    first = images[0]
    for height, width in ((1024, 768), (256, 256), (48, 64), (300, 1500)):
        cases.append(ParityCase(f"resized-{width}x{height}", resized(first, height, width)[None, None]))
    batch = [resized(images[i % len(images)], 240, 320) for i in range(4)]
    batch[1] = batch[1][:, ::-1]
    cases.append(ParityCase("batch4-320x240", np.stack(batch)[:, None].copy()))
    extremes = np.stack([
        np.zeros((128, 160), np.uint8),
        np.full((128, 160), 255, np.uint8),
        rng.integers(0, 256, (128, 160), dtype=np.uint8),
        (np.indices((128, 160)).sum(axis=0) % 2 * 255).astype(np.uint8),
    ])
    cases.append(ParityCase("extremes-160x128", extremes[:, None]))
    return cases


def measure_parity(reference: Colouriser, candidate: Colouriser, cases: list[ParityCase],
                   nonfinite_probe: Callable[[np.ndarray], int] | None = None) -> ParityReport:
    """Compare candidate(gray) with reference(gray) over all cases."""
    abs_errors, delta_e, squared = [], [], 0.0
    report = ParityReport()
    for case in cases:
        expected = reference(case.gray)
        actual = candidate(case.gray)
        if actual.shape != expected.shape or actual.dtype != np.uint8:
            raise ParityError(f"case {case.name}: candidate gave {actual.dtype}{list(actual.shape)}, "
                              f"expected uint8{list(expected.shape)}")
        error = np.abs(actual.astype(np.int16) - expected.astype(np.int16))
        lab_expected = rgb_uint8_to_lab(torch.from_numpy(expected).permute(0, 3, 1, 2))
        lab_actual = rgb_uint8_to_lab(torch.from_numpy(actual).permute(0, 3, 1, 2))
        case_delta_e = ciede2000(lab_expected, lab_actual).numpy().ravel()
        nonfinite = nonfinite_probe(case.gray) if nonfinite_probe else 0
        abs_errors.append(error.ravel())
        delta_e.append(case_delta_e)
        squared += float((error.astype(np.float64) ** 2).sum())
        report.nonfinite += nonfinite
        report.per_case.append({
            "case": case.name, "shape": list(case.gray.shape), "max_abs_error": int(error.max()),
            "mean_ciede2000": float(case_delta_e.mean()), "nonfinite": nonfinite,
            "psnr_db": float(psnr(torch.from_numpy(expected).float(), torch.from_numpy(actual).float(),
                                  peak=255.0).min()),
        })
    errors = np.concatenate(abs_errors)
    all_delta_e = np.concatenate(delta_e)
    report.cases = len(cases)
    report.pixels = int(all_delta_e.size)
    report.max_abs_error = int(errors.max())
    report.p999_abs_error = float(np.percentile(errors, 99.9))
    report.fraction_within_one_level = float((errors <= 1).mean())
    report.mean_ciede2000 = float(all_delta_e.mean())
    report.p99_ciede2000 = float(np.percentile(all_delta_e, 99))
    report.max_ciede2000 = float(all_delta_e.max())
    mse = squared / errors.size
    report.psnr_db = float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf")
    return report


def gate_failures(report: ParityReport, gate: Gate) -> list[str]:
    """Every limit the report breaks, as readable lines (empty: the gate passes)."""
    failures = []
    if gate.min_fraction_within_one_level is not None and \
            report.fraction_within_one_level < gate.min_fraction_within_one_level:
        failures.append(f"{report.fraction_within_one_level:.4%} of values within 1 level "
                        f"(needs >= {gate.min_fraction_within_one_level:.1%})")
    if gate.max_mean_ciede2000 is not None and report.mean_ciede2000 > gate.max_mean_ciede2000:
        failures.append(f"mean CIEDE2000 {report.mean_ciede2000:.3f} (limit {gate.max_mean_ciede2000})")
    if gate.max_p99_ciede2000 is not None and report.p99_ciede2000 > gate.max_p99_ciede2000:
        failures.append(f"99th-percentile CIEDE2000 {report.p99_ciede2000:.3f} (limit {gate.max_p99_ciede2000})")
    if gate.max_nonfinite is not None and report.nonfinite > gate.max_nonfinite:
        failures.append(f"{report.nonfinite} NaN/Inf values in the generator output")
    return failures


def describe(report: ParityReport) -> str:
    """The report in one line, as export-trt and colorize-bench print it."""
    return (f"max |d| {report.max_abs_error} levels, {report.fraction_within_one_level:.4%} within 1 level, "
            f"CIEDE2000 mean {report.mean_ciede2000:.4f} p99 {report.p99_ciede2000:.4f} "
            f"max {report.max_ciede2000:.3f}, PSNR {report.psnr_db:.1f} dB, NaN/Inf {report.nonfinite}")


def check_gate(report: ParityReport, gate: Gate, what: str) -> None:
    """Raise ParityError naming `what`, the gate and every figure that fails it."""
    failures = gate_failures(report, gate)
    if failures:
        raise ParityError(f"{what} fails the {gate.name} parity gate: {'; '.join(failures)} "
                          f"[{describe(report)}]")


# The interval stage's output is in CIELAB units, like CIEDE2000, so its gates read the same way:
# mean and 99th-percentile absolute difference of the bounds from PyTorch FP32.
INTERVAL_GATES = {"fp32": Gate("interval-fp32", max_mean_ciede2000=0.05, max_p99_ciede2000=0.5),
                  "fp16": Gate("interval-fp16", max_mean_ciede2000=0.5, max_p99_ciede2000=2.0)}


def interval_parity(reference: Callable[[np.ndarray], np.ndarray], candidate: Callable[[np.ndarray], np.ndarray],
                    cases: list[ParityCase], gate: Gate, what: str) -> dict:
    """|candidate - reference| of the interval bounds (float32 [N,4,R,R], CIELAB units) over all
    cases; raises ParityError beyond `gate` (its CIEDE2000 limits read as Lab-unit limits)."""
    differences, nonfinite = [], 0
    for case in cases:
        expected, actual = reference(case.gray), candidate(case.gray)
        if actual.shape != expected.shape:
            raise ParityError(f"{what}, case {case.name}: interval {list(actual.shape)}, "
                              f"expected {list(expected.shape)}")
        nonfinite += int((~np.isfinite(actual)).sum())
        differences.append(np.abs(actual.astype(np.float64) - expected).ravel())
    difference = np.concatenate(differences)
    figures = {"cases": len(cases), "values": int(difference.size),
               "mean_abs_lab": round(float(np.nanmean(difference)), 6),
               "p99_abs_lab": round(float(np.nanpercentile(difference, 99)), 6),
               "max_abs_lab": round(float(np.nanmax(difference)), 6), "nonfinite": nonfinite}
    failures = []
    if figures["mean_abs_lab"] > gate.max_mean_ciede2000:
        failures.append(f"mean |d| {figures['mean_abs_lab']:.3f} Lab (limit {gate.max_mean_ciede2000})")
    if figures["p99_abs_lab"] > gate.max_p99_ciede2000:
        failures.append(f"99th-percentile |d| {figures['p99_abs_lab']:.3f} Lab (limit {gate.max_p99_ciede2000})")
    if nonfinite:
        failures.append(f"{nonfinite} NaN/Inf values")
    if failures:
        raise ParityError(f"{what} fails the {gate.name} parity gate: {'; '.join(failures)}")
    return figures
