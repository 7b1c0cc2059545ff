"""`OUT/manifest.jsonl`: one line per input as it completes, then a summary.

A rerun keeps the lines of inputs whose output exists (they are skipped), and
the failed lines of files that cannot be read as images or videos while the
file is unchanged (its size and mtime: it would fail the same way), and
drops the rest, which are processed again, so after any number of killed
and resumed runs the manifest names each input exactly once, with its final
status. Inputs are named by their canonical path (`sources.identity_of`);
lines written by older versions under another spelling are read the same
way. Lines are flushed as written; a line torn by a kill is dropped. A disk
that cannot take a line raises OutputError (exit 2), and every line written
before it stays.

A rerun never leaves an input unnamed, even when killed: the rewrite keeps,
after the lines it keeps, the earlier line of every input of this run that
is examined again (coloured again, failed again, found in colour again),
marked `"pending": true`; the input's new line, appended when it comes,
replaces it, and the run's end compacts the manifest (one line per input
again). A line marked pending is the earlier run's word on its input until
then; a run killed before that leaves it, and the next run reads it as any
other line (the journal's entry for the same input, being newer, wins).

A line records what guided its colours (`batch.guides`: the photo's
`--hints`, the reference photo's path and sha256). A rerun that gives an
input other guides (or none where it had some) does not keep its line: the
input is coloured again, over its own earlier output (`Manifest.stale`),
and until then the journal carries that output's line, so it stays
demonstrably retint's through any killed run.

The journal, `OUT/.retint-journal.jsonl`, is what makes an output found on
disk demonstrably retint's: just before an output is given its name, its
entry goes into the journal with the device and inode of the finished
file. A run killed between naming an output and writing its manifest line
leaves that journal line; the next run takes the output as done only if
the file at that path is still that very file, and writes the journal's
entry (size, notes, figures) as the input's line. Any other file or folder
at an output path is not retint's (`run.BatchRun` fails its input).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Collection, Iterable, Mapping

from retint.batch.guides import fingerprint
from retint.batch.sources import identity_of
from retint.errors import OutputError
from retint.files import write_bytes_atomically

PENDING = "pending"  # a line kept from an earlier run while this run examines its input again
STATUS_OK = "ok"
STATUS_PARTIAL = "partial"  # a video whose file ends early: the frames that decoded, coloured
STATUS_SKIPPED_COLOUR = "skipped-colour"
STATUS_FAILED = "failed"
FINAL_WITH_OUTPUT = (STATUS_OK, STATUS_PARTIAL)  # reruns keep these while their output exists
MANIFEST_NAME = "manifest.jsonl"
JOURNAL_NAME = ".retint-journal.jsonl"


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
    # A failure that is the file's own (corrupt, unsupported): its size and mtime, so a rerun
    # keeps the line while the file is unchanged instead of failing it again.
    file_signature: list[int] | None = None
    hints: list[dict[str, float]] | None = None  # --hints: those it was coloured with (hints_as_json)
    reference: dict[str, str] | None = None  # its reference photo: path and sha256 (batch.reference)


def file_signature(path: Path) -> list[int] | None:
    """[size, mtime in ns] of the file at `path`, or None where it cannot be examined."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return [status.st_size, status.st_mtime_ns]


def _as_line(entry: Entry) -> dict[str, Any]:
    line = asdict(entry)
    for optional in ("video", "file_signature", "hints", "reference"):
        if line[optional] is None:
            del line[optional]
    return line


def journal_entry(output_root: Path, entry: Entry, finished: os.stat_result) -> None:
    """Note in OUT's journal that `entry`'s output is the file `finished` (see the module doc).

    Appends one line with one write (O_APPEND), so the photo pipeline's
    threads and Ray's workers on a shared filesystem never tear each other's lines.
    """
    line = _as_line(entry) | {"file": _file_identity(finished)}
    path = output_root / JOURNAL_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, (json.dumps(line) + "\n").encode())
        finally:
            os.close(fd)
    except OSError as error:
        raise OutputError(f"cannot write the journal {path}: {error.strerror or error}") from error


def _file_identity(status: os.stat_result) -> list[int]:
    # Device and inode name the file; size and mtime (ns) tell it from a later file that
    # reuses a freed inode number, as filesystems do.
    return [status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns]


def _journalled_outputs(output_root: Path) -> list[dict[str, Any]]:
    """The journal's lines whose outputs are still the very files the journal names."""
    found = []
    for line in _read_lines(output_root / JOURNAL_NAME):
        try:
            if line.get("status") not in FINAL_WITH_OUTPUT or not line.get("output"):
                continue
            status = os.stat(output_root / line["output"], follow_symlinks=False)
            if _file_identity(status) != line.get("file"):
                continue
            found.append(line)  # its "file" stays: the proof that the output is retint's
        except (OSError, TypeError, ValueError, KeyError):
            continue  # gone, replaced, or a damaged line: not demonstrably retint's
    return found


def journalled_output(output_root: Path, entry: Entry) -> Entry | None:
    """The entry another run of this output folder journalled for `entry`'s input, output and guides,
    where the file now at that output is the very file it names; None otherwise.

    A run killed with its Ray workers still colouring leaves them running for a moment: one can name
    an output (journal line first, as always) after the next run has planned that input. The next
    run's own write then meets the file; this is how it tells that the file is that input coloured
    by retint with the same guides, and takes it as done instead of failing the input."""
    wanted = json.loads(json.dumps(_as_line(entry)))
    for line in reversed(_journalled_outputs(output_root)):
        if all(line.get(key) == wanted.get(key) for key in ("source", "output", "hints", "reference")):
            return Entry(**{field.name: line.get(field.name) for field in fields(Entry)})
    return None


def _still_retints(line: dict[str, Any], output_root: Path) -> bool:
    """Whether the line's output is still the very file retint wrote (its "file" identity)."""
    try:
        status = os.stat(output_root / line["output"], follow_symlinks=False)
    except (OSError, TypeError, KeyError):
        return False
    return _file_identity(status) == line.get("file")


def _journal_lines(output_root: Path, lines: Iterable[dict[str, Any]]) -> bytes:
    """Journal lines for the manifest lines of outputs still on disk, naming the files as they are now."""
    journal = []
    for line in lines:
        try:
            status = os.stat(output_root / line["output"], follow_symlinks=False)
        except OSError:
            continue
        journal.append(json.dumps(line | {"file": _file_identity(status)}) + "\n")
    return "".join(journal).encode()


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


def _earlier_lines(output_root: Path, manifest_path: Path) -> list[dict[str, Any]]:
    """What earlier runs say of each input, in the order to weigh them: the manifest's last line for
    each source, then the journal's lines (a journal line replaces a pending manifest line: it is
    newer). Sources are canonical; the pending mark is taken off."""
    latest: dict[str, dict[str, Any]] = {}
    for line in _read_lines(manifest_path):
        if isinstance(line.get("source"), str):
            line["source"] = identity_of(Path(line["source"]))  # as older versions spelled it, too
            latest.pop(line["source"], None)
            latest[line["source"]] = line  # a later line of one input replaces its earlier (pending) line
    journalled = [line for line in _journalled_outputs(output_root) if isinstance(line.get("source"), str)]
    for line in journalled:
        line["source"] = identity_of(Path(line["source"]))
    newer = {line["source"] for line in journalled}
    lines = [line for source, line in latest.items() if not (line.get(PENDING) and source in newer)]
    for line in lines:
        line.pop(PENDING, None)
    return lines + journalled


class Manifest:
    def __init__(self, output_root: Path, overwrite: bool, planned_writers: dict[str, str] | None = None,
                 guides: Mapping[str, Mapping[str, Any]] | None = None, inputs: Collection[str] = ()):
        """`planned_writers`: output (relative to OUT) -> the identity of this run's input that writes it.
        A kept line whose source is gone while this run's input of the same output exists is that
        input's line: the archive was moved or renamed between runs, and its outputs are still its own.
        `guides`: identity -> what guides this run's colours of that input (`batch.guides`); a line
        made with other guides is not done (see `stale`). `inputs`: the identities of this run's
        inputs, whose earlier lines stay (pending) until their new lines come (see the module doc)."""
        self.path = output_root / MANIFEST_NAME
        self.done: dict[str, dict[str, Any]] = {}  # identity -> its kept line
        # identity -> the line of its output made with other guides: coloured again, over that output.
        self.stale: dict[str, dict[str, Any]] = {}
        planned_writers = planned_writers or {}
        guides = guides or {}
        inputs = set(inputs)
        pending: dict[str, dict[str, Any]] = {}  # identity -> its earlier line, while it is examined again
        claimed: set[str] = set()  # outputs already named by a kept line
        # The manifest's lines first, then outputs named by a run killed before their lines.
        for line in _earlier_lines(output_root, self.path):
            writer = planned_writers.get(line.get("output") or "")
            if (writer and writer != line["source"] and os.path.basename(writer) == os.path.basename(line["source"])
                    and not os.path.lexists(line["source"])):
                line["source"] = writer  # the archive moved (see above); a file of another name never takes it
            source = line["source"]
            if source in self.done or source in self.stale or line.get("output") in claimed:
                continue
            if overwrite or not self._keeps(line, output_root):
                if source in inputs:
                    pending.setdefault(source, line)
                continue
            # A line that keeps its output (the journal's, after a failed rerun that left that
            # output as it was) outweighs an earlier line that keeps nothing.
            pending.pop(source, None)
            # A failure kept here is the file's own (unreadable, unchanged since): it fails the same
            # way whatever guides it is given, so only an output's line must match this run's guides.
            if (line.get("status") not in FINAL_WITH_OUTPUT
                    or fingerprint(line) == fingerprint(guides.get(source, {}))):
                self.done[source] = line
            elif _still_retints(line, output_root):
                self.stale[source] = line
                if source in inputs:
                    pending[source] = line
            else:
                # Its output changed since retint wrote it (a user's retouch, say): never written
                # over; the line stays as it was, and --overwrite is the way to colour it again.
                self.done[source] = line
            if line.get("output"):
                claimed.add(line["output"])
        # Which input each existing output belongs to: another input's output is never taken as done.
        self.owners: dict[str, str] = {line["output"]: source for lines in (self.done, self.stale)
                                       for source, line in lines.items() if line.get("output")}
        kept = "".join(json.dumps(line) + "\n" for line in self.done.values())
        kept += "".join(json.dumps(line | {PENDING: True}) + "\n" for line in pending.values())
        write_bytes_atomically(self.path, kept.encode())
        # The manifest now holds what the journal proved: start the journal afresh, with the stale
        # outputs, so that they stay demonstrably retint's until they are coloured again.
        write_bytes_atomically(output_root / JOURNAL_NAME, _journal_lines(output_root, self.stale.values()))
        self._pending = set(pending)  # inputs whose pending line no new line has replaced yet
        self._replaced: set[str] = set()  # inputs whose pending line a new line has replaced
        self._stream = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    @staticmethod
    def _keeps(line: dict[str, Any], output_root: Path) -> bool:
        """A finished output still there, or a file's own failure while the file is unchanged."""
        if line.get("status") in FINAL_WITH_OUTPUT and line.get("output"):
            return (output_root / line["output"]).is_file()
        return bool(line.get("status") == STATUS_FAILED and line.get("file_signature")
                    and file_signature(Path(line["source"])) == line["file_signature"])

    def _write(self, line: dict[str, Any]) -> None:
        try:
            with self._lock:
                self._stream.write(json.dumps(line) + "\n")
                self._stream.flush()
                if line.get("source") in self._pending:
                    self._pending.discard(line["source"])
                    self._replaced.add(line["source"])
        except OSError as error:
            raise OutputError(f"cannot write the manifest {self.path}: {error.strerror or error}") from error

    def record(self, entry: Entry) -> None:
        """Append the entry's line to the manifest and flush it; an OutputError if the disk refuses it.
        A line with an output names that file as retint left it ("file"), so that a later run can
        tell retint's output from a file someone changed since."""
        line = _as_line(entry)
        if entry.status in FINAL_WITH_OUTPUT and entry.output:
            try:
                line["file"] = _file_identity(os.stat(self.path.parent / entry.output, follow_symlinks=False))
            except OSError:
                pass
        self._write(line)

    def close(self, summary: dict[str, Any]) -> None:
        """Append the run's summary line and close the manifest; then, where new lines replaced pending
        ones, compact it: each replaced pending line goes, all at once (a run stopped early keeps the
        pending lines of the inputs it did not reach)."""
        try:
            self._write({"summary": summary})
        finally:
            try:
                self._stream.close()
            except OSError:
                pass  # the error that matters was raised by _write
        if self._replaced:
            self._compact()

    def _compact(self) -> None:
        lines = []
        for raw in self.path.read_text(errors="replace").splitlines(keepends=True):
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                continue  # torn by a kill
            if isinstance(line, dict) and line.get(PENDING) and line.get("source") in self._replaced:
                continue
            lines.append(raw if raw.endswith("\n") else raw + "\n")
        write_bytes_atomically(self.path, "".join(lines).encode())


def read_manifest(output_root: Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """(entries, summary or None): for tests and tools."""
    lines = _read_lines(output_root / MANIFEST_NAME)
    entries = [line for line in lines if "summary" not in line]
    summaries = [line["summary"] for line in lines if "summary" in line]
    return entries, summaries[-1] if summaries else None
