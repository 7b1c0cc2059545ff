"""Progress of a job made of a few long steps (an export, a parity run).

Library code only reports: it calls a `StepProgress` with (steps done, steps
in all, the step now running) as each step begins, through `Steps`. A command
draws that as `StepBar`, a tqdm bar on stderr like the other long commands'
bars, and prints its log lines through the bar so the two do not garble.
"""

from __future__ import annotations

import sys
from typing import Callable

from tqdm import tqdm

StepProgress = Callable[[int, int, str], None]


class Steps:
    """The named steps of one job, in order; `begin` reports each as it starts."""

    def __init__(self, names: list[str], progress: StepProgress | None) -> None:
        self.names = names
        self.progress = progress

    def begin(self, name: str) -> None:
        """Report that step `name` is starting (the steps before it are done)."""
        if self.progress is not None:
            self.progress(self.names.index(name), len(self.names), name)

    def finish(self) -> None:
        """Report every step done."""
        if self.progress is not None:
            self.progress(len(self.names), len(self.names), "done")


class StepBar:
    """A `StepProgress` drawn as a tqdm bar on stderr where stderr is a terminal, else one plain
    line per step ("[2/5] fp16 graph": a log or a CI job's captured output gets no carriage
    returns); `write` prints a log line above the bar."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._plain = not sys.stderr.isatty()

    def __call__(self, done: int, total: int, step: str) -> None:
        if self._plain:
            if done < total:
                print(f"[{done + 1}/{total}] {step}", file=sys.stderr, flush=True)
            return
        if self._bar is None:
            self._bar = tqdm(total=total, unit="step", leave=False, file=sys.stderr,
                             bar_format="{desc}: {n}/{total} steps [{elapsed}]")
        self._bar.total = total
        self._bar.n = done
        self._bar.set_description_str(step)

    def write(self, line: str) -> None:
        """Print `line` on stderr above the bar without garbling it."""
        tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        """Remove the bar, if drawn; a later step draws a new one."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "StepBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
