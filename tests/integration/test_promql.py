"""PromQL checked before it runs: a query that does not parse never reaches
the upstream (asserted at a recording fake Prometheus) and the model reads
where, what and how to fix; validate_query on a table of queries; and the
hints an empty answer carries, against the real test Prometheus."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import Stack
from fakes import FakeUpstream, fake_prometheus
from mcpclient import STDIO, Target, connect
from serverconfig import ServerConfig, Upstream

pytestmark = pytest.mark.anyio

# (tool, arguments, what the error must say)
BROKEN: list[tuple[str, dict[str, Any], str]] = [
    ("execute_query", {"query": "sum(rate(x_total[5m])"}, "query: invalid PromQL at character 4"),
    ("execute_query", {"query": "up{job=\"a\""}, "query: invalid PromQL at character 3"),
    ("execute_query", {"query": "rate(up[5m]) +"}, "query: invalid PromQL"),
    ("execute_query", {"query": "sum by job (up)"}, "query: invalid PromQL"),
    ("execute_query", {"query": "up{job=~\"(\"}"}, "query: invalid PromQL"),
    ("execute_query", {"query": "   "}, "the query is empty"),
    ("execute_range_query", {"query": "rate(up[5m]"}, "query: invalid PromQL"),
    ("query_exemplars", {"query": "x_total{"}, "query: invalid PromQL"),
    ("find_series", {"matches": ["up", "rate(up[5m])"]}, "matches[1]"),
    ("list_label_names", {"matches": ["up{"]}, "matches[0]: invalid PromQL"),
    ("list_label_values", {"label": "job", "matches": ["sum(up)"]}, "not a series selector"),
    ("get_targets_metadata", {"match_target": "{job="}, "match_target: invalid PromQL"),
]


@pytest.fixture(scope="module")
def recorder() -> Iterator[FakeUpstream]:
    f = fake_prometheus()
    yield f
    f.close()


@pytest.fixture(scope="module")
def recorder_target(recorder: FakeUpstream, binary: Path, workdir: Path) -> Target:
    cfg = ServerConfig([Upstream("fake", recorder.url, "5s")]).write(workdir / "servers" / "promql-stdio.toml")
    return Target(binary, cfg, None, None, workdir / "logs" / "mcp-prometheus-promql.log")


async def test_broken_promql_never_reaches_the_upstream(recorder: FakeUpstream, recorder_target: Target) -> None:
    async with connect(recorder_target, STDIO) as c:
        recorder.requests.clear()
        for tool, args, needle in BROKEN:
            r = (await c.call(tool, args)).error()
            assert needle in r.text, f"{tool} {args}: {r.text}"
        sent = [r.route for r in recorder.requests]
        assert sent == [], f"broken PromQL reached the upstream: {sent}"
        # a good query still goes out
        (await c.call("execute_query", {"query": "up"})).ok()
        assert any(r.route.endswith("/api/v1/query") for r in recorder.requests)


VALIDATE = [
    ("rate(http_requests_total{code=~\"5..\"}[5m])", True, [], ["rate"]),
    ("sum by (job) (rate(node_cpu_seconds_total[5m]))", True, [], ["rate"]),
    ("rate(node_memory_free_bytes[5m])", True, ["does not look like one"], ["rate"]),
    ("up{job=~\".*\"}", True, ["matches (nearly) everything"], []),
    ("increase(x_total[15s])", True, ["fewer than 4 samples"], ["increase"]),
    ("max_over_time((up @ end())[1h:1m] offset 5m)", True, [], ["max_over_time"]),
    ("sum(rate(x_total[5m])", False, [], []),
]


@pytest.mark.parametrize("query,valid,warnings,functions", VALIDATE, ids=[q for q, *_ in VALIDATE])
async def test_validate_query(recorder: FakeUpstream, recorder_target: Target, query: str, valid: bool,
                              warnings: list[str], functions: list[str]) -> None:
    async with connect(recorder_target, STDIO) as c:
        recorder.requests.clear()
        r = (await c.call("validate_query", {"query": query})).ok()
        assert recorder.requests == [], "validate_query without check_series sends nothing"
    d = r.data
    assert d["valid"] is valid, r.describe()
    if not valid:
        assert d["position"] == 4 and d["hint"] and "not valid" in r.text, r.describe()
        return
    assert d["functions"] == functions, r.describe()
    for needle in warnings:
        assert any(needle in w for w in d["warnings"]), r.describe()
    if not warnings:
        assert d["warnings"] == [], r.describe()


async def test_empty_answers_say_why(target: Target, stack: Stack) -> None:
    async with connect(target, STDIO) as c:
        typo = (await c.call("execute_query", {"query": "rate(prometheus_http_request_total[5m])"})).ok()
        assert typo.structured["total"] == 0, typo.describe()
        assert any("did you mean prometheus_http_requests_total" in h for h in typo.structured["hints"]), \
            typo.describe()
        assert "hint: " in typo.text, typo.text
        value = (await c.call("execute_query", {"query": 'up{job="no-such-job"}'})).ok()
        assert any('never has job="no-such-job"' in h for h in value.structured["hints"]), value.describe()
        old = (await c.call("execute_query", {"query": "up", "time": int(time.time()) - 40 * 86400})).ok()
        assert any("retention" in h for h in old.structured.get("hints", [])), old.describe()
        full = (await c.call("execute_query", {"query": "up"})).ok()
        assert "hints" not in full.structured, "an answer with data has no hints"
