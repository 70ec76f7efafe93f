"""A huge instant-query answer generated on the fly: a vector of series of
about `series_bytes` each, written with chunked transfer encoding (nothing
held in memory) until `total_bytes` are out.

Standard library only and imports nothing of ours: the fake big upstream of
the tests (big_upstream.py) and the benchmark's (bench/big_upstream.py)
both stream with it.
"""

from __future__ import annotations

import http.server
import time

HEAD = b'{"status":"success","data":{"resultType":"vector","result":['
TAIL = b"]}}"


def series_template(series_bytes: int = 1024, chunk_series: int = 1000) -> str:
    """`chunk_series` samples (comma-separated) of about `series_bytes`
    each; CHUNKID stands for the chunk's number."""
    ts = int(time.time())
    pad = "x" * max(0, series_bytes - 120)
    one = ('{"metric":{"__name__":"big_metric","job":"big","chunk":"CHUNKID","n":"%05d","pad":"' + pad
           + '"},"value":[' + str(ts) + ',"1"]}')
    return ",".join(one % j for j in range(chunk_series))


def send_vector(h: http.server.BaseHTTPRequestHandler, template: str, total_bytes: int) -> tuple[int, bool]:
    """Answer 200 with chunks of `template` until `total_bytes` are written.
    Returns (bytes written, whether the answer was written to the end); when
    the client hung up, the connection is closed."""
    h.send_response(200)
    h.send_header("Content-Type", "application/json")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    written = 0

    def chunk(data: bytes) -> None:
        nonlocal written
        h.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        written += len(data)

    try:
        chunk(HEAD)
        i = 0
        while written < total_bytes:
            chunk((b"," if i else b"") + template.replace("CHUNKID", f"{i:06d}").encode())
            i += 1
        chunk(TAIL)
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
        return written, True
    except OSError:
        h.close_connection = True
        return written, False
