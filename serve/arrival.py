"""How a request arrives: its head and its body each within --upload-timeout, its body within the
upload limit, and at most --max-uploads bodies arriving at once.

A request is admitted to the colouring queue (`colouriser.Admission`) only
once its whole body is in, so a client that sends slowly or stalls holds an
arrival place, never a stream or a queue place, and only for
--upload-timeout: then it gets 408 and its connection is closed
(`UploadTimedOut`). A connection that has not sent a whole request head
within --upload-timeout of opening, or of its last answer, is closed
without one (`head_deadline_protocol`: uvicorn's h11 protocol with that
deadline added, so uvicorn's httptools protocol is not used even where it is
installed): there is no request to answer.

Memory: an arriving upload holds at most Starlette's 1 MB spool per file in
memory (the rest goes to a temporary file) and at most the form's part
limit per text field (app.py), so --max-uploads bounds what the uploads in
flight take.
"""

from __future__ import annotations

import asyncio

from starlette.types import Message, Receive
from uvicorn.protocols.http.h11_impl import H11Protocol

from retint.serve.rejected import Rejected


class UploadTooLarge(Exception):
    """The body passed its size limit while it arrived (a chunked upload declares no length)."""


class UploadTimedOut(Exception):
    """The body did not arrive within its deadline."""


class Arrival:
    """One request's ASGI `receive`, held to `limit` bytes and to a deadline `timeout` seconds from
    now; `received` counts the body's bytes so far."""

    def __init__(self, receive: Receive, limit: int, timeout: float):
        self._receive = receive
        self.limit = limit
        self.timeout = timeout
        self.received = 0
        self._deadline = asyncio.get_running_loop().time() + timeout

    async def receive(self) -> Message:
        """The next message; UploadTimedOut once the deadline has passed, UploadTooLarge once the
        body is over the limit."""
        remaining = self._deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise UploadTimedOut()
        try:
            message = await asyncio.wait_for(self._receive(), remaining)
        except asyncio.TimeoutError:
            raise UploadTimedOut() from None
        self.received += len(message.get("body", b""))
        if self.received > self.limit:
            raise UploadTooLarge()
        return message


class Arrivals:
    """At most `capacity` request bodies arriving at once; the next gets 503 with Retry-After before
    its body is read. Counted on the event loop's thread only, so a plain integer suffices."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.arriving = 0

    def enter(self) -> None:
        """Let one body arrive, or raise a 503 Rejected."""
        if self.arriving >= self.capacity:
            raise Rejected(503, f"busy: {self.arriving} uploads arriving; retry shortly", {"Retry-After": "1"})
        self.arriving += 1

    def leave(self) -> None:
        """One body is in (or given up)."""
        self.arriving -= 1


class HeadDeadline(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing a connection that sends no whole request head within
    `head_timeout` seconds of opening or of its last answer (uvicorn's keep-alive timer is
    stopped by any byte, so half a head would hold the connection open for ever)."""

    head_timeout: float = 30.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def on_response_complete(self) -> None:
        self._await_head()  # before uvicorn starts a pipelined request, which then counts as begun
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_overdue, self.cycle)

    def _head_overdue(self, last_request: object) -> None:
        # uvicorn makes a new cycle when a request's head is in: the same one means none came.
        if self.cycle is last_request and not self.transport.is_closing():
            self.transport.close()


def head_deadline_protocol(timeout: float) -> type[HeadDeadline]:
    """The protocol class uvicorn is given (`uvicorn.Config(http=...)`): heads within `timeout` seconds."""
    return type("HeadDeadline", (HeadDeadline,), {"head_timeout": timeout})
