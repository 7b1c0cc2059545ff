"""`OUT/manifest.jsonl`: one line per input as it completes, then a summary.

A rerun keeps the lines of inputs whose output exists (they are skipped) and
drops the rest, which are processed again, so after any number of killed
and resumed runs the manifest names each input exactly once, with its final
status. Inputs are named by their canonical path (`sources.identity_of`);
lines written by older versions under another spelling are read the same
way. Lines are flushed as written; a line torn by a kill is dropped. A disk
that cannot take a line raises OutputError (exit 2), and every line written
before it stays.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from retint.batch.sources import identity_of
from retint.errors import OutputError
from retint.files import write_bytes_atomically

STATUS_OK = "ok"
STATUS_PARTIAL = "partial"  # a video whose file ends early: the frames that decoded, coloured
STATUS_SKIPPED_COLOUR = "skipped-colour"
STATUS_FAILED = "failed"
FINAL_WITH_OUTPUT = (STATUS_OK, STATUS_PARTIAL)  # reruns keep these while their output exists
MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class Entry:
    source: str
    output: str | None
    status: str
    reason: str = ""
    width: int | None = None
    height: int | None = None
    milliseconds: float | None = None
    video: dict[str, Any] | None = None  # frames, fps, duration, streams copied, smoothing
    uncertainty: dict[str, Any] | None = None  # --uncertainty: map, mean_width, wide_fraction, wide_threshold


def _read_lines(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    lines = []
    for raw in path.read_text(errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue  # torn by a kill
        if isinstance(line, dict):
            lines.append(line)
    return lines


class Manifest:
    def __init__(self, output_root: Path, overwrite: bool):
        self.path = output_root / MANIFEST_NAME
        self.done: dict[str, dict[str, Any]] = {}  # identity -> its kept line
        if not overwrite:
            for line in _read_lines(self.path):
                if (line.get("status") in FINAL_WITH_OUTPUT and line.get("output") and "source" in line
                        and (output_root / line["output"]).is_file()):
                    line["source"] = identity_of(Path(line["source"]))
                    self.done[line["source"]] = line
        # Which input each existing output belongs to: a file may be skipped as
        # "already present" only when no other input's line claims it.
        self.owners: dict[str, str] = {line["output"]: source for source, line in self.done.items()}
        kept = "".join(json.dumps(line) + "\n" for line in self.done.values())
        write_bytes_atomically(self.path, kept.encode())
        self._stream = open(self.path, "a", encoding="utf-8")

    def _write(self, line: dict[str, Any]) -> None:
        try:
            self._stream.write(json.dumps(line) + "\n")
            self._stream.flush()
        except OSError as error:
            raise OutputError(f"cannot write the manifest {self.path}: {error.strerror or error}") from error

    def record(self, entry: Entry) -> None:
        line = asdict(entry)
        if line["video"] is None:
            del line["video"]
        self._write(line)

    def close(self, summary: dict[str, Any]) -> None:
        try:
            self._write({"summary": summary})
        finally:
            try:
                self._stream.close()
            except OSError:
                pass  # the error that matters was raised by _write


def read_manifest(output_root: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(entries, summary or None): for tests and tools."""
    lines = _read_lines(output_root / MANIFEST_NAME)
    entries = [line for line in lines if "summary" not in line]
    summaries = [line["summary"] for line in lines if "summary" in line]
    return entries, summaries[-1] if summaries else None
