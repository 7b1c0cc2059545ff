"""`colorize-batch SRC... -o OUT`: colour photo archives and films at full resolution.

Exit codes: 0 every input coloured or skipped, 3 some inputs failed or (a
video) came out partial (see OUT/manifest.jsonl), 2 bad invocation or an
unusable output (no source, an output folder that is or holds a source, a
locked, unwritable or full output folder, a bad engine file), 5 the backend
or device asked for cannot run here, or an extra the options need is
missing, 130 interrupted by Ctrl-C (finished outputs are kept; rerun to do
the rest). Every option is checked before anything is created.
"""

from __future__ import annotations

import os
import signal
import sys

from pathlib import Path

import click

from retint.batch import _interrupted_while_starting
from retint.batch.config import OUTPUT_FORMATS, BatchConfig
from retint.batch.hints import HintsFile, read_hints_file
from retint.batch.reference import read_references
from retint.batch.video.options import EncoderOptions
from retint.commands import RetintCommand
from retint.errors import InputError
from retint.runtime import BACKENDS, DEFAULT_STREAMS_TEXT, DEVICES
from retint.media import BATCH_IMAGE_SUFFIXES, VIDEO_SUFFIXES

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")

EPILOG = f"""\b
Photos: {' '.join(sorted(BATCH_IMAGE_SUFFIXES))} (any letter case; GIF: its
first frame; HEIC/HEIF with pillow-heif installed; GIF, AVIF and HEIC are
written as PNG). Other image names (.psd, .jp2, camera raw...) get a failed
line: unsupported format.
Videos: {' '.join(sorted(VIDEO_SUFFIXES))} (needs the 'video' extra).
OUT/manifest.jsonl has one line per input: ok, partial (a video whose file
ends early), skipped-colour or failed, with the reason; the failed, partial
and skipped ones are also named on stderr at the end (the first 20).

\b
Exit codes:
  0    every input coloured, skipped as colour, or already done
  2    bad invocation or unusable output folder (a source in it, locked,
       unwritable, full)
  3    some inputs failed or came out partial (see the manifest)
  5    the --backend or --device asked for cannot run here, or an extra
       the options need is missing (--ray: 'ray')
  130  interrupted by Ctrl-C (finished outputs kept; rerun to do the rest)
"""


def _leave(code: int) -> None:
    """The CLI boundary's way out: at once after Ctrl-C (see `_exit`)."""
    _exit(code, now=code == 130)


def _exit(code: int, now: bool) -> None:
    """Exit with `code`. `now`: a read given up on (or in flight at Ctrl-C) may never return, and
    Python waits for every pool thread at exit, so leave at once: the manifest is closed, the lock
    released and the last line printed by then."""
    if now:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


@click.command(cls=RetintCommand, program="colorize-batch", leave=_leave,
               context_settings={"help_option_names": ["-h", "--help"], "show_default": True}, epilog=EPILOG)
# Strings, not click's Paths: Path("") is ".", and an empty argument must be refused, never mean "here".
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Output folder (created if needed): a mirror of each source's tree, plus manifest.jsonl. "
                   "Must not be a source folder.")
@click.option("--engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=".onnx or .plan engine [default: the bundled default model].")
@click.option("--backend", type=click.Choice(BACKENDS), default=BatchConfig.backend,
              help="What runs the engine. auto: TensorRT for a .plan; on a CPU with AMX or AVX512-BF16 "
                   "and the 'openvino' extra, OpenVINO bf16 for the generator; else ONNX Runtime. The "
                   "summary line says which ran, in what precision, and why.")
@click.option("--device", type=click.Choice(DEVICES), default=BatchConfig.device,
              help="Where an .onnx engine runs.")
@click.option("--batch", "batch_size", type=click.IntRange(1), default=None,
              help="Images of equal size run through the engine together  [default: photos 1 on the "
                   "CPU, where that runs fastest and lightest, 8 on a GPU; video frames 8].")
@click.option("--streams", type=click.IntRange(1), default=None,
              help="Photo batches run through the engine at the same time. On the CPU each gets an equal "
                   f"share of the cores  [default: {DEFAULT_STREAMS_TEXT}].")
@click.option("--workers", type=click.IntRange(1), default=BatchConfig.workers, help="Decode threads and encode threads (each).")
@click.option("--format", "output_format", type=click.Choice(OUTPUT_FORMATS), default=BatchConfig.output_format,
              help="Output format: keep the input's, or jpg / png.")
@click.option("--quality", type=click.IntRange(1, 100), default=BatchConfig.quality, help="JPEG / WebP quality.")
@click.option("--max-pixels", type=click.IntRange(1), default=BatchConfig.max_pixels,
              help="Refuse larger images (a decompression-bomb guard).")
@click.option("--timeout-per-input", type=click.FloatRange(0, min_open=True), default=BatchConfig.timeout_per_input,
              help="Seconds one photo's read and decode may take, and a video may go without a frame; past "
                   "it that input fails and the run goes on (a stalled disk or network share).")
@click.option("--include-colour", is_flag=True, help="Also colour inputs that are already in colour.")
@click.option("--overwrite", is_flag=True, help="Redo outputs that already exist.")
@click.option("--codec", default=EncoderOptions.codec, help="Video encoder (libx264; h264_nvenc on NVIDIA hosts).")
@click.option("--crf", type=click.IntRange(0, 51), default=EncoderOptions.crf, help="Video quality (x264/x265 CRF).")
@click.option("--preset", default=EncoderOptions.preset, help="x264/x265 speed preset.")
@click.option("--temporal-smoothing", type=click.FloatRange(0, 1, max_open=True), default=BatchConfig.temporal_smoothing,
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
@click.option("--temperature", type=click.FloatRange(0.01, 10.0), default=None,
              help="Colour model v2 engines: the annealed mean's temperature (lower: bolder, the most probable "
                   "colour; higher: safer averages)  [default: the engine's]. A regression engine refuses it.")
@click.option("--hints", "hints_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Colour model v2 engines: colour hints per photo, from a JSON object whose keys are the "
                   "photos' paths as OUT mirrors them (relative to their source folder; with several sources, "
                   "under the source folder's name) and whose values are lists of hints, "
                   "{\"x\": 120, \"y\": 48, \"a\": 35, \"b\": 20} (CIELAB a*, b*) or "
                   "{\"x\": 120, \"y\": 48, \"rgb\": \"#b04a32\"}, x and y in the photo's pixels as displayed. "
                   "E.g. {\"album/bride.jpg\": [{\"x\": 40, \"y\": 60, \"rgb\": \"#c03030\"}]}. "
                   "Photos without an entry are coloured as without --hints; videos are coloured "
                   "automatically (their manifest line says so); a hint outside its photo fails that photo. "
                   "The manifest records each photo's hints, and a rerun colours again exactly the photos "
                   "whose hints changed. A regression engine refuses it. An entry may also be an object, "
                   "{\"hints\": [...], \"reference\": \"PHOTO\"}, and a folder's key (\"album/\") may "
                   "take {\"reference\": \"PHOTO\"} for every photo and video under it (path relative to the "
                   "hints file; null: none there); see --reference.")
@click.option("--reference", "reference", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Colour model v2 engines with a global-hint input: a colour photo of the same place and time "
                   "(a modern photo of the square, a tinted postcard, a colour slide) whose palette guides "
                   "every input (photos and videos) without a reference of its own in --hints. Read once at "
                   "the start; a black-and-white or toned photo is refused. The manifest records its path and "
                   "sha256, and a rerun with another reference (other bytes) colours those inputs again; "
                   "a rerun without it returns them to automatic colouring.")
@click.option("--no-progress", is_flag=True, help="No progress bars (the summary line is still printed).")
def main(sources: tuple[str, ...], output: str, engine: Path | None, backend: str, device: str,
         batch_size: int | None,
         streams: int | None, workers: int, output_format: str, quality: int, max_pixels: int, include_colour: bool,
         overwrite: bool, codec: str, crf: int, preset: str, temporal_smoothing: float, uncertainty: bool,
         mute_uncertain: bool, use_ray: bool,
         ray_actors: int | None, no_progress: bool, timeout_per_input: float, temperature: float | None,
         hints_file: Path | None, reference: Path | None) -> None:
    """Colour the black-and-white photos and videos in SOURCES (files or folders, recursive)."""
    # From here Ctrl-C is KeyboardInterrupt, which the CLI boundary turns into exit 130 (until now
    # retint.batch's start-up handler did).
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    from retint.batch.run import run_batch

    _check_usage(sources, output, EncoderOptions(codec, crf, preset), device, backend, use_ray)
    # All of it, and every reference photo, before any work.
    guides = read_hints_file(hints_file) if hints_file is not None else HintsFile()
    references = read_references(reference, guides, max_pixels)
    config = BatchConfig(sources=tuple(Path(source) for source in sources), output=Path(output), engine=engine,
                         backend=backend, device=device, batch_size=batch_size, streams=streams, workers=workers, output_format=output_format, quality=quality,
                         max_pixels=max_pixels, include_colour=include_colour, overwrite=overwrite,
                         progress=not no_progress, encoder=EncoderOptions(codec, crf, preset),
                         temporal_smoothing=temporal_smoothing, uncertainty=uncertainty,
                         mute_uncertain=mute_uncertain, ray=use_ray, ray_actors=ray_actors,
                         timeout_per_input=timeout_per_input, temperature=temperature, hints=guides.hints,
                         references=references)
    summary = run_batch(config, log=lambda line: click.echo(line, err=True))
    _print_summary(summary, Path(output))
    _exit(3 if summary.failed else 0, now=bool(summary.abandoned_inputs))


def _check_usage(sources: tuple[str, ...], output: str, encoder: EncoderOptions, device: str, backend: str,
                 use_ray: bool) -> None:
    """Refuse bad usage in one line (exit 2) before any work or any folder is created."""

    if any(source == "" for source in sources):
        raise InputError('an empty source path ("") was given; name a file or folder')
    if output == "":
        raise InputError('-o is empty (""); name the output folder')
    if device == "cuda" and backend == "openvino":
        raise InputError("--backend openvino runs on the CPU; it cannot take --device cuda")
    _check_encoder(encoder, use_ray)


def _check_encoder(encoder: EncoderOptions, use_ray: bool) -> None:
    """--codec must be an encoder this PyAV has, --preset one that encoder knows, and (where this
    process writes the videos: not under --ray, whose workers may have other hardware) the encoder
    must open and encode a few small frames as a run writes them."""
    from retint.batch.video.writer import encoder_refusal

    try:
        import av
    except ImportError:
        return  # videos then fail one by one, each saying that the 'video' extra is missing

    codec, preset = encoder.codec, encoder.preset
    try:
        found = av.codec.Codec(codec, "w")
    except Exception:
        found = None
    if found is None or found.type != "video":
        raise InputError(f"--codec {codec}: not a video encoder in this PyAV/FFmpeg build "
                         f"(e.g. libx264, libx265, h264_nvenc)")
    if codec in ("libx264", "libx265") and preset not in X264_PRESETS:
        raise InputError(f"--preset {preset}: not an x264/x265 preset ({', '.join(X264_PRESETS)})")
    refusal = "" if use_ray else encoder_refusal(encoder)
    if refusal:
        raise InputError(f"--codec {codec}: cannot encode video here ({refusal}); use another, such as "
                         f"libx264 (the default)")


def _print_summary(summary, output: Path) -> None:
    """One line per failed, partial or skipped input (the first NOTES_SHOWN; then how many more, and
    where), then the summary line."""
    for status, source, reason in summary.noted:
        click.echo(f"{status}: {source}: {reason}", err=True)
    if summary.noted_count > len(summary.noted):
        click.echo(f"... and {summary.noted_count - len(summary.noted)} more failed, partial or skipped "
                   f"input(s): see {output / 'manifest.jsonl'}", err=True)
    figures = summary.as_dict()
    counts = ", ".join(f"{count} {status}" for status, count in sorted(figures["counts"].items())) or "nothing to do"
    rates = []
    if summary.photos:
        rates.append(f"{figures['images_per_second']:.2f} img/s, {figures['megapixels_per_second']:.2f} MP/s")
    if summary.video_frames:
        rates.append(f"{figures['video_frames_per_second']:.2f} video frames/s")
    click.echo(f"{counts}; {summary.already_done} already done; {'; '.join(rates + [''])}"
               f"engine: {figures['engine'].get('label', '?')}; manifest: {output / 'manifest.jsonl'}", err=True)


if __name__ == "__main__":
    main()
