"""retint.batch: `colorize-batch` (see cli.py), in four parts.

- The run itself, at the top: `run` (one run: lock, plan, photos, videos,
  summary), `sources` and `naming` (what to colour, where each output goes),
  `manifest` and `recording` (one line per input), `lock`, `interrupt`,
  `config`.
- Photos: `photos` (decode -> engine -> encode -> write, in threads),
  `decode`, `encode`, `tone`.
- Videos: `video/` (reader, pipeline, writer, options, and the run's video
  phase).
- Ray: `ray/` (the driver's runner and the engine actors' worker).

Started as the command (`colorize-batch` or `python -m retint.batch.cli`), Ctrl-C
must exit 130 at any moment, the imports included (issue 29): the handler is
installed here, the first retint.batch code that runs, and replaced by the
command itself once its imports are done (cli.main).
"""

import os as _os
import signal as _signal
import sys as _sys


def _interrupted_while_starting(signum, frame) -> None:
    # Nothing has been created yet: one line and 130, not a traceback from inside an import.
    _os.write(2, b"colorize-batch: interrupted\n")
    _os._exit(130)


# Not where SIGINT is ignored (a background job of a script): that choice is the caller's.
if (_sys.argv and (_sys.argv[0] == "-m" or _os.path.basename(_sys.argv[0]) == "colorize-batch")
        and _signal.getsignal(_signal.SIGINT) is not _signal.SIG_IGN):
    _signal.signal(_signal.SIGINT, _interrupted_while_starting)
