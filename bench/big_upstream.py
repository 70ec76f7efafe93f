#!/usr/bin/env python3
"""A fake Prometheus whose instant-query answer is as large as asked and is
generated on the fly (chunked transfer encoding, nothing held in memory).

`query=big_mb_<N>` answers a vector of about N MiB (series of ~1 KiB each);
`/-/ready` and `/api/v1/status/buildinfo` answer like a healthy Prometheus;
`/stats` tells how many bytes the query answers wrote and how many the
client hung up on. It writes its port to PORT_FILE once it listens.

usage: big_upstream.py PORT_FILE
"""

from __future__ import annotations

import http.server
import json
import sys
import threading
import urllib.parse
from pathlib import Path

# The streaming itself is shared with the tests' fake big upstream.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from bigvector import send_vector, series_template  # noqa: E402

SERIES_BYTES = 1024
CHUNK_SERIES = 1000

stats = {"sent_bytes": 0, "completed": 0, "aborted": 0, "last_sent_bytes": 0}
lock = threading.Lock()

TEMPLATE = series_template(SERIES_BYTES, CHUNK_SERIES)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _reply(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        u = urllib.parse.urlsplit(self.path)
        params = urllib.parse.parse_qs(u.query)
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            params.update(urllib.parse.parse_qs(self.rfile.read(n).decode()))
        if u.path.endswith("/-/ready") or u.path.endswith("/ready"):
            return self._reply(200, b"Prometheus Server is Ready.\n", "text/plain")
        if u.path == "/stats":
            with lock:
                return self._reply(200, json.dumps(stats).encode())
        if u.path.endswith("/api/v1/status/buildinfo"):
            return self._reply(200, b'{"status":"success","data":{"version":"2.99.0","revision":"big",'
                                    b'"branch":"","buildUser":"","buildDate":"","goVersion":"go"}}')
        if not u.path.endswith("/api/v1/query"):
            return self._reply(404, b"404 page not found\n", "text/plain")
        q = (params.get("query") or [""])[0]
        try:
            total = int(q.removeprefix("big_mb_")) << 20
        except ValueError:
            return self._reply(200, b'{"status":"success","data":{"resultType":"vector","result":[]}}')
        written, completed = send_vector(self, TEMPLATE, total)
        with lock:
            stats["completed" if completed else "aborted"] += 1
            stats["sent_bytes"] += written
            stats["last_sent_bytes"] = written


def main() -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(sys.argv[1], "w") as f:
        f.write(str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    main()
