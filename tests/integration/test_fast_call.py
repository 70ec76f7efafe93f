"""The stateless tools/call fast path (src/serve/fast_call.rs) answers
exactly as rmcp does.

A plain 2026-07-28 `tools/call` with a Content-Length is answered by the
fast path; the same request sent chunked (no Content-Length) goes to rmcp.
Each pair must get the same status, content type and JSON answer, and send
the same requests upstream (a recording fake Prometheus with a tenant and
a credential). Requests the gate must not take (a foreign Host or Origin,
a session, a mismatched Mcp-Name) are refused as rmcp refuses them, and
nothing reaches the upstream.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest

from fakes import FakeUpstream, fake_prometheus, fake_slow
from httputil import port_open
from procs import wait_until
from mcpserver import McpServer, start_mcp_server
from rawmcp import MODERN, MODERN_META
from serverconfig import ServerConfig, Upstream

TOKEN = "fast-path-secret"
# fixed times (a "now" would differ between the two calls), recent enough to have data
T = int(time.time()) - 30


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None, chunked: bool = False,
         host: str | None = None) -> tuple[int, str, bytes]:
    """One POST; chunked sends no Content-Length (the fast path leaves it to rmcp)."""
    u = urllib.parse.urlsplit(url)
    name = body.get("params", {}).get("name", "") if isinstance(body, dict) else ""
    name = name if isinstance(name, str) else ""
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": name, **(headers or {})}
    if host:
        h["Host"] = host
    data = json.dumps(body).encode()
    if chunked:
        return post_chunked(u, h, data)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        c.request("POST", u.path, body=data, headers=h)
        r = c.getresponse()
        return r.status, r.getheader("content-type", ""), r.read()
    finally:
        c.close()


def post_chunked(u: urllib.parse.SplitResult, headers: dict[str, str], data: bytes) -> tuple[int, str, bytes]:
    """The request written by hand in one go: a server refusing on the
    headers may answer and close before reading the body, which http.client
    reports as a broken pipe instead of the answer."""
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"{u.hostname}:{u.port}", **headers}.items())
    raw = (f"POST {u.path} HTTP/1.1\r\n{head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           .encode() + f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
    with socket.create_connection((u.hostname, u.port), timeout=30) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = http.client.HTTPResponse(sock)
        r.begin()
        return r.status, r.getheader("content-type", ""), r.read()


def call(name: str, arguments: dict[str, Any], id_: Any = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": MODERN_META}}


def same_answer(url: str, body: dict[str, Any], **kw: Any) -> tuple[int, Any]:
    fast = post(url, body, **kw)
    slow = post(url, body, chunked=True, **kw)
    assert fast[0] == slow[0], (fast, slow)
    assert fast[1] == slow[1], (fast[1], slow[1])
    try:
        a, b = json.loads(fast[2]), json.loads(slow[2])
    except ValueError:
        a, b = fast[2], slow[2]
    assert a == b, f"fast path:\n{fast[2][:2000]!r}\nrmcp:\n{slow[2][:2000]!r}"
    return fast[0], a


@pytest.fixture(scope="module")
def server(http_json_server: McpServer) -> McpServer:
    return http_json_server


@pytest.fixture(scope="module")
def recorder() -> Iterator[FakeUpstream]:
    f = fake_prometheus()
    yield f
    f.close()


@pytest.fixture(scope="module")
def recorded_server(recorder: FakeUpstream, workdir: Path) -> Iterator[McpServer]:
    cfg = ServerConfig([Upstream("tenant", recorder.url + "/mimir/prometheus", "5s",
                                 {"org_id": "tenant-1", "auth": {"kind": "bearer", "token": TOKEN}})])
    srv = start_mcp_server(workdir, "fast-call-recorded", cfg)
    yield srv
    srv.proc.stop()


CALLS = [
    ("execute_query", {"query": "up", "time": T}),
    ("execute_query", {"query": "prometheus_build_info", "time": T}),
    ("execute_range_query", {"query": "up", "start": T - 300, "end": T, "step": "1m"}),
    ("execute_range_query", {"query": "up", "start": T - 300, "end": T, "step": "1m", "format": "samples"}),
    ("list_metrics", {"limit": 5}),
    ("get_targets", {}),
    ("execute_query", {"query": "sum(", "time": T}),  # a PromQL error
    ("execute_query", {"query": "up", "time": "yesterday-ish"}),  # a bad argument
    ("execute_query", {"query": "up", "nonsense": 1}),  # an unknown argument
    ("no_such_tool", {}),
    ("execute_query", {"query": "up", "time": T, "upstream": "down"}),  # the upstream is down
]


@pytest.mark.parametrize("tool,arguments", CALLS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CALLS)])
def test_fast_answers_equal_rmcp_answers(server: McpServer, tool: str, arguments: dict[str, Any]) -> None:
    status, answer = same_answer(server.mcp_url, call(tool, arguments))
    assert status == 200
    assert answer["id"] == 1 and "result" in answer, answer


@pytest.mark.parametrize("id_", ["a-string-id", 0, 2**53])
def test_ids_come_back_as_sent(server: McpServer, id_: Any) -> None:
    _, answer = same_answer(server.mcp_url, call("execute_query", {"query": "up", "time": T}, id_))
    assert answer["id"] == id_


def test_the_upstream_sees_the_same_requests(recorder: FakeUpstream, recorded_server: McpServer) -> None:
    seen = []
    for chunked in (False, True):
        recorder.requests.clear()
        st, _, body = post(recorded_server.mcp_url, call("execute_query", {"query": "up", "time": T}),
                           chunked=chunked)
        assert st == 200, body[:500]
        assert recorder.requests, "nothing went upstream"
        for r in recorder.requests:
            assert r.headers.get("x-scope-orgid") == "tenant-1"
            assert r.headers.get("authorization") == f"Bearer {TOKEN}"
        seen.append([(r.method, r.route, r.params) for r in recorder.requests])
    assert seen[0] == seen[1]


REFUSED = [
    ("a foreign Host", {}, "evil.example.com:1234", 403),
    ("a foreign Origin", {"Origin": "https://evil.example.com"}, None, 403),
    ("an Mcp-Name naming another tool", {"Mcp-Name": "get_targets"}, None, 400),
    ("a session id under an older version", {"Mcp-Session-Id": "no-such-session",
                                              "MCP-Protocol-Version": "2025-11-25"}, None, 400),
]


@pytest.mark.parametrize("why,headers,host,status", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_as_rmcp_refuses_and_nothing_goes_upstream(recorder: FakeUpstream, recorded_server: McpServer,
                                                             why: str, headers: dict[str, str], host: str | None,
                                                             status: int) -> None:
    recorder.requests.clear()
    got, _ = same_answer(recorded_server.mcp_url, call("execute_query", {"query": "up", "time": T}),
                         headers=headers, host=host)
    assert got == status, why
    assert recorder.requests == [], f"{why}: the upstream was called"


@pytest.fixture(scope="module")
def slow_upstream() -> Iterator[FakeUpstream]:
    f = fake_slow(2.0)
    yield f
    f.close()


@pytest.fixture(scope="module")
def audited_server(slow_upstream: FakeUpstream, workdir: Path) -> Iterator[tuple[McpServer, Path]]:
    path = workdir / "fast-call-audit.jsonl"
    cfg = ServerConfig([Upstream("slow", slow_upstream.url, "5s")],
                       layers={"limits": {"enabled": True, "request_timeout": "1s"}})
    cfg.tables["audit"] = {"enabled": True, "sink": "file", "path": str(path)}
    # not ready while its only upstream answers in 2 s: wait for the port
    srv = start_mcp_server(workdir, "fast-call-audited", cfg, wait_ready=False)
    wait_until("fast-call-audited listening", lambda: port_open(cfg.listen_port), timeout=30)
    yield srv, path
    srv.proc.stop()


@pytest.mark.parametrize("chunked", [False, True], ids=["fast", "rmcp"])
def test_a_call_cut_by_the_request_timeout_is_still_audited(audited_server: tuple[McpServer, Path],
                                                              chunked: bool) -> None:
    srv, path = audited_server
    marker = f"marker_{'rmcp' if chunked else 'fast'}_{time.monotonic_ns()}"
    status, _, _ = post(srv.mcp_url, call("execute_query", {"query": marker, "time": T}), chunked=chunked)
    assert status == 504
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and marker in path.read_text():
            break
        time.sleep(0.2)
    lines = [json.loads(x) for x in path.read_text().splitlines() if marker in x]
    assert len(lines) == 1, f"no (or several) audit lines for the timed-out call: {lines}"
    assert lines[0]["tool"] == "execute_query"


@pytest.mark.parametrize("body", [
    ["2.0", 1, "tools/call", {"name": "execute_query", "arguments": {"query": "up"}, "_meta": MODERN_META}],
    {"jsonrpc": "2.0", "id": 1, "method": {"tools/call": None},
     "params": {"name": "execute_query", "arguments": {"query": "up"}, "_meta": MODERN_META}},
], ids=["array", "method-as-map"])
def test_shapes_rmcp_refuses_are_refused_and_nothing_goes_upstream(recorder: FakeUpstream,
                                                                   recorded_server: McpServer, body: Any) -> None:
    recorder.requests.clear()
    st, _, _ = post(recorded_server.mcp_url, body, headers={"Mcp-Name": "execute_query"})
    assert st == 415
    assert recorder.requests == []
