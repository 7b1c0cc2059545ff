"""colorize-batch --ray on a local Ray: the same statuses and outputs as a local run, and a driver
killed with SIGKILL that a rerun completes. Real Ray, real actors, real files."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from archive import build_archive, grey_photo
from batchrun import batch, originals_unchanged, snapshot, start
from retint.batch.config import BatchConfig
from retint.batch.manifest import read_manifest
from retint.batch.run import run_batch

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # a Ray instance per test module, actors per run


def sources_once(entries: list[dict]) -> dict[str, dict]:
    by_source = {}
    for entry in entries:
        assert entry["source"] not in by_source, f"{entry['source']} has two manifest lines"
        by_source[entry["source"]] = entry
    return by_source


def grey_archive(root: Path, count: int) -> Path:
    for index in range(count):
        path = root / f"roll-{index // 50}" / f"scan-{index:04d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(grey_photo(240, 320, index)).save(path, quality=90)
    (root / "roll-0" / "empty.jpg").write_bytes(b"")
    (root / "roll-0" / "not-an-image.png").write_text("text\n" * 50)
    return root


def test_a_driver_killed_with_sigkill_is_finished_by_a_rerun(tmp_path):
    archive, out = grey_archive(tmp_path / "archive", 240), tmp_path / "out"
    process, before = start([archive, "-o", out, "--ray", "--no-progress"])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        entries, _ = read_manifest(out) if out.is_dir() else ([], None)
        if len(entries) >= 20:
            break
        time.sleep(0.2)
    assert process.poll() is None, f"the run ended before it could be killed: {process.communicate()}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    originals_unchanged(before)
    killed_entries, killed_summary = read_manifest(out)
    assert killed_summary is None and 20 <= len(killed_entries) < 242

    rerun = batch(archive, "-o", out, "--ray", "--no-progress", timeout=600)
    # The two bad files: exit 3 if this run failed them, 0 if the killed run already had (issue 29:
    # an unreadable file that has not changed keeps its failed line).
    assert rerun.returncode in (0, 3), rerun.stderr
    entries, summary = read_manifest(out)
    by_source = sources_once(entries)
    assert len(by_source) == 242
    assert sorted(entry["status"] for entry in by_source.values()).count("ok") == 240, \
        [entry["reason"] for entry in by_source.values() if entry["status"] != "ok"]
    for entry in by_source.values():
        if entry["status"] == "ok":
            with Image.open(out / entry["output"]) as image:
                image.load()  # every output decodes whole
                assert image.size == (320, 240)
    assert not [path for path in out.rglob("*") if ".partial" in path.name]
    assert sorted(entry["status"] for entry in by_source.values()).count("failed") == 2

    again = batch(archive, "-o", out, "--ray", "--no-progress", timeout=600)
    assert again.returncode in (0, 3) and "already done" in again.stderr, again.stderr
    entries, summary = read_manifest(out)
    assert len(sources_once(entries)) == 242
    # Nothing is coloured again; the two unchanged bad files keep their lines.
    assert summary["counts"].get("ok", 0) == 0
    assert summary["already_done"] + sum(summary["counts"].values()) == 242


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def mean_grey_level_difference(a: Path, b: Path) -> float:
    with Image.open(a) as first, Image.open(b) as second:
        return float(np.abs(np.asarray(first, np.int16) - np.asarray(second, np.int16)).mean())


@pytest.mark.parametrize("options", [{}, {"output_format": "png", "include_colour": True}])
def test_ray_gives_a_local_runs_statuses_and_outputs(local_ray, tmp_path, options):
    archive = tmp_path / "archive"
    build_archive(archive)
    try:
        from test_video import make_clip

        (archive / "film").mkdir()
        make_clip(archive / "film" / "clip.mp4", frames=12)
    except ImportError:  # PyAV (the 'video' extra) is missing: photos only
        pass
    before = snapshot([archive])
    logs: list[str] = []
    local = run_batch(BatchConfig(sources=(archive,), output=tmp_path / "local", progress=False, **options),
                      log=logs.append)
    distributed = run_batch(BatchConfig(sources=(archive,), output=tmp_path / "ray", progress=False, ray=True,
                                        **options), log=logs.append)
    originals_unchanged(before)
    assert any(line.startswith("Ray: 1 node(s), 2 CPUs") for line in logs)
    assert "Ray actor" in distributed.engine["description"]
    assert distributed.engine["label"].endswith("Ray actor(s)")  # the summary line's (it read "engine: ?")
    local_entries = sources_once(read_manifest(tmp_path / "local")[0])
    ray_entries = sources_once(read_manifest(tmp_path / "ray")[0])
    assert local_entries.keys() == ray_entries.keys()
    for source, entry in local_entries.items():
        other = ray_entries[source]
        assert (other["status"], other["output"]) == (entry["status"], entry["output"]), source
        assert other["reason"].split(" (")[0] == entry["reason"].split(" (")[0], source
        if entry["output"] and not entry["output"].endswith(".mp4"):
            assert mean_grey_level_difference(tmp_path / "local" / entry["output"],
                                              tmp_path / "ray" / entry["output"]) <= 1.0, source
        if entry.get("video"):
            assert other["video"]["frames"] == entry["video"]["frames"]
    assert local.counts == distributed.counts and distributed.failed > 0

    rerun = run_batch(BatchConfig(sources=(archive,), output=tmp_path / "ray", progress=False, ray=True, **options),
                      log=logs.append)
    assert rerun.counts.get("ok", 0) == 0
    # Every input is accounted for and none is coloured again (issue 29: an unreadable file that
    # has not changed keeps its failed line and counts as done).
    assert rerun.already_done + sum(rerun.counts.values()) == len(ray_entries)
    assert len(sources_once(read_manifest(tmp_path / "ray")[0])) == len(ray_entries)
