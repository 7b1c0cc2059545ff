"""Slow and stalled clients against a real colorize-serve on 127.0.0.1, over real sockets: a request
must arrive within --upload-timeout, is admitted to the colouring queue only once its body is in,
and at most --max-uploads bodies arrive at once."""

from __future__ import annotations

import json
import socket
import time

import pytest

from retint.benchmarks.serve_load import ServerProcess, multipart, post_image, request
from imagemaker import grey_photo
from servers import encoded

pytest.importorskip("fastapi")

UPLOAD_TIMEOUT = 3.0
DECLARED = 100_000  # the Content-Length a stalled upload announces; it sends 100 bytes of it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Default streams and queue (2 + 8 places: fewer than the stalled clients), a short deadline."""
    log = tmp_path_factory.mktemp("arrival") / "serve.log"
    with ServerProcess(log, "--upload-timeout", str(UPLOAD_TIMEOUT)) as running:
        yield running


def address(server: ServerProcess) -> tuple[str, int]:
    host, port = server.url.split("//")[1].split(":")
    return host, int(port)


def stalled_upload(server: ServerProcess) -> socket.socket:
    """A POST /colorize that sends its head and the first 100 bytes of its multipart body, then nothing."""
    body, content_type = multipart("file", "photo.jpg", bytes(DECLARED))
    head = (f"POST /colorize HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {DECLARED}\r\n\r\n").encode()
    connection = socket.create_connection(address(server))
    connection.sendall(head + body[:100])
    return connection


def read_until_closed(connection: socket.socket, timeout: float) -> bytes:
    """All the server sends until it closes the connection (socket.timeout if it does not in time)."""
    connection.settimeout(timeout)
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    return data


def has_nothing_to_read(connection: socket.socket) -> bool:
    connection.setblocking(False)
    try:
        connection.recv(1)
    except BlockingIOError:
        return True
    finally:
        connection.setblocking(True)
    return False


def wait_for_log(server: ServerProcess, words: str, count: int = 1, timeout: float = 10.0) -> list[str]:
    """The log's lines holding `words`, once there are `count` of them (the line is written after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in server.log().splitlines() if words in line]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_twenty_stalled_uploads_leave_the_server_free_then_get_408_and_are_closed(server):
    stalled = [stalled_upload(server) for _ in range(20)]
    try:
        time.sleep(0.3)  # every stalled request is in the server
        answer = post_image(server.url, encoded(grey_photo(64, 80)), "photo.jpg", timeout=30)
        assert answer.status == 200, answer.body[:200]
        health = json.loads(request(server.url + "/healthz").body)
        # The stalled requests hold arrival places, not colouring ones, and are not answered yet.
        assert (health["arriving"], health["in_flight"]) == (20, 0)
        assert all(has_nothing_to_read(connection) for connection in stalled)

        started = time.monotonic()
        answers = [read_until_closed(connection, UPLOAD_TIMEOUT + 10) for connection in stalled]
        assert time.monotonic() - started < UPLOAD_TIMEOUT + 5
    finally:
        for connection in stalled:
            connection.close()
    for data in answers:
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ") and b"connection: close" in head.lower()
        assert json.loads(body)["error"] == "the upload took longer than the server's limit of 3 s"
    lines = wait_for_log(server, " POST /colorize 408 ", count=20)
    assert len(lines) == 20
    assert all(line.endswith(f" - px: 100 of {DECLARED} bytes in 3 s") for line in lines)
    assert json.loads(request(server.url + "/healthz").body)["arriving"] == 0


def test_a_client_that_disconnects_mid_upload_logs_one_line(server):
    before = len(server.log().splitlines())
    stalled_upload(server).close()
    lines = wait_for_log(server, " POST /colorize 499 ")
    assert lines and lines[-1].endswith(f" - px: the client closed the connection after 100 of {DECLARED} bytes")
    time.sleep(0.3)  # a traceback would follow the line at once
    new = [line for line in server.log().splitlines()[before:] if " GET /healthz " not in line]
    assert new == [lines[-1]]
    assert json.loads(request(server.url + "/healthz").body)["arriving"] == 0


def test_a_connection_that_stalls_in_its_head_is_closed_without_an_answer(server):
    connection = socket.create_connection(address(server))
    try:
        connection.sendall(b"POST /colorize HTTP/1.1\r\nHost: test\r\n")
        started = time.monotonic()
        assert read_until_closed(connection, UPLOAD_TIMEOUT + 10) == b""
        assert UPLOAD_TIMEOUT - 1 < time.monotonic() - started < UPLOAD_TIMEOUT + 5
    finally:
        connection.close()
    assert request(server.url + "/healthz").status == 200


def test_an_upload_that_trickles_in_within_the_deadline_is_coloured(server):
    body, content_type = multipart("file", "photo.jpg", encoded(grey_photo(64, 80)))
    pieces = [body[i:i + len(body) // 5 + 1] for i in range(0, len(body), len(body) // 5 + 1)]
    connection = socket.create_connection(address(server))
    try:
        connection.sendall(f"POST /colorize HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
                           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode())
        for piece in pieces:  # about 1.5 s in all, half the deadline
            time.sleep(UPLOAD_TIMEOUT / 2 / len(pieces))
            connection.sendall(piece)
        answer = read_until_closed(connection, 30)
    finally:
        connection.close()
    assert answer.startswith(b"HTTP/1.1 200 ")


def test_uploads_beyond_max_uploads_get_503_before_their_body_is_read(tmp_path):
    with ServerProcess(tmp_path / "serve.log", "--max-uploads", "2", "--upload-timeout", "30") as running:
        stalled = [stalled_upload(running) for _ in range(2)]
        try:
            time.sleep(0.3)
            busy = post_image(running.url, encoded(grey_photo(64, 80)), "photo.jpg", timeout=30)
            assert busy.status == 503 and busy.headers["retry-after"] == "1"
            assert busy.json_error() == "busy: 2 uploads arriving; retry shortly"
        finally:
            for connection in stalled:
                connection.close()
        wait_for_log(running, " POST /colorize 499 ", count=2)
        assert post_image(running.url, encoded(grey_photo(64, 80)), "photo.jpg", timeout=30).status == 200
    assert running.process.returncode == 0
