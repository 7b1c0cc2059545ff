"""Release a trained generator: `python -m retint.model.release RUN/best.pth [MORE.pth...] OUT/NAME.pth`.

With more than one checkpoint, the released weights are their uniform average
(`checkpoint.average_generators`); the configs and held-out split are the
first one's.

Writes the generator-only checkpoint (no optimiser states, no discriminator)
and a JSON sidecar with its validation figures, recomputed here on the run's
held-out photos (the split is rebuilt from the checkpoint's own config: data
folders, seed, validation fraction), each resized whole to the render size:
mean CIEDE2000 and PSNR against ground truth next to the grey baseline
(ab = 0), and colourfulness next to ground truth's. With `--grid PNG` it
also draws grey | prediction | truth rows of those photos.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import torch

from retint.commands import RetintCommand
from retint.errors import RetintError
from retint.model.distribution_training import automatic_colouriser
from retint.model.checkpoint import average_generators, generator_only, load_checkpoint, load_generator, save_checkpoint
from retint.model.config import train_config_from_dict
from retint.model.data import ValidationDataset, split_train_validation
from retint.model.photos import STATUS_OK, find_images
from retint.model.evaluate import evaluate, sample_grid
from retint.files import write_bytes_atomically, write_text_atomically


def held_out_batch(payload: dict, data: tuple[str, ...] | None) -> tuple[torch.Tensor, list[str]]:
    """The run's held-out photos (its split rebuilt from its config), resized whole: RGB and names."""
    config = train_config_from_dict(payload["train_config"])
    folders = data or config.data
    paths = find_images(folders)
    _, validation = split_train_validation(paths, config.val_fraction, config.seed, config.holdout)
    dataset = ValidationDataset(validation, config.generator.render_size)
    items = [dataset[i] for i in range(len(dataset))]
    kept = [(item["rgb"], path.name) for item, path in zip(items, validation) if int(item["status"]) == STATUS_OK]
    if not kept:
        raise RetintError(f"no held-out colour photos found in {', '.join(folders)}")
    return torch.stack([rgb for rgb, _ in kept]), [name for _, name in kept]


@click.command(cls=RetintCommand, program="release", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("checkpoints", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", multiple=True, help="Where the training photos are now [default: as recorded].")
@click.option("--grid", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PNG of grey | prediction | truth for the held-out photos.")
@click.option("--fp16-weights", is_flag=True,
              help="Store the weights in FP16 (half the size; load_generator casts them back to FP32).")
def main(checkpoints: tuple[Path, ...], output: Path, data: tuple[str, ...], grid: Path | None,
         fp16_weights: bool) -> None:
    """Write the generator-only CHECKPOINT (the average of several, where more are
    given) as OUTPUT, with validation figures in OUTPUT.json."""
    sidecar = release_generator(checkpoints, output, data or None, grid, fp16_weights)
    click.echo(json.dumps(sidecar["validation"], indent=2, sort_keys=True))


def release_generator(checkpoints: tuple[Path, ...], output: Path, data: tuple[str, ...] | None = None,
                      grid: Path | None = None, fp16_weights: bool = False) -> dict:
    """Write OUTPUT, the generator-only checkpoint of `checkpoints` (their average where more than
    one), and OUTPUT.json with its figures on the first one's held-out photos; returns that
    sidecar. `data`: where the training photos are now; `grid`: also a PNG of those photos."""
    payloads = [load_checkpoint(checkpoint) for checkpoint in checkpoints]
    payload = payloads[0]
    batch, names = held_out_batch(payload, data)
    release = generator_only(payload)
    if len(payloads) > 1:
        release["generator"] = average_generators(payloads)
    if fp16_weights:
        release["generator"] = {name: tensor.half() if tensor.is_floating_point() else tensor
                                for name, tensor in release["generator"].items()}
    save_checkpoint(output, release)
    # The figures are those of the file as shipped (FP16 rounding included).
    generator = automatic_colouriser(load_generator(output))
    figures = evaluate(generator, [batch], torch.device("cpu"))
    sidecar = {"checkpoint": output.name, "source_checkpoints": [str(checkpoint) for checkpoint in checkpoints],
               "weights_stored_as": "float16" if fp16_weights else "float32", "trained_epochs": payload.get("epoch"),
               "step": payload.get("step"), "train_config": payload["train_config"], "held_out_photos": names,
               "validation": {**figures, "resized_to": payload["generator_config"]["render_size"],
                              "colourfulness_ratio": figures["colourfulness"] / figures["truth_colourfulness"]}}
    write_text_atomically(Path(str(output) + ".json"), json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    if grid:
        write_bytes_atomically(grid, sample_grid(generator, batch, torch.device("cpu")))
    return sidecar


if __name__ == "__main__":
    main()
