"""Client ID metadata documents: `DocServer`, a local HTTP server of them
(good, redirecting, oversized, slow, not JSON, ...), routed by path, with
its fetches counted."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.parse
from typing import Any, Callable

from constants import CLIENT_REDIRECT
from fakes import FakeUpstream
from httputil import reply

class DocServer:
    """A tiny HTTP server of client ID metadata documents; routes by path,
    counts fetches (`hits(path)`)."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]] = {}
        self.lock = threading.Lock()

        def handler(h: http.server.BaseHTTPRequestHandler) -> None:
            route = urllib.parse.urlsplit(h.path).path
            fn = self.routes.get(route)
            if fn is None:
                reply(h, 404, b"not found\n", "text/plain")
            else:
                fn(h)

        self.fake = FakeUpstream("cimd-docs", handler)

    @property
    def base(self) -> str:
        return self.fake.url

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for r in list(self.fake.requests) if r.route == path)

    def raw(self, path: str, body: bytes, ctype: str = "application/json", status: int = 200) -> str:
        self.routes[path] = lambda h: reply(h, status, body, ctype)
        return self.url(path)

    def doc(self, path: str, *, redirect_uris: list[str] | None = None, client_id: str | None = None,
            name: str = "CIMD test client", pad: int = 0, **extra: Any) -> str:
        """A client ID metadata document at `path`; its client_id is its own
        URL unless given. `pad` adds that many bytes (for the size limit)."""
        url = self.url(path)
        d: dict[str, Any] = {
            "client_id": client_id or url,
            "client_name": name,
            "redirect_uris": redirect_uris or [CLIENT_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        d.update(extra)
        if pad:
            d["client_uri_padding_note"] = "x" * pad
        return self.raw(path, json.dumps(d).encode())

    def slow(self, path: str, seconds: float) -> str:
        """A document that answers only after `seconds` (past the fetch timeout)."""
        def fn(h: http.server.BaseHTTPRequestHandler) -> None:
            time.sleep(seconds)
            reply(h, 200, json.dumps({"client_id": self.url(path), "redirect_uris": [CLIENT_REDIRECT]}).encode(),
                  "application/json")

        self.routes[path] = fn
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        def fn(h: http.server.BaseHTTPRequestHandler) -> None:
            h.send_response(status)
            h.send_header("Location", to)
            h.send_header("Content-Length", "0")
            h.end_headers()

        self.routes[path] = fn
        return self.url(path)

    def close(self) -> None:
        self.fake.close()
