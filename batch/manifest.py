"""`OUT/manifest.jsonl`: one line per input as it completes, then a summary.

A rerun keeps the lines of inputs whose output exists (they are skipped) and
drops the rest, which are processed again, so after any number of killed
and resumed runs the manifest names each input exactly once, with its final
status. Lines are flushed as written; a line torn by a kill is dropped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATUS_OK = "ok"
STATUS_SKIPPED_COLOUR = "skipped-colour"
STATUS_FAILED = "failed"
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
        from retint.batch.output import write_output

        self.path = output_root / MANIFEST_NAME
        self.done: dict[str, dict[str, Any]] = {}
        if not overwrite:
            for line in _read_lines(self.path):
                if (line.get("status") == STATUS_OK and line.get("output")
                        and (output_root / line["output"]).is_file()):
                    self.done[line["source"]] = line
        kept = "".join(json.dumps(line) + "\n" for line in self.done.values())
        write_output(self.path, kept.encode())
        self._stream = open(self.path, "a", encoding="utf-8")

    def record(self, entry: Entry) -> None:
        line = asdict(entry)
        if line["video"] is None:
            del line["video"]
        self._stream.write(json.dumps(line) + "\n")
        self._stream.flush()

    def close(self, summary: dict[str, Any]) -> None:
        self._stream.write(json.dumps({"summary": summary}) + "\n")
        self._stream.close()


def read_manifest(output_root: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(entries, summary or None): for tests and tools."""
    lines = _read_lines(output_root / MANIFEST_NAME)
    entries = [line for line in lines if "summary" not in line]
    summaries = [line["summary"] for line in lines if "summary" in line]
    return entries, summaries[-1] if summaries else None
