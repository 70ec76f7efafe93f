"""Clients of the legacy HTTP+SSE transport (protocol 2024-11-05) for
test_sse.py:

* `RawSession`   - GET /sse and POST /message by hand (httpx2), for the
                   refusals, bounds and idle timeout;
* `py_sse`       - the Python SDK's `sse_client` under `Client` (mcp 2.x);
* `run_ts_sse`   - the TypeScript SDK's `SSEClientTransport`
                   (tests/mcpjs/sse_client.mjs under Node).
"""

from __future__ import annotations

import json
import subprocess
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator

import httpx2
import mcp_types
from mcp.client import Client
from mcp.client.sse import sse_client

from httputil import HttpResponse, http_post
from mcpclient import CALL_TIMEOUT, Conn, ToolResult, TransportSpec, unwrap_groups
from procs import REPO

SSE_SPEC = TransportSpec("legacy-sse", "http", "legacy", None, "2025-11-25")
TS_CLIENT = REPO / "tests" / "mcpjs" / "sse_client.mjs"

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                         "clientInfo": {"name": "raw-sse-test", "version": "0"}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def tool_call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}}


@dataclass
class SseEvent:
    event: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class RawSession:
    """`GET base_url/sse` held open; `post()` sends to the endpoint its
    first event named. Use as a context manager (closes the stream)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None, timeout: float = 10.0):
        self.base_url = base_url
        self.client = httpx2.Client(timeout=timeout)
        self._stream = self.client.stream("GET", base_url + "/sse",
                                          headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self._stream.__enter__()
        self.status = self.response.status_code
        self.headers = {k.lower(): v for k, v in self.response.headers.items()}
        self.endpoint = ""
        self._lines = self.response.iter_lines() if self.status == 200 else iter(())
        if self.status == 200:
            first = self.next_event()
            assert first is not None and first.event == "endpoint", f"first event: {first}"
            assert first.data.startswith("/message?sessionId="), first.data
            self.endpoint = base_url + first.data
        else:
            self.body = self.response.read()

    def next_event(self) -> SseEvent | None:
        """The next event (comments skipped), or None when the stream ended."""
        event, data = "", []
        for line in self._lines:
            if line == "":
                if event or data:
                    return SseEvent(event, "\n".join(data))
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)
        return None

    def message(self) -> dict[str, Any]:
        """The next `message` event's JSON-RPC message."""
        ev = self.next_event()
        assert ev is not None and ev.event == "message", f"expected a message event, got {ev}"
        return ev.json()

    def post(self, message: Any, headers: dict[str, str] | None = None, raw: bytes | None = None,
             endpoint: str | None = None) -> HttpResponse:
        body = raw if raw is not None else json.dumps(message).encode()
        return http_post(endpoint or self.endpoint, body, {"Content-Type": "application/json", **(headers or {})})

    def initialize(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """The initialize handshake; returns the initialize result."""
        r = self.post(INITIALIZE, headers)
        assert r.status == 202, f"initialize: HTTP {r.status} {r.text}"
        answer = self.message()
        assert answer.get("id") == 1 and "result" in answer, answer
        assert self.post(INITIALIZED, headers).status == 202
        return answer["result"]

    def close(self) -> None:
        self._stream.__exit__(None, None, None)
        self.client.close()

    def __enter__(self) -> "RawSession":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@asynccontextmanager
async def py_sse(url: str, headers: dict[str, str] | None = None, mode: str = "legacy") -> AsyncIterator[Conn]:
    """An MCP session through the Python SDK's legacy SSE client."""
    async with unwrap_groups():
        async with Client(sse_client(url, headers=headers), mode=mode,
                          read_timeout_seconds=CALL_TIMEOUT) as client:
            yield Conn(client, SSE_SPEC, "")


@dataclass
class TsRun:
    server: dict[str, Any]
    tools: list[str]
    results: dict[str, ToolResult]
    errors: dict[str, str]


def run_ts_sse(url: str, calls: list[tuple[str, dict[str, Any]]], headers: dict[str, str] | None = None,
               timeout: float = 50.0) -> TsRun:
    """Runs the TypeScript SDK client: lists the tools, makes `calls` (one
    per tool name); each result as a ToolResult."""
    plan = {"headers": headers or {}, "calls": [{"name": n, "arguments": a} for n, a in calls]}
    p = subprocess.run(["node", str(TS_CLIENT), url], input=json.dumps(plan), capture_output=True, text=True,
                       timeout=timeout, cwd=TS_CLIENT.parent)
    lines = p.stdout.strip().splitlines()
    assert lines, f"sse_client.mjs printed nothing (exit {p.returncode}): {p.stderr[-2000:]}"
    out = json.loads(lines[-1])
    assert "fatal" not in out, f"sse_client.mjs failed: {out['fatal']}\n{p.stderr[-2000:]}"
    args = dict(calls)
    results = {r["name"]: ToolResult(r["name"], args[r["name"]], mcp_types.CallToolResult.model_validate(r["result"]))
               for r in out["results"] if "result" in r}
    errors = {r["name"]: r["error"] for r in out["results"] if "error" in r}
    return TsRun(out.get("server") or {}, out["tools"], results, errors)
