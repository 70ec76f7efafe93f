"""Failures come back as isError tool results (never protocol errors or
crashes), with a message naming the problem; the server keeps serving."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from conftest import SLOW_UPSTREAM_TIMEOUT, Stack
from mcpclient import Conn, Target, ToolResult, TransportSpec, connect

pytestmark = pytest.mark.anyio


async def still_works(c: Conn, stack: Stack) -> None:
    r = (await c.call("execute_query", {"query": "up"})).ok()
    assert any(s["metric"].get("job") == "prometheus" for s in r.data["result"]), r.describe()


def assert_mentions(r: ToolResult, *patterns: str) -> None:
    """Each pattern (a regex, case-insensitive) must occur in the error text."""
    for p in patterns:
        assert re.search(p, r.text, re.IGNORECASE), f"error text should match /{p}/:\n{r.describe()}"


ERROR_CASES: dict[str, tuple[str, dict[str, Any], tuple[str, ...]]] = {
    # refused by our parser, before any request: where, what, how to fix
    "bad-promql": ("execute_query", {"query": "sum("}, ("invalid PromQL at character 4", "unclosed", "sum by")),
    "bad-promql-range": ("execute_range_query", {"query": "rate(up[5m]"}, ("invalid PromQL", "unclosed")),
    "bad-matcher": ("find_series", {"matches": ["{job=~\"(\"}"]}, ("matches\\[0\\]: invalid PromQL",)),
    # argument validation
    "unknown-argument": ("execute_query", {"query": "up", "bogus": 1}, ("bogus",)),
    "limit-wrong-type": ("list_metrics", {"limit": "ten"}, ("limit",)),
    "stats-wrong-type": ("execute_query", {"query": "up", "stats": "yes"}, ("stats",)),
    "query-wrong-type": ("execute_query", {"query": 42}, ("query",)),
    "missing-required": ("execute_query", {}, ("query",)),
    "matches-not-array": ("find_series", {"matches": "up"}, ("matches",)),
    "matches-empty": ("find_series", {"matches": []}, ("matches",)),
    "bad-time": ("execute_query", {"query": "up", "time": "yesterday-ish"}, ("time",)),
    "bad-step": ("execute_range_query", {"query": "up", "start": "now-1h", "end": "now", "step": "fast"},
                 ("step",)),
    "bad-enum": ("get_alerts", {"state": "burning"}, ("state",)),
    "negative-limit": ("list_metrics", {"limit": -1}, ("limit",)),
    "limit-above-max": ("list_metrics", {"limit": 10_000_000}, ("limit",)),
    # upstream selection
    "unknown-upstream": ("execute_query", {"query": "up", "upstream": "nope"}, ("nope", "local", "prefixed")),
    "upstream-wrong-type": ("check_ready", {"upstream": 7}, ("upstream",)),
    # upstream failures
    "unreachable-upstream": ("execute_query", {"query": "up", "upstream": "down"},
                             ("down", r"unreachable|connect|refused")),
    "upstream-500": ("execute_query", {"query": "up", "upstream": "http500"}, ("500",)),
    "upstream-500-build-info": ("get_build_info", {"upstream": "http500"}, ("500",)),
    "upstream-garbage": ("execute_query", {"query": "up", "upstream": "garbage"},
                         (r"json|invalid|decode|parse",)),
    "upstream-garbage-rules": ("get_rules", {"upstream": "garbage"}, (r"json|invalid|decode|parse",)),
}


@pytest.mark.parametrize("case", list(ERROR_CASES), ids=list(ERROR_CASES))
async def test_error_result(case: str, target: Target, transport: TransportSpec, stack: Stack) -> None:
    tool, args, patterns = ERROR_CASES[case]
    async with connect(target, transport) as c:
        r = (await c.call(tool, args)).error()
        assert_mentions(r, *patterns)
        await still_works(c, stack)
    # and a fresh connection works too (the server did not crash / hang)
    async with connect(target, transport) as c:
        await still_works(c, stack)


async def test_check_ready_unreachable(target: Target, transport: TransportSpec, stack: Stack) -> None:
    """check_ready on an unreachable upstream: isError, or success with ready false; either way it says why."""
    async with connect(target, transport) as c:
        r = await c.call("check_ready", {"upstream": "down"})
        if not r.is_error:
            assert r.data.get("ready") is False, r.describe()
        assert_mentions(r, "down", r"unreachable|connect|refused")
        await still_works(c, stack)


async def test_slow_upstream_times_out(target: Target, transport: TransportSpec, stack: Stack) -> None:
    assert SLOW_UPSTREAM_TIMEOUT == "1s"
    async with connect(target, transport) as c:
        t0 = time.monotonic()
        r = (await c.call("execute_query", {"query": "up", "upstream": "slow"})).error()
        elapsed = time.monotonic() - t0
        assert_mentions(r, "slow", r"timed out|timeout")
        assert elapsed < 2.5, f"took {elapsed:.2f}s; the upstream timeout is 1s"
        assert elapsed > 0.8, f"took {elapsed:.2f}s; faster than the 1s upstream timeout?"
        await still_works(c, stack)


async def test_concurrent_calls_with_a_slow_one(target: Target, stack: Stack) -> None:
    """A slow upstream call does not block other calls on the same server."""
    import anyio

    from mcpclient import HTTP_LEGACY_JSON

    results: dict[str, Any] = {}
    async with connect(target, HTTP_LEGACY_JSON) as slow_c, connect(target, HTTP_LEGACY_JSON) as fast_c:
        async def slow() -> None:
            results["slow"] = await slow_c.call("execute_query", {"query": "up", "upstream": "slow"})

        async def fast() -> None:
            await anyio.sleep(0.1)
            t0 = time.monotonic()
            results["fast"] = await fast_c.call("execute_query", {"query": "up"})
            results["fast_elapsed"] = time.monotonic() - t0

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow)
            tg.start_soon(fast)
    assert results["slow"].is_error
    results["fast"].ok()
    assert results["fast_elapsed"] < 0.8, f"fast call took {results['fast_elapsed']:.2f}s behind a slow one"


async def test_unknown_tool_is_rejected(target: Target, transport: TransportSpec, stack: Stack) -> None:
    from mcp.shared.exceptions import MCPError

    async with connect(target, transport) as c:
        try:
            raw = await c.client.call_tool("no_such_tool", {})
        except MCPError:
            pass
        else:
            assert raw.is_error, f"unknown tool accepted: {raw}"
        await still_works(c, stack)
