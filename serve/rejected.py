"""`Rejected`: a request the server answers with an HTTP status and one line of JSON; and the
words of the upload limit, which more than one field is held to."""

from __future__ import annotations


class Rejected(Exception):
    """A request the server answers with `status` and a JSON body {"error": message}."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def over_upload_limit(max_upload_bytes: int) -> str:
    """How a file over --max-upload-mb is refused (413: the photo, or a reference photo after "reference: ")."""
    return f"upload over the server's limit of {max_upload_bytes // (1024 * 1024)} MB"
