"""Run a retint command and record its own peak RSS: `python -m retint.benchmarks.peak_rss OUT.json -- ARGS`.

The figure is the process's own high-water mark (getrusage RUSAGE_SELF), taken
at exit, so it is not mixed up with any other child of the caller.
"""

from __future__ import annotations

import atexit
import json
import resource
import sys


def _record(path: str) -> None:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(path, "w") as stream:
        json.dump({"peak_rss_mb": peak_kb / 1024}, stream)


if __name__ == "__main__":
    target, separator, *arguments = sys.argv[1:]
    assert separator == "--", "usage: python -m retint.benchmarks.peak_rss OUT.json -- colorize-batch ARGS"
    atexit.register(_record, target)
    from retint.batch.cli import main

    sys.argv = ["colorize-batch", *arguments]
    main()
