"""server.max_sessions: rmcp keeps streamable HTTP sessions (clients before
2026-07-28) until they idle out, so their number is bounded here. An
`initialize` past the bound gets 503 with Retry-After and no session; the
open sessions keep working, a session ended with DELETE makes room, and
stateless (2026-07-28) calls are not counted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from conftest import Stack
from httputil import http_post
from mcpserver import McpServer, start_mcp_server
from rawmcp import BASE_HEADERS, raw_call, raw_initialize, raw_tool_result, rpc_message
from serverconfig import ServerConfig, Upstream

MAX = 2
LEGACY = "2025-11-25"


@pytest.fixture(scope="module")
def server(stack: Stack, workdir: Path) -> Iterator[McpServer]:
    cfg = ServerConfig([Upstream("local", stack.prom.url, "5s")], server_extra={"max_sessions": MAX})
    srv = start_mcp_server(workdir, "session-bound", cfg)
    yield srv
    srv.proc.stop()


def session_call(url: str, session: str) -> int:
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "execute_query", "arguments": {"query": "up"}}}
    r = http_post(url, json.dumps(body).encode(),
                  {**BASE_HEADERS, "Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY})
    if r.status == 200:
        assert "result" in rpc_message(r), r.text[:500]
    return r.status


def delete(url: str, session: str) -> int:
    import urllib.request
    req = urllib.request.Request(url, method="DELETE",
                                 headers={"Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def test_sessions_past_the_bound_are_refused_and_room_comes_back(server: McpServer) -> None:
    url = server.mcp_url
    opened = []
    for _ in range(MAX):
        r = raw_initialize(url)
        assert r.status == 200, r.text[:300]
        opened.append(r.headers["mcp-session-id"])
    refused = raw_initialize(url)
    assert refused.status == 503, refused.text[:300]
    assert "server.max_sessions" in refused.text
    assert refused.headers.get("retry-after") == "30"
    assert "mcp-session-id" not in refused.headers
    # the open sessions keep working; stateless calls are not counted
    assert all(session_call(url, s) == 200 for s in opened)
    assert not raw_tool_result(raw_call(url, "execute_query", {"query": "up"})).get("isError")
    # a session ended makes room for one more, and only one
    assert delete(url, opened.pop()) == 204
    r = raw_initialize(url)
    assert r.status == 200, r.text[:300]
    opened.append(r.headers["mcp-session-id"])
    assert raw_initialize(url).status == 503
    for s in opened:
        delete(url, s)


def _initialize_with_raw_session_id(url: str, session_id: bytes) -> tuple[int, str | None]:
    """An initialize whose Mcp-Session-Id is raw bytes (not text)."""
    import http.client
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    body = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                       "params": {"protocolVersion": LEGACY, "capabilities": {},
                                  "clientInfo": {"name": "t", "version": "0"}}}).encode()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest("POST", u.path)
        for k, v in {**BASE_HEADERS, "MCP-Protocol-Version": LEGACY,
                     "Content-Length": str(len(body))}.items():
            conn.putheader(k, v)
        conn.putheader("Mcp-Session-Id", session_id)
        conn.endheaders(body)
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("mcp-session-id")
    finally:
        conn.close()


def test_a_session_id_that_is_not_text_does_not_pass_the_bound(server: McpServer) -> None:
    """rmcp reads a non-text Mcp-Session-Id as none and opens a session: such
    requests went around the bound (found in review: unlimited sessions)."""
    url = server.mcp_url
    opened = []
    for _ in range(MAX):
        r = raw_initialize(url)
        assert r.status == 200, r.text[:300]
        opened.append(r.headers["mcp-session-id"])
    for _ in range(3):
        status, session = _initialize_with_raw_session_id(url, b"\xff")
        assert (status, session) == (503, None), (status, session)
    for s in opened:
        delete(url, s)
    status, session = _initialize_with_raw_session_id(url, b"\xff")
    assert status == 200 and session, "under the bound it is served as rmcp serves it"
    delete(url, session)


def test_zero_sessions_is_refused_by_check_config(workdir: Path, stack: Stack) -> None:
    from mcpserver import run_cli
    cfg = ServerConfig([Upstream("local", stack.prom.url, "5s")], server_extra={"max_sessions": 0})
    path = cfg.write(workdir / "servers" / "session-bound-zero.toml")
    r = run_cli(["check-config", "--config", path])
    assert r.returncode != 0
    assert "server.max_sessions" in (r.stdout + r.stderr)
