"""Issue 41, item 3: a --hints file (and a reference photo) that is no regular file, is endless, or
holds numbers no float holds: one line and exit 2, at once, never a hang or a traceback."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from retint.batch.hints import read_hints_file
from retint.batch.reference import ReferenceError, read_reference
from retint.runtime.guides.hints import HintError

from archive import photo
from batchrun import batch

SECONDS_TO_REFUSE = 60  # a start-up under load takes seconds; a FIFO's read blocked for ever


def refused(tmp_path: Path, *options, **kwargs) -> str:
    """colorize-batch with `options` on one photo: asserts one line and exit 2; returns the line."""
    photo(tmp_path / "scans" / "a.png")
    try:
        process = batch(tmp_path / "scans", "-o", tmp_path / "out", *options, timeout=SECONDS_TO_REFUSE, **kwargs)
    except subprocess.TimeoutExpired:
        pytest.fail(f"colorize-batch {' '.join(map(str, options))} still ran after {SECONDS_TO_REFUSE} s")
    assert process.returncode == 2, process.stderr[-3000:]
    assert process.stderr.strip().count("\n") == 0 and "Traceback" not in process.stderr, process.stderr[-3000:]
    assert not (tmp_path / "out").exists()
    return process.stderr.strip()


def test_a_fifo_as_the_hints_file_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "hints.json")
    line = refused(tmp_path, "--hints", tmp_path / "hints.json")
    assert line.endswith("hints.json: not a regular file but a FIFO")


def test_dev_zero_as_the_hints_file_is_refused_without_reading_it(tmp_path):
    def at_most_3_gb():  # the old code read until a MemoryError: here it fails fast instead
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    line = refused(tmp_path, "--hints", "/dev/zero", preexec_fn=at_most_3_gb)
    assert line.endswith("--hints /dev/zero: not a regular file but a character device")


def test_an_integer_of_5000_digits_is_one_line_as_the_http_api_words_it(tmp_path):
    path = tmp_path / "hints.json"
    path.write_text('{"a.png": [{"x": ' + "7" * 5000 + ', "y": 1, "a": 10, "b": 20}]}')
    line = refused(tmp_path, "--hints", path)
    # serve's hint fields answer the same text with 400 "not JSON (" and the same first line
    assert "hints.json: not JSON (Exceeds the limit (4300 digits) for integer string conversion" in line


def test_numbers_no_float_holds_are_refused_as_the_http_api_refuses_them(tmp_path):
    path = tmp_path / "hints.json"
    for number in ("9" * 400, "1e400", "NaN", "-Infinity"):
        path.write_text('{"a.png": [{"x": 1, "y": ' + number + ', "a": 10, "b": 20}]}')
        with pytest.raises(HintError, match=r"'a.png'\[0\]: y must be a finite number, got "):
            read_hints_file(path)


def test_a_hints_file_over_the_limit_is_refused_naming_it(tmp_path):
    from retint.batch.hints import MAX_HINTS_FILE_BYTES  # here: the code before issue 41 has none

    path = tmp_path / "hints.json"
    with open(path, "wb") as sparse:
        sparse.truncate(MAX_HINTS_FILE_BYTES + 1)
    with pytest.raises(HintError, match="larger than 64 MB, the most a hints file may be"):
        read_hints_file(path)
    path.write_text('{"a.png": []}' + " " * (MAX_HINTS_FILE_BYTES - 13))  # the limit itself is fine
    assert list(read_hints_file(path).hints) == ["a.png"]


def test_a_reference_that_is_no_regular_file_says_what_it_is(tmp_path):
    os.mkfifo(tmp_path / "palette.jpg")
    for path, kind in ((tmp_path / "palette.jpg", "a FIFO"), (Path("/dev/zero"), "a character device")):
        with pytest.raises(ReferenceError) as refusal:
            read_reference(path, 10**8)
        assert str(refusal.value) == f"--reference {path}: not a regular file but {kind}"
        assert "listed" not in str(refusal.value)
