"""Issue 29: seeded mutation fuzzing of the five input formats, through the real decode path.

Two layers, both seeded and bounded:

- every mutated file goes through the decode a run uses (`decode.decode`
  from the file on disk; for a video, `VideoReader`, which opens, demuxes and
  decodes it for `colour_video`), and must end as a result or as a
  `DecodeFailure` (or FFmpeg's error, which colour_video words as one: the
  reason of a `failed` line), never as any other exception, within a time
  bound;
- a share of them goes through `colorize-batch` itself, which must write
  one manifest line per input, no traceback, and exit 0 or 3.

The fast tier mutates 2,000 files (400 per format); `slow` 20,000 (and
2,000 through colorize-batch).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from retint.batch.decode import AlreadyColour, DecodeFailure, decode
from retint.batch.manifest import read_manifest

from batchrun import batch
from fuzzing import FORMATS, SUFFIX, base_files, mutate

# One file, however damaged, must not hold the run up: a decode of these tiny files takes milliseconds.
SECONDS_PER_FILE = 5.0


def write_mutants(folder: Path, per_format: int, first_seed: int = 0,
                  formats: tuple[str, ...] = FORMATS) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    bases = {seed: base_files(seed) for seed in range(3)}
    paths = []
    for kind in formats:
        for seed in range(first_seed, first_seed + per_format):
            path = folder / f"{kind}-{seed:06d}{SUFFIX[kind]}"
            path.write_bytes(mutate(kind, bases[seed % 3][kind], seed))
            paths.append(path)
    return paths


def read_video(path: Path) -> None:
    """The decode half of colour_video: open, demux and decode every frame to grey."""
    from retint.batch.video.reader import VideoReader

    with VideoReader(path, 8) as reader:
        reader.start()
        for _ in reader.items():
            pass
        reader.stop()


def decode_outcome(path: Path) -> str:
    """'ok', 'colour' or 'failed: reason'; any other exception propagates (the test fails)."""
    import av

    try:
        if path.suffix == SUFFIX["video"]:
            read_video(path)
        else:
            decode(path, 150_000_000, include_colour=False)
    except DecodeFailure as failure:
        return f"failed: {failure}"
    except av.error.FFmpegError as error:  # colour_video words these as "corrupt or truncated video"
        return f"failed: {error}"
    except AlreadyColour:
        return "colour"
    return "ok"


def fuzz_decode(folder: Path, per_format: int, first_seed: int = 0) -> dict[str, dict[str, int]]:
    paths = write_mutants(folder / "inputs", per_format, first_seed)
    counts: dict[str, dict[str, int]] = {kind: {} for kind in FORMATS}
    for path in paths:
        kind = path.name.split("-")[0]
        began = time.perf_counter()
        try:
            outcome = decode_outcome(path)
        except Exception as error:  # noqa: BLE001 - the point of the test
            raise AssertionError(f"{path.name} (seed in its name) raised {type(error).__name__}: {error}") from error
        took = time.perf_counter() - began
        assert took < SECONDS_PER_FILE, f"{path.name} took {took:.1f} s"
        status = outcome.split(":")[0]
        counts[kind][status] = counts[kind].get(status, 0) + 1
    return counts


def test_fuzzed_files_decode_or_fail_with_a_reason(tmp_path):
    pytest.importorskip("av")
    began = time.perf_counter()
    counts = fuzz_decode(tmp_path, 400)
    seconds = time.perf_counter() - began
    assert sum(sum(by_status.values()) for by_status in counts.values()) == 2000
    for kind in FORMATS:  # the mutations reach both outcomes: neither all-broken nor all-harmless
        assert counts[kind].get("failed", 0) > 0 and counts[kind].get("ok", 0) + counts[kind].get("colour", 0) > 0, \
            (kind, counts[kind])
    print(f"fuzz: 2000 files in {seconds:.1f} s: {counts}")


def assert_one_line_per_input(inputs: list[Path], output: Path, process) -> None:
    assert process.returncode in (0, 3), process.stderr[-2000:]
    assert "Traceback" not in process.stderr, process.stderr[-4000:]
    entries, summary = read_manifest(output)
    sources = [os.path.basename(entry["source"]) for entry in entries]
    assert sorted(sources) == sorted(path.name for path in inputs)
    assert summary is not None and not summary["interrupted"]
    assert all(entry["status"] in ("ok", "partial", "failed", "skipped-colour") for entry in entries)


def test_fuzzed_archive_gets_one_manifest_line_per_file(tmp_path, engine):
    # 250 mutated files, 50 of them videos, through the whole of colorize-batch (engine, encoders).
    inputs = write_mutants(tmp_path / "archive", 50, first_seed=10_000)
    process = batch(tmp_path / "archive", "-o", tmp_path / "out", "--engine", engine, "--preset", "ultrafast",
                    timeout=600)
    assert_one_line_per_input(inputs, tmp_path / "out", process)
    rerun = batch(tmp_path / "archive", "-o", tmp_path / "out", "--engine", engine, "--preset", "ultrafast",
                  timeout=600)
    assert rerun.returncode in (0, 3) and "Traceback" not in rerun.stderr
    entries, summary = read_manifest(tmp_path / "out")
    assert len(entries) == len(inputs)
    assert summary["already_done"] >= sum(1 for entry in entries if entry["output"])


@pytest.mark.slow
def test_fuzzed_files_slow_tier(tmp_path, engine):
    pytest.importorskip("av")
    counts = fuzz_decode(tmp_path / "decode", 4000, first_seed=100_000)
    assert sum(sum(by_status.values()) for by_status in counts.values()) == 20_000
    inputs = write_mutants(tmp_path / "archive", 400, first_seed=200_000)
    process = batch(tmp_path / "archive", "-o", tmp_path / "out", "--engine", engine, "--preset", "ultrafast",
                    timeout=3000)
    assert_one_line_per_input(inputs, tmp_path / "out", process)


def fuzz_hints_files(folder: Path, count: int, first_seed: int = 0) -> dict[str, int]:
    """`count` mutated hints files through `read_hints_file`: each is read or refused (HintError, one
    line), never any other exception, within the time bound. Counts by outcome."""
    from retint.batch.hints import read_hints_file
    from retint.runtime.guides.hints import HintError

    from fuzzing import hints_file, mutate_hints

    folder.mkdir(parents=True, exist_ok=True)
    counts = {"read": 0, "refused": 0}
    for seed in range(first_seed, first_seed + count):
        path = folder / f"hints-{seed:06d}.json"
        path.write_bytes(mutate_hints(hints_file(seed % 7), seed))
        began = time.perf_counter()
        try:
            read_hints_file(path)
            counts["read"] += 1
        except HintError as refusal:
            assert "\n" not in str(refusal), (path.name, str(refusal)[:500])
            counts["refused"] += 1
        except Exception as error:  # noqa: BLE001 - the point of the test
            raise AssertionError(f"{path.name} (seed in its name) raised {type(error).__name__}: {error}") from error
        took = time.perf_counter() - began
        assert took < SECONDS_PER_FILE, f"{path.name} took {took:.1f} s"
    return counts


def test_fuzzed_hints_files_are_read_or_refused_in_one_line(tmp_path):
    counts = fuzz_hints_files(tmp_path, 1000)
    assert counts["read"] > 0 and counts["refused"] > 0, counts


def test_fuzzed_hints_files_through_colorize_batch(tmp_path, engine):
    from fuzzing import hints_file, mutate_hints

    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "a.png").write_bytes(base_files(0)["png"])
    for seed in (3, 26):  # one the reading refuses; one it takes, whose reference photo is then missing
        path = tmp_path / f"hints-{seed}.json"
        path.write_bytes(mutate_hints(hints_file(seed % 7), seed))
        process = batch(tmp_path / "scans", "-o", tmp_path / f"out-{seed}", "--engine", engine, "--hints", path,
                        timeout=120)
        assert process.returncode == 2, process.stderr[-2000:]
        assert process.stderr.strip().count("\n") == 0 and "Traceback" not in process.stderr, process.stderr[-2000:]


@pytest.mark.slow
def test_fuzzed_hints_files_slow_tier(tmp_path):
    counts = fuzz_hints_files(tmp_path, 10_000, first_seed=300_000)
    assert counts["read"] + counts["refused"] == 10_000
