"""The legacy HTTP+SSE transport (protocol 2024-11-05): `GET /sse` +
`POST /message?sessionId=…`, alone (`--transport sse`) and beside
streamable HTTP (`server.legacy_sse = true`).

Two real clients call every tool: the TypeScript SDK's SSEClientTransport
(tests/mcpjs/sse_client.mjs) and the Python SDK's sse_client. The refusals
are checked on the wire (sseclient.RawSession) and, where a caller could
reach data, at the recording tenant router too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from authasserts import assert_no_upstream, assert_refused, assert_tenants_within
from authstack import LayeredServer, TenantStack, issuer_entry, issuer_fixture, layered_config
from conftest import MAIN_LAYERS, Fakes, ServerPool, Stack, main_upstreams
from constants import ALICE_TENANTS, BOB_TENANTS
from httputil import HttpResponse, free_port, http_post
from jwt_issuer import JwtIssuer
from mcpclient import http_session
from mcpserver import McpServer, launch
from mcp.shared._httpx_utils import create_mcp_http_client
from rawmcp import bearer
from serverconfig import ServerConfig, Upstream
from sseclient import INITIALIZE, RawSession, py_sse, run_ts_sse, tool_call
from tenant_router import TenantRouter
from test_tools import CASES, EXPECTED_TOOLS

sse_issuer = issuer_fixture("sse")

# One case per tool (the first of test_tools.CASES for each name).
TOOL_CASES = {}
for _tool, _args, _check in CASES.values():
    TOOL_CASES.setdefault(_tool, (_args, _check))


def start(pool: ServerPool, name: str, config: ServerConfig, transport: str = "sse") -> McpServer:
    """`serve --transport <transport>` once per session (stopped by the pool)."""
    srv = pool.servers.get(name)
    if srv is not None and srv.proc.poll() is None:
        return srv
    config.listen_port = config.listen_port or free_port()
    config.obs_port = config.obs_port or free_port()
    path = config.write(pool.workdir / "servers" / f"{name}.toml")
    srv = launch(pool.workdir, name, config, path, ["serve", "--config", path, "--transport", transport])
    pool.servers[name] = srv
    return srv


def local_config(stack: Stack, **server: Any) -> ServerConfig:
    return ServerConfig([Upstream("local", stack.prom.url, "5s")], server_extra=server)


@pytest.fixture(scope="module")
def sse_only(pool: ServerPool, stack: Stack, fakes: Fakes) -> McpServer:
    return start(pool, "sse-only", ServerConfig(main_upstreams(stack, fakes), layers=MAIN_LAYERS))


@pytest.fixture(scope="module")
def sse_beside(pool: ServerPool, stack: Stack, fakes: Fakes) -> McpServer:
    cfg = ServerConfig(main_upstreams(stack, fakes), layers=MAIN_LAYERS, server_extra={"legacy_sse": True})
    return start(pool, "sse-beside-streamable", cfg, transport="streamable-http")


@pytest.fixture(params=["sse-only", "sse-beside-streamable"])
def sse_url(request: pytest.FixtureRequest) -> str:
    srv = request.getfixturevalue("sse_only" if request.param == "sse-only" else "sse_beside")
    return srv.base_url + "/sse"


@pytest.fixture(scope="module")
def sse_authn(pool: ServerPool, tenant_stack: TenantStack, sse_issuer: JwtIssuer) -> LayeredServer:
    """authn (the module's issuer) and group-map tenancy over the tenant router."""
    cfg = layered_config(tenant_stack.url, issuers=[issuer_entry(sse_issuer)])
    return LayeredServer(start(pool, "sse-authn", cfg), sse_issuer)


# --------------------------------------------------------------------------
# two real clients, every tool
# --------------------------------------------------------------------------

def test_typescript_sdk_calls_every_tool(sse_url: str, stack: Stack) -> None:
    run = run_ts_sse(sse_url, [(tool, args) for tool, (args, _) in TOOL_CASES.items()])
    assert run.server.get("name") == "mcp-prometheus", run.server
    assert set(run.tools) == EXPECTED_TOOLS
    assert not run.errors, f"protocol errors: {run.errors}"
    assert set(run.results) == EXPECTED_TOOLS
    for tool, (_, check) in TOOL_CASES.items():
        r = run.results[tool].ok()
        assert r.structured["upstream"] == "local", r.describe()
        check(r, stack)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_python_sdk_calls_every_tool(sse_url: str, stack: Stack, mode: str) -> None:
    async with py_sse(sse_url, mode=mode) as c:
        assert {t.name for t in await c.list_tools()} == EXPECTED_TOOLS
        for tool, (args, check) in TOOL_CASES.items():
            r = (await c.call(tool, args)).ok()
            assert r.structured["upstream"] == "local", r.describe()
            check(r, stack)


# --------------------------------------------------------------------------
# the transports side by side
# --------------------------------------------------------------------------

@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_streamable_http_still_works_beside_legacy_sse(sse_beside: McpServer, stack: Stack,
                                                           mode: str) -> None:
    async with http_session(sse_beside.mcp_url, create_mcp_http_client(), mode=mode) as c:
        r = (await c.call("execute_query", {"query": "up"})).ok()
        TOOL_CASES["execute_query"][1](r, stack)


def test_sse_alone_serves_no_streamable_route(sse_only: McpServer) -> None:
    r = http_post(sse_only.mcp_url, b"{}", {"Content-Type": "application/json",
                                            "Accept": "application/json, text/event-stream"})
    assert r.status == 404, f"HTTP {r.status} {r.text}"


# --------------------------------------------------------------------------
# refusals
# --------------------------------------------------------------------------

def jsonrpc_error(r: HttpResponse) -> dict[str, Any]:
    body = r.json()
    assert body.get("jsonrpc") == "2.0" and "error" in body, body
    return body["error"]


def test_unknown_or_missing_session_is_404(sse_only: McpServer) -> None:
    for query in ["?sessionId=no-such-session", ""]:
        r = http_post(f"{sse_only.base_url}/message{query}", b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
                      {"Content-Type": "application/json"})
        assert r.status == 404, f"{query}: HTTP {r.status} {r.text}"
        assert "GET /sse" in jsonrpc_error(r)["message"], r.text


def test_malformed_body_is_400_and_the_session_survives(sse_only: McpServer) -> None:
    with RawSession(sse_only.base_url) as s:
        r = s.post(None, raw=b'{"jsonrpc": "2.0", "id": 1, "method": ')
        assert r.status == 400, f"HTTP {r.status} {r.text}"
        err = jsonrpc_error(r)
        assert err["code"] == -32700 and "not JSON" in err["message"], err
        r = s.post([INITIALIZE])
        assert r.status == 400 and "batches" in jsonrpc_error(r)["message"], r.text
        r = s.post({"jsonrpc": "2.0", "id": 1, "method": 7})
        assert r.status == 400 and jsonrpc_error(r)["code"] == -32600, r.text
        assert s.initialize()["serverInfo"]["name"] == "mcp-prometheus"


def test_foreign_host_or_origin_is_403(sse_only: McpServer) -> None:
    for headers in ({"Host": "evil.example"}, {"Origin": "https://evil.example"}):
        with RawSession(sse_only.base_url, headers) as s:
            assert s.status == 403, f"GET /sse {headers}: HTTP {s.status}"
    with RawSession(sse_only.base_url) as s:
        for headers in ({"Host": "evil.example"}, {"Origin": "https://evil.example"}):
            r = s.post(INITIALIZE, headers)
            assert r.status == 403, f"POST {headers}: HTTP {r.status} {r.text}"
        assert s.initialize()["serverInfo"]["name"] == "mcp-prometheus", "the session is untouched"


def test_sessions_over_the_bound_get_503(pool: ServerPool, stack: Stack) -> None:
    srv = start(pool, "sse-bounded", local_config(stack, sse_max_sessions=2))
    first, second = RawSession(srv.base_url), RawSession(srv.base_url)
    try:
        with RawSession(srv.base_url) as third:
            assert third.status == 503, f"HTTP {third.status}"
            assert third.headers.get("retry-after"), third.headers
            assert b"sse_max_sessions" in third.body, third.body
        first.close()
        deadline = time.monotonic() + 30  # a gone client is noticed at the latest by the next ping
        while True:
            with RawSession(srv.base_url) as again:
                if again.status == 200:
                    break
            assert time.monotonic() < deadline, "the closed session's slot was never freed"
            time.sleep(0.5)
    finally:
        first.close()
        second.close()


def test_idle_session_closes_after_sse_idle_timeout(pool: ServerPool, stack: Stack) -> None:
    srv = start(pool, "sse-idle", local_config(stack, sse_idle_timeout="1s"))
    with RawSession(srv.base_url) as s:
        s.initialize()
        for i in range(4):  # activity keeps it open past the timeout
            time.sleep(0.5)
            assert s.post({"jsonrpc": "2.0", "id": 10 + i, "method": "ping"}).status == 202
            assert s.message()["id"] == 10 + i
        started = time.monotonic()
        assert s.next_event() is None, "the stream should end"
        waited = time.monotonic() - started
        assert 0.5 < waited < 5, f"closed after {waited:.1f}s, expected about 1s"
        r = s.post({"jsonrpc": "2.0", "id": 99, "method": "ping"})
        assert r.status == 404, f"HTTP {r.status} {r.text}"


# --------------------------------------------------------------------------
# identity: authn, session ownership, tenancy at the upstream
# --------------------------------------------------------------------------

def query_tenants(result: dict[str, Any]) -> set[str]:
    return {s["metric"].get("tenant", "?") for s in result["structuredContent"]["data"]["result"]}


def test_get_sse_without_a_token_is_401(sse_authn: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    with RawSession(sse_authn.srv.base_url) as s:
        r = HttpResponse(s.status, s.body, s.headers)
    assert_refused(r, sse_authn, 401, None)
    r = http_post(sse_authn.srv.base_url + "/message?sessionId=x", b"{}", {"Content-Type": "application/json"})
    assert_refused(r, sse_authn, 401, None)
    assert_no_upstream(router, mark, "no token")


def test_another_principal_cannot_post_into_a_session(sse_authn: LayeredServer, router: TenantRouter) -> None:
    alice = bearer(sse_authn.token(["team-a"], sub="alice"))
    bob = bearer(sse_authn.token(["team-b"], sub="bob"))
    with RawSession(sse_authn.srv.base_url, alice) as s:
        s.initialize(alice)
        mark = router.mark()
        r = s.post(tool_call(2, "execute_query", {"query": "up"}), bob)
        # answered as a session that does not exist: the id tells bob nothing
        unknown = http_post(f"{sse_authn.srv.base_url}/message?sessionId=no-such-session",
                            json.dumps(tool_call(2, "execute_query", {"query": "up"})).encode(),
                            {"Content-Type": "application/json", **bob})
        assert (r.status, r.json()) == (404, unknown.json()), f"HTTP {r.status} {r.text} / {unknown.text}"
        time.sleep(0.5)
        assert_no_upstream(router, mark, "bob in alice's session")
        assert s.post(tool_call(3, "execute_query", {"query": "up"}), alice).status == 202
        answer = s.message()
        assert answer["id"] == 3, f"bob's call must not have run: {answer}"
        assert query_tenants(answer["result"]) == ALICE_TENANTS, answer
        assert assert_tenants_within(router, mark, ALICE_TENANTS, "alice") == ALICE_TENANTS


def test_typescript_sdk_with_a_token_reads_its_tenants(sse_authn: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    run = run_ts_sse(sse_authn.srv.base_url + "/sse", [("execute_query", {"query": "up"})],
                     bearer(sse_authn.token(["team-b"], sub="bob")))
    r = run.results["execute_query"].ok()
    assert {s["metric"].get("tenant") for s in r.data["result"]} == BOB_TENANTS, r.describe()
    seen = assert_tenants_within(router, mark, BOB_TENANTS, "bob over SSE")
    assert seen == BOB_TENANTS
    assert all(x.org_id for x in router.since(mark)), "every upstream request carries X-Scope-OrgID"


@pytest.mark.anyio
async def test_python_sdk_with_a_token_reads_its_tenants(sse_authn: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with py_sse(sse_authn.srv.base_url + "/sse", bearer(sse_authn.token(["team-a"], sub="alice"))) as c:
        r = (await c.call("execute_query", {"query": "up"})).ok()
    assert {s["metric"].get("tenant") for s in r.data["result"]} == ALICE_TENANTS, r.describe()
    assert [x.org_id for x in router.since(mark)] == ["tenant-a"], "X-Scope-OrgID the upstream saw"


def test_check_config_names_bad_sse_settings(workdir: Path) -> None:
    from mcpserver import run_cli

    for extra, needle in [({"sse_max_sessions": 0}, "server.sse_max_sessions"),
                          ({"sse_idle_timeout": "100ms"}, "server.sse_idle_timeout")]:
        path = ServerConfig([Upstream("local", "http://127.0.0.1:9")], server_extra=extra).write(
            workdir / "servers" / "sse-bad.toml")
        p = run_cli(["check-config", "--config", path])
        assert p.returncode != 0 and needle in p.stdout + p.stderr, p.stdout + p.stderr
