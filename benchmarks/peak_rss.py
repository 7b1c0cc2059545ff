"""Run a retint command and record its own peak RSS: `python -m retint.benchmarks.peak_rss OUT.json -- ARGS`.

The figure is the process's own high-water mark, taken at exit, so it is not
mixed up with any other child of the caller: VmHWM of /proc/self/status
where Linux has it. Not getrusage's ru_maxrss: Linux carries that over exec
from the process that forked this one, so a child of a large process (a
test run, a benchmark with its engines open) reported its parent's size.
"""

from __future__ import annotations

import atexit
import json
import resource
import sys
from pathlib import Path


def peak_rss_kb() -> float:
    """This process's own peak resident memory, in KiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _record(path: str) -> None:
    with open(path, "w") as stream:
        json.dump({"peak_rss_mb": peak_rss_kb() / 1024}, stream)


if __name__ == "__main__":
    target, separator, *arguments = sys.argv[1:]
    assert separator == "--", "usage: python -m retint.benchmarks.peak_rss OUT.json -- colorize-batch ARGS"
    atexit.register(_record, target)
    from retint.batch.cli import main

    sys.argv = ["colorize-batch", *arguments]
    main()
