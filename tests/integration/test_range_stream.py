"""Range summaries read while the upstream answer arrives (issue 15): the
truncate layer hands the kept series over as they settle and the summary
reads them one by one. These tests drive it with upstream answers of every
shape a Prometheus-compatible server may send, big ones, broken ones and
hostile ones, and check the answer and what the upstream saw. The real
Prometheus side is in test_summaries.py and the 10k-series bench case."""

from __future__ import annotations

import http.server
import json
import math
from typing import Any

import pytest

from fakes import FakeUpstream
from httputil import reply
from rawmcp import raw_call, raw_tool_result
from serverconfig import ServerConfig, Upstream

pytestmark = pytest.mark.anyio

T0 = 1_767_366_000
HEAD = '{"status":"success","data":{"resultType":"matrix","result":['


def canonical(i: int, points: int) -> str:
    """A series as Prometheus writes it; values i, i+1, ... as strings."""
    values = ",".join(f'[{T0 + 15 * k},"{i + k}"]' for k in range(points))
    return f'{{"metric":{{"__name__":"m","i":"{i:05d}"}},"values":[{values}]}}'


def matrix(series: list[str], tail: str = "") -> bytes:
    return (HEAD + ",".join(series) + "]}" + tail + "}").encode()


# Each scenario: the whole body the fake sends (or a callable writing it).
BIG = matrix([canonical(i, 120) for i in range(3000)],
             ',"warnings":["PromQL info: a warning that arrives after the series"],"infos":["an info"]')
ODD = matrix([
    '{"metric":{"a":"quote \\" and \\\\ and \\u00e9","b":"x"},"values":[[1767366000,"1"],[1767366015,"3"]]}',
    '{ "metric": {"c": "spaced"}, "values": [ [1767366000, "2"], [1767366015.5, "NaN"] ] }',
    '{"values":[[1767366000,"5"]],"metric":{"d":"reordered"}}',
    '{"metric":{"e":"histogram"},"histograms":[[1767366000,{"count":"3","sum":"1"}]]}',
    '{"metric":{"f":"bare numbers"},"values":[[1767366000,7],[1767366015,9.5]]}',
    canonical(6, 3),
])
BAD_SERIES = matrix([canonical(i, 120) for i in range(800)] + ['{"metric":{},"values":[[1767366000,"x"]]}'])


def _handler(fake_ref: list[FakeUpstream]) -> Any:
    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        [fake] = fake_ref
        query = fake.requests[-1].params.get("query", [""])[0]
        if h.path.endswith("/-/ready"):
            reply(h, 200, b"ready\n", "text/plain")
        elif query == "big":
            reply(h, 200, BIG, "application/json")
        elif query == "odd":
            reply(h, 200, ODD, "application/json")
        elif query == "bad_series":
            reply(h, 200, BAD_SERIES, "application/json")
        elif query == "broken":
            # promises the whole BIG answer, sends a third, hangs up
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(BIG)))
            h.end_headers()
            h.wfile.write(BIG[: len(BIG) // 3])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)
        elif query == "error":
            reply(h, 422, b'{"status":"error","errorType":"execution","error":"query timed out in expression evaluation"}',
                  "application/json")
        elif query == "reordered":
            body = '{"data":{"resultType":"matrix","result":[' + canonical(7, 4) + ']},"status":"success"}'
            reply(h, 200, body.encode(), "application/json")
        elif query == "scalar":
            reply(h, 200, b'{"status":"success","data":{"resultType":"scalar","result":[1767366000,"4"]}}',
                  "application/json")
        else:
            reply(h, 404, b"404 page not found\n", "text/plain")

    return handler


@pytest.fixture(scope="module")
def matrix_upstream() -> Any:
    ref: list[FakeUpstream] = []
    fake = FakeUpstream("matrix", _handler(ref))
    ref.append(fake)
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def server(pool: Any, matrix_upstream: FakeUpstream) -> Any:
    layers = {"truncate": {"enabled": True, "max_bytes": 50_000, "max_series": 500,
                           "hard_ceiling_bytes": 20_000_000, "max_scan_bytes": 64_000_000}}
    return pool.get("range-stream", lambda: ServerConfig([Upstream("m", matrix_upstream.url, "10s")], layers=layers,
                                                         tables={"tools": {"max_limit": 5000}}))


def call(server: Any, fake: FakeUpstream, query: str, **args: Any) -> tuple[dict[str, Any], int]:
    """The tool result and how many requests the upstream got for it."""
    before = len(fake.requests)
    r = raw_call(server.mcp_url, "execute_range_query",
                 {"query": query, "start": T0, "end": T0 + 1800, "step": "15s", **args})
    assert r.status == 200, (r.status, r.body[:300])
    return raw_tool_result(r), len(fake.requests) - before


def test_a_big_answer_is_summarized_whole_with_its_notes(server: Any, matrix_upstream: FakeUpstream) -> None:
    """3,000 series x 120 points (about 7 MB): every series summarized (a
    series bound, not the 50 kB byte budget: a summary is small whatever
    the samples weigh), and the warnings after the series arrive."""
    result, sent = call(server, matrix_upstream, "big", limit=5000)
    assert sent == 1 and not result.get("isError"), result
    sc = result["structuredContent"]
    series = sc["data"]["series"]
    assert len(series) == 3000 and sc["returned"] == sc["total"] == 3000, {k: sc[k] for k in ("returned", "total")}
    assert sc.get("truncated") is False, sc.get("truncated")
    one = next(s for s in series if s["labels"]["i"] == "00042")
    assert (one["points"], one["min"], one["max"], one["last"]) == (120, 42, 161, 161), one
    assert math.isclose(one["mean"], 42 + 59.5) and one["delta"] == 119, one
    assert math.isclose(one["trend_per_hour"], 3600 / 15), one
    assert "a warning that arrives after the series" in json.dumps(sc), sc.get("warnings")
    assert "an info" in json.dumps(sc)


def test_a_limit_keeps_that_many_and_counts_the_rest(server: Any, matrix_upstream: FakeUpstream) -> None:
    result, sent = call(server, matrix_upstream, "big", limit=10)
    assert sent == 1 and not result.get("isError"), result
    sc = result["structuredContent"]
    assert [s["labels"]["i"] for s in sc["data"]["series"]] == [f"{i:05d}" for i in range(10)]
    assert sc["returned"] == 10 and sc["total"] == 3000 and sc["truncated"], {k: sc.get(k) for k in sc if k != "data"}
    assert "10 of 3000" in result["content"][0]["text"] or "3000 series" in result["content"][0]["text"], \
        result["content"][0]["text"][:300]


def test_every_series_shape_is_read_as_serde_reads_it(server: Any, matrix_upstream: FakeUpstream) -> None:
    """Escaped labels, spaces, reordered members, native histograms, bare
    numbers: read by the general reader, with the same statistics."""
    result, _ = call(server, matrix_upstream, "odd")
    assert not result.get("isError"), result
    by = {json.dumps(s["labels"], sort_keys=True): s for s in result["structuredContent"]["data"]["series"]}
    escaped = by[json.dumps({"a": 'quote " and \\ and é', "b": "x"}, sort_keys=True)]
    assert (escaped["points"], escaped["min"], escaped["max"]) == (2, 1, 3), escaped
    spaced = by[json.dumps({"c": "spaced"})]
    assert (spaced["points"], spaced["nan"], spaced["last"]) == (2, 1, 2), spaced
    assert by[json.dumps({"d": "reordered"})]["last"] == 5
    assert by[json.dumps({"e": "histogram"})]["histograms"] == 1
    assert by[json.dumps({"f": "bare numbers"})]["max"] == 9.5
    assert by[json.dumps({"__name__": "m", "i": "00006"}, sort_keys=True)]["points"] == 3
    assert len(by) == 6


def test_a_bad_series_after_many_good_ones_is_an_error_naming_it(server: Any, matrix_upstream: FakeUpstream) -> None:
    result, sent = call(server, matrix_upstream, "bad_series", limit=5000)
    assert sent == 1 and result.get("isError"), result
    text = result["content"][0]["text"]
    assert "a series of the result list" in text and "invalid value" in text, text


def test_an_answer_broken_off_mid_series_is_an_error_and_the_server_goes_on(
        server: Any, matrix_upstream: FakeUpstream) -> None:
    result, sent = call(server, matrix_upstream, "broken", limit=5000)
    assert sent == 1 and result.get("isError"), result
    text = result["content"][0]["text"]
    assert "broke off" in text or "ended" in text, text
    again, _ = call(server, matrix_upstream, "odd")
    assert not again.get("isError"), again


def test_errors_and_other_shapes_are_read_whole(server: Any, matrix_upstream: FakeUpstream) -> None:
    result, sent = call(server, matrix_upstream, "error")
    assert sent == 1 and result.get("isError"), result
    assert "query timed out in expression evaluation" in result["content"][0]["text"], result
    # an envelope in another order is read whole, as before
    result, _ = call(server, matrix_upstream, "reordered")
    assert not result.get("isError"), result
    [series] = result["structuredContent"]["data"]["series"]
    assert (series["labels"]["i"], series["points"], series["last"]) == ("00007", 4, 10), series
    # a range answer that is no matrix is refused, naming what was expected
    result, _ = call(server, matrix_upstream, "scalar")
    assert result.get("isError") and "expected struct RangeSeries" in result["content"][0]["text"], result
