"""Ctrl-C as a flag: the batch stops at safe points instead of wherever the signal lands."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGINT sets `stop` instead of raising KeyboardInterrupt.

    An exception raised at an arbitrary bytecode can fall between starting a
    write and recording it (a file with no manifest line); a flag is checked
    only at safe points. Outside the main thread signals cannot be handled,
    and Ctrl-C keeps its usual meaning.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
