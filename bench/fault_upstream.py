#!/usr/bin/env python3
"""A misbehaving Prometheus for `make soak` (bench/soak.py): one process,
the behaviour chosen by the first path segment, so that one mcp-prometheus
can name each as its own upstream (`url = "http://127.0.0.1:P/<mode>"`):

  /slow/...      waits SLOW_S seconds, then answers a valid empty vector
                 (longer than the upstream timeout: the server must give up);
  /slowbody/...  200, Content-Length, then one byte every second;
  /garbage/...   200 application/json whose body is HTML, not JSON;
  /cut/...       200 with Content-Length 100000, 1,000 bytes of a valid-looking
                 answer, then the connection is closed;
  /chunkcut/...  200 chunked, a few chunks, then closed without the last chunk;
  /reset/...     reads the request and resets the connection (RST);
  /ok/...        a healthy, tiny answer (control).

`/-/ready` answers 200 in every mode (readiness is not what is tested).
Writes its port to PORT_FILE once it listens. Standard library only.

usage: fault_upstream.py PORT_FILE [SLOW_S]
"""

from __future__ import annotations

import http.server
import socket
import struct
import sys
import time

SLOW_S = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
EMPTY = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
SERIES = (b'{"metric":{"__name__":"fault_series","instance":"127.0.0.1:9090","job":"fault"},'
          b'"value":[1700000000,"1"]},')


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()

    def do_POST(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        parts = self.path.split("?", 1)[0].split("/")
        mode = parts[1] if len(parts) > 1 else ""
        rest = "/" + "/".join(parts[2:])
        try:
            self.answer(mode, rest)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def answer(self, mode: str, rest: str) -> None:
        if rest.endswith("/-/ready") or rest.endswith("/ready") or mode == "ok":
            body = b"Prometheus Server is Ready.\n" if "ready" in rest else EMPTY
            self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
            self.wfile.write(body)
            return
        if mode == "slow":
            time.sleep(SLOW_S)
            self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(EMPTY))})
            self.wfile.write(EMPTY)
        elif mode == "slowbody":
            self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(EMPTY))})
            for i in range(len(EMPTY)):
                self.wfile.write(EMPTY[i:i + 1])
                self.wfile.flush()
                time.sleep(1.0)
        elif mode == "garbage":
            body = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>\n" * 20
            self._head(200, {"Content-Type": "application/json", "Content-Length": str(len(body))})
            self.wfile.write(body)
        elif mode == "cut":
            body = b'{"status":"success","data":{"resultType":"vector","result":[' + SERIES * 20
            self._head(200, {"Content-Type": "application/json", "Content-Length": "100000"})
            self.wfile.write(body[:1000])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_WR)
        elif mode == "chunkcut":
            self._head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
            head = b'{"status":"success","data":{"resultType":"vector","result":['
            for chunk in (head, SERIES * 5, SERIES * 5):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_WR)
        elif mode == "reset":
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            body = b"404 page not found\n"
            self._head(404, {"Content-Type": "text/plain", "Content-Length": str(len(body))})
            self.wfile.write(body)


def main() -> None:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(sys.argv[1], "w") as f:
        f.write(str(srv.server_address[1]))
    srv.serve_forever()


if __name__ == "__main__":
    main()
