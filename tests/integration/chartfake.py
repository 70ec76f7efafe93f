"""A fake upstream for the chart tests: /api/v1/query_range answers a matrix
crafted from the query text, on the request's own start/end/step, so a test
knows every sample the chart drew. Every request is recorded.

Queries:
  step_function  0 before the window's middle, 10 from it on (one series)
  hostile        NaN, ±Inf, a string that is no number, timestamps out of
                 order and outside the window, a flat series, a huge value
  many_series    3000 series of the same shape
  anything else  an empty matrix
"""

from __future__ import annotations

import http.server
import json
import urllib.parse
from typing import Any

from fakes import FakeUpstream
from httputil import reply

MANY = 3000


def step_values(start: float, end: float, step: float) -> list[list[Any]]:
    middle = (start + end) / 2
    n = int((end - start) // step) + 1
    return [[start + i * step, "0" if start + i * step < middle else "10"] for i in range(n)]


def matrix(query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    if query == "step_function":
        return [{"metric": {"__name__": "step_function", "job": "chart"}, "values": step_values(start, end, step)}]
    if query == "hostile":
        mid = (start + end) / 2
        return [
            {"metric": {"case": "gaps", "job": "chart"},
             "values": [[end, "3"], [start, "1"], [mid, "NaN"], [mid + step, "+Inf"], [mid + 2 * step, "-Inf"],
                        [mid + 3 * step, "not a number"], [start + step, "2"], [end + 86400, "99"], ["x", "1"]]},
            {"metric": {"case": "flat", "job": "chart"}, "values": [[start, "5"], [end, "5"]]},
            {"metric": {"case": "huge\nlabel " + "x" * 500, "job": "chart"},
             "values": [[start, "1.7e308"], [end, "-1.7e308"]]},
        ]
    if query == "many_series":
        values = step_values(start, end, step)
        return [{"metric": {"__name__": "many_series", "i": str(i)}, "values": values} for i in range(MANY)]
    return []


def fake_chart_upstream() -> FakeUpstream:
    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        route = urllib.parse.urlsplit(h.path).path
        if route.endswith("/-/ready"):
            reply(h, 200, b"Prometheus Server is Ready.\n", "text/plain")
            return
        if not route.endswith("/api/v1/query_range"):
            reply(h, 200, b'{"status":"success","data":[]}', "application/json")
            return
        # the handler runs after the fake recorded this request (calls are one at a time)
        p = range_requests(outer)[-1]
        result = matrix(p.get("query", ""), float(p["start"]), float(p["end"]), float(p["step"]))
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}})
        reply(h, 200, body.encode(), "application/json")

    outer = FakeUpstream("chart", handler)
    return outer


def range_requests(fake: FakeUpstream) -> list[dict[str, str]]:
    """The parameters of every /api/v1/query_range request the fake got."""
    return [{k: v[0] for k, v in r.params.items()} for r in fake.requests if r.route.endswith("/query_range")]
