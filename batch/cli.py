"""`colorize-batch SRC... -o OUT`: colour photo archives and films at full resolution.

Exit codes: 0 every input coloured or skipped, 3 some inputs failed or (a
video) came out partial (see OUT/manifest.jsonl), 2 bad invocation or an
unusable output (no source, an output folder that is a source, a locked,
unwritable or full output folder, a bad engine file), 130 interrupted by
Ctrl-C (finished outputs are kept; rerun to do the rest).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from retint.batch.config import OUTPUT_FORMATS, BatchConfig
from retint.errors import RetintError
from retint.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES

EPILOG = f"""\b
Photos: {' '.join(sorted(IMAGE_SUFFIXES))} (any letter case).
Videos: {' '.join(sorted(VIDEO_SUFFIXES))} (needs the 'video' extra).
OUT/manifest.jsonl has one line per input: ok, partial (a video whose file
ends early), skipped-colour or failed, with the reason.

\b
Exit codes:
  0    every input coloured, skipped as colour, or already done
  2    bad invocation or unusable output folder (locked, unwritable, full)
  3    some inputs failed or came out partial (see the manifest)
  130  interrupted by Ctrl-C (finished outputs kept; rerun to do the rest)
"""


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True}, epilog=EPILOG)
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (created if needed): a mirror of each source's tree, plus manifest.jsonl. "
                   "Must not be a source folder.")
@click.option("--engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=".onnx or .plan engine [default: the bundled default model].")
@click.option("--backend", type=click.Choice(["auto", "onnxruntime", "openvino", "tensorrt"]), default="auto",
              help="What runs the engine. auto: TensorRT for a .plan; on a CPU with AMX or AVX512-BF16 "
                   "and the 'openvino' extra, OpenVINO bf16 for the generator; else ONNX Runtime. The "
                   "summary line says which ran, in what precision, and why.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              help="Where an .onnx engine runs.")
@click.option("--batch", "batch_size", type=click.IntRange(1), default=None,
              help="Images of equal size run through the engine together  [default: photos 1 on the "
                   "CPU, where that runs fastest and lightest, 8 on a GPU; video frames 8].")
@click.option("--streams", type=click.IntRange(1), default=None,
              help="Photo batches run through the engine at the same time. On the CPU each gets an equal "
                   "share of the cores  [default: 2 on the CPU, 1 on a GPU].")
@click.option("--workers", type=click.IntRange(1), default=2, help="Decode threads and encode threads (each).")
@click.option("--format", "output_format", type=click.Choice(OUTPUT_FORMATS), default="keep",
              help="Output format: keep the input's, or jpg / png.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, help="JPEG / WebP quality.")
@click.option("--max-pixels", type=click.IntRange(1), default=150_000_000,
              help="Refuse larger images (a decompression-bomb guard).")
@click.option("--include-colour", is_flag=True, help="Also colour inputs that are already in colour.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist.")
@click.option("--codec", default="libx264", help="Video encoder (libx264; h264_nvenc on NVIDIA hosts).")
@click.option("--crf", type=click.IntRange(0, 51), default=18, help="Video quality (x264/x265 CRF).")
@click.option("--preset", default="medium", help="x264/x265 speed preset.")
@click.option("--temporal-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              help="Video: EMA weight of past chroma, against flicker (0 = off, e.g. 0.6).")
@click.option("--uncertainty", is_flag=True,
              help="Photos: also write <output stem>.uncertainty.png, a heat map of the colour interval's "
                   "width, and put its mean width and wide fraction in the manifest (needs an engine with an "
                   "uncertainty head, as the bundled model has).")
@click.option("--mute-uncertain", is_flag=True,
              help="Shrink chroma toward grey where the colour interval is wide (the model's guesses).")
@click.option("--ray", "use_ray", is_flag=True,
              help="Colour on a Ray cluster: RAY_ADDRESS's, else a local one. Sources, OUT and --engine must be "
                   "at the same paths on every node (a shared filesystem). Needs the 'ray' extra.")
@click.option("--ray-actors", type=click.IntRange(1), default=None,
              help="Engine actors under --ray  [default: one per GPU; else one per 4 CPUs, leaving one free].")
@click.option("--no-progress", is_flag=True, help="No progress bars (the summary line is still printed).")
def main(sources: tuple[Path, ...], output: Path, engine: Path | None, backend: str, device: str,
         batch_size: int | None,
         streams: int | None, workers: int, output_format: str, quality: int, max_pixels: int, include_colour: bool,
         overwrite: bool, codec: str, crf: int, preset: str, temporal_smoothing: float, uncertainty: bool,
         mute_uncertain: bool, use_ray: bool,
         ray_actors: int | None, no_progress: bool) -> None:
    """Colour the black-and-white photos and videos in SOURCES (files or folders, recursive)."""
    from retint.batch.pipeline import run_batch

    config = BatchConfig(sources=sources, output=output, engine=engine, backend=backend, device=device,
                         batch_size=batch_size,
                         streams=streams, workers=workers, output_format=output_format, quality=quality,
                         max_pixels=max_pixels, include_colour=include_colour, overwrite=overwrite,
                         progress=not no_progress, codec=codec, crf=crf, preset=preset,
                         temporal_smoothing=temporal_smoothing, uncertainty=uncertainty,
                         mute_uncertain=mute_uncertain, ray=use_ray, ray_actors=ray_actors)
    try:
        summary = run_batch(config, log=lambda line: click.echo(line, err=True))
    except RetintError as error:
        click.echo(f"colorize-batch: {'error: ' if error.exit_code != 130 else ''}{error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("colorize-batch: interrupted", err=True)
        sys.exit(130)
    figures = summary.as_dict()
    counts = ", ".join(f"{count} {status}" for status, count in sorted(figures["counts"].items())) or "nothing to do"
    rates = []
    if summary.photos:
        rates.append(f"{figures['images_per_second']:.2f} img/s, {figures['megapixels_per_second']:.2f} MP/s")
    if summary.video_frames:
        rates.append(f"{figures['video_frames_per_second']:.2f} video frames/s")
    click.echo(f"{counts}; {summary.already_done} already done; {'; '.join(rates + [''])}"
               f"engine: {figures['engine'].get('description', '?')}; manifest: {output / 'manifest.jsonl'}", err=True)
    if summary.failed:
        sys.exit(3)


if __name__ == "__main__":
    main()
