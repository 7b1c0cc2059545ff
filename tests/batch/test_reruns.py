"""Issue 41, item 4: at every instant the manifest names every input that a finished run named,
however a rerun (a no-op one, or --overwrite) is killed. Real processes, real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from PIL import Image

from retint.batch.manifest import MANIFEST_NAME, read_manifest

from archive import photo
from batchrun import batch, originals_unchanged, start
from imagemaker import natural_like_image


def mixed_archive(root: Path) -> set[str]:
    """Grey photos, colour photos (skipped), and files that fail: every kind of line a run writes;
    the canonical paths of its inputs."""
    for index in range(8):
        photo(root / f"grey/scan{index:02d}.png", seed=index + 1)
    for index in range(16):  # large enough that looking at them again takes a moment
        path = root / f"colour/photo{index:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(natural_like_image(240, 320, index + 50)).save(path)
    (root / "bad").mkdir()
    (root / "bad" / "empty.jpg").write_bytes(b"")
    (root / "bad" / "text.jpg").write_bytes(b"not a JPEG\n" * 20)
    return {os.path.realpath(path) for path in root.rglob("*") if path.is_file()}


def named(output: Path) -> dict[str, list[dict]]:
    """Source -> its manifest lines, in order."""
    lines: dict[str, list[dict]] = {}
    for raw in (output / MANIFEST_NAME).read_text().splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue  # torn by the kill
        if "source" in line:
            lines.setdefault(line["source"], []).append(line)
    return lines


def kill_just_after_the_manifest_is_rewritten(args: list) -> None:
    """Start colorize-batch ARGS and SIGKILL it the moment its manifest is replaced (the rerun's
    rewrite, before it looks at any input again); fails if the run ended first, three times."""
    manifest = Path(args[args.index("-o") + 1]) / MANIFEST_NAME
    for _ in range(3):
        before = os.stat(manifest).st_ino
        process, snapshot = start(args)
        while process.poll() is None:
            try:
                if os.stat(manifest).st_ino != before:
                    break
            except FileNotFoundError:
                pass  # between the old name's unlink and the new one (never, with rename; kept for safety)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.communicate()
            originals_unchanged(snapshot)
            return
        process.communicate()
    raise AssertionError("the rerun ended before it could be killed, three times")


def test_a_kill_during_a_no_op_rerun_leaves_every_input_named(engine, tmp_path):
    inputs = mixed_archive(tmp_path / "archive")
    args = [tmp_path / "archive", "-o", tmp_path / "out", "--engine", engine]
    first = batch(*args)
    assert first.returncode == 3, first.stderr
    assert set(named(tmp_path / "out")) == inputs
    kill_just_after_the_manifest_is_rewritten(args)
    # Before the fix the rewrite dropped the 16 skipped-colour lines until each photo was looked at again.
    lines = named(tmp_path / "out")
    assert set(lines) == inputs
    pending = [source for source, found in lines.items() if found[-1].get("pending")]
    assert all("colour/photo" in source for source in pending)  # only those looked at again
    # The next run finishes it: one line per input, none pending.
    final = batch(*args)
    assert final.returncode == 0, final.stderr
    entries, summary = read_manifest(tmp_path / "out")
    assert sorted(entry["source"] for entry in entries) == sorted(inputs)
    assert not any(entry.get("pending") for entry in entries) and summary is not None


def test_a_kill_during_an_overwrite_rerun_leaves_every_input_named(engine, tmp_path):
    inputs = mixed_archive(tmp_path / "archive")
    args = [tmp_path / "archive", "-o", tmp_path / "out", "--engine", engine]
    assert batch(*args).returncode == 3
    kill_just_after_the_manifest_is_rewritten(args + ["--overwrite"])
    # Before the fix --overwrite began with an empty manifest.
    assert set(named(tmp_path / "out")) == inputs
    final = batch(*args, "--overwrite")
    assert final.returncode == 3, final.stderr
    entries, _ = read_manifest(tmp_path / "out")
    assert sorted(entry["source"] for entry in entries) == sorted(inputs)
    assert not any(entry.get("pending") for entry in entries)
