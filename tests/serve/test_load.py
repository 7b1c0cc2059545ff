"""Load on loopback: 200 requests from 8 concurrent clients; none lost, 200 or 503 only, memory flat."""

from __future__ import annotations

import pytest

from retint.benchmarks.serve_load import ServerProcess, run_load
from imagemaker import grey_photo
from servers import encoded

pytest.importorskip("fastapi")

# The high-water mark may rise a little as allocator arenas settle; growth with the request count
# (uploads or images held while queued) would be tens of MB per waiting request.
FLAT_RSS_MB = 40


def test_200_requests_from_8_clients_none_lost_and_memory_flat(tmp_path):
    photo = encoded(grey_photo(768, 1024), quality=90)
    with ServerProcess(tmp_path / "serve.log") as server:
        warm = run_load(server.url, photo, requests=40, clients=8)
        assert not warm.errors
        settled_mb = server.peak_rss_mb()
        report = run_load(server.url, photo, requests=200, clients=8)
        peak_mb = server.peak_rss_mb()
    figures = report.as_dict()
    print(f"load: {figures['requests_per_second']:.1f} req/s, p50 {figures['p50_ms']:.0f} ms, "
          f"p95 {figures['p95_ms']:.0f} ms, statuses {figures['statuses']}, peak RSS {settled_mb:.0f} -> "
          f"{peak_mb:.0f} MB")
    assert report.errors == []
    assert report.answered == 200
    assert set(report.statuses) <= {200, 503}
    assert report.statuses[200] > 0
    assert peak_mb - settled_mb < FLAT_RSS_MB
    assert server.process.returncode == 0
