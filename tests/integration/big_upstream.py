"""A fake Prometheus whose instant-query answer is huge and generated on the
fly (chunked transfer encoding, nothing held in memory): a vector of
`series` samples of about `series_bytes` each, 300 MB by default.

Other routes answer like a small healthy Prometheus (ready, buildinfo).
`sent_bytes` counts what was actually written (the client may hang up early).
"""

from __future__ import annotations

import http.server
import threading
import time
import urllib.parse
from typing import Any

from bigvector import send_vector, series_template
from fakes import FakeUpstream
from httputil import reply


class BigUpstream:
    def __init__(self, total_bytes: int = 300 * 1024 * 1024, series_bytes: int = 1024, chunk_series: int = 1000):
        self.total_bytes = total_bytes
        self.series_bytes = series_bytes
        self.chunk_series = chunk_series
        self.sent_bytes = 0
        self.completed = 0  # answers written to the end
        self.aborted = 0  # answers the client hung up on
        self.query_seconds: list[float] = []
        self._lock = threading.Lock()
        self._template = series_template(series_bytes, chunk_series)
        self.fake = FakeUpstream("big", self._handle)

    @property
    def url(self) -> str:
        return self.fake.url

    @property
    def requests(self) -> list[Any]:
        return self.fake.requests

    def close(self) -> None:
        self.fake.close()

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        route = urllib.parse.urlsplit(h.path).path
        if route.endswith("/-/ready") or route.endswith("/ready"):
            reply(h, 200, b"Prometheus Server is Ready.\n", "text/plain")
            return
        if route.endswith("/api/v1/status/buildinfo"):
            reply(h, 200, b'{"status":"success","data":{"version":"2.99.0","revision":"big","branch":"",'
                          b'"buildUser":"","buildDate":"","goVersion":"go"}}', "application/json")
            return
        if not (route.endswith("/api/v1/query") or route.endswith("/api/v1/query_range")):
            reply(h, 404, b"404 page not found\n", "text/plain")
            return
        t0 = time.monotonic()
        written, completed = send_vector(h, self._template, self.total_bytes)
        with self._lock:
            self.sent_bytes += written
            self.query_seconds.append(time.monotonic() - t0)
            if completed:
                self.completed += 1
            else:
                self.aborted += 1
