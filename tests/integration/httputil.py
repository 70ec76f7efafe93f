"""Loopback HTTP plumbing of the integration tests (standard library only,
imports nothing of ours): free ports, GET/POST that never raise on an HTTP
error status, and small threaded HTTP servers on 127.0.0.1 (the fake
upstreams, the tenant router, the test JWT issuer, the CIMD documents).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, TypeVar

# --------------------------------------------------------------------------
# ports and URLs
# --------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (same trick; nobody binds it afterwards)."""
    return free_port()


def port_open(port: int) -> bool:
    """Something accepts TCP connections on 127.0.0.1:`port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def local_url(port: int, path: str = "") -> str:
    """http://127.0.0.1:`port``path`."""
    return f"http://127.0.0.1:{port}{path}"


# --------------------------------------------------------------------------
# client side
# --------------------------------------------------------------------------

@dataclass
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def _fetch(req: urllib.request.Request, timeout: float) -> HttpResponse:
    """The answer to `req`, HTTP error statuses included (raises on connection errors)."""
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return HttpResponse(r.status, r.read(), {k.lower(): v for k, v in r.headers.items()})
    except urllib.error.HTTPError as e:
        return HttpResponse(e.code, e.read(), {k.lower(): v for k, v in e.headers.items()})


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> HttpResponse:
    """GET without raising on HTTP error statuses (raises on connection errors)."""
    return _fetch(urllib.request.Request(url, headers=headers or {}), timeout)


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> HttpResponse:
    return _fetch(urllib.request.Request(url, data=body, headers=headers, method="POST"), timeout)


# --------------------------------------------------------------------------
# server side
# --------------------------------------------------------------------------

@dataclass
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    @property
    def route(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    @property
    def params(self) -> dict[str, list[str]]:
        """Query-string parameters, plus form parameters of a POST body."""
        out = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if self.body and "x-www-form-urlencoded" in self.headers.get("content-type", ""):
            for k, v in urllib.parse.parse_qs(self.body.decode()).items():
                out.setdefault(k, []).extend(v)
        return out


R = TypeVar("R", bound=RecordedRequest)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, no access log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def recorded(self, cls: type[R]) -> R:
        """This request (its body read) as a `cls` (a RecordedRequest)."""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return cls(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)


def reply(h: http.server.BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
          headers: dict[str, str] | None = None) -> None:
    """A whole answer with Content-Type and Content-Length (plus `headers`)."""
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(body)


def reply_unless_gone(h: http.server.BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
                      headers: dict[str, str] | None = None) -> None:
    """`reply()`, ignoring a client that hung up."""
    try:
        reply(h, status, body, ctype, headers)
    except (BrokenPipeError, ConnectionResetError):
        pass


def serve_threaded(handler: type[http.server.BaseHTTPRequestHandler], name: str,
                   ) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    """An HTTP server on a free 127.0.0.1 port, answering from daemon threads
    (the fake upstreams, the tenant router, the test issuer)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return server, thread


class LocalServer:
    """`serve_threaded(handler, name)` with its port, URL and close()."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler], name: str):
        self.server, self.thread = serve_threaded(handler, name)
        self.port: int = self.server.server_address[1]

    @property
    def url(self) -> str:
        return local_url(self.port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
