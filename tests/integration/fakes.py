"""In-process fake upstreams (threaded http.server on 127.0.0.1): one that
answers HTTP 500, one that answers garbage, a slow one, and a recorder that
answers like a healthy, empty Prometheus. Every FakeUpstream records the
requests it gets.
"""

from __future__ import annotations

import http.server
import json
import time
import urllib.parse
from typing import Callable

from httputil import LocalServer, QuietHandler, RecordedRequest, reply

SLOW_SECONDS = 3.0


class FakeUpstream(LocalServer):
    """A tiny threaded HTTP server answering every request with `handler`; it
    records the requests it gets."""

    def __init__(self, name: str, handler: Callable[[http.server.BaseHTTPRequestHandler], None]):
        self.name = name
        self.requests: list[RecordedRequest] = []
        outer = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                outer.requests.append(self.recorded(RecordedRequest))
                try:
                    handler(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = _handle
            do_POST = _handle

        super().__init__(Handler, f"fake-{name}")


def fake_http500() -> FakeUpstream:
    return FakeUpstream("http500", lambda h: reply(h, 500, b"boom: internal server error\n", "text/plain"))


def fake_garbage() -> FakeUpstream:
    body = b"<html><body>this is definitely not JSON {{{</body></html>"
    return FakeUpstream("garbage", lambda h: reply(h, 200, body, "application/json"))


def fake_prometheus() -> FakeUpstream:
    """Answers like a healthy, empty Prometheus (for checking what is sent)."""

    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        route = urllib.parse.urlsplit(h.path).path
        if route.endswith("/-/ready"):
            reply(h, 200, b"Prometheus Server is Ready.\n", "text/plain")
        elif route.endswith("/api/v1/query"):
            reply(h, 200, b'{"status":"success","data":{"resultType":"vector","result":[]}}', "application/json")
        elif route.endswith("/api/v1/status/buildinfo"):
            reply(h, 200, b'{"status":"success","data":{"version":"2.99.0","revision":"fake","branch":"",'
                          b'"buildUser":"","buildDate":"","goVersion":"go"}}', "application/json")
        else:
            reply(h, 404, b"404 page not found\n", "text/plain")

    return FakeUpstream("recorder", handler)


def fake_slow(seconds: float = SLOW_SECONDS) -> FakeUpstream:
    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        reply(h, 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode(),
              "application/json")

    return FakeUpstream("slow", handler)
