"""Argument handling: limits/truncation, time and duration formats, upstream
selection (including an upstream URL with a path prefix)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import Stack
from mcpclient import Target, ToolResult, TransportSpec, connect

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------
# limit
# --------------------------------------------------------------------------

LIMIT_CASES = {
    "list_label_values": ("list_label_values", {"label": "job", "limit": 1}),
    "list_label_values-__name__": ("list_label_values", {"label": "__name__", "limit": 1}),
    "list_metrics": ("list_metrics", {"limit": 1}),
    "find_series": ("find_series", {"matches": ["up"], "limit": 1}),
    "list_label_names": ("list_label_names", {"limit": 1}),
}


def assert_truncated_to_one(r: ToolResult) -> None:
    r.ok()
    sc = r.structured
    assert isinstance(r.data, list) and len(r.data) == 1, f"expected exactly 1 item:\n{r.describe()}"
    assert sc["truncated"] is True, r.describe()
    assert isinstance(sc.get("total"), int) and sc["total"] > 1, f"total must be > 1:\n{r.describe()}"
    if "returned" in sc:
        assert sc["returned"] == 1, r.describe()
    if "hint" in sc:
        assert isinstance(sc["hint"], str) and sc["hint"], r.describe()


@pytest.mark.parametrize("case", list(LIMIT_CASES), ids=list(LIMIT_CASES))
async def test_limit_truncates(case: str, target: Target, transport: TransportSpec) -> None:
    tool, args = LIMIT_CASES[case]
    async with connect(target, transport) as c:
        assert_truncated_to_one(await c.call(tool, args))


async def test_limit_not_truncated(target: Target) -> None:
    from mcpclient import HTTP_AUTO_JSON

    async with connect(target, HTTP_AUTO_JSON) as c:
        r = (await c.call("list_label_values", {"label": "job", "limit": 100})).ok()
        assert sorted(r.data) == ["alertmanager", "prometheus"], r.describe()
        assert r.structured["truncated"] is False, r.describe()
        if "total" in r.structured:
            assert r.structured["total"] == 2, r.describe()


async def test_limit_on_query_result(target: Target) -> None:
    """execute_query limit: `up` has two series (prometheus, alertmanager)."""
    from mcpclient import HTTP_LEGACY_JSON

    async with connect(target, HTTP_LEGACY_JSON) as c:
        r = (await c.call("execute_query", {"query": "up", "limit": 1})).ok()
        assert r.data["resultType"] == "vector" and len(r.data["result"]) == 1, r.describe()
        assert r.structured["truncated"] is True, r.describe()
        if "total" in r.structured:
            assert r.structured["total"] == 2, r.describe()


# --------------------------------------------------------------------------
# times and durations
# --------------------------------------------------------------------------

T0 = 1700000000  # 2023-11-14T22:13:20Z


def scalar_time(r: ToolResult) -> float:
    r.ok()
    d = r.data
    assert d.get("resultType") == "scalar", r.describe()
    return float(d["result"][1])


@pytest.mark.parametrize("value,expected", [
    (T0, T0),
    (T0 + 0.5, T0 + 0.5),
    (str(T0), T0),
    ("2023-11-14T22:13:20Z", T0),
    ("2023-11-14T23:13:20+01:00", T0),
    ("2023-11-14T22:13:20.250Z", T0 + 0.25),
], ids=["unix-int", "unix-float", "unix-string", "rfc3339-z", "rfc3339-offset", "rfc3339-fraction"])
async def test_time_formats(target: Target, transport: TransportSpec, value: object, expected: float) -> None:
    async with connect(target, transport) as c:
        got = scalar_time(await c.call("execute_query", {"query": "time()", "time": value}))
        assert got == pytest.approx(expected), f"time={value!r} evaluated at {got}, expected {expected}"


@pytest.mark.parametrize("value,offset", [
    ("now", 0), ("now-5m", -300), ("now-1h", -3600),
    # The minus sign (U+2212) and dashes models print: this used to panic the
    # call and leave the client hanging.
    ("now\u22121h", -3600), ("now \u2014 5m", -300), ("now\u20131h", -3600),
])
async def test_relative_times(target: Target, value: str, offset: int) -> None:
    from mcpclient import HTTP_AUTO_JSON

    async with connect(target, HTTP_AUTO_JSON) as c:
        before = time.time()
        got = scalar_time(await c.call("execute_query", {"query": "time()", "time": value}))
        after = time.time()
        assert before + offset - 2 <= got <= after + offset + 2, f"time={value!r} evaluated at {got}"


@pytest.mark.parametrize("value", ["now\u2212", "now\U0001F6001h", "now-1\u00e9", "\u200f" * 1000, "now-" + "9" * 400 + "y"])
async def test_hostile_times_get_a_clear_error_at_once(target: Target, value: str) -> None:
    """Odd text in a time is refused with what to send; nothing hangs or reaches Prometheus."""
    from mcpclient import HTTP_AUTO_JSON

    async with connect(target, HTTP_AUTO_JSON) as c:
        started = time.monotonic()
        r = await c.call("execute_query", {"query": "up", "time": value})
        assert time.monotonic() - started < 5, "the call must answer at once"
    assert r.is_error, r.describe()
    assert "RFC 3339" in r.text, r.describe()


async def test_query_now_minus_5m_returns_vector(target: Target, transport: TransportSpec) -> None:
    async with connect(target, transport) as c:
        r = (await c.call("execute_query", {"query": "up", "time": "now-5m"})).ok()
        assert r.data["resultType"] == "vector", r.describe()


@pytest.mark.parametrize("step", ["15s", 15, 15.0], ids=["str-15s", "int-15", "float-15"])
async def test_range_step(target: Target, transport: TransportSpec, step: object) -> None:
    async with connect(target, transport) as c:
        r = (await c.call("execute_range_query",
                          {"query": "time()", "start": T0 - 60, "end": T0, "step": step,
                           "format": "samples"})).ok()
        d = r.data
        assert d["resultType"] == "matrix", r.describe()
        ts = [float(v[0]) for v in d["result"][0]["values"]]
        assert ts == [T0 - 60 + 15 * i for i in range(5)], f"step={step!r}: timestamps {ts}"


async def test_range_rfc3339_and_long_duration(target: Target) -> None:
    from mcpclient import HTTP_LEGACY_SSE

    async with connect(target, HTTP_LEGACY_SSE) as c:
        r = (await c.call("execute_range_query", {
            "query": "time()", "start": "2023-11-14T20:43:20Z", "end": "2023-11-14T22:13:20Z",
            "step": "1h30m", "format": "samples"})).ok()
        ts = [float(v[0]) for v in r.data["result"][0]["values"]]
        assert ts == [T0 - 5400, T0], r.describe()


@pytest.mark.parametrize("args", [
    {"timeout": "30s"}, {"timeout": 30}, {"timeout": "1h30m"}, {"lookback_delta": "5m"}, {"lookback_delta": 300},
], ids=["timeout-30s", "timeout-num", "timeout-1h30m", "lookback-5m", "lookback-num"])
async def test_duration_arguments(target: Target, stack: Stack, args: dict) -> None:
    from mcpclient import HTTP_AUTO_SSE

    async with connect(target, HTTP_AUTO_SSE) as c:
        r = (await c.call("execute_query", {"query": "up", **args})).ok()
        assert r.data["resultType"] == "vector" and r.data["result"], r.describe()


async def test_range_query_automatic_step(target: Target) -> None:
    """No start/end/step: last hour with an automatically chosen step."""
    from mcpclient import HTTP_AUTO_JSON

    async with connect(target, HTTP_AUTO_JSON) as c:
        now = time.time()
        r = (await c.call("execute_range_query", {"query": "time()", "format": "samples"})).ok()
        vals = r.data["result"][0]["values"]
        ts = [float(v[0]) for v in vals]
        assert len(ts) >= 2, r.describe()
        assert ts[0] >= now - 3600 - 120 and ts[-1] <= now + 5, f"range {ts[0]}..{ts[-1]} is not the last hour"
        assert len(ts) <= 11000, f"{len(ts)} points: step was not chosen sensibly"


async def test_label_values_time_window(target: Target) -> None:
    """start/end in the distant past: no values."""
    from mcpclient import HTTP_LEGACY_JSON

    async with connect(target, HTTP_LEGACY_JSON) as c:
        r = (await c.call("list_label_values", {"label": "job", "start": T0 - 3600, "end": T0})).ok()
        assert r.data == [], r.describe()
        r = (await c.call("list_label_values", {"label": "job", "start": "now-1h", "end": "now"})).ok()
        assert "prometheus" in r.data, r.describe()
        start = (datetime.now(timezone.utc) - timedelta(seconds=30)).isoformat()
        r = (await c.call("find_series", {"matches": ["up"], "start": start, "end": "now"})).ok()
        assert r.data, r.describe()


# --------------------------------------------------------------------------
# upstream selection
# --------------------------------------------------------------------------

async def test_prefixed_upstream(target: Target, transport: TransportSpec, stack: Stack) -> None:
    """An upstream whose URL has a path (/prometheus), like Mimir's."""
    async with connect(target, transport) as c:
        r = (await c.call("execute_query", {"query": "up", "upstream": "prefixed"})).ok()
        assert r.structured["upstream"] == "prefixed", r.describe()
        want = {"job": "prometheus", "instance": stack.prom_prefixed.instance}
        hits = [s for s in r.data["result"] if all(s["metric"].get(k) == v for k, v in want.items())]
        assert hits and hits[0]["value"][1] == "1", r.describe()
        r = (await c.call("check_ready", {"upstream": "prefixed"})).ok()
        assert r.structured["upstream"] == "prefixed" and r.data["ready"] is True, r.describe()


async def test_prefixed_upstream_other_tools(target: Target, stack: Stack) -> None:
    from mcpclient import HTTP_AUTO_JSON

    async with connect(target, HTTP_AUTO_JSON) as c:
        r = (await c.call("get_build_info", {"upstream": "prefixed"})).ok()
        assert r.data["version"].startswith("2."), r.describe()
        r = (await c.call("list_label_values", {"label": "job", "upstream": "prefixed"})).ok()
        assert "prometheus" in r.data, r.describe()
        r = (await c.call("get_flags", {"upstream": "prefixed"})).ok()
        assert r.data.get("web.route-prefix") == "/prometheus", r.describe()


async def test_explicit_default_upstream(target: Target, stack: Stack) -> None:
    from mcpclient import STDIO

    async with connect(target, STDIO) as c:
        r = (await c.call("get_flags", {"upstream": "local"})).ok()
        assert r.structured["upstream"] == "local", r.describe()
        assert r.data.get("web.route-prefix") == "/", r.describe()
