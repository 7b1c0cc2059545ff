"""Load on a running colorize-serve: many clients posting one image, on loopback.

`ServerProcess` starts the real `colorize-serve` in a subprocess (port 0,
its log in a file) and reads its peak RSS from /proc; `post_image` is one
multipart request over http.client; `run_load` has `clients` threads send
`requests` uploads between them and reports every status, requests/s and
latency percentiles (each request may carry its own fields: `random_hints`
makes N seeded hints for a colour-model-v2 engine). colorize-bench serve and
the load tests use them.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import numpy as np

LISTENING = re.compile(r"listening on (http://\S+?)/? ;")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json_error(self) -> str:
        """The message of the answer's JSON error body."""
        return json.loads(self.body)["error"]


def multipart(field_name: str, filename: str, data: bytes, content_type: str = "application/octet-stream",
              fields: dict[str, str] | None = None) -> tuple[bytes, str]:
    """(body, Content-Type) of a multipart/form-data upload with one file field and, before it, the
    text `fields` (e.g. {"hints": "[...]"})."""
    boundary = uuid.uuid4().hex
    texts = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n".encode()
                     for name, value in (fields or {}).items())
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return texts + head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None,
            timeout: float = 120.0) -> Answer:
    """One HTTP request to `url` on a fresh connection: the answer, its header names lower-cased,
    and how long it took."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    started = time.perf_counter()
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path or "/", body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data,
                      time.perf_counter() - started)
    finally:
        connection.close()


def post_image(base_url: str, data: bytes, filename: str = "photo.jpg", query: str = "",
               timeout: float = 120.0, fields: dict[str, str] | None = None, route: str = "/colorize") -> Answer:
    """POST `data` in the multipart field `file` (and the text `fields`) to the server's `route`
    (`query`: e.g. "?format=png")."""
    body, content_type = multipart("file", filename, data, fields=fields)
    return request(f"{base_url}{route}{query}", "POST", body, {"Content-Type": content_type}, timeout)


@dataclass
class LoadReport:
    requests: int
    clients: int
    seconds: float
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # of the 200 answers
    errors: list[str] = field(default_factory=list)  # transport errors: a request that got no answer

    @property
    def answered(self) -> int:
        """Requests that got an HTTP answer, whatever its status."""
        return sum(self.statuses.values())

    def as_dict(self) -> dict:
        """The report's figures: statuses, requests per second, and the median and 95th-percentile
        latencies of the 200 answers."""
        ok = np.array(self.latencies_ms) if self.latencies_ms else np.array([np.nan])
        return {"requests": self.requests, "clients": self.clients, "answered": self.answered,
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())}, "errors": self.errors[:5],
                "seconds": self.seconds, "requests_per_second": self.answered / self.seconds,
                "ok_per_second": self.statuses.get(200, 0) / self.seconds,
                "p50_ms": float(np.percentile(ok, 50)), "p95_ms": float(np.percentile(ok, 95))}


def random_hints(count: int, width: int, height: int, seed: int) -> dict[str, str]:
    """The `hints` field of `count` seeded random hints inside a width x height image: points
    anywhere, chroma within 60 CIELAB units of grey (where photos' colours are)."""
    rng = np.random.default_rng(seed)
    hints = [{"x": round(float(rng.uniform(0, width - 1)), 2), "y": round(float(rng.uniform(0, height - 1)), 2),
              "a": round(float(rng.uniform(-60, 60)), 2), "b": round(float(rng.uniform(-60, 60)), 2)}
             for _ in range(count)]
    return {"hints": json.dumps(hints)}


def run_load(base_url: str, data: bytes, requests: int = 200, clients: int = 8, filename: str = "photo.jpg",
             fields: Callable[[int], dict[str, str]] | None = None) -> LoadReport:
    """`clients` threads send `requests` uploads between them; every answer (or transport error) is kept.
    `fields(i)` gives request i's text fields (e.g. its hints), made before the clock of that request starts."""
    report = LoadReport(requests=requests, clients=clients, seconds=0.0)
    lock = threading.Lock()
    remaining = iter(range(requests))

    def client() -> None:
        while True:
            with lock:
                number = next(remaining, None)
            if number is None:
                return
            try:
                answer = post_image(base_url, data, filename, fields=fields(number) if fields else None)
            except OSError as error:
                with lock:
                    report.errors.append(f"{type(error).__name__}: {error}")
                continue
            with lock:
                report.statuses[answer.status] += 1
                if answer.status == 200:
                    report.latencies_ms.append(answer.seconds * 1000)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.seconds = time.perf_counter() - started
    return report


class ServerProcess:
    """`colorize-serve --port 0 ARGS...` in a subprocess; its stderr goes to `log_path`."""

    def __init__(self, log_path: Path, *args: str, start_timeout: float = 120.0):
        self.log_path = log_path
        self.log_file = open(log_path, "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "retint.serve.cli", "--port", "0", *args],
                                        stdout=self.log_file, stderr=subprocess.STDOUT)
        self.url = self._wait_for_url(start_timeout)

    def _wait_for_url(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log())
            if match:
                return match.group(1)
            if self.process.poll() is not None:
                raise RuntimeError(f"colorize-serve exited with {self.process.returncode}: {self.log()}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"colorize-serve did not start in {timeout:.0f} s: {self.log()}")

    def log(self) -> str:
        """The server's log so far."""
        return self.log_path.read_text(errors="replace")

    def peak_rss_mb(self) -> float:
        """The server's high-water resident memory so far (VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc (not Linux?)")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, as a service manager stops it; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return self.process.returncode

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
