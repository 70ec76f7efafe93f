"""Hostile input from strangers and tired models (issue 11): nothing they
send may crash, hang, leak a tenant or grow memory. Each test checks the
answer and, where an upstream is involved, what the upstream saw."""

from __future__ import annotations

import http.client
import re
import secrets
import socket
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from authstack import LayeredServer, TenantStack, _layered, issuer_entry, issuer_fixture, layered_config
from jwt_issuer import JwtIssuer
from httputil import closed_port
from mcpserver import run_cli
from promtext import parse_metrics
from rawmcp import authed, bearer, raw_call, raw_tool_result
from serverconfig import ServerConfig
from tenant_router import TenantRouter

pytestmark = pytest.mark.anyio

HTTP_REQUESTS = "mcp_prometheus_http_requests_total"
KNOWN_METHODS = {"GET", "POST", "DELETE", "PUT", "HEAD", "OPTIONS", "PATCH", "other"}


def _send(url: str, method: str, headers: dict[str, str]) -> int:
    """One request with any method line and headers; the status."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request(method, u.path, body=b"{}", headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def _request_series(server: LayeredServer) -> list[dict[str, str]]:
    return [labels for name, labels, _ in parse_metrics(server.metrics()) if name == HTTP_REQUESTS]


def _stranger_requests(server: LayeredServer, count: int) -> None:
    for i in range(count):
        method = ["POST", "GET", "BREW", "X" + secrets.token_hex(3).upper()][i % 4]
        mcp_method = "tools/call" if i % 3 == 0 else secrets.token_hex(5) + "/" + secrets.token_hex(3)
        status = _send(server.mcp_url, method, {"Mcp-Method": mcp_method, "Mcp-Name": "t_" + secrets.token_hex(5)})
        assert status < 500, f"{method} answered {status}"


def test_strangers_cannot_grow_the_metrics(authn_server: LayeredServer) -> None:
    """Random methods and MCP headers before authn: the series of the HTTP
    metrics stop growing after the first few hundred requests (they did grow
    by one series per request: 30,005 series after 1,500 requests)."""
    before = _request_series(authn_server)
    _stranger_requests(authn_server, 300)
    after_warmup = _request_series(authn_server)
    _stranger_requests(authn_server, 1200)
    after = _request_series(authn_server)
    assert len(after) == len(after_warmup), (
        f"{len(after_warmup)} series after 300 stranger requests, {len(after)} after 1,500")
    assert {s["method"] for s in after} <= KNOWN_METHODS, after
    # Only tools/call or random methods and random tool names were sent (other
    # tests share this server, so compare with what was there before).
    new = [s for s in after if s not in before]
    assert {s["mcp_method"] for s in new} <= {"tools/call", "other"}, new
    assert {s["tool"] for s in new} <= {"", "other"}, f"a caller's Mcp-Name became a label: {new}"


# --------------------------------------------------------------------------
# credential forwarding is narrow (check-config and serve refuse)
# --------------------------------------------------------------------------

def _check(workdir: Path, name: str, cfg: ServerConfig) -> tuple[int, str]:
    p = run_cli(["check-config", "--config", cfg.write(workdir / "servers" / f"{name}.toml")])
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("target", ["X-Scope-OrgID", "Host", "Content-Length", "Transfer-Encoding", "Connection"])
def test_forward_cannot_write_framing_or_tenant_headers(workdir: Path, issuer: JwtIssuer, target: str) -> None:
    cfg = layered_config("https://mimir.example/prometheus", issuers=[issuer_entry(issuer)],
                         upstream_extra={"auth": {"kind": "forward", "header": "Authorization", "to": target}})
    rc, out = _check(workdir, f"forward-to-{target.lower()}", cfg)
    assert rc != 0, f"accepted forwarding into {target}:\n{out}"
    assert "auth.to" in out and target.lower() in out, out


def test_forwarding_an_unverified_header_needs_consent(workdir: Path, issuer: JwtIssuer) -> None:
    unverified = {"kind": "forward", "header": "X-Grafana-Token"}
    cfg = layered_config("https://grafana.example/api/datasources/proxy/uid/x", issuers=[issuer_entry(issuer)],
                         upstream_extra={"auth": unverified})
    rc, out = _check(workdir, "forward-unverified", cfg)
    assert rc != 0 and "forward_unverified" in out and "authorization" in out, out
    cfg = layered_config("https://grafana.example/api/datasources/proxy/uid/x", issuers=[issuer_entry(issuer)],
                         upstream_extra={"auth": {**unverified, "forward_unverified": True}})
    rc, out = _check(workdir, "forward-unverified-ok", cfg)
    assert rc == 0, out
    verified = layered_config("https://mimir.example/prometheus",
                              issuers=[issuer_entry(issuer, header="Teleport-Jwt-Assertion")],
                              upstream_extra={"auth": {"kind": "forward", "header": "Teleport-Jwt-Assertion"}})
    rc, out = _check(workdir, "forward-verified", verified)
    assert rc == 0, out


# --------------------------------------------------------------------------
# fan-out is bounded
# --------------------------------------------------------------------------

own_issuer = issuer_fixture("hostile")


@pytest.fixture(scope="module")
def two_tenant_server(pool: Any, tenant_stack: TenantStack, own_issuer: JwtIssuer) -> LayeredServer:
    """Group-map tenancy allowing at most 2 tenants per request."""
    return _layered(pool, "max-two-tenants", lambda: layered_config(
        tenant_stack.url, issuers=[issuer_entry(own_issuer)],
        layers={"tenancy": {"max_tenants_per_request": 2}}), own_issuer)


@pytest.mark.parametrize("tool", ["get_rules", "get_alerts", "execute_query"])
async def test_more_tenants_than_allowed_are_refused_before_any_request(
        two_tenant_server: LayeredServer, router: TenantRouter, tool: str) -> None:
    """team-a + team-b map to 3 tenants; with max_tenants_per_request = 2
    neither one request (execute_query) nor a per-tenant fan-out (rules,
    alerts) is sent, and the error gives the count and what to do."""
    token = bearer(two_tenant_server.token(["team-a", "team-b"], sub="many-tenants"))
    mark = router.mark()
    args = {"query": "up"} if tool == "execute_query" else {}
    async with authed(two_tenant_server.mcp_url, token) as c:
        e = (await c.call(tool, args)).error()
    assert "3" in e.text and "2" in e.text and "org_id" in e.text, e.describe()
    assert router.since(mark) == [], [(q.path, q.org_id) for q in router.since(mark)]
    async with authed(two_tenant_server.mcp_url, token) as c:
        r = (await c.call(tool, {**args, "org_id": "tenant-b|tenant-c"})).ok()
    assert r.structured["upstream"] == "mimir", r.describe()
    assert {q.org_id for q in router.since(mark)} <= {"tenant-b", "tenant-c", "tenant-b|tenant-c"}


# --------------------------------------------------------------------------
# slow and oversized requests
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tight_server(pool: Any, tenant_stack: TenantStack, own_issuer: JwtIssuer) -> LayeredServer:
    """1 s for headers, 2 s per POST, 2 requests at once, 64 KiB bodies."""
    def make() -> ServerConfig:
        cfg = layered_config(tenant_stack.url, issuers=[issuer_entry(own_issuer)], layers={"limits": {
            "request_timeout": "2s", "max_concurrent_requests": 2, "max_body_bytes": 65536}})
        cfg.server_extra["header_read_timeout"] = "1s"
        return cfg
    return _layered(pool, "tight-limits", make, own_issuer)


def _connect(url: str) -> socket.socket:
    u = urllib.parse.urlsplit(url)
    return socket.create_connection((u.hostname, u.port), timeout=10)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_slow_headers_are_cut_off(tight_server: LayeredServer) -> None:
    """A client dribbling its headers loses the connection after
    header_read_timeout (1 s), instead of holding it forever."""
    sock = _connect(tight_server.mcp_url)
    try:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        started = time.monotonic()
        answer = _read_all(sock)
        waited = time.monotonic() - started
    finally:
        sock.close()
    assert waited < 5, f"the connection stayed open {waited:.1f} s"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_an_oversized_body_is_refused_from_its_length_unread(tight_server: LayeredServer) -> None:
    """Content-Length over max_body_bytes: 413 at once, before authn, and
    without waiting for (or reading) the 100 MB that never comes."""
    sock = _connect(tight_server.mcp_url)
    try:
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n{")
        started = time.monotonic()
        answer = sock.recv(65536)
        waited = time.monotonic() - started
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"65536 bytes" in answer, answer[:300]
    assert waited < 2, f"took {waited:.1f} s"


def test_a_slow_body_cannot_hold_a_permit(tight_server: LayeredServer, router: TenantRouter) -> None:
    """Two authenticated POSTs whose bodies never finish take both permits;
    after request_timeout (2 s) they get 504 and a third caller is served."""
    token = tight_server.token(["team-a"], sub="slow-body")
    slow = []
    for _ in range(2):
        sock = _connect(tight_server.mcp_url)
        sock.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\"")
        slow.append(sock)
    try:
        started = time.monotonic()
        for sock in slow:
            head = sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 504"), head[:300]
        assert time.monotonic() - started < 6
        mark = router.mark()
        res = raw_tool_result(raw_call(tight_server.mcp_url, "execute_query", {"query": "up"},
                                       {"Authorization": f"Bearer {token}"}))
        assert not res.get("isError"), res
        assert {q.org_id for q in router.since(mark)} == {"tenant-a"}
    finally:
        for sock in slow:
            sock.close()


# --------------------------------------------------------------------------
# errors tell callers what they can act on, not our internals
# --------------------------------------------------------------------------

def test_unavailable_keys_do_not_leak_where_we_fetch_them(pool: Any, tenant_stack: TenantStack,
                                                          own_issuer: JwtIssuer, router: TenantRouter) -> None:
    """The issuer's JWKS is on a closed port: an unauthenticated caller gets
    401 "signing keys unavailable" with a correlation id; the URL, address
    and port are only in the log, next to that id."""
    port = closed_port()
    srv = _layered(pool, "keys-unreachable", lambda: layered_config(
        tenant_stack.url, issuers=[issuer_entry(own_issuer, jwks_url=f"http://127.0.0.1:{port}/jwks")]), own_issuer)
    mark = router.mark()
    r = raw_call(srv.mcp_url, "execute_query", {"query": "up"}, bearer(srv.token(["team-a"])))
    told = r.text + " " + r.headers.get("www-authenticate", "")
    assert r.status == 401, told
    assert f":{port}" not in told and "jwks" not in told.lower() and "refused" not in told.lower(), told
    match = re.search(r"correlation id ([0-9a-f]{16})", told)
    assert match and "signing keys are unavailable" in told, told
    assert router.since(mark) == []
    log = srv.proc.tail(200)
    assert any(match.group(1) in line and f":{port}/jwks" in line for line in log.splitlines()), log[-2000:]


# --------------------------------------------------------------------------
# groups are bound to their issuer
# --------------------------------------------------------------------------

async def test_the_same_group_from_another_issuer_reads_nothing(
        pool: Any, tenant_stack: TenantStack, issuer: JwtIssuer, own_issuer: JwtIssuer, router: TenantRouter) -> None:
    """Two issuers both issue `team-a`; the bare `team-a` of the map belongs
    to the first (groups_for_tenancy). The second's `team-a` gets 403 and no
    request; its qualified `<issuer>#team-b` works."""
    groups = {"team-a": ["tenant-a"], f"{own_issuer.issuer}#team-b": ["tenant-b"]}
    srv = _layered(pool, "two-issuers-bound", lambda: layered_config(
        tenant_stack.url, groups=groups,
        issuers=[issuer_entry(issuer, groups_for_tenancy=True), issuer_entry(own_issuer)]), issuer)
    mark = router.mark()
    stranger = own_issuer.mint(sub="other-idp-user", groups=["team-a"], aud=srv.resource)
    r = raw_call(srv.mcp_url, "execute_query", {"query": "up"}, bearer(stranger))
    assert r.status == 403 and "no access to any tenant" in r.text, r.text
    assert router.since(mark) == []
    async with authed(srv.mcp_url, bearer(srv.token(["team-a"]))) as c:
        ok = (await c.call("execute_query", {"query": "up"})).ok()
    assert {s["metric"]["tenant"] for s in ok.data["result"]} == {"tenant-a"}, ok.describe()
    qualified = own_issuer.mint(sub="other-idp-user", groups=["team-b"], aud=srv.resource)
    async with authed(srv.mcp_url, bearer(qualified)) as c:
        ok = (await c.call("execute_query", {"query": "up"})).ok()
    assert {s["metric"]["tenant"] for s in ok.data["result"]} == {"tenant-b"}, ok.describe()


def test_unbound_group_names_with_several_issuers_are_refused(workdir: Path, issuer: JwtIssuer,
                                                              own_issuer: JwtIssuer) -> None:
    cfg = layered_config("https://mimir.example/prometheus", issuers=[issuer_entry(issuer), issuer_entry(own_issuer)])
    rc, out = _check(workdir, "two-issuers-unbound", cfg)
    assert rc != 0 and "groups_for_tenancy" in out and "#team-a" in out, out


@pytest.mark.parametrize("first_bytes", [b"", b"PRI * HTTP/2.0"])
def test_silent_connections_are_closed(tight_server: LayeredServer, first_bytes: bytes) -> None:
    """A connection that sends nothing (or a partial HTTP/2 preface) is
    closed after header_read_timeout: the listener speaks HTTP/1.1 only, so
    no protocol sniffing waits without a deadline."""
    for url in (tight_server.mcp_url, tight_server.obs_url + "/metrics"):
        sock = _connect(url)
        try:
            sock.sendall(first_bytes)
            started = time.monotonic()
            _read_all(sock)
            waited = time.monotonic() - started
        finally:
            sock.close()
        assert waited < 5, f"{url}: a silent connection stayed open {waited:.1f} s"


async def test_only_the_verified_credential_is_forwarded(pool: Any, tenant_stack: TenantStack, issuer: JwtIssuer,
                                                         own_issuer: JwtIssuer, router: TenantRouter) -> None:
    """Authn checks Teleport-Jwt-Assertion first; the upstream forwards
    Authorization. A valid Teleport token plus an unchecked
    `Authorization: Bearer junk` must not carry the junk upstream."""
    groups = {f"{own_issuer.issuer}#team-a": ["tenant-a"], f"{issuer.issuer}#team-a": ["tenant-a"]}
    srv = _layered(pool, "forward-verified-only", lambda: layered_config(
        tenant_stack.url, groups=groups,
        issuers=[issuer_entry(own_issuer, header="Teleport-Jwt-Assertion"), issuer_entry(issuer)],
        upstream_extra={"auth": {"kind": "forward", "header": "Authorization", "to": "X-Forwarded-Credential"}}),
        own_issuer)
    teleport = own_issuer.mint(sub="teleport-user", groups=["team-a"], aud=srv.resource)
    mark = router.mark()
    async with authed(srv.mcp_url, {"Teleport-Jwt-Assertion": teleport, "Authorization": "Bearer junk"}) as c:
        e = (await c.call("execute_query", {"query": "up"})).error()
    assert "not sent" in e.text and "verified" in e.text, e.describe()
    assert router.since(mark) == [], [(q.path, q.headers.get("x-forwarded-credential")) for q in router.since(mark)]
    good = issuer.mint(sub="oidc-user", groups=["team-a"], aud=srv.resource)
    async with authed(srv.mcp_url, bearer(good)) as c:
        (await c.call("execute_query", {"query": "up"})).ok()
    sent = {q.headers.get("x-forwarded-credential") for q in router.since(mark)}
    assert sent == {f"Bearer {good}"}, sent
