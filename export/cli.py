"""`export-trt CKPT -o DIR`: checkpoint -> gated ONNX FP32 + FP16 -> TensorRT FP16 plan.

Exit codes: 0 the artefacts are written and gated: every one asked for, or
all but the TensorRT plan where this host has no TensorRT or no GPU (one
line on stderr says the plan was not built, why, and the command that
builds it on a GPU host: the ONNX files run everywhere, and the plan can
only be built on the GPU that will run it); 2 bad input; 3 that missing plan
under --require-plan (a build script that must produce it); 4 a parity gate
failed (the figures are printed); 5 the 'train' extra is missing; 130
interrupted. Progress is a bar on a terminal and one plain line per step
otherwise (a log, a CI job), never carriage returns.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from retint.commands import RetintCommand
from retint.errors import needs_extra
from retint.export.config import ExportConfig, ShapeProfile, parse_shape
from retint.progress import StepBar


def shape_text(shape: tuple[int, int, int]) -> str:
    """(16, 4096, 4096) -> '16x4096x4096', the form --min/opt/max-shape take."""
    return "x".join(map(str, shape))


@click.command(cls=RetintCommand, program="export-trt",
               context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the artefacts (created if needed): NAME.onnx, NAME.fp16.onnx, their stages (lightness, generator, compose), "
                   "NAME.fp16.plan, and a .json sidecar for each.")
@click.option("--name", default=None, show_default=False,
              help="Artefact base name  [default: the checkpoint's file name].")
@click.option("--render-size", type=click.IntRange(32), default=None, show_default=False,
              help="Square size the generator runs at  [default: the checkpoint's training size].")
@click.option("--max-batch", type=click.IntRange(1), default=ExportConfig.max_batch,
              help="Largest N the ONNX artefacts declare.")
@click.option("--min-shape", default=shape_text(ShapeProfile.min_shape), help="TensorRT profile minimum, NxHxW.")
@click.option("--opt-shape", default=shape_text(ShapeProfile.opt_shape), help="TensorRT profile optimum, NxHxW.")
@click.option("--max-shape", default=shape_text(ShapeProfile.max_shape), help="TensorRT profile maximum, NxHxW.")
@click.option("--workspace-gb", type=click.FloatRange(0, min_open=True), default=ExportConfig.workspace_gb,
              help="GPU memory TensorRT's builder may use for scratch space while it picks kernels.")
@click.option("--timing-cache", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TensorRT timing cache to load and update.")
@click.option("--parity-images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of images for the parity gates [default: images shipped with retint].")
@click.option("--onnx-only", is_flag=True, help="Stop after the gated ONNX files; exit 0.")
@click.option("--require-plan", is_flag=True,
              help="Exit 3 when the TensorRT plan cannot be built here (no TensorRT or no GPU); without it "
                   "that is one line on stderr and exit 0, the ONNX files written and gated.")
@click.option("--triton", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write a Triton model repository here: retint (the ONNX graph, onnxruntime_onnx) and, "
                   "where a plan was built, retint_trt (tensorrt_plan).")
@click.option("--triton-device", type=click.Choice(["cpu", "gpu"]), default=ExportConfig.triton_device,
              help="Instance group of the Triton ONNX model (the plan's is always GPU).")
@click.pass_context
def main(ctx: click.Context, checkpoint: Path, output_dir: Path, name: str | None, render_size: int | None,
         max_batch: int, min_shape: str, opt_shape: str, max_shape: str, workspace_gb: float, timing_cache: Path | None,
         parity_images: Path | None, onnx_only: bool, require_plan: bool, triton: Path | None,
         triton_device: str) -> None:
    """Export CHECKPOINT to ONNX (FP32, FP16) and a TensorRT FP16 engine, with parity gates."""
    with needs_extra("train", "exporting"):
        from retint.export.pipeline import run_export

    config = ExportConfig(
        checkpoint=checkpoint, output_dir=output_dir, name=name, render_size=render_size,
        max_batch=max_batch, profile=ShapeProfile(parse_shape(min_shape), parse_shape(opt_shape),
                                                  parse_shape(max_shape)),
        workspace_gb=workspace_gb, timing_cache=timing_cache, parity_images=parity_images,
        onnx_only=onnx_only, triton=triton, triton_device=triton_device)
    with StepBar() as bar:
        result = run_export(config, log=bar.write, progress=bar)
    for artefact in result.artefacts:
        click.echo(str(artefact))
    if result.tensorrt_missing:
        click.echo(f"export-trt: no TensorRT plan built: {result.tensorrt_missing}. The ONNX files are written "
                   f"and gated; on a GPU host run: {rerun_command(ctx)}", err=True)
        if require_plan:
            sys.exit(3)


def rerun_command(ctx: click.Context) -> str:
    """This export-trt command with every argument and option given on its command line (--name,
    --render-size, the shapes...): what a GPU host must run to build the same artefacts' plan."""
    words = ["export-trt"]
    for param in ctx.command.params:
        if ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[param.name]
        if isinstance(param, click.Argument):
            words.append(str(value))
        elif param.is_flag:
            words.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            words += [param.opts[0], str(value)]
    return shlex.join(words)


if __name__ == "__main__":
    main()
