"""colorize-batch on a generated archive: statuses, outputs, metadata, safety."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from retint.batch.manifest import read_manifest
from retint.batch.tone import COLOUR_SPREAD_THRESHOLD, tone_spread

from batchrun import batch, originals_unchanged
from batchrun import start as start_batch
from archive import CAMERA_MODEL_TAG, ORIENTATION_TAG, build_archive, grey_photo, sepia
from imagemaker import natural_like_image


def digest_tree(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def archive_run(engine, tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    source = root / "archive"
    expected = build_archive(source)
    (source / "loop").symlink_to(source, target_is_directory=True)  # a symlink loop
    before = digest_tree(source)
    output = source / "colour-out"  # the output folder inside the source
    process = batch(source, "-o", output, "--engine", engine, "--max-pixels", 2_000_000, "--batch", 4)
    return source, output, expected, before, process


def test_exit_code_3_when_some_failed(archive_run):
    *_, process = archive_run
    assert process.returncode == 3, process.stderr
    assert "failed" in process.stderr.splitlines()[-1]


def test_every_input_has_its_status_once(archive_run):
    source, output, expected, *_ = archive_run
    entries, summary = read_manifest(output)
    by_source = {os.path.relpath(e["source"], source): e for e in entries}
    assert len(by_source) == len(entries)  # each input exactly once (the loop is walked once)
    assert set(by_source) == set(expected)
    for relative, expectation in expected.items():
        entry = by_source[relative]
        assert entry["status"] == expectation["status"], (relative, entry)
        if "reason" in expectation:
            reason = {"max-pixels": "--max-pixels"}.get(expectation["reason"], expectation["reason"])
            assert reason in entry["reason"], (relative, entry["reason"])
    assert summary["counts"] == {"ok": 12, "skipped-colour": 1, "failed": 5}
    assert summary["images_per_second"] > 0 and summary["megapixels_per_second"] > 0


def test_outputs_mirror_the_tree_with_same_size_and_format(archive_run):
    source, output, expected, *_ = archive_run
    for relative, expectation in expected.items():
        target = output / relative
        if expectation["status"] != "ok":
            assert not target.exists(), relative
            continue
        with Image.open(target) as image:
            assert image.size == expectation["size"], relative
            assert image.format == Image.open(source / relative).format, relative
            assert image.mode in ("RGB", "RGBA"), relative
    assert not list(output.rglob(".retint-partial-*"))


def test_originals_are_untouched(archive_run):
    source, output, _, before, _ = archive_run
    after = {k: v for k, v in digest_tree(source).items() if not k.startswith("colour-out")}
    assert after == before


def test_alpha_16bit_and_palette(archive_run):
    _, output, expected, *_ = archive_run
    with Image.open(output / "alpha.png") as image:
        assert image.mode == "RGBA"
        assert np.array_equal(np.asarray(image.getchannel("A")), expected["alpha.png"]["alpha"])
    with Image.open(output / "deep16.png") as image:
        assert image.mode == "RGB"  # 8-bit output, documented
        grey_of_output = np.asarray(image.convert("L")).astype(int)
        assert np.abs(grey_of_output - expected["deep16.png"]["gray"].astype(int)).mean() < 3
    entries, _ = read_manifest(output)
    reasons = {os.path.basename(e["source"]): e["reason"] for e in entries}
    assert "16-bit" in reasons["deep16.png"] and "palette" in reasons["palette.png"]


def test_exif_orientation_applied_and_metadata_carried(archive_run):
    source, output, *_ = archive_run
    with Image.open(source / "camera" / "rotated.jpg") as original:
        original_icc = original.info["icc_profile"]
    assert original_icc[16:20] == b"RGB "
    with Image.open(output / "camera" / "rotated.jpg") as image:
        assert image.size == (60, 100)
        exif = image.getexif()
        assert exif.get(CAMERA_MODEL_TAG) == "RetintCam 1"
        assert ORIENTATION_TAG not in exif
        assert image.info.get("icc_profile") == original_icc


def test_colour_outputs_keep_the_input_lightness(archive_run):
    source, output, *_ = archive_run
    original = np.asarray(Image.open(source / "nested" / "grey.png")).astype(int)
    coloured = np.asarray(Image.open(output / "nested" / "grey.png").convert("L")).astype(int)
    assert np.abs(original - coloured).mean() < 2.0


def test_rerun_skips_finished_outputs_and_keeps_one_line_per_input(archive_run, engine):
    source, output, expected, *_ = archive_run
    before = digest_tree(output)
    process = batch(source, "-o", output, "--engine", engine, "--max-pixels", 2_000_000)
    assert process.returncode == 3
    entries, summary = read_manifest(output)
    assert len(entries) == len(expected)
    # 12 outputs, and 4 files that cannot be read as images and are unchanged (issue 29: kept, not redone)
    assert summary["already_done"] == 16 and summary["counts"].get("ok", 0) == 0
    after = digest_tree(output)
    def outputs(tree):  # the images, not the manifest, the journal or the lock holder's pid
        return {k: v for k, v in tree.items() if not os.path.basename(k).startswith((".retint", "manifest"))}

    assert outputs(after) == outputs(before) and len(outputs(after)) == 12


def test_overwrite_and_format_options(engine, tmp_path):
    Image.fromarray(grey_photo(64, 80, 1)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    assert batch(tmp_path / "a.png", "-o", out, "--engine", engine, "--format", "jpg", "--quality", 80).returncode == 0
    with Image.open(out / "a.jpg") as image:
        assert image.format == "JPEG" and image.size == (80, 64)
    first = (out / "a.jpg").stat().st_mtime_ns
    time.sleep(0.01)
    assert batch(tmp_path / "a.png", "-o", out, "--engine", engine, "--format", "jpg", "--overwrite").returncode == 0
    assert (out / "a.jpg").stat().st_mtime_ns != first


def test_include_colour_colours_colour_photos(engine, tmp_path):
    Image.fromarray(natural_like_image(64, 64, 3)).save(tmp_path / "c.png")
    assert batch(tmp_path / "c.png", "-o", tmp_path / "out", "--engine", engine, "--include-colour").returncode == 0
    assert (tmp_path / "out" / "c.png").is_file()


def test_tone_rule_separates_sepia_from_colour():
    from skimage import data

    assert tone_spread(sepia(grey_photo(100, 140, 7))) < COLOUR_SPREAD_THRESHOLD
    assert tone_spread(np.repeat(grey_photo(100, 140, 7)[..., None], 3, -1)) < 1.0
    assert tone_spread(natural_like_image(100, 140, 8)) >= COLOUR_SPREAD_THRESHOLD
    assert tone_spread(data.chelsea()) >= COLOUR_SPREAD_THRESHOLD
    assert tone_spread(data.coffee()) >= COLOUR_SPREAD_THRESHOLD


def test_a_second_run_on_a_locked_output_is_refused(engine, tmp_path):
    from retint.batch.lock import OutputLock

    Image.fromarray(grey_photo(32, 32, 1)).save(tmp_path / "a.png")
    lock = OutputLock(tmp_path / "out")
    try:
        process = batch(tmp_path / "a.png", "-o", tmp_path / "out", "--engine", engine)
    finally:
        lock.release()
    assert process.returncode == 2 and "another colorize-batch run" in process.stderr


def test_missing_source_and_bad_engine_exit_2(engine, tmp_path):
    process = batch(tmp_path / "nothing", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 2 and "source not found" in process.stderr
    (tmp_path / "src").mkdir()
    process = batch(tmp_path / "src", "-o", tmp_path / "out2", "--engine", tmp_path / "missing.onnx")
    assert process.returncode == 2 and "engine file not found" in process.stderr


@pytest.fixture
def many_images(tmp_path):
    """60 scans of 1024x768: several seconds of work even for the tiny test engine, so
    that a signal sent after the first few outputs lands mid-run however fast the host."""
    source = tmp_path / "many"
    source.mkdir()
    for index in range(60):
        Image.fromarray(grey_photo(768, 1024, index)).save(source / f"{index:03d}.jpg", quality=90)
    return source


def wait_for_lines(manifest, count, process, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if manifest.exists() and manifest.read_text().count("\n") >= count:
            return
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.02)
    raise AssertionError("the run did not get going")


def start(args):
    process, before = start_batch(args)
    process.originals = before
    return process


@pytest.mark.slow  # 60 scans of 1024x768 and a signal mid-run
def test_sigkill_midway_then_rerun_finishes_cleanly(engine, many_images, tmp_path):
    output = tmp_path / "out"
    args = [many_images, "-o", output, "--engine", engine, "--batch", 1, "--workers", 1]
    process = start(args)
    wait_for_lines(output / "manifest.jsonl", 5, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    originals_unchanged(process.originals)
    done_before = len(list(output.glob("*.jpg")))
    assert 0 < done_before < 60, "the kill should land mid-way"
    assert not list(output.glob(".retint-partial-*"))
    for path in output.glob("*.jpg"):
        Image.open(path).load()  # every file present is whole
    rerun = batch(*args)
    assert rerun.returncode == 0, rerun.stderr
    entries, summary = read_manifest(output)
    sources = [e["source"] for e in entries]
    assert len(sources) == len(set(sources)) == 60
    assert all(e["status"] == "ok" for e in entries)
    for path in sorted(output.glob("*.jpg")):
        with Image.open(path) as image:
            image.load()
            assert image.size == (1024, 768)
    assert len(list(output.glob("*.jpg"))) == 60


@pytest.mark.slow  # 60 scans of 1024x768 and a signal mid-run
def test_ctrl_c_finishes_in_flight_writes_and_exits_130(engine, many_images, tmp_path):
    output = tmp_path / "out"
    process = start([many_images, "-o", output, "--engine", engine, "--batch", 1, "--workers", 1])
    wait_for_lines(output / "manifest.jsonl", 3, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    originals_unchanged(process.originals)
    entries, summary = read_manifest(output)
    written = sorted(p.name for p in output.glob("*.jpg"))
    recorded = sorted(os.path.basename(e["output"]) for e in entries if e["status"] == "ok")
    context = f"exit {process.returncode}, summary {summary}, stderr {stderr[-800:]!r}"
    assert process.returncode == 130, context
    assert summary is not None and summary["interrupted"] is True, context
    assert written == recorded, f"{context}; only written: {set(written) - set(recorded)}"
    for path in output.glob("*.jpg"):
        Image.open(path).load()


def test_full_disk_is_one_clear_error_and_no_partial_file(engine, tmp_path):
    import resource

    Image.fromarray(grey_photo(300, 400, 2)).save(tmp_path / "a.png")

    def small_file_limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes fail with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    process = batch(tmp_path / "a.png", "-o", tmp_path / "out", "--engine", engine, "--format", "png",
                    preexec_fn=small_file_limit)
    assert process.returncode == 2, process.stderr
    assert "cannot write to" in process.stderr and process.stderr.strip().count("\n") == 0
    assert not (tmp_path / "out" / "a.png").exists()
    assert not list((tmp_path / "out").glob(".retint-partial-*"))


def make_unreadable(path):
    """A file that cannot be read. Root reads any file whatever its mode, so as
    root the file is a link to /proc/self/mem, whose reads fail with EIO (like
    a bad sector)."""
    if os.geteuid() == 0:
        path.unlink(missing_ok=True)
        path.symlink_to("/proc/self/mem")
    else:
        path.chmod(0o000)


def test_unreadable_input_fails_alone(engine, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    Image.fromarray(grey_photo(40, 40, 1)).save(source / "fine.png")
    Image.fromarray(grey_photo(40, 40, 2)).save(source / "secret.png")
    make_unreadable(source / "secret.png")
    process = batch(source, "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 3, process.stderr
    entries, _ = read_manifest(tmp_path / "out")
    statuses = {os.path.basename(e["source"]): (e["status"], e["reason"]) for e in entries}
    assert statuses["fine.png"][0] == "ok"
    assert statuses["secret.png"][0] == "failed" and "cannot read" in statuses["secret.png"][1]


def test_unwritable_output_is_one_clear_error(engine, tmp_path):
    Image.fromarray(grey_photo(40, 40, 1)).save(tmp_path / "a.png")
    if os.geteuid() == 0:  # root may write anywhere; a path through a file fails for anyone
        (tmp_path / "file").write_text("x")
        output, message = tmp_path / "file" / "out", "Not a directory"
    else:
        (tmp_path / "locked").mkdir(mode=0o555)
        output, message = tmp_path / "locked" / "out", "Permission denied"
    process = batch(tmp_path / "a.png", "-o", output, "--engine", engine)
    assert process.returncode == 2, process.stderr
    assert message in process.stderr and process.stderr.strip().count("\n") == 0


def test_batch_never_imports_torch(engine, tmp_path):
    Image.fromarray(grey_photo(40, 50, 1)).save(tmp_path / "a.jpg")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from retint.batch.config import BatchConfig\n"
        "from retint.batch.run import run_batch\n"
        f"summary = run_batch(BatchConfig(sources=(Path({str(tmp_path / 'a.jpg')!r}),), "
        f"output=Path({str(tmp_path / 'out')!r}), engine=Path({str(engine)!r}), progress=False), log=print)\n"
        "assert summary.counts == {'ok': 1}, summary\n"
        "print('torch' in sys.modules)\n")
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert process.returncode == 0, process.stderr
    assert process.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_backend_and_precision_are_named_in_the_summary_line_and_the_manifest(engine, tmp_path, backend):
    if backend == "openvino":
        pytest.importorskip("openvino")
    from retint.cpu import has_native_bf16

    Image.fromarray(grey_photo(96, 128, 3)).save(tmp_path / "a.png")
    process = batch(tmp_path / "a.png", "-o", tmp_path / "out", "--engine", engine, "--backend", backend)
    assert process.returncode == 0, process.stderr
    _, summary = read_manifest(tmp_path / "out")
    precision = "bf16" if backend == "openvino" and has_native_bf16() else "fp32"
    assert (summary["engine"]["backend"], summary["engine"]["precision"]) == (backend, precision)
    # Issue 29: the line names backend and precision; the why (about 300 characters) is in the manifest.
    assert f"engine: {backend} {precision}; manifest: " in process.stderr.splitlines()[-1]
    assert summary["engine"]["description"] not in process.stderr


def test_a_backend_that_cannot_run_the_engine_exits_2(engine, tmp_path):
    Image.fromarray(grey_photo(96, 128, 3)).save(tmp_path / "a.png")
    process = batch(tmp_path / "a.png", "-o", tmp_path / "out", "--engine", engine, "--backend", "tensorrt")
    assert process.returncode == 2 and "ONNX graph" in process.stderr
    assert process.stderr.count("\n") == 1


def test_concurrent_batches_write_each_image_to_its_own_output(engine, tmp_path):
    from retint.runtime import load_engine

    source = tmp_path / "same-size"
    source.mkdir()
    greys = {f"{index:02d}.png": grey_photo(96, 128, 100 + index) for index in range(12)}
    for name, grey in greys.items():
        Image.fromarray(grey).save(source / name)
    output = tmp_path / "out"
    # batches of 3: four batches, two at a time through the engine on a multi-core host
    process = batch(source, "-o", output, "--engine", engine, "--batch", 3)
    assert process.returncode == 0, process.stderr
    with load_engine(engine, device="cpu") as alone:
        for name, grey in greys.items():
            expected = alone.colorize(grey)[0].astype(int)
            written = np.asarray(Image.open(output / name).convert("RGB")).astype(int)
            assert np.abs(written - expected).max() <= 1, name


@pytest.mark.parametrize("toning", ["sepia", "cyanotype", "split-toned", "faded", "yellowed"])
def test_tone_rule_takes_every_old_print_toning_for_monochrome(toning):
    from retint.benchmarks.toning import tone

    rng = np.random.default_rng(1)
    for seed in range(3):
        print_ = tone(natural_like_image(120, 160, seed), toning, rng)
        assert tone_spread(print_) < COLOUR_SPREAD_THRESHOLD, (toning, seed, tone_spread(print_))


def test_tone_rule_sees_hue_that_changes_with_lightness_as_monochrome_but_two_hues_at_one_lightness_as_colour():
    grey = grey_photo(120, 160, 3).astype(np.float32) / 255.0
    # Shadows purple-brown, highlights yellow (a faded albumen print): one colour per lightness.
    shadows, highlights = np.array([70, 45, 60]), np.array([240, 225, 160])
    albumen = (shadows + (highlights - shadows) * grey[..., None]).astype(np.uint8)
    assert tone_spread(albumen) < COLOUR_SPREAD_THRESHOLD
    # The same lightness, but the left half red and the right half green: colour.
    two_hues = np.repeat((grey * 200)[..., None], 3, -1)
    two_hues[:, :80, 0] += 40
    two_hues[:, 80:, 1] += 40
    assert tone_spread(np.clip(two_hues, 0, 255).astype(np.uint8)) >= COLOUR_SPREAD_THRESHOLD
