"""Issue 41, items 10 and 12: each failed or skipped input is a line on stderr; the lock file goes
when a run ends, and removing it never lets two runs in."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from retint.batch.lock import LOCK_NAME, WORKERS_LOCK_NAME, OutputLock, WorkersLock, wait_for_workers
from retint.batch.manifest import MANIFEST_NAME, read_manifest
from retint.errors import InputError

from archive import photo
from batchrun import batch
from imagemaker import natural_like_image


# 10. Each failed or skipped input is a line on stderr, not only in the manifest.

def test_a_failed_input_is_named_with_its_reason_on_stderr(engine, tmp_path):
    (tmp_path / "README.md").write_text("# not a photo\n")
    process = batch(tmp_path / "README.md", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 3, process.stderr
    *noted, summary = process.stderr.strip().splitlines()
    (entry,), _ = read_manifest(tmp_path / "out")
    assert noted == [f"failed: {entry['source']}: {entry['reason']}"]
    assert summary.startswith("1 failed;")


def test_skipped_colour_photos_are_named_with_the_include_colour_tip(engine, tmp_path):
    for index in range(2):
        path = tmp_path / "colour" / f"photo{index}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(natural_like_image(48, 64, index + 5)).save(path)
    process = batch(tmp_path / "colour", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 0, process.stderr
    *noted, summary = process.stderr.strip().splitlines()
    assert len(noted) == 2 and all(line.startswith("skipped-colour: ") and "--include-colour" in line
                                   for line in noted)
    assert summary.startswith("2 skipped-colour;")


def test_past_twenty_the_rest_are_counted_and_where_they_are_said(engine, tmp_path):
    for index in range(23):
        (tmp_path / "bad" / f"empty{index:02d}.jpg").parent.mkdir(exist_ok=True)
        (tmp_path / "bad" / f"empty{index:02d}.jpg").write_bytes(b"")
    process = batch(tmp_path / "bad", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 3, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 22 and all(line.startswith("failed: ") for line in lines[:20])
    assert lines[20] == (f"... and 3 more failed, partial or skipped input(s): see "
                         f"{tmp_path / 'out' / MANIFEST_NAME}")


# 12. The lock file.

def test_a_finished_run_leaves_no_lock_file_and_a_killed_runs_file_is_taken(engine, tmp_path):
    photo(tmp_path / "scans" / "a.png")
    assert batch(tmp_path / "scans", "-o", tmp_path / "out", "--engine", engine).returncode == 0
    assert not (tmp_path / "out" / LOCK_NAME).exists()
    (tmp_path / "out" / LOCK_NAME).write_text("12345")  # what a killed run leaves (its flock died with it)
    photo(tmp_path / "scans" / "b.png", seed=2)
    process = batch(tmp_path / "scans", "-o", tmp_path / "out", "--engine", engine)
    assert process.returncode == 0, process.stderr
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_a_run_on_a_locked_folder_is_refused_and_leaves_the_lock_alone(engine, tmp_path):
    photo(tmp_path / "scans" / "a.png")
    lock = OutputLock(tmp_path / "out")
    try:
        process = batch(tmp_path / "scans", "-o", tmp_path / "out", "--engine", engine)
        assert process.returncode == 2 and "another colorize-batch run" in process.stderr
        assert (tmp_path / "out" / LOCK_NAME).read_text() == str(os.getpid())
    finally:
        lock.release()
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def _take_the_lock_repeatedly(output: str, seconds: float, results) -> None:
    """Take and release OUT's lock as often as it can for `seconds`; while it holds the lock, a
    marker file made with O_EXCL proves that no other holder is inside."""
    marker = os.path.join(output, "inside")
    taken = overlaps = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            lock = OutputLock(Path(output))
        except InputError:
            continue
        try:
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            overlaps += 1
        else:
            os.close(fd)
            os.unlink(marker)
        taken += 1
        lock.release()
    results.put((taken, overlaps))


def test_removing_the_lock_file_never_lets_two_runs_in(tmp_path):
    (tmp_path / "out").mkdir()
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_take_the_lock_repeatedly, args=(str(tmp_path / "out"), 3.0, results))
               for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join()
    assert sum(overlaps for _, overlaps in outcomes) == 0, outcomes
    assert sum(taken for taken, _ in outcomes) > 20, outcomes
    assert not (tmp_path / "out" / LOCK_NAME).exists()


# A --ray run's actors can outlive a driver killed with SIGKILL: the next run waits for them.

def _hold_as_a_worker(output: str, seconds: float, started) -> None:
    """An actor of an earlier run: holds OUT's workers' lock for `seconds`, then ends."""
    WorkersLock(Path(output))
    started.set()
    time.sleep(seconds)


def test_a_run_waits_for_an_earlier_runs_workers_to_stop_before_planning(engine, tmp_path):
    photo(tmp_path / "scans" / "a.png")
    (tmp_path / "out").mkdir()
    context = multiprocessing.get_context("fork")
    started = context.Event()
    worker = context.Process(target=_hold_as_a_worker, args=(str(tmp_path / "out"), 3.0, started))
    worker.start()
    try:
        assert started.wait(30)
        began = time.monotonic()
        process = batch(tmp_path / "scans", "-o", tmp_path / "out", "--engine", engine)
        waited = time.monotonic() - began
    finally:
        worker.join()
    assert process.returncode == 0, process.stderr
    assert "waiting for an earlier run's Ray workers to stop" in process.stderr
    assert waited >= 2.0  # it could not start before the worker's process had ended
    entries, _ = read_manifest(tmp_path / "out")
    assert [entry["status"] for entry in entries] == ["ok"]
    assert not (tmp_path / "out" / WORKERS_LOCK_NAME).exists()


def test_workers_that_never_stop_end_the_wait_with_a_line_and_a_held_lock_is_kept(tmp_path):
    (tmp_path / "out").mkdir()
    lines: list[str] = []
    wait_for_workers(tmp_path / "out", lines.append, timeout_s=0.2)  # no workers' file: at once
    assert lines == []
    worker = WorkersLock(tmp_path / "out")
    try:
        began = time.monotonic()
        with pytest.raises(InputError, match=r"still write into .* \(ray stop\)"):
            wait_for_workers(tmp_path / "out", lines.append, timeout_s=0.5)
        assert time.monotonic() - began >= 0.5
        assert len(lines) == 1 and (tmp_path / "out" / WORKERS_LOCK_NAME).exists()
    finally:
        worker.release()
    wait_for_workers(tmp_path / "out", lines.append, timeout_s=0.5)
    assert not (tmp_path / "out" / WORKERS_LOCK_NAME).exists()
