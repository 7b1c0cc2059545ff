"""The one command-line boundary: every retint command's work runs inside it.

A `RetintError` becomes one line on stderr, "PROGRAM: error: ...", and its
`exit_code` (the table is in `retint.errors`); a `MissingExtra` is such an
error, naming the extra and how to install it (exit 5). Ctrl-C becomes
"PROGRAM: interrupted" and exit 130, before click would turn it into
"Aborted!" and exit 1. Anything else is a bug and keeps its traceback (exit 1).

Commands opt in by their click class:

    @click.command(cls=RetintCommand, program="colorize-train")
    @click.group(cls=RetintGroup, program="colorize-bench")   # each subcommand runs inside it
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import click

from retint.errors import Interrupted, RetintError, needs_extra

INTERRUPTED = 130


def leave_normally(code: int) -> None:
    """Exit with `code` through SystemExit, so `finally` blocks and exit handlers run as usual."""
    sys.exit(code)


@contextmanager
def command_boundary(program: str, leave: Callable[[int], None] = leave_normally,
                     interrupted_note: str = "") -> Iterator[None]:
    """Run a command's work: errors and Ctrl-C become one line and an exit code, through `leave`
    (colorize-batch's leaves at once, without waiting for reads it gave up on)."""
    try:
        yield
    except RetintError as error:
        label = "" if isinstance(error, Interrupted) else "error: "
        click.echo(f"{program}: {label}{error}", err=True)
        leave(error.exit_code)
    except KeyboardInterrupt:
        click.echo(f"{program}: interrupted{interrupted_note}", err=True)
        leave(INTERRUPTED)
    except ImportError as error:
        # Ctrl-C while a C extension initialises (ONNX Runtime's pybind module, say) reaches us as
        # "ImportError: initialization failed" caused by the KeyboardInterrupt: an interrupt, not a bug.
        if not isinstance(error.__cause__ or error.__context__, KeyboardInterrupt):
            raise
        click.echo(f"{program}: interrupted{interrupted_note}", err=True)
        leave(INTERRUPTED)


def renamed_options(args: list[str], renamed: dict[str, str], program: str,
                    taking_values: frozenset[str] = frozenset()) -> list[str]:
    """`args` with each old option spelling (`renamed`: old -> new) replaced by its new one, and a
    note on stderr for each: a renamed option keeps working, unlisted in --help, for one release.
    A word that is the value of an option in `taking_values` (`--holdout --size`) is left as it is."""
    rewritten: list[str] = []
    for index, word in enumerate(args):
        if word == "--":
            rewritten += args[index:]
            break
        name, equals, value = word.partition("=")
        is_a_value = index > 0 and args[index - 1] in taking_values
        if name in renamed and not is_a_value:
            click.echo(f"{program}: note: {name} is now {renamed[name]}; {name} will go in the next release",
                       err=True)
            word = renamed[name] + equals + value
        rewritten.append(word)
    return rewritten


class RetintCommand(click.Command):
    """A click command whose callback runs inside `command_boundary`. `program` names it in its
    lines whatever it was started as (`python -c`, a test); `leave` and `interrupted_note` go to
    the boundary; `renamed` maps an old option spelling to its new one (README lists them)."""

    def __init__(self, *args: Any, program: str, leave: Callable[[int], None] = leave_normally,
                 interrupted_note: str = "", renamed: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.program, self.leave, self.interrupted_note = program, leave, interrupted_note
        self.renamed = renamed or {}

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse `args` with each renamed option spelled its new way (and a note for each)."""
        taking_values = frozenset(name for param in self.params if isinstance(param, click.Option)
                                  and not param.is_flag and not param.count for name in param.opts)
        return super().parse_args(ctx, renamed_options(args, self.renamed, self.program, taking_values))

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command inside `command_boundary`."""
        with command_boundary(self.program, self.leave, self.interrupted_note):
            return super().invoke(ctx)


class RetintGroup(click.Group):
    """A click group whose subcommands run inside `command_boundary(program)`; a missing optional
    package they import is one line naming the extra that installs it."""

    def __init__(self, *args: Any, program: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.program = program

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand inside `command_boundary`; a missing package names its own extra."""
        with command_boundary(self.program), needs_extra(None, self.program):
            return super().invoke(ctx)
