"""colorize-train end to end on tiny generated data (CPU, --workers 0)."""

import json
import pathlib
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from retint.model.checkpoint import load_checkpoint, load_generator
from retint.model.cli import main

from imagemaker import learnable_dataset, write_rgb

TINY = ["--render-size", "64", "--batch-size", "4", "--base-channels", "8", "--workers", "0",
        "--no-progress", "--pretrain-epochs", "1", "--seed", "3", "--crops-per-image", "3"]


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return learnable_dataset(tmp_path_factory.mktemp("data"), count=16, size=64)


@pytest.fixture(scope="module")
def full_run(dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "full"
    result = run_cli(dataset, "-o", run_dir, "--epochs", 2, *TINY)
    assert result.exit_code == 0, result.output
    return run_dir


def read_metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_epoch_run_writes_every_artefact(full_run):
    assert (full_run / "last.pth").is_file()
    assert (full_run / "best.pth").is_file()
    for epoch in (1, 2):
        grid = cv2.imread(str(full_run / "samples" / f"epoch-{epoch:03d}.png"))
        assert grid is not None and grid.shape[1] == 3 * 64  # grey | prediction | truth
    metrics = read_metrics(full_run)
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert [m["phase"] for m in metrics] == ["warm-up", "gan"]
    for key in ("loss_recon", "val_psnr", "val_ciede2000", "val_grey_ciede2000",
                "val_colourfulness", "val_truth_colourfulness", "images_per_second"):
        assert np.isfinite(metrics[-1][key]), key
    assert "loss_d" in metrics[1] and "loss_g_adv" in metrics[1]
    assert not list(full_run.rglob("*.tmp"))


def test_l1_on_a_fixed_batch_goes_down(full_run):
    metrics = read_metrics(full_run)
    assert metrics[-1]["fixed_batch_l1"] < metrics[0]["fixed_batch_l1_start"]


def test_checkpoint_is_plain_and_rebuilds_the_generator(full_run):
    payload = torch.load(full_run / "last.pth", weights_only=True)
    assert payload["epoch"] == 2 and payload["step"] > 0
    assert payload["generator_config"]["arch"] == "effnet-unet"
    assert payload["generator_config"]["render_size"] == 64
    assert payload["train_config"]["gan"] == "vanilla"
    assert "optimizer_g" in payload and "optimizer_d" in payload
    assert payload["generator_config"]["head"] == "distribution"  # colorize-train's default
    generator = load_generator(full_run / "last.pth")
    assert not generator.training
    bins = generator.bin_centres.shape[0]
    assert payload["generator"]["bin_centres"].shape == (bins, 2)
    # The rebalancing weights were fitted to the training photos' colours, not left at one.
    assert not torch.allclose(payload["generator"]["bin_weights"], torch.ones(bins))
    with torch.no_grad():
        # Logits over the a*b* bins at half the render size.
        assert generator(torch.zeros(1, 1, 64, 64)).shape == (1, bins, 32, 32)


def test_resume_repeats_an_uninterrupted_run(dataset, full_run, tmp_path):
    run_dir = tmp_path / "resumed"
    assert run_cli(dataset, "-o", run_dir, "--epochs", 1, *TINY).exit_code == 0
    result = run_cli(dataset, "-o", run_dir, "--epochs", 2, "--resume", "--workers", 0, "--no-progress")
    assert result.exit_code == 0, result.output
    resumed, uninterrupted = read_metrics(run_dir), read_metrics(full_run)
    assert len(resumed) == 2
    for key in ("loss_recon", "loss_d", "loss_g_adv", "fixed_batch_l1", "val_ciede2000"):
        assert abs(resumed[1][key] - uninterrupted[1][key]) < 1e-5, key


@pytest.mark.parametrize("gan,recon", [("lsgan", "huber"), ("wgan-gp", "l1")])
def test_other_losses_train(dataset, tmp_path, gan, recon):
    result = run_cli(dataset, "-o", tmp_path / "run", "--epochs", 2, "--gan", gan, "--recon", recon,
                     "--chroma-weight", 1, "--head", "regression", *TINY)
    assert result.exit_code == 0, result.output
    metrics = read_metrics(tmp_path / "run")
    assert np.isfinite(metrics[-1]["loss_g_total"])
    assert ("loss_gp" in metrics[-1]) == (gan == "wgan-gp")


def test_bad_files_are_skipped_and_counted(dataset, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for image in sorted(dataset.iterdir())[:6]:
        (data / image.name).write_bytes(image.read_bytes())
    (data / "empty.jpg").write_bytes(b"")
    (data / "text.png").write_text("not an image")
    write_rgb(data / "grey.png", np.full((64, 64, 3), 128, np.uint8))
    result = run_cli(data, "-o", tmp_path / "run", "--epochs", 1, "--val-fraction", 0, *TINY)
    assert result.exit_code == 0, result.output
    record = read_metrics(tmp_path / "run")[0]
    assert record["skipped_grey_files"] == 1
    assert record["skipped_unreadable_files"] == 2
    assert record["images"] == 6 * 3  # three crops of each colour photo
    assert "skipped 1 grey, 2 unreadable files" in result.stderr  # issue 29: said on the console too


def cli_error(*args):
    """Run the installed command in a subprocess: exit code and stderr."""
    process = subprocess.run([sys.executable, "-m", "retint.model.cli", *map(str, args)],
                             capture_output=True, text=True)
    return process.returncode, process.stderr


def test_no_images_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    code, stderr = cli_error(tmp_path / "empty", "-o", tmp_path / "run", *TINY)
    assert code == 2
    assert stderr.strip().count("\n") == 0 and "no image files" in stderr


def test_a_quantile_without_l1_is_one_line_and_exit_2(dataset, tmp_path):
    code, stderr = cli_error(dataset, "-o", tmp_path / "run", "--recon", "huber", "--a-quantile", 0.6,
                             "--head", "regression", *TINY)
    assert code == 2
    assert stderr.strip().count("\n") == 0 and "--a-quantile needs --recon l1" in stderr
    assert not (tmp_path / "run").exists()


def test_only_grey_images_is_exit_2(tmp_path):
    for index in range(3):
        write_rgb(tmp_path / "grey" / f"{index}.png", np.full((64, 64, 3), 40 * index, np.uint8))
    code, stderr = cli_error(tmp_path / "grey", "-o", tmp_path / "run", "--val-fraction", 0, *TINY)
    assert code == 2 and "no colour images" in stderr


def test_existing_run_needs_resume_and_matching_config(dataset, full_run, tmp_path):
    code, stderr = cli_error(dataset, "-o", full_run, *TINY)
    assert code == 2 and "--resume" in stderr
    code, stderr = cli_error(dataset, "-o", full_run, "--resume", "--gan", "lsgan", "--epochs", 3, *TINY)
    # Issue 29: the line names the option and both values, not the config section ("generator differ").
    assert code == 2 and "--gan was 'vanilla', now 'lsgan'" in stderr, stderr
    code, stderr = cli_error(dataset, "-o", tmp_path / "nothing", "--resume", *TINY)
    assert code == 2 and "nothing to resume" in stderr


def test_resume_may_change_the_schedule(dataset, tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli(dataset, "-o", run_dir, "--epochs", 1, *TINY).exit_code == 0
    result = run_cli(dataset, "-o", run_dir, "--resume", "--epochs", 2, "--pretrain-epochs", 2,
                     "--workers", 0, "--no-progress")
    assert result.exit_code == 0, result.output
    assert [m["phase"] for m in read_metrics(run_dir)] == ["warm-up", "warm-up"]


def test_corrupt_foreign_and_pickled_checkpoints_are_refused(dataset, full_run, tmp_path):
    from retint.errors import CheckpointError

    corrupt = tmp_path / "corrupt" / "last.pth"
    corrupt.parent.mkdir()
    corrupt.write_bytes((full_run / "last.pth").read_bytes()[:5000])
    code, stderr = cli_error(dataset, "-o", corrupt.parent, "--resume", *TINY)
    assert code == 2 and "not a readable checkpoint" in stderr

    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a retint checkpoint"):
        load_checkpoint(foreign)

    pickled = tmp_path / "pickled.pth"
    payload = torch.load(full_run / "last.pth", weights_only=True)
    payload["note"] = pathlib.PurePosixPath("x")  # an object: needs a pickled class to load
    torch.save(payload, pickled)
    with pytest.raises(CheckpointError, match="pickled code"):
        load_generator(pickled)


def test_release_writes_a_generator_only_fp16_checkpoint_with_figures(full_run, tmp_path):
    from retint.model.release import main as release

    output = tmp_path / "released.pth"
    result = CliRunner().invoke(release, [str(full_run / "best.pth"), str(output), "--fp16-weights",
                                          "--grid", str(tmp_path / "grid.png")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = torch.load(output, weights_only=True)
    assert "optimizer_g" not in payload and "discriminator" not in payload
    assert {t.dtype for t in payload["generator"].values() if t.is_floating_point()} == {torch.float16}
    assert output.stat().st_size < 0.6 * (full_run / "best.pth").stat().st_size
    sidecar = json.loads((tmp_path / "released.pth.json").read_text())
    validation = sidecar["validation"]
    assert validation["images"] == len(sidecar["held_out_photos"]) >= 1
    assert validation["grey_ciede2000"] > 0 and validation["truth_colourfulness"] > 0
    generator = load_generator(output)
    assert next(generator.parameters()).dtype == torch.float32
    assert cv2.imread(str(tmp_path / "grid.png")) is not None


def test_holdout_validates_on_whole_sources_only(tmp_path):
    from retint.model.data import split_train_validation
    from retint.errors import InputError

    names = ["zoo-1.jpg", "zoo-2.jpg", "farm-1.jpg", "city/a.jpg", "city/b.jpg", "zoom.jpg"]
    paths = [tmp_path / name for name in names]
    training, validation = split_train_validation(paths, 0.1, 0, holdout=("zoo-", "city"))
    assert sorted(p.name for p in validation) == ["a.jpg", "b.jpg", "zoo-1.jpg", "zoo-2.jpg"]
    assert sorted(p.name for p in training) == ["farm-1.jpg", "zoom.jpg"]
    with pytest.raises(InputError, match="nowhere"):
        split_train_validation(paths, 0.1, 0, holdout=("nowhere",))
    with pytest.raises(InputError, match="nothing is left"):
        split_train_validation(paths, 0.1, 0, holdout=("zoo", "farm", "city"))


def test_damage_perceptual_loss_progressive_resize_and_precision_are_recorded(dataset, tmp_path):
    """The #12 training options run together and say what they did."""
    run_dir = tmp_path / "run"
    result = run_cli(dataset, "-o", run_dir, "--epochs", 3, "--holdout", "img0", "--degrade", 0.5,
                     "--perceptual-weight", 0.1, "--encoder-lr-scale", 0.1, "--low-res-epochs", 2,
                     "--low-res-size", 32, "--no-amp", "--channels-last", "--a-quantile", 0.6,
                     "--a-quantile-clean-only", "--head", "regression", *TINY)
    assert result.exit_code == 0, result.output
    metrics = read_metrics(run_dir)
    assert [m["crop_size"] for m in metrics] == [32, 32, 64]
    assert {m["precision"] for m in metrics} == {"cpu fp32"}
    assert all(np.isfinite(m["loss_perceptual"]) and m["loss_perceptual"] > 0 for m in metrics)
    assert all(m["val_images"] == 10 for m in metrics)  # img00..img09 held out, whole
    config = load_checkpoint(run_dir / "last.pth")["train_config"]
    assert config["holdout"] == ["img0"] and config["degrade"] == 0.5 and config["a_quantile"] == 0.6
    assert config["a_quantile_on_damaged"] is False


def test_damaged_samples_carry_their_own_grey_input(dataset):
    from retint.model.data import RandomCropDataset
    from retint.model.photos import find_images

    paths = find_images([str(dataset)])
    clean = RandomCropDataset(paths, 64, 4, seed=1)
    damaged = RandomCropDataset(paths, 64, 4, seed=1, degrade=1.0)
    for index in range(8):
        plain, hurt = clean[index], damaged[index]
        assert not bool(plain["degraded"]) and bool(hurt["degraded"])
        assert torch.equal(plain["rgb"], hurt["rgb"])  # the target stays the clean colour
        assert hurt["grey"].shape == (1, 64, 64) and hurt["grey"].float().std() > 0


def test_bf16_autocast_is_the_default_only_where_the_cpu_has_it():
    from retint.cpu import has_native_bf16
    from retint.model.train import autocast_wanted

    cpu = torch.device("cpu")
    assert autocast_wanted(None, cpu) == has_native_bf16()
    assert autocast_wanted(True, cpu) and not autocast_wanted(False, cpu)
    assert not autocast_wanted(None, torch.device("cuda"))


def test_release_of_several_checkpoints_ships_their_average(full_run, tmp_path):
    from retint.errors import CheckpointError
    from retint.model.checkpoint import average_generators
    from retint.model.release import main as release

    first = torch.load(full_run / "best.pth", weights_only=True)
    shifted = {**first, "generator": {name: t + 1.0 if t.is_floating_point() else t
                                      for name, t in first["generator"].items()}}
    shifted_path = tmp_path / "shifted.pth"
    torch.save(shifted, shifted_path)
    output = tmp_path / "soup.pth"
    result = CliRunner().invoke(release, [str(full_run / "best.pth"), str(shifted_path), str(output)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    soup = torch.load(output, weights_only=True)["generator"]
    for name, tensor in first["generator"].items():
        expected = tensor + 0.5 if tensor.is_floating_point() else tensor
        assert torch.allclose(soup[name], expected, atol=1e-6), name
    sidecar = json.loads((tmp_path / "soup.pth.json").read_text())
    assert sidecar["source_checkpoints"] == [str(full_run / "best.pth"), str(shifted_path)]

    other = {**first, "generator_config": {**first["generator_config"], "base_channels": first["generator_config"]["base_channels"] + 1}}
    with pytest.raises(CheckpointError, match="different shapes"):
        average_generators([first, other])


def test_init_from_keeps_this_runs_rebalancing(dataset, full_run, tmp_path):
    """--init-from brings the other run's weights, not its rebalancing: --rebalance 1 means none."""
    run_dir = tmp_path / "branched"
    result = run_cli(dataset, "-o", run_dir, "--epochs", 1, "--init-from", full_run / "last.pth",
                     "--rebalance", 1.0, *TINY)
    assert result.exit_code == 0, result.output
    weights = torch.load(run_dir / "last.pth", weights_only=True)["generator"]["bin_weights"]
    assert torch.allclose(weights, torch.ones_like(weights))
