"""Shared fixtures: the tests make their own images (never the training corpus)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def pytest_addoption(parser):
    parser.addoption("--hide-cpu-flags", default=None, metavar="FLAGS",
                     help="run as on a CPU without these flags (RETINT_CPU_HIDE_FLAGS, for this process and every "
                          "child): 'native-bf16' hides AMX-BF16 and AVX512-BF16, which gives any CPU the path "
                          "of one without native bf16 (ONNX Runtime fp32 for auto)")


def pytest_configure(config):
    from retint.cpu import HIDE_FLAGS_VARIABLE, NATIVE_BF16_HIDDEN

    flags = config.getoption("--hide-cpu-flags")
    if flags:
        # Set before any test reads the CPU's flags (retint.cpu reads them once per process).
        os.environ[HIDE_FLAGS_VARIABLE] = NATIVE_BF16_HIDDEN if flags == "native-bf16" else flags


def pytest_report_header(config):
    from retint.cpu import cpu_model, hidden_flags, native_bf16_flags

    hidden = f"; hidden by RETINT_CPU_HIDE_FLAGS: {', '.join(sorted(hidden_flags()))}" if hidden_flags() else ""
    bf16 = "/".join(native_bf16_flags()) or "none"
    return f"retint CPU: {cpu_model()}; native bf16: {bf16}{hidden}"


def gpu_unavailable_reason() -> str:
    """Why `gpu` tests cannot run here ('' when they can)."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed (needs NVIDIA's wheels and a GPU host)"
    try:
        from retint.runtime.cuda_memory import gpu_description

        gpu_description()
    except Exception as error:  # BackendUnavailable or a CUDA error
        return f"no usable CUDA GPU: {error}"
    return ""


def pytest_collection_modifyitems(config, items):
    reason = None
    for item in items:
        if "gpu" in item.keywords:
            if reason is None:
                reason = gpu_unavailable_reason()
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    """Seeded, untrained tiny generators of both architectures, saved as retint checkpoints."""
    import torch

    from retint.model.checkpoint import save_checkpoint
    from retint.model.config import GeneratorConfig, config_to_dict
    from retint.model.networks import build_generator

    folder = tmp_path_factory.mktemp("checkpoints")
    paths = {}
    for arch, width, render in (("effnet-unet", 8, 128), ("unet256", 8, 256)):
        torch.manual_seed(7)
        config = GeneratorConfig(arch=arch, base_channels=width, pretrained_encoder=False, render_size=render)
        generator = build_generator(config)
        # Give BatchNorm realistic running statistics, as a trained model has.
        generator.train()
        with torch.no_grad():
            for _ in range(3):
                generator(torch.rand(4, 1, render, render) * 2 - 1)
        paths[arch] = folder / f"tiny-{arch}.pth"
        save_checkpoint(paths[arch], {"generator_config": config_to_dict(config),
                                      "generator": generator.state_dict(), "epoch": 0, "step": 0})
    return paths


@pytest.fixture(scope="session")
def export_steps_seen() -> dict:
    """arch -> the (done, total, step) reports of its export in `exported`."""
    return {}


@pytest.fixture(scope="session")
def exported(tiny_checkpoints, tmp_path_factory, export_steps_seen):
    """Both architectures exported with `export-trt --onnx-only` (gates included)."""
    from retint.export.config import ExportConfig
    from retint.export.pipeline import run_export

    results = {}
    for arch, checkpoint in tiny_checkpoints.items():
        output = tmp_path_factory.mktemp(f"export-{arch}")
        seen = export_steps_seen.setdefault(arch, [])
        result = run_export(ExportConfig(checkpoint=checkpoint, output_dir=output, onnx_only=True),
                            log=lambda line: None, progress=lambda *report, seen=seen: seen.append(report))
        results[arch] = result
    return results


@pytest.fixture(scope="session")
def distribution_checkpoint(tmp_path_factory):
    """A seeded tiny colour-model-v2 generator (distribution head, hint and global-hint inputs).

    Untrained hint filters start at zero (automatic colouring is unchanged by them), so they are
    given random values here: a hint must then change the colours, as a trained model's does."""
    import torch

    from retint.model.checkpoint import save_checkpoint
    from retint.model.config import GeneratorConfig, config_to_dict
    from retint.model.networks import build_generator

    torch.manual_seed(11)
    config = GeneratorConfig(arch="effnet-unet", base_channels=8, pretrained_encoder=False, render_size=64,
                             head="distribution", global_hint=True)
    generator = build_generator(config)
    generator.train()
    with torch.no_grad():
        for _ in range(3):
            generator(torch.rand(4, 1, 64, 64) * 2 - 1)
        generator.encoder._conv_stem.weight[:, 1:].normal_(0.0, 0.5)
        generator.global_hint.weight.normal_(0.0, 2.0)
        # Logits a few units apart, as a trained head's are: the temperature then matters.
        features = generator.head.weight.shape[1]
        generator.head.weight.normal_(0.0, 2.0 / features ** 0.5)
        generator.eval()
        spread = generator(torch.rand(2, 1, 64, 64) * 2 - 1).std(dim=1).mean()
        generator.head.weight.mul_(2.0 / float(spread))
    path = tmp_path_factory.mktemp("v2") / "tiny-v2.pth"
    save_checkpoint(path, {"generator_config": config_to_dict(config), "generator": generator.state_dict(),
                           "epoch": 0, "step": 0})
    return path


@pytest.fixture(scope="session")
def exported_distribution(distribution_checkpoint, tmp_path_factory):
    """The tiny v2 generator exported with `export-trt --onnx-only` (gates included)."""
    from retint.export.config import ExportConfig
    from retint.export.pipeline import run_export

    output = tmp_path_factory.mktemp("export-v2")
    return run_export(ExportConfig(checkpoint=distribution_checkpoint, output_dir=output, onnx_only=True),
                      log=lambda line: None)


@pytest.fixture(scope="session")
def export_calibrated_distribution(distribution_checkpoint, tmp_path_factory):
    """export(lambda_) -> the tiny v2 generator with a made-up distribution calibration (alpha 0.1
    and this lambda), exported with `export-trt --onnx-only`: an engine that maps its uncertainty."""
    import torch

    from retint.export.config import ExportConfig
    from retint.export.pipeline import run_export
    from retint.model.checkpoint import save_checkpoint

    made: dict[float, Path] = {}

    def export(lambda_: float) -> Path:
        # Each export takes most of a minute on two cores: one per lambda for the whole session.
        if lambda_ in made:
            return made[lambda_]
        payload = torch.load(distribution_checkpoint, weights_only=True)
        payload["uncertainty"] = {"method": "distribution", "alpha": 0.1, "lambda": lambda_,
                                  "calibration_photos": 20, "calibration_sources": ["synthetic"]}
        folder = tmp_path_factory.mktemp("v2-calibrated")
        save_checkpoint(folder / "tiny-v2c.pth", payload)
        run_export(ExportConfig(checkpoint=folder / "tiny-v2c.pth", output_dir=folder / "export", onnx_only=True),
                   log=lambda line: None)
        made[lambda_] = folder / "export" / "tiny-v2c.onnx"
        return made[lambda_]

    return export
