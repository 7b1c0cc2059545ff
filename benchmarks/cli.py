"""`colorize-bench`: how fast and how faithful each backend is, in numbers.

Subcommands print a Markdown table and write the same figures as JSON with
`--json PATH`. Whatever is compared is measured in one run: `latency` and
`generators` alternate rounds over their backends; `pipeline` and `video`
measure each arrangement once, one after the other.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from retint.benchmarks.reference_quality import REFERENCE_MODES
from retint.commands import RetintCommand, RetintGroup
from retint.errors import RetintError
from retint.runtime import BACKENDS, DEFAULT_STREAMS_TEXT


@click.group(cls=RetintGroup, program="colorize-bench",
             context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def main() -> None:
    """Benchmark retint's backends."""


@main.command()
@click.option("--arch", "arches", multiple=True, default=["effnet-unet", "unet256"],
              type=click.Choice(["effnet-unet", "unet256"]))
@click.option("--batch", type=click.IntRange(1), default=8)
@click.option("--render-size", type=click.IntRange(32), default=256)
@click.option("--seconds", type=click.FloatRange(0.1), default=3.0, help="Minimum timed seconds per round.")
@click.option("--rounds", type=click.IntRange(1), default=3)
@click.option("--no-fp16", is_flag=True, help="Skip the FP16 ONNX Runtime variant.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def generators(arches: tuple[str, ...], batch: int, render_size: int, seconds: float, rounds: int,
               no_fp16: bool, json_path: Path | None) -> None:
    """PyTorch eager vs ONNX Runtime (CPU) on the same generator weights."""
    from retint.benchmarks.generators import benchmark_generator
    from retint.benchmarks.peak import matmul_peak_gflops
    from retint.benchmarks.report import environment, markdown_table, write_json

    peak = matmul_peak_gflops()
    rows, results = [], []
    for arch in arches:
        result = benchmark_generator(arch, batch=batch, render_size=render_size,
                                     include_fp16=not no_fp16, min_seconds=seconds, rounds=rounds)
        baseline = result.timings["pytorch-eager-fp32"].items_per_second
        for backend, timing in result.timings.items():
            achieved = timing.items_per_second * result.gflops_per_image
            rows.append([arch, backend, timing.items_per_second, timing.p50_ms, timing.p95_ms,
                         timing.items_per_second / baseline, achieved, achieved / peak])
            results.append({"arch": arch, "backend": backend, "parameters": result.parameters,
                            "gflops_per_image": result.gflops_per_image, "batch": batch,
                            "render_size": render_size, "images_per_second": timing.items_per_second,
                            "p50_ms": timing.p50_ms, "p95_ms": timing.p95_ms, "runs": timing.runs,
                            "speedup_vs_pytorch": timing.items_per_second / baseline,
                            "achieved_gflops": achieved, "fraction_of_matmul_peak": achieved / peak})
    click.echo(f"matmul peak (float32, NumPy BLAS): {peak:.1f} GFLOP/s; batch {batch}, {render_size}x{render_size}")
    click.echo(markdown_table(["arch", "backend", "img/s", "p50 ms", "p95 ms", "x PyTorch", "GFLOP/s",
                               "of peak"], rows))
    write_json(json_path, {"benchmark": "generators", "environment": environment(),
                           "matmul_peak_gflops": peak, "results": results})


def _default_training_settings() -> tuple[str, ...]:
    from retint.cpu import has_native_bf16

    return ("fp32", "bf16", "bf16-cl", "bf16-cl@128") if has_native_bf16() else ("fp32", "fp32-cl", "fp32-cl@128")


@main.command()
@click.option("--arch", "arches", multiple=True, default=["effnet-unet"],
              type=click.Choice(["effnet-unet", "unet256"]))
@click.option("--batch", type=click.IntRange(1), default=8)
@click.option("--setting", "settings", multiple=True,
              help="precision[-cl][@size]: fp32 or bf16 autocast, cl = channels_last, crop size (256) "
                   "(repeatable; timed in alternating rounds)  [default: fp32, bf16, bf16-cl, bf16-cl@128 "
                   "on a CPU with native bf16, else fp32, fp32-cl, fp32-cl@128].")
@click.option("--perceptual-weight", type=click.FloatRange(0), default=0.0,
              help="Include the EfficientNet-Lite0 perceptual loss in the step.")
@click.option("--seconds", type=click.FloatRange(0.1), default=5.0, help="Minimum timed seconds per round.")
@click.option("--rounds", type=click.IntRange(1), default=2)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def training(arches: tuple[str, ...], batch: int, settings: tuple[str, ...], perceptual_weight: float,
             seconds: float, rounds: int, device: str, json_path: Path | None) -> None:
    """Training images/s (warm-up and GAN steps) per architecture and setting."""
    from retint.benchmarks.report import environment, markdown_table, write_json
    from retint.benchmarks.training import TrainingSetting, training_throughput

    try:
        parsed = tuple(TrainingSetting.parse(text) for text in (settings or _default_training_settings()))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--setting") from error
    results = []
    for arch in arches:
        results += training_throughput(arch, parsed, batch=batch, min_seconds=seconds, rounds=rounds,
                                       device=device, perceptual_weight=perceptual_weight)
    baseline = results[0]["gan_images_per_second"]
    click.echo(markdown_table(
        ["arch", "setting", "precision", "warm-up img/s", "GAN img/s", "GAN vs first"],
        [[r["arch"], r["setting"], r["precision"], r["warm-up_images_per_second"],
          r["gan_images_per_second"], f"{r['gan_images_per_second'] / baseline:.2f}x"] for r in results]))
    write_json(json_path, {"benchmark": "training", "environment": environment(), "results": results})


@main.command()
@click.argument("clip", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Engine with its stages beside it [default: the bundled model].")
@click.option("--batch", type=click.IntRange(1), default=None,
              help="Frames per engine call [default: colorize-batch's for videos, 8].")
@click.option("--temporal-smoothing", "alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.6)
@click.option("--frames", type=click.IntRange(2), default=None, help="Compare only the first N frames.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def video(clip: Path, engine: Path | None, batch: int | None, alpha: float, frames: int | None,
          json_path: Path | None) -> None:
    """Flicker index with and without temporal smoothing, and frames/s, on CLIP."""
    from retint.benchmarks.report import environment, markdown_table, write_json
    from retint.benchmarks.video import video_report

    report = video_report(clip, engine, batch, alpha, frames)
    flicker = report["flicker_index"]
    click.echo(markdown_table(
        ["smoothing", "flicker index", "end-to-end frames/s"],
        [["off", flicker["off"], report["end_to_end"]["off"]["frames_per_second"]],
         [f"alpha {alpha}", flicker["on"], report["end_to_end"]["on"]["frames_per_second"]]]))
    click.echo(f"flicker reduced by {flicker['reduction']:.1%}; mean CIEDE2000 between the outputs "
               f"{report['mean_ciede2000_between_outputs']:.2f}; engine alone "
               f"{report['engine_alone_frames_per_second']:.2f} frames/s "
               f"(end to end / engine alone {report['ratio_end_to_end_vs_engine']:.2f})")
    write_json(json_path, {"benchmark": "video", "environment": environment(), **report})


@main.command()
@click.option("--colour", "colour", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of colour photos (repeatable): each must be taken for colour.")
@click.option("--prints", "prints", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder of real monochrome prints, toned or not (repeatable): each must be taken for monochrome.")
@click.option("--tonings/--no-tonings", default=True,
              help="Also tone each colour photo (sepia, cyanotype, split-toned, faded, yellowed, in turn) "
                   "into a print that must be taken for monochrome.")
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the synthetic prints in this folder.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def tone(colour: tuple[Path, ...], prints: tuple[Path, ...], tonings: bool, keep: Path | None,
         json_path: Path | None) -> None:
    """Error rates of the tone rule (colour photo or monochrome print?), as colorize-batch decides."""
    from retint.batch.tone import COLOUR_SPREAD_THRESHOLD
    from retint.benchmarks.report import environment, markdown_table, write_json
    from retint.benchmarks.tone_eval import tone_report

    report = tone_report(colour, prints, tonings, keep)
    click.echo(markdown_table(["group", "files", "should be", "taken wrongly", "error rate"],
                              [[name, g["files"], g["expected"], g["wrong"],
                                f"{g['error_rate']:.1%}" if g["error_rate"] is not None else "-"]
                               for name, g in report["groups"].items()]))
    for error in report["errors"]:
        click.echo(f"wrong: {error['group']}: {error['file']} (statistic {error['statistic']}, "
                   f"threshold {COLOUR_SPREAD_THRESHOLD})")
    write_json(json_path, {"benchmark": "tone", "environment": environment(),
                           "threshold": COLOUR_SPREAD_THRESHOLD, **report})


@main.command(cls=RetintCommand, program="colorize-bench", renamed={"--degrade": "--damaged-inputs"})
@click.argument("photos", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--engine", "engine_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="An .onnx or .plan artefact, or a .pth checkpoint (run through the same deploy graph "
                   "in PyTorch)  [default: the bundled model].")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="Backend for an .onnx or .plan engine (auto may pick OpenVINO bf16; onnxruntime is FP32).")
@click.option("--mute-uncertain", is_flag=True,
              help="Colour with chroma shrunk toward grey where the engine's interval is wide "
                   "(colorize-batch --mute-uncertain), to measure what it does.")
@click.option("--damaged-inputs", "degrade", is_flag=True,
              help="Damage the grey inputs as colorize-train --degrade does to its training samples (seeded).")
@click.option("--seed", type=int, default=0, help="Seed of the damage (photo i uses (seed, i)).")
@click.option("--render-size", type=click.IntRange(32), default=256,
              help="Each photo is resized whole to this square (what the generator sees).")
@click.option("--temperature", type=float, default=None,
              help="Distribution-head engines: the annealed mean's temperature  [default: the engine's].")
@click.option("--hints", type=click.IntRange(0), default=0,
              help="This many hints per photo taken from its truth (random pixels of chroma 10 or more, the mean "
                   "a*b* of the 5x5 patch around each), compared with automatic colouring of the same photos in "
                   "this run (overall and --people), and how closely the hinted pixels show them; 0: automatic.")
@click.option("--reference", "reference_mode", type=click.Choice(REFERENCE_MODES), default="none", show_default=True,
              help="Colour each photo with a reference "
                   "photo's palette, and compare with automatic colouring of the same photos in this run, by "
                   "source. truth: the photo's own original (an upper bound); same-source: the next photo "
                   "of its source in name order (the real use).")
@click.option("--source", "sources", multiple=True, metavar="PREFIX",
              help="With --reference: the photos whose names start with PREFIX are one source (repeatable; "
                   "the longest match wins)  [default: one source per folder].")
@click.option("--people", multiple=True, metavar="PREFIX",
              help="Also report the photos whose names start with PREFIX as a group (repeatable).")
@click.option("-o", "--output", "output_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write quality.md, quality.json and contact-sheet.png (grey | model | truth) here.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def quality(photos: tuple[Path, ...], engine_path: Path | None, backend: str, mute_uncertain: bool, degrade: bool,
            seed: int, render_size: int, temperature: float | None, hints: int, reference_mode: str,
            sources: tuple[str, ...], people: tuple[str, ...], output_dir: Path | None,
            json_path: Path | None) -> None:
    """Colour quality on PHOTOS (colour photos, or folders of them): mean CIEDE2000, PSNR,
    colourfulness and an EfficientNet-Lite0 Frechet distance, next to grey and the truth."""
    import json

    from tqdm import tqdm

    from retint.benchmarks.quality import (
        QualityConfig,
        ScoredPhotos,
        collect_photos,
        colour_with,
        contact_sheet,
        frechet_available,
        grey_inputs,
        guided_vs_automatic,
        hint_fidelity,
        hints_report,
        markdown_report,
        score,
        truth_hints,
    )
    from retint.benchmarks.reference_quality import compare_with_automatic, reference_indices, reference_report
    from retint.benchmarks.report import environment, write_json
    from retint.files import write_bytes_atomically, write_text_atomically

    config = QualityConfig(render_size=render_size, degrade=degrade, seed=seed, hints=hints, people=people)
    names, truth, skipped = collect_photos([str(p) for p in photos], config)
    if not names:
        raise RetintError(f"no colour photos among {', '.join(map(str, photos))} "
                          f"({len(skipped)} grey or unreadable)")
    if sources and reference_mode == "none":
        raise RetintError("--source groups photos for --reference; give --reference truth or same-source")
    chosen = reference_indices(names, reference_mode, sources)
    left_out = [name for name, index in zip(names, chosen) if index is None] if reference_mode != "none" else []
    if left_out:
        kept = [i for i, index in enumerate(chosen) if index is not None]
        if not kept:
            raise RetintError("--reference same-source: no source has two photos to take a reference from "
                              "(name the sources with --source PREFIX)")
        references = [truth[chosen[i]] for i in kept]
        names, truth = [names[i] for i in kept], truth[kept]
    else:
        references = [truth[index] for index in chosen if index is not None]
    label, colorize = _quality_engine(engine_path, backend, mute_uncertain, temperature)
    greys = grey_inputs(truth, config)
    photo_hints = truth_hints(truth, config) if hints else None
    if references:  # an engine that takes no reference refuses here, before any work
        colorize(np.ascontiguousarray(greys[:1, None]), reference=references[0])
    # Guided colouring (hints, a reference or both) is compared with automatic colouring of the same photos.
    passes = 2 if reference_mode != "none" or hints else 1
    with tqdm(total=len(greys) * passes, desc="colouring", unit="photo", leave=False) as bar:
        automatic = output = colour_with(colorize, greys, bar.update)
        if passes == 2:
            output = colour_with(colorize, greys, bar.update, photo_hints,
                                 references if reference_mode != "none" else None)
    grey_rgb = np.repeat(greys[..., None], 3, axis=3)
    scored = ScoredPhotos(names, truth, grey_rgb, output, skipped)
    result = score(scored, people, frechet=frechet_available())
    report = markdown_report(result, label, config)
    if reference_mode != "none":
        comparison = compare_with_automatic(names, sources, truth, grey_rgb, automatic, output)
        result["reference"] = {"mode": reference_mode, **comparison, "left_out": left_out}
        report += reference_report(reference_mode, comparison, left_out)
    if photo_hints is not None:
        versus = guided_vs_automatic(names, people, truth, grey_rgb, automatic, output)
        fidelity = hint_fidelity(output, photo_hints)
        result["hints"] = {"count": hints, **versus, "fidelity": fidelity}
        report += hints_report(hints, versus, fidelity)
    click.echo(report, nl=False)
    document = {"benchmark": "quality", "environment": environment(), "engine": label,
                "config": {"render_size": render_size, "degrade": degrade, "seed": seed,
                           "mute_uncertain": mute_uncertain, "temperature": temperature, "hints": hints,
                           "reference": reference_mode, "sources": list(sources), "people": list(people)},
                **result}
    write_json(json_path, document)
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomically(output_dir / "quality.md", report)
        write_text_atomically(output_dir / "quality.json", json.dumps(document, indent=2) + "\n")
        write_bytes_atomically(output_dir / "contact-sheet.png", contact_sheet(scored))


def _quality_engine(engine_path: Path | None, backend: str, mute_uncertain: bool = False,
                    temperature: float | None = None):
    """(label, colorize gray uint8 [N,1,H,W] (, hints=...) -> rgb uint8 [N,H,W,3])."""
    if engine_path is not None and engine_path.suffix.lower() == ".pth" and not mute_uncertain:
        import torch

        from retint.export.deploy import DeployColouriser
        from retint.export.pipeline import colour_bins_metadata
        from retint.model.checkpoint import load_generator
        from retint.runtime.colour_controls import bins_of, colour_controls
        from retint.runtime.refusals import checkpoint_guides_refusal, temperature_refusal

        generator = load_generator(engine_path)
        render_size = generator.retint_config.render_size
        graph = DeployColouriser(generator, render_size).eval()
        bins = bins_of(colour_bins_metadata(generator))

        def colorize(gray: np.ndarray, hints=None, reference=None) -> np.ndarray:
            controls = ()
            if bins is not None:
                feeds = colour_controls(bins, gray.shape[0], gray.shape[2:], render_size, hints, temperature,
                                        reference).feeds()
                controls = tuple(torch.from_numpy(array) for array in feeds.values())
            elif temperature is not None:
                raise RetintError(temperature_refusal(engine_path.name))
            elif hints is not None or reference is not None:
                given = [name for name, value in (("hints", hints), ("reference", reference)) if value is not None]
                raise RetintError(checkpoint_guides_refusal(engine_path.name, given))
            with torch.no_grad():
                return graph(torch.from_numpy(gray), *controls).numpy()

        kind = "distribution" if bins is not None else "regression"
        return f"{engine_path.name} [pytorch/cpu/fp32, {kind}]", colorize
    from retint.runtime import load_engine

    engine = load_engine(engine_path, backend=backend, mute_uncertain=mute_uncertain)
    name = engine_path.name if engine_path else "bundled default model"
    muted = ", chroma muted where the interval is wide" if mute_uncertain else ""

    def colorize(gray: np.ndarray, hints=None, reference=None) -> np.ndarray:
        return engine.colorize(gray, hints=hints, temperature=temperature, reference=reference)

    return f"{name} [{engine.spec.backend}/{engine.spec.provider}/{engine.spec.precision}{muted}]", colorize


def _engines(paths: tuple[Path | None, ...], backends: tuple[str, ...] = ("auto",)):
    """(label, engine) for each engine file on each backend; None is the bundled model."""
    from retint.runtime import load_engine

    return [(f"{path.name if path else 'bundled'} [{engine.spec.backend}/{engine.spec.provider}/"
             f"{engine.spec.precision}]", engine)
            for path in paths for backend in backends for engine in [load_engine(path, backend=backend)]]


@main.command()
@click.option("--engine", "engines", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="An .onnx or .plan engine (repeatable) [default: the bundled model].")
@click.option("--backend", "backends", multiple=True, type=click.Choice(BACKENDS), default=["auto"],
              help="Run each engine on these backends (repeatable; timed in alternating rounds).")
@click.option("--torch", "checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Also time PyTorch eager on this checkpoint.")
@click.option("--batch", "batches", default="1,8", help="Comma-separated batch sizes.")
@click.option("--size", "sizes", default="256,1024x768,1920x1080", help="Comma-separated N or WxH.")
@click.option("--seconds", type=click.FloatRange(0.1), default=2.0, help="Minimum timed seconds per case.")
@click.option("--rounds", type=click.IntRange(1), default=2,
              help="Alternating rounds over the backends per case; each keeps its best round.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG of throughput against batch size, one line per backend and size (matplotlib).")
def latency(engines: tuple[Path, ...], backends: tuple[str, ...], checkpoint: Path | None, batches: str, sizes: str,
            seconds: float, rounds: int, json_path: Path | None, plot_path: Path | None) -> None:
    """p50/p95 latency, images/s and megapixels/s per backend, timed in alternating rounds."""
    from retint.benchmarks.latency import Contender, measure_latency, parse_size, torch_colouriser
    from retint.benchmarks.report import environment, markdown_table, write_json

    batch_list = [int(b) for b in batches.split(",") if b.strip()]
    size_list = [parse_size(s.strip()) for s in sizes.split(",") if s.strip()]
    contenders = [Contender(name, engine.colorize) for name, engine in _engines(engines or (None,), backends)]
    if checkpoint is not None:
        run, synchronize, device = torch_colouriser(checkpoint)
        contenders.append(Contender(f"pytorch-eager [{device}/fp32]", run, synchronize))
    rows = measure_latency(contenders, batch_list, size_list, seconds, rounds)
    click.echo(markdown_table(
        ["backend", "batch", "size", "p50 ms", "p95 ms", "img/s", "MP/s"],
        [[r["backend"], r["batch"], f"{r['width']}x{r['height']}", r["p50_ms"], r["p95_ms"],
          r["images_per_second"], r["megapixels_per_second"]] for r in rows]))
    write_json(json_path, {"benchmark": "latency", "environment": environment(), "results": rows})
    if plot_path:
        from retint.benchmarks.plot import plot_throughput

        plot_throughput(rows, plot_path)


@main.command()
@click.option("--torch", "checkpoint", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The checkpoint the engines were exported from (the FP32 reference).")
@click.option("--engine", "engines", multiple=True, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--backend", "backends", multiple=True, type=click.Choice(BACKENDS), default=["onnxruntime"],
              help="Run each engine on these backends (repeatable), e.g. --backend onnxruntime --backend openvino.")
@click.option("--images", "image_folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Grey test images [default: the ones retint ships].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--gate/--no-gate", default=True, help="Exit 4 when an engine fails its precision's gate.")
def parity(checkpoint: Path, engines: tuple[Path, ...], backends: tuple[str, ...], image_folder: Path | None,
           json_path: Path | None, gate: bool) -> None:
    """Each engine against PyTorch FP32: uint8 error, CIEDE2000, PSNR, NaN/Inf; gated by its precision."""
    from retint.benchmarks.parity import run_parity
    from retint.benchmarks.report import environment, markdown_table, write_json
    from retint.progress import StepBar

    with StepBar() as bar:
        results = run_parity(checkpoint, list(engines), image_folder, backends, progress=bar)
    click.echo(markdown_table(
        ["engine", "backend", "precision", "max |d|", "p99.9 |d|", "within 1", "dE mean", "dE p99", "PSNR dB",
         "NaN/Inf", "dE mean vs ORT", "gate"],
        [[r["engine"], r["backend"], r["precision"], r["max_abs_error"], r["p999_abs_error"],
          f"{r['fraction_within_one_level']:.4%}", r["mean_ciede2000"], r["p99_ciede2000"], r["psnr_db"],
          r["nonfinite"], r.get("versus_onnxruntime", {}).get("mean_ciede2000", "-"),
          "pass" if not r["gate_failures"] else "FAIL"] for r in results]))
    write_json(json_path, {"benchmark": "parity", "environment": environment(), "results": results})
    failures = [f"{r['engine']}: {'; '.join(r['gate_failures'])}" for r in results if r["gate_failures"]]
    if gate and failures:
        from retint.errors import ParityError

        raise ParityError("parity gate failed: " + " | ".join(failures))


@main.command()
@click.argument("source", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Engine [default: the bundled model].")
@click.option("--backend", "backends", multiple=True, type=click.Choice(BACKENDS), default=["auto"],
              help="colorize-batch --backend (repeatable: timed in turn, round after round).")
@click.option("--rounds", type=click.IntRange(1), default=1, help="Rounds over the backends; each keeps its best.")
@click.option("--generate", type=click.IntRange(1), default=None,
              help="First fill SOURCE (or a temporary folder) with this many generated 1024x768 JPEGs.")
@click.option("--batch", type=click.IntRange(1), default=None,
              help="Images per engine call [default: colorize-batch's: 1 on the CPU, 8 on a GPU].")
@click.option("--streams", type=click.IntRange(1), default=None,
              help=f"Engine calls at once [default: colorize-batch's: {DEFAULT_STREAMS_TEXT}].")
@click.option("--workers", type=click.IntRange(1), default=2)
@click.option("--sequential", "checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Also time the naive sequential PyTorch + scikit-image script on this checkpoint.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def pipeline(source: Path | None, engine: Path | None, backends: tuple[str, ...], rounds: int, generate: int | None,
             batch: int | None, streams: int | None, workers: int, checkpoint: Path | None,
             json_path: Path | None) -> None:
    """colorize-batch end to end on an archive, next to the engine alone on the same images, per backend."""
    from retint.benchmarks.pipeline_report import describe_archive, run_pipeline_report
    from retint.benchmarks.report import environment, markdown_table, write_json

    report = run_pipeline_report(source, engine, generate, batch, workers, checkpoint, streams, backends, rounds)
    click.echo(f"{describe_archive(report)}, workers {workers}, {rounds} round(s); CPU: {environment()['cpu_model']}")
    several = len(report["backends"]) > 1  # "x first backend" compares backends: only where several ran
    headers = ["backend", "engine", "streams x batch", "end to end img/s", "engine alone img/s",
               "end to end / engine", *(["x first backend"] if several else []), "peak RSS MB"]
    if "sequential" in report:
        headers.append("x sequential")
    rows = []
    for figures in report["backends"]:
        row = [figures["backend"], figures["engine"], f"{figures['streams']} x {figures['batch']}",
               figures["end_to_end"]["images_per_second"], figures["engine_alone"]["images_per_second"],
               figures["ratio_end_to_end_vs_engine"],
               *([figures["end_to_end_vs_first_backend"]] if several else []), figures["end_to_end"]["peak_rss_mb"]]
        if "sequential" in report:
            row.append(figures["speedup_vs_sequential"])
        rows.append(row)
    click.echo(markdown_table(headers, rows))
    if "sequential" in report:
        click.echo(f"sequential PyTorch + scikit-image script: {report['sequential']['images_per_second']:.2f} img/s")
    click.echo(markdown_table(["backend", "stage", "busy seconds (summed over threads)"],
                              [[figures["backend"], stage, seconds] for figures in report["backends"]
                               for stage, seconds in figures["end_to_end"]["stage_seconds"].items()]))
    write_json(json_path, {"benchmark": "pipeline", "environment": environment(), **report})


@main.command()
@click.option("--engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=".onnx or .plan engine [default: the bundled model].")
@click.option("--backend", "backends", multiple=True, type=click.Choice(BACKENDS), default=["auto"],
              help="Serve on each of these backends in turn (repeatable), one server each.")
@click.option("--requests", "request_count", type=click.IntRange(1), default=200)
@click.option("--clients", type=click.IntRange(1), default=8, help="Concurrent clients on loopback.")
@click.option("--warmup", type=click.IntRange(0), default=40, help="Requests before the timed ones.")
@click.option("--size", default="1024x768", help="WxH of the generated grey JPEG every client posts.")
@click.option("--hints", "hint_count", type=click.IntRange(0, 256), default=0,
              help="Hints each request carries (seeded, random; a colour model v2 --engine): the page's "
                   "re-colouring. With --clients 1, p50 is one re-colouring's latency.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def serve(engine: Path | None, backends: tuple[str, ...], request_count: int, clients: int, warmup: int, size: str,
          hint_count: int, json_path: Path | None) -> None:
    """colorize-serve under load: requests/s, p50/p95 latency, statuses and the server's peak RSS."""
    from retint.benchmarks.report import environment, markdown_table, write_json
    from retint.benchmarks.serve_report import run_serve_report

    rows = run_serve_report(engine, backends, request_count, clients, warmup, size, hint_count)
    with_hints = f", {hint_count} random hints per request" if hint_count else ""
    click.echo(f"{request_count} requests from {clients} clients after {warmup} warm-up, {size} grey JPEG"
               f"{with_hints}; CPU: {environment()['cpu_model']}")
    click.echo(markdown_table(
        ["backend", "engine", "requests/s", "statuses", "p50 ms", "p95 ms", "peak RSS MB after warm-up",
         "peak RSS MB after load"],
        [[row["backend"], row["engine"], row["requests_per_second"], row["statuses"], row["p50_ms"], row["p95_ms"],
          row["peak_rss_mb_after_warmup"], row["peak_rss_mb_after_load"]] for row in rows]))
    write_json(json_path, {"benchmark": "serve", "environment": environment(), "rows": rows})


@main.command(name="ray")
@click.argument("source", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--generate", type=click.IntRange(1), default=None,
              help="First fill SOURCE (or a temporary folder) with this many generated 1024x768 JPEGs.")
@click.option("--rounds", type=click.IntRange(1), default=2, help="Alternating rounds: local, then --ray.")
@click.option("--fast-engine-files", "tiny", type=click.IntRange(0), default=2000,
              help="Tiny PNGs run through --ray with a nearly free engine, for the driver's ceilings (0: skip).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
def ray_overhead(source: Path | None, generate: int | None, rounds: int, tiny: int, json_path: Path | None) -> None:
    """colorize-batch with and without --ray on one archive, and the driver's manifest rate."""
    from retint.benchmarks.ray_report import run_ray_report
    from retint.benchmarks.report import environment, markdown_table, write_json

    report = run_ray_report(source, generate, rounds, tiny)
    click.echo(f"{report['images']} images, {rounds} round(s); CPU: {environment()['cpu_model']}")
    click.echo(markdown_table(["arrangement", "engine", "images/s (colouring)", "wall seconds (best)",
                               "every round images/s", "driver peak RSS MB"],
                              [[name, report[name]["engine"], report[name]["images_per_second"],
                                report[name]["wall_seconds"], report[name]["every_round_images_per_second"],
                                report[name]["peak_rss_mb_driver"]] for name in ("local", "ray")]))
    click.echo(f"--ray / local images/s: {report['ray_vs_local_images_per_second']:.3f}")
    if "fast_engine" in report:
        fast = report["fast_engine"]
        click.echo(f"fast engine through --ray: {fast['files']} files in {fast['units']} units: "
                   f"{fast['rows_per_second']:.0f} rows/s, {fast['seconds_per_unit'] * 1000:.1f} ms per unit; "
                   f"the driver alone records {fast['driver_recording_lines_per_second']:.0f} lines/s")
    write_json(json_path, {"benchmark": "ray", "environment": environment(), **report})


def run() -> None:
    """Entry point (the CLI boundary is the group's: see RetintGroup)."""
    main()


if __name__ == "__main__":
    run()
