"""The logging capability (protocol versions before 2026-07-28): a client
sets a level with logging/setLevel; a tool call's warnings (here, a
truncated answer) then also arrive as notifications/message at or above
that level, and nothing arrives before a level is set. Real clients: the
Python SDK over stdio and over streamable HTTP with SSE responses."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client.client import Client

from mcpclient import HTTP_LEGACY_SSE, STDIO, Target, TransportSpec, connect

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:The logging capability is deprecated")]

# `up` has several series on the test stack; a limit of 1 truncates it.
TRUNCATED_CALL = ("execute_query", {"query": "up", "limit": 1})


async def warnings_seen(target: Target, transport: TransportSpec, level: str | None) -> tuple[list[Any], Any]:
    seen: list[Any] = []

    async def on_log(params: Any) -> None:
        seen.append(params)

    async with connect(target, transport) as conn:
        client: Client = conn.client
        client.session._logging_callback = on_log  # the SDK's per-session hook
        if level is not None:
            await client.set_logging_level(level)
        result = await conn.call(*TRUNCATED_CALL)
    return seen, result


@pytest.mark.parametrize("transport", [STDIO, HTTP_LEGACY_SSE], ids=str)
async def test_truncation_warning_arrives_at_the_set_level(target: Target, transport: TransportSpec) -> None:
    seen, result = await warnings_seen(target, transport, "warning")
    assert result.ok().structured["truncated"] is True
    assert seen, "a truncated answer is a warning notification once the level is warning"
    message = seen[0]
    assert message.level == "warning"
    assert message.logger == "mcp-prometheus"
    assert message.data["tool"] == "execute_query"
    assert "truncated" in message.data["warning"]


@pytest.mark.parametrize("transport", [STDIO, HTTP_LEGACY_SSE], ids=str)
async def test_nothing_above_the_level_nor_before_it_is_set(target: Target, transport: TransportSpec) -> None:
    seen, _ = await warnings_seen(target, transport, "error")
    assert seen == [], "warnings are below error"
    seen, _ = await warnings_seen(target, transport, None)
    assert seen == [], "no setLevel: no notifications"
