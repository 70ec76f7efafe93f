"""Fixtures and helpers for the authn / audience / tenancy / truncation tests.

Loaded by conftest.py (`pytest_plugins`). Session-wide, started on first use:

* `tenant_stack`  - three Prometheus processes (tenant-a/b/c) behind the
                    `TenantRouter` (tenant_router.py), a stand-in for Mimir;
* `issuer`        - the test JWT issuer (jwt_issuer.py);
* `oidc_provider` - npm oidc-provider (tests/oidc/provider.mjs) for the real
                    login flow (oidc_login.py);
* servers         - mcp-prometheus with `[layers.*]` configs, one process per
                    distinct config (the ServerPool of conftest.py).

Helpers: `raw_call()` posts one stateless (2026-07-28) `tools/call` with any
headers and returns the raw HTTP answer (for 401/403 checks); `authed()`
opens an SDK client connection sending the given headers on every request.
"""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest

import harness
from harness import HttpResponse, McpServer, ServerConfig, Upstream, free_port, http_get, http_post
from jwt_issuer import JwtIssuer
from mcpclient import HTTP_AUTO_JSON, HTTP_LEGACY_JSON, Conn, _single_leaf
from tenant_router import TENANTS, TenantPrometheus, TenantRouter, start_tenant_proms

GROUP_MAP = {"team-a": ["tenant-a"], "team-b": ["tenant-b", "tenant-c"]}
ALICE_TENANTS = {"tenant-a"}
BOB_TENANTS = {"tenant-b", "tenant-c"}
PRM_PATH = "/.well-known/oauth-protected-resource"
MIMIR_UPSTREAM = "mimir"


# --------------------------------------------------------------------------
# raw HTTP and SDK access with arbitrary headers
# --------------------------------------------------------------------------

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
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from mcpclient import CALL_TIMEOUT

    spec = HTTP_AUTO_JSON if mode == "auto" else HTTP_LEGACY_JSON
    try:
        http = create_mcp_http_client(headers=headers)
        async with http:
            async with Client(streamable_http_client(url, http_client=http, max_sse_event_size=None), mode=mode,
                              read_timeout_seconds=CALL_TIMEOUT) as client:
                yield Conn(client, spec, "")
    except BaseExceptionGroup as eg:
        leaf = _single_leaf(eg)
        if leaf is None:
            raise
        raise leaf from None


# --------------------------------------------------------------------------
# WWW-Authenticate parsing
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# server configs
# --------------------------------------------------------------------------

def issuer_entry(iss: JwtIssuer | str, **over: Any) -> dict[str, Any]:
    """One `[[layers.authn.issuers]]` entry for the test issuer (loopback)."""
    if isinstance(iss, JwtIssuer):
        d: dict[str, Any] = {"issuer": iss.issuer, "jwks_url": iss.jwks_url}
    else:
        d = {"issuer": iss}
    d |= {"algorithms": ["RS256", "ES256"], "groups_claim": "groups", "allow_private_urls": True}
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


# The optional layers every "full stack" config switches on.
COMMON_LAYERS: dict[str, dict[str, Any]] = {
    "truncate": {"enabled": True, "max_bytes": 50000, "max_series": 500, "allow_unlimited": False,
                 "hard_ceiling_bytes": 5000000},
    "metrics": {"enabled": True},
    "trace": {"enabled": True},
    "limits": {"enabled": True, "max_body_bytes": 1048576, "request_timeout": "60s",
               "max_concurrent_requests": 256},
}


def layered_config(upstream_url: str, *, issuers: list[dict[str, Any]] | None = None,
                   audiences: list[str] | None = None, required_scopes: list[str] | None = None,
                   trusted: list[str] | None = None, tenancy: str | None = "group-map",
                   groups: dict[str, list[str]] | None = None, static_tenants: list[str] | None = None,
                   upstream_extra: dict[str, Any] | None = None, upstream_timeout: str = "10s",
                   layers: dict[str, dict[str, Any]] | None = None, json_response: bool = True,
                   stateful_sessions: bool = True, listen_port: int | None = None) -> ServerConfig:
    """A server config with authn (when `issuers`), audience (when `trusted`),
    tenancy (mode `tenancy`, None = no table) and the common layers."""
    port = listen_port or free_port()
    public_url = f"http://127.0.0.1:{port}"
    lay: dict[str, dict[str, Any]] = {}
    if issuers is not None:
        authn: dict[str, Any] = {"enabled": True, "leeway": "30s", "max_token_bytes": 8192}
        if audiences is not None:
            authn["audiences"] = audiences
        if required_scopes is not None:
            authn["required_scopes"] = required_scopes
        authn["issuers"] = issuers
        lay["authn"] = authn
    if trusted is not None:
        lay["audience"] = {"enabled": True, "trusted": trusted}
    if tenancy is not None:
        t: dict[str, Any] = {"enabled": True, "mode": tenancy, "max_tenants_per_request": 16, "cache_ttl": "60s"}
        if static_tenants is not None:
            t["tenants"] = static_tenants
        if tenancy == "group-map":
            t["groups"] = groups if groups is not None else GROUP_MAP
        lay["tenancy"] = t
    for k, v in COMMON_LAYERS.items():
        lay[k] = dict(v)
    for k, v in (layers or {}).items():
        lay[k] = {**lay.get(k, {}), **v}
    return ServerConfig(
        [Upstream(MIMIR_UPSTREAM, upstream_url, upstream_timeout, extra=upstream_extra or {})],
        listen_port=port,
        json_response=json_response,
        stateful_sessions=stateful_sessions,
        server_extra={"public_url": public_url},
        layers=lay,
    )


@dataclass
class LayeredServer:
    """An mcp-prometheus process with layers, plus what tests need to know."""

    srv: McpServer
    issuer: JwtIssuer | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def mcp_url(self) -> str:
        return self.srv.mcp_url

    @property
    def obs_url(self) -> str:
        return self.srv.obs_url

    @property
    def public_url(self) -> str:
        return self.srv.config.server_extra["public_url"]

    @property
    def resource(self) -> str:
        """The default audience: public_url + mcp_path."""
        return self.public_url + "/mcp"

    @property
    def resource_metadata_url(self) -> str:
        return self.public_url + PRM_PATH + "/mcp"

    @property
    def proc(self) -> harness.ManagedProcess:
        return self.srv.proc

    def token(self, groups: list[str] | None = None, *, alg: str = "RS256", sub: str = "user-1",
              **kw: Any) -> str:
        """A good token of this server's issuer, for its resource."""
        assert self.issuer is not None
        kw.setdefault("aud", self.resource)
        return self.issuer.mint(alg=alg, sub=sub, groups=groups, **kw)

    def metrics(self) -> str:
        r = http_get(self.obs_url + "/metrics", 5)
        assert r.status == 200, f"/metrics: HTTP {r.status}"
        return r.text


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set size) of a live process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


def current_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


# --------------------------------------------------------------------------
# session fixtures
# --------------------------------------------------------------------------

@dataclass
class TenantStack:
    proms: dict[str, TenantPrometheus]
    router: TenantRouter

    @property
    def url(self) -> str:
        return self.router.url


@pytest.fixture(scope="session")
def tenant_stack(workdir: Path) -> Iterator[TenantStack]:
    proms = start_tenant_proms(workdir, TENANTS)
    router = TenantRouter({t: p.url for t, p in proms.items()})
    try:
        yield TenantStack(proms, router)
    finally:
        router.close()
        for p in proms.values():
            p.proc.stop()


@pytest.fixture(scope="session")
def router(tenant_stack: TenantStack) -> TenantRouter:
    return tenant_stack.router


@pytest.fixture(scope="session")
def issuer() -> Iterator[JwtIssuer]:
    i = JwtIssuer("main")
    yield i
    i.close()


def _layered(pool: Any, name: str, make: Any, issuer: JwtIssuer | None = None, env: dict[str, str] | None = None,
             wait_ready: bool = True) -> LayeredServer:
    """Start (once) through conftest's ServerPool; env is passed to the process."""
    if env is None:
        return LayeredServer(pool.get(name, make, wait_ready=wait_ready), issuer)
    srv = pool.servers.get(name)
    if srv is None or srv.proc.poll() is not None:
        srv = harness.start_mcp_server(pool.workdir, name, make(), wait_ready=wait_ready, env=env)
        pool.servers[name] = srv
    return LayeredServer(srv, issuer)


@pytest.fixture(scope="session")
def authn_server(pool: Any, tenant_stack: TenantStack, issuer: JwtIssuer) -> LayeredServer:
    """authn (the test issuer), group-map tenancy, all common layers."""
    return _layered(pool, "authn-main", lambda: layered_config(tenant_stack.url, issuers=[issuer_entry(issuer)]),
                    issuer)


@pytest.fixture(scope="session")
def trusted_server(pool: Any, tenant_stack: TenantStack, issuer: JwtIssuer) -> LayeredServer:
    """Like authn_server, plus the audience layer trusting `muster-client`."""
    return _layered(pool, "authn-trusted",
                    lambda: layered_config(tenant_stack.url, issuers=[issuer_entry(issuer)],
                                           trusted=["muster-client"]), issuer)


@pytest.fixture(scope="session")
def scope_server(pool: Any, tenant_stack: TenantStack, issuer: JwtIssuer) -> LayeredServer:
    return _layered(pool, "authn-scope",
                    lambda: layered_config(tenant_stack.url, issuers=[issuer_entry(issuer)],
                                           required_scopes=["mcp:read"]), issuer)


@pytest.fixture(scope="session")
def static_server(pool: Any, tenant_stack: TenantStack) -> LayeredServer:
    """No authn; static tenancy: everyone reads tenant-a."""
    return _layered(pool, "static-tenancy",
                    lambda: layered_config(tenant_stack.url, tenancy="static", static_tenants=["tenant-a"]))


@pytest.fixture(scope="session")
def plain_router_server(pool: Any, tenant_stack: TenantStack) -> LayeredServer:
    """No authn, no tenancy table at all, upstream = the tenant router."""
    return _layered(pool, "no-tenancy", lambda: layered_config(tenant_stack.url, tenancy=None))


@pytest.fixture(scope="session")
def static_org_server(pool: Any, tenant_stack: TenantStack) -> LayeredServer:
    """No tenancy layer, but the upstream has a static org_id."""
    return _layered(pool, "no-tenancy-static-org",
                    lambda: layered_config(tenant_stack.url, tenancy=None, upstream_extra={"org_id": "tenant-c"}))


# --------------------------------------------------------------------------
# /metrics parsing
# --------------------------------------------------------------------------

_METRIC_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        out.append((m.group("name"), dict(_LABEL.findall(m.group("labels") or "")), value))
    return out


def metric_sum(text: str, name: str, **labels: str) -> float:
    return sum(v for n, ls, v in parse_metrics(text) if n == name and all(ls.get(k) == x for k, x in labels.items()))


def metric_names(text: str) -> set[str]:
    return {n for n, _, _ in parse_metrics(text)}


# --------------------------------------------------------------------------
# assertions shared by the authn / tenancy tests
# --------------------------------------------------------------------------

def assert_no_upstream(router: TenantRouter, mark: int, what: str) -> None:
    reqs = router.since(mark)
    assert not reqs, (f"{what}: the upstream must not be called, but the tenant router saw "
                      f"{[(r.method, r.path, r.org_id) for r in reqs]}")


def assert_tenants_within(router: TenantRouter, mark: int, allowed: set[str], what: str) -> set[str]:
    """No request since `mark` named a tenant outside `allowed`; returns the
    tenants seen."""
    reqs = router.since(mark)
    seen = {t for r in reqs for t in r.tenants}
    bad = [(r.path, r.org_id) for r in reqs if not set(r.tenants) <= allowed]
    assert not bad, f"{what}: upstream requests for tenants outside {sorted(allowed)}: {bad}"
    return seen


def assert_reads_tenants(mcp_url: str, router: TenantRouter, access_token: str, allowed: set[str],
                         who: str) -> None:
    """`execute_query up` with the token answers exactly the `allowed`
    tenants' series, and no upstream request named another tenant."""
    mark = router.mark()
    res = raw_tool_result(raw_call(mcp_url, "execute_query", {"query": "up"}, bearer(access_token)))
    assert not res.get("isError"), f"{who}: {res}"
    got = {s["metric"].get("tenant") for s in res["structuredContent"]["data"]["result"]}
    assert got == allowed, f"{who}: tenants {got}, want {allowed}"
    assert assert_tenants_within(router, mark, allowed, who) == allowed


def assert_refused(r: HttpResponse, srv: LayeredServer, status: int = 401, error: str | None = "invalid_token",
                   description: str | None = None) -> dict[str, str]:
    """An authn refusal: status, Bearer challenge with resource_metadata, and
    (for bad tokens) error / error_description in the challenge and the body."""
    assert r.status == status, f"expected HTTP {status}, got {r.status}: {r.headers} {r.text[:500]}"
    ch = www_authenticate(r)
    assert ch.get("_scheme", "").lower() == "bearer", f"WWW-Authenticate: {r.headers.get('www-authenticate')!r}"
    assert ch.get("resource_metadata") == srv.resource_metadata_url, (
        f"resource_metadata {ch.get('resource_metadata')!r} != {srv.resource_metadata_url!r}")
    if error is None:
        assert "error" not in ch, f"no credentials: the challenge should carry no error code (RFC 6750 3.1): {ch}"
        return ch
    assert ch.get("error") == error, f"challenge error {ch.get('error')!r} != {error!r}: {ch}"
    body = json_body(r)
    assert body.get("error") == error, body
    desc = body.get("error_description")
    assert isinstance(desc, str) and desc.strip(), body
    if description:
        assert re.search(description, desc, re.I), f"error_description {desc!r} does not match /{description}/"
        assert re.search(description, ch.get("error_description", ""), re.I), (
            f"challenge error_description {ch.get('error_description')!r} does not match /{description}/")
    return ch
