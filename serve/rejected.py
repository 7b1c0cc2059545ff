"""`Rejected`: a request the server answers with an HTTP status and one line of JSON."""

from __future__ import annotations


class Rejected(Exception):
    """A request the server answers with `status` and a JSON body {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
