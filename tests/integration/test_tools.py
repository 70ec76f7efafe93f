"""Every tool over every transport, against a real Prometheus.

Transports (see mcpclient.py): stdio, http-legacy-{json,sse} (initialize
handshake, 2025-11-25) and http-auto-{json,sse} (server/discover, 2026-07-28).
"""

from __future__ import annotations

import base64
import struct
from typing import Any, Callable

import pytest

from conftest import Stack
from mcpclient import Target, ToolResult, TransportSpec, connect

pytestmark = pytest.mark.anyio

EXPECTED_TOOLS = {
    "execute_query",
    "execute_range_query",
    "list_metrics",
    "get_metric_metadata",
    "list_label_names",
    "list_label_values",
    "find_series",
    "get_targets",
    "get_build_info",
    "get_runtime_info",
    "get_flags",
    "get_config",
    "get_tsdb_stats",
    "get_alerts",
    "get_alertmanagers",
    "get_rules",
    "query_exemplars",
    "get_targets_metadata",
    "check_ready",
    "validate_query",
    "render_range_query",
}


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def names(items: Any) -> list[str]:
    """Metric / label names from a list of strings (or of objects with a name)."""
    assert isinstance(items, list), f"expected a list, got {type(items).__name__}: {str(items)[:500]}"
    out = []
    for x in items:
        if isinstance(x, str):
            out.append(x)
        elif isinstance(x, dict):
            out.append(x.get("name") or x.get("metric") or x.get("__name__") or "")
        else:
            raise AssertionError(f"unexpected list item {x!r}")
    return out


def series_with(result: list[dict[str, Any]], **labels: str) -> list[dict[str, Any]]:
    return [s for s in result if all(s.get("metric", {}).get(k) == v for k, v in labels.items())]


def all_rules(data: dict[str, Any]) -> list[dict[str, Any]]:
    assert isinstance(data, dict) and isinstance(data.get("groups"), list), f"bad rules data: {str(data)[:500]}"
    return [r for g in data["groups"] for r in g.get("rules", [])]


# --------------------------------------------------------------------------
# per-tool cases: (arguments, check(result, stack))
# --------------------------------------------------------------------------

def check_query_up(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert d.get("resultType") == "vector", r.describe()
    hits = series_with(d["result"], job="prometheus", instance=st.prom.instance)
    assert hits, f"no up{{job=prometheus}} series:\n{r.describe()}"
    assert hits[0]["value"][1] == "1", r.describe()
    assert isinstance(hits[0]["value"][0], (int, float)), r.describe()
    assert any('job="prometheus"' in line and line.endswith(" 1") for line in r.text.splitlines()), \
        f"text rendering:\n{r.describe()}"


def check_recording_rule(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert d.get("resultType") == "vector", r.describe()
    hits = series_with(d["result"], job="prometheus")
    assert hits and hits[0]["value"][1] == "1", r.describe()


def check_range(r: ToolResult, st: Stack, min_points: int = 3) -> None:
    d = r.data
    assert d.get("resultType") == "matrix", r.describe()
    hits = series_with(d["result"], job="prometheus")
    assert hits, r.describe()
    assert len(hits[0]["values"]) >= min_points, f"expected several points:\n{r.describe()}"
    assert all(v[1] == "1" for v in hits[0]["values"]), r.describe()


def check_range_defaults(r: ToolResult, st: Stack) -> None:
    # last hour with an automatic step, summarized: Prometheus has only run
    # for seconds, so query something that has a value at every step
    d = r.data
    assert d.get("resultType") == "matrix" and d.get("format") == "summary", r.describe()
    assert len(d["series"]) == 1 and d["series"][0]["points"] >= 2, r.describe()
    assert d["series"][0]["min"] == d["series"][0]["max"] == 1, r.describe()
    assert "| {} |" in r.text, r.describe()


def check_list_metrics(r: ToolResult, st: Stack) -> None:
    n = names(r.data)
    assert "up" in n and "prometheus_build_info" in n, r.describe()


def check_list_metrics_default(r: ToolResult, st: Stack) -> None:
    sc = r.structured
    n = names(r.data)
    assert "prometheus_build_info" in n, r.describe()
    if sc["truncated"]:
        assert sc.get("total", 0) > len(n), r.describe()
        assert isinstance(sc.get("hint"), str) and sc["hint"], f"truncated without a hint:\n{r.describe()}"
    else:
        assert "up" in n, r.describe()


def check_metadata(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert isinstance(d, dict) and "prometheus_http_requests_total" in d, r.describe()
    entries = d["prometheus_http_requests_total"]
    assert entries and entries[0]["type"] == "counter", r.describe()


def check_label_names(r: ToolResult, st: Stack) -> None:
    n = names(r.data)
    assert "job" in n and "instance" in n and "__name__" in n, r.describe()


def check_label_values(r: ToolResult, st: Stack) -> None:
    n = names(r.data)
    assert "prometheus" in n and "alertmanager" in n, r.describe()


def check_find_series(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert isinstance(d, list), r.describe()
    assert any(s.get("__name__") == "up" and s.get("job") == "prometheus" and s.get("instance") == st.prom.instance
               for s in d), r.describe()


def check_targets(r: ToolResult, st: Stack) -> None:
    d = r.data
    active = d.get("activeTargets")
    assert isinstance(active, list), r.describe()
    t = [t for t in active if t.get("labels", {}).get("job") == "prometheus"]
    assert t and t[0]["health"] == "up", r.describe()
    assert t[0]["labels"]["instance"] == st.prom.instance, r.describe()


def check_build_info(r: ToolResult, st: Stack) -> None:
    assert str(r.data.get("version", "")).startswith("2."), r.describe()


def check_runtime_info(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert isinstance(d, dict) and "storageRetention" in d and "startTime" in d, r.describe()


def check_flags(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert isinstance(d, dict) and "storage.tsdb.path" in d, r.describe()
    assert d.get("web.enable-admin-api") == "true", r.describe()


def check_config(r: ToolResult, st: Stack) -> None:
    y = r.data.get("yaml")
    assert isinstance(y, str) and "scrape_configs" in y and "job_name: prometheus" in y, r.describe()


def check_tsdb(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert isinstance(d, dict) and "headStats" in d, r.describe()
    assert d["headStats"].get("numSeries", 0) > 0, r.describe()


def check_alerts(r: ToolResult, st: Stack) -> None:
    alerts = r.data.get("alerts")
    assert isinstance(alerts, list), r.describe()
    hits = [a for a in alerts if a["labels"].get("alertname") == "AlwaysFiring"]
    assert hits and hits[0]["state"] == "firing", r.describe()
    assert hits[0]["labels"].get("severity") == "info", r.describe()
    assert "summary" in hits[0].get("annotations", {}), r.describe()


def check_alertmanagers(r: ToolResult, st: Stack) -> None:
    d = r.data
    active = d.get("activeAlertmanagers")
    assert isinstance(active, list), r.describe()
    assert any(f"127.0.0.1:{st.am.port}" in a.get("url", "") for a in active), r.describe()


def check_rules(r: ToolResult, st: Stack) -> None:
    rules = all_rules(r.data)
    assert any(x["name"] == "job:up:sum" and x["type"] == "recording" for x in rules), r.describe()
    assert any(x["name"] == "AlwaysFiring" and x["type"] == "alerting" for x in rules), r.describe()


def check_exemplars(r: ToolResult, st: Stack) -> None:
    assert isinstance(r.data, list), r.describe()


def check_targets_metadata(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert isinstance(d, list) and d, r.describe()
    assert all(x.get("target", {}).get("job") == "prometheus" for x in d), r.describe()
    assert any(x.get("metric") == "prometheus_build_info" for x in d) or len(d) >= 1, r.describe()


def check_ready(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert d.get("ready") is True, r.describe()
    assert d.get("endpoint") == "/-/ready" and d.get("status") == 200, r.describe()


def check_validate(r: ToolResult, st: Stack) -> None:
    d = r.data
    assert d["valid"] is True and d["expression"], r.describe()
    assert [s["metric"] for s in d["selectors"]] == ["prometheus_http_requests_total", "up"], r.describe()
    assert d["functions"] == ["rate"] and d["aggregations"] == ["sum"], r.describe()
    counts = {c["selector"]: c.get("series") for c in d["series"]}
    assert counts["up"] >= 1 and counts["prometheus_http_requests_total"] >= 1, r.describe()


def check_chart(r: ToolResult, stack: Stack) -> None:
    """A PNG image block of the asked size after the summary text (every transport carries it)."""
    images = [c for c in r.raw.content if getattr(c, "type", None) == "image"]
    assert len(images) == 1 and images[0].mime_type == "image/png", r.describe()
    png = base64.b64decode(images[0].data)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (640, 320), png[:32]
    d = r.data
    assert d["resultType"] == "matrix" and d["series"] == d["plotted"] == 1, r.describe()
    assert r.text.startswith("Chart of `up{job=\"prometheus\"}`") and "1 series, all drawn" in r.text, r.describe()


Case = tuple[str, dict[str, Any], Callable[[ToolResult, Stack], None]]

CASES: dict[str, Case] = {
    "execute_query": ("execute_query", {"query": "up"}, check_query_up),
    "execute_query-recording_rule": ("execute_query", {"query": "job:up:sum"}, check_recording_rule),
    "execute_range_query": ("execute_range_query",
                            {"query": 'up{job="prometheus"}', "start": "now-1m", "end": "now", "step": "1s",
                             "format": "samples"},
                            check_range),
    "execute_range_query-defaults": ("execute_range_query", {"query": "vector(1)"}, check_range_defaults),
    # the server caps list results by default (200): ask for everything
    "list_metrics": ("list_metrics", {"limit": 5000}, check_list_metrics),
    "list_metrics-default-limit": ("list_metrics", {}, check_list_metrics_default),
    "get_metric_metadata": ("get_metric_metadata", {"metric": "prometheus_http_requests_total"}, check_metadata),
    "list_label_names": ("list_label_names", {}, check_label_names),
    "list_label_values": ("list_label_values", {"label": "job"}, check_label_values),
    "find_series": ("find_series", {"matches": ["up"]}, check_find_series),
    "get_targets": ("get_targets", {}, check_targets),
    "get_build_info": ("get_build_info", {}, check_build_info),
    "get_runtime_info": ("get_runtime_info", {}, check_runtime_info),
    "get_flags": ("get_flags", {}, check_flags),
    "get_config": ("get_config", {}, check_config),
    "get_tsdb_stats": ("get_tsdb_stats", {}, check_tsdb),
    "get_alerts": ("get_alerts", {}, check_alerts),
    "get_alertmanagers": ("get_alertmanagers", {}, check_alertmanagers),
    "get_rules": ("get_rules", {}, check_rules),
    "query_exemplars": ("query_exemplars",
                        {"query": "prometheus_http_requests_total", "start": "now-5m", "end": "now"},
                        check_exemplars),
    "get_targets_metadata": ("get_targets_metadata", {"match_target": '{job="prometheus"}'},
                             check_targets_metadata),
    "check_ready": ("check_ready", {}, check_ready),
    "validate_query": ("validate_query", {"query": 'sum by (job) (rate(prometheus_http_requests_total[5m])) + on() up',
                                          "check_series": True}, check_validate),
    "render_range_query": ("render_range_query", {"query": 'up{job="prometheus"}', "start": "now-2m", "end": "now",
                                                  "step": "5s", "width": 640, "height": 320}, check_chart),
}


def test_every_tool_has_a_case() -> None:
    assert {c[0] for c in CASES.values()} == EXPECTED_TOOLS


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
async def test_tool(case: str, target: Target, transport: TransportSpec, stack: Stack) -> None:
    tool, args, check = CASES[case]
    async with connect(target, transport) as c:
        r = (await c.call(tool, args)).ok()
        assert r.structured["upstream"] == "local", r.describe()
        check(r, stack)


# --------------------------------------------------------------------------
# protocol version, tools/list
# --------------------------------------------------------------------------

async def test_protocol_version(target: Target, transport: TransportSpec) -> None:
    async with connect(target, transport) as c:
        assert c.protocol_version == transport.expected_version, (
            f"{transport}: negotiated {c.protocol_version}, expected {transport.expected_version}")


@pytest.mark.parametrize("tid", ["http-legacy-json", "http-legacy-sse", "http-auto-json", "http-auto-sse"])
async def test_http_session_semantics(target: Target, tid: str) -> None:
    """Legacy (initialize) clients get an Mcp-Session-Id (stateful_sessions = true);
    2026-07-28 requests are stateless: no session id is ever handed out."""
    from mcpclient import TRANSPORTS

    transport = next(t for t in TRANSPORTS if t.id == tid)
    async with connect(target, transport) as c:
        (await c.call("check_ready", {})).ok()
        log = list(c.http_log)
    sids = {x.session_id for x in log if x.session_id}
    summary = "\n".join(f"  {x}" for x in log)
    if transport.mode == "legacy":
        assert len(sids) == 1, f"expected one Mcp-Session-Id:\n{summary}"
        posts = [x for x in log if x.method == "POST"]
        assert all(x.request_session_id in sids for x in posts[1:]), summary
    else:
        assert not sids, f"2026-07-28 requests got a session id:\n{summary}"
        assert all(x.protocol_header == "2026-07-28" for x in log if x.method == "POST"), summary
        if transport.json_response:
            assert all("application/json" in x.content_type for x in log if x.method == "POST" and x.status == 200), (
                f"json_response = true but not JSON:\n{summary}")


async def test_stdio_auto_mode(target: Target, stack: Stack) -> None:
    """The SDK's default mode over stdio (server/discover, falls back to initialize)."""
    from mcpclient import STDIO

    async with connect(target, STDIO, mode="auto") as c:
        assert c.protocol_version in ("2025-11-25", "2026-07-28")
        r = (await c.call("execute_query", {"query": "up"})).ok()
        check_query_up(r, stack)


def assert_tool_listing(tools: list[Any], prefix: str = "", one_upstream: bool = False) -> None:
    got = sorted(t.name for t in tools)
    assert got == sorted(prefix + n for n in EXPECTED_TOOLS), f"tool names: {got}"
    for t in tools:
        assert t.description, f"{t.name}: no description"
        assert t.annotations is not None and t.annotations.read_only_hint is True, f"{t.name}: {t.annotations}"
        s = t.input_schema
        assert s.get("type") == "object", f"{t.name}: inputSchema {s}"
        assert s.get("additionalProperties") is False, f"{t.name}: additionalProperties must be false: {s}"
        # With one upstream there is nothing to name: the argument is left out.
        assert ("upstream" in s.get("properties", {})) != one_upstream, f"{t.name}: `upstream` argument: {s}"
        assert isinstance(t.output_schema, dict) and t.output_schema.get("type") == "object", (
            f"{t.name}: outputSchema {t.output_schema}")


async def test_tools_list(target: Target, transport: TransportSpec) -> None:
    async with connect(target, transport) as c:
        assert_tool_listing(await c.list_tools())


REQUIRED_ARGS = {
    "execute_query": {"query"},
    "execute_range_query": {"query"},
    "list_label_values": {"label"},
    "find_series": {"matches"},
    "query_exemplars": {"query"},
    "validate_query": {"query"},
    "render_range_query": {"query"},
}


async def test_input_schemas(target: Target) -> None:
    """Argument names and required lists match the contract (checked once, over HTTP)."""
    from mcpclient import HTTP_AUTO_JSON

    expected_props = {
        "execute_query": {"query", "time", "timeout", "limit", "stats", "lookback_delta", "unlimited"},
        "execute_range_query": {"query", "start", "end", "step", "timeout", "limit", "stats", "lookback_delta",
                                "unlimited", "format", "max_points"},
        "list_metrics": {"matches", "start", "end", "limit"},
        "get_metric_metadata": {"metric", "limit"},
        "list_label_names": {"matches", "start", "end", "limit"},
        "list_label_values": {"label", "matches", "start", "end", "limit"},
        "find_series": {"matches", "start", "end", "limit"},
        "get_targets": {"state", "scrape_pool", "health", "limit"},
        "get_tsdb_stats": {"limit"},
        "get_alerts": {"state", "limit"},
        "get_rules": {"type", "rule_name", "rule_group", "file", "limit"},
        "query_exemplars": {"query", "start", "end", "limit"},
        "get_targets_metadata": {"match_target", "metric", "limit"},
        "validate_query": {"query", "check_series"},
        "render_range_query": {"query", "start", "end", "step", "timeout", "limit", "lookback_delta", "width",
                               "height"},
    }
    async with connect(target, HTTP_AUTO_JSON) as c:
        tools = {t.name: t for t in await c.list_tools()}
    problems = []
    for name in EXPECTED_TOOLS:
        s = tools[name].input_schema
        props = set(s.get("properties", {})) - {"upstream", "org_id"}
        # Several upstreams: each is named; no tenancy and no override: a
        # caller cannot pick a tenant, so org_id is not offered.
        if "upstream" not in s.get("properties", {}) or "org_id" in s.get("properties", {}):
            problems.append(f"{name}: expected upstream and no org_id, got {sorted(s.get('properties', {}))}")
        want = expected_props.get(name, set())
        if props != want:
            problems.append(f"{name}: properties {sorted(props)} != {sorted(want)}")
        req = set(s.get("required", []))
        if req != REQUIRED_ARGS.get(name, set()):
            problems.append(f"{name}: required {sorted(req)} != {sorted(REQUIRED_ARGS.get(name, set()))}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# filters
# --------------------------------------------------------------------------

@pytest.mark.parametrize("rule_type,expected,unexpected", [
    ("record", "job:up:sum", "AlwaysFiring"),
    ("alert", "AlwaysFiring", "job:up:sum"),
])
async def test_get_rules_type_filter(target: Target, transport: TransportSpec, rule_type: str, expected: str,
                                     unexpected: str) -> None:
    async with connect(target, transport) as c:
        r = (await c.call("get_rules", {"type": rule_type})).ok()
        got = {x["name"] for x in all_rules(r.data)}
        assert expected in got and unexpected not in got, r.describe()


async def test_get_alerts_state_filter(target: Target, stack: Stack) -> None:
    from mcpclient import HTTP_LEGACY_JSON

    async with connect(target, HTTP_LEGACY_JSON) as c:
        firing = (await c.call("get_alerts", {"state": "firing"})).ok()
        names_ = {a["labels"]["alertname"] for a in firing.data["alerts"]}
        assert "AlwaysFiring" in names_ and "AlwaysPending" not in names_, firing.describe()
        pending = (await c.call("get_alerts", {"state": "pending"})).ok()
        names_ = {a["labels"]["alertname"] for a in pending.data["alerts"]}
        assert "AlwaysPending" in names_ and "AlwaysFiring" not in names_, pending.describe()


async def test_get_targets_filters(target: Target, stack: Stack) -> None:
    from mcpclient import HTTP_AUTO_JSON

    async with connect(target, HTTP_AUTO_JSON) as c:
        r = (await c.call("get_targets", {"state": "active", "scrape_pool": "alertmanager"})).ok()
        jobs = {t["labels"]["job"] for t in r.data.get("activeTargets", [])}
        assert jobs == {"alertmanager"}, r.describe()
        r = (await c.call("get_targets", {"health": "down"})).ok()
        assert not r.data.get("activeTargets"), r.describe()
        r = (await c.call("get_targets", {"health": "up"})).ok()
        assert {t["labels"]["job"] for t in r.data.get("activeTargets", [])} == {"prometheus", "alertmanager"}, (
            r.describe())


async def test_query_stats(target: Target, stack: Stack) -> None:
    from mcpclient import HTTP_AUTO_JSON

    async with connect(target, HTTP_AUTO_JSON) as c:
        r = (await c.call("execute_query", {"query": "up", "stats": True, "timeout": "10s",
                                            "lookback_delta": "1m"})).ok()
        check_query_up(r, stack)
        assert "stats" in r.data, f"stats requested but absent:\n{r.describe()}"


async def test_metric_filters(target: Target, stack: Stack) -> None:
    from mcpclient import HTTP_LEGACY_JSON

    async with connect(target, HTTP_LEGACY_JSON) as c:
        r = (await c.call("list_metrics", {"matches": ['{job="alertmanager"}']})).ok()
        n = names(r.data)
        assert any(x.startswith("alertmanager_") for x in n), r.describe()
        assert "prometheus_build_info" not in n, r.describe()
        r = (await c.call("list_label_values", {"label": "job", "matches": ['up{job="alertmanager"}']})).ok()
        assert names(r.data) == ["alertmanager"], r.describe()
        r = (await c.call("get_targets_metadata", {"match_target": '{job="prometheus"}',
                                                   "metric": "prometheus_build_info"})).ok()
        assert r.data and all(x.get("metric", "prometheus_build_info") == "prometheus_build_info"
                              for x in r.data), r.describe()


# --------------------------------------------------------------------------
# tool_prefix
# --------------------------------------------------------------------------

@pytest.mark.parametrize("tid", ["stdio", "http-legacy-json", "http-auto-sse"])
async def test_tool_prefix(prefix_target: Target, stack: Stack, tid: str) -> None:
    from mcp.shared.exceptions import MCPError

    from mcpclient import TRANSPORTS

    transport = next(t for t in TRANSPORTS if t.id == tid)
    async with connect(prefix_target, transport) as c:
        assert_tool_listing(await c.list_tools(), prefix=prefix_target.tool_prefix, one_upstream=True)
        r = (await c.call("execute_query", {"query": "up"})).ok()  # Conn adds the prefix
        assert r.name == "mcp_prometheus_execute_query"
        check_query_up(r, stack)
        r = (await c.call("check_ready", {})).ok()
        check_ready(r, stack)
        # the unprefixed name is not a tool: either a protocol error or an isError result
        try:
            raw = await c.client.call_tool("execute_query", {"query": "up"})
        except MCPError:
            pass
        else:
            assert raw.is_error, f"unprefixed name still works: {raw}"


# --------------------------------------------------------------------------
# large results
# --------------------------------------------------------------------------

async def test_large_result(target: Target, transport: TransportSpec) -> None:
    """A result of well over a megabyte (over SSE: an event larger than the SDK's
    default 1 MiB cap, which the harness lifts) arrives intact when the caller
    asks for `unlimited` on a server that allows it.

    8 synthetic series x 11000 points (Prometheus' per-series maximum), so the
    size does not depend on what has been scraped so far."""
    import json

    n_series, n_points = 8, 11000
    query = " or ".join(f'label_replace(vector(1), "i", "{i}", "", "")' for i in range(n_series))
    async with connect(target, transport) as c:
        r = (await c.call("execute_range_query", {"query": query, "start": T0_BIG - (n_points - 1), "end": T0_BIG,
                                                  "step": 1, "limit": 5000, "unlimited": True,
                                                  "format": "samples"})).ok()
        d = r.data
        assert d["resultType"] == "matrix" and len(d["result"]) == n_series, r.text[:300]
        assert all(len(s["values"]) == n_points for s in d["result"]), [len(s["values"]) for s in d["result"]]
        size = len(json.dumps(r.structured))
        assert size > 1_200_000, f"only {size} bytes"
        assert r.structured["truncated"] is False


T0_BIG = 1700000000
