"""MCP over plain HTTP with arbitrary headers, for the authn / tenancy /
OAuth tests: `raw_call()` posts one stateless (2026-07-28) `tools/call` and
returns the raw HTTP answer (for 401/403 checks); `authed()` opens an SDK
client connection sending the given headers on every request; plus parsing
of the answers (JSON-RPC message, WWW-Authenticate challenge, JSON body).
"""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from mcp.shared._httpx_utils import create_mcp_http_client

from httputil import HttpResponse, http_post
from mcpclient import Conn, http_session

MODERN = "2026-07-28"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "authn-test", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
BASE_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def raw_call(url: str, tool: str, arguments: dict[str, Any] | None = None, headers: dict[str, str] | None = None,
             timeout: float = 30.0) -> HttpResponse:
    """One stateless tools/call (protocol 2026-07-28), no SDK in between."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments or {}, "_meta": MODERN_META}}
    h = {**BASE_HEADERS, "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": tool,
         **(headers or {})}
    return http_post(url, json.dumps(body).encode(), h, timeout=timeout)


def raw_initialize(url: str, headers: dict[str, str] | None = None) -> HttpResponse:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "authn-test", "version": "0"}}}
    return http_post(url, json.dumps(body).encode(), {**BASE_HEADERS, **(headers or {})})


def rpc_message(r: HttpResponse) -> dict[str, Any]:
    """The JSON-RPC message of a 200 answer (JSON or a one-event SSE stream)."""
    assert r.status == 200, f"HTTP {r.status}: {r.text[:1000]}"
    if "text/event-stream" in r.headers.get("content-type", ""):
        datas = [line[5:].strip() for line in r.text.splitlines() if line.startswith("data:")]
        msgs = [json.loads(d) for d in datas if d]
        msgs = [m for m in msgs if "id" in m]
        assert len(msgs) == 1, r.text[:1000]
        return msgs[0]
    return r.json()


def raw_tool_result(r: HttpResponse) -> dict[str, Any]:
    msg = rpc_message(r)
    assert "result" in msg, f"JSON-RPC error instead of a CallToolResult: {msg}"
    return msg["result"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def authed(url: str, headers: dict[str, str], mode: str = "auto") -> AsyncIterator[Conn]:
    """An SDK client connection whose every HTTP request carries `headers`."""
    async with http_session(url, create_mcp_http_client(headers=headers), mode, max_sse_event_size=None) as conn:
        yield conn


def www_authenticate(r: HttpResponse) -> dict[str, str]:
    """Parameters of a `Bearer` challenge (plus `_scheme`)."""
    h = r.headers.get("www-authenticate", "")
    m = re.match(r"\s*(\S+)\s*(.*)", h, re.S)
    if not m:
        return {}
    out = {"_scheme": m.group(1)}
    for k, v in re.findall(r'([A-Za-z_]+)\s*=\s*"((?:[^"\\]|\\.)*)"', m.group(2)):
        out[k] = v
    for k, v in re.findall(r'([A-Za-z_]+)\s*=\s*([^",\s]+)', m.group(2)):
        out.setdefault(k, v)
    return out


def json_body(r: HttpResponse) -> dict[str, Any]:
    try:
        body = r.json()
    except ValueError as e:
        raise AssertionError(f"body is not JSON ({e}): HTTP {r.status} {r.text[:500]!r}") from None
    assert isinstance(body, dict), body
    return body
