"""Fixtures and helpers for the authn / audience / tenancy / truncation tests.

Registered by conftest.py. Session-wide, started on first use:

* `tenant_stack`  - three Prometheus processes (tenant-a/b/c) behind the
                    `TenantRouter` (tenant_router.py), a stand-in for Mimir;
* `issuer`        - the test JWT issuer (jwt_issuer.py);
* servers         - mcp-prometheus with `[layers.*]` configs, one process per
                    distinct config (the ServerPool of conftest.py).

Raw MCP calls with any headers are in rawmcp.py, the shared assertions in
authasserts.py, the constants (GROUP_MAP, ...) in constants.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from constants import GROUP_MAP, MIMIR_UPSTREAM, PRM_PATH
from httputil import HttpResponse, free_port, http_get, http_post, local_url
from jwt_issuer import JwtIssuer
from mcpserver import ServerView, start_mcp_server
from rawmcp import BASE_HEADERS, MODERN, MODERN_META
from serverconfig import ServerConfig, Upstream
from tenant_router import TENANTS, TenantPrometheus, TenantRouter, start_tenant_proms


# --------------------------------------------------------------------------
# server configs
# --------------------------------------------------------------------------

def issuer_fixture(name: str) -> Any:
    """A module-scoped fixture: a test issuer of the module's own (other
    modules rotate the shared issuer's keys)."""
    @pytest.fixture(scope="module")
    def fixture() -> Iterator[JwtIssuer]:
        i = JwtIssuer(name)
        yield i
        i.close()
    return fixture


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
    public_url = local_url(port)
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
class LayeredServer(ServerView):
    """An mcp-prometheus process with layers, plus what tests need to know."""

    issuer: JwtIssuer | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def resource_metadata_url(self) -> str:
        return self.public_url + PRM_PATH + "/mcp"

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
        srv = start_mcp_server(pool.workdir, name, make(), wait_ready=wait_ready, env=env)
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
def override_org_server(pool: Any, tenant_stack: TenantStack) -> LayeredServer:
    """No tenancy layer; a static org_id the caller may override (allow_org_id_override)."""
    return _layered(pool, "no-tenancy-override-org",
                    lambda: layered_config(tenant_stack.url, tenancy=None,
                                           upstream_extra={"org_id": "tenant-c", "allow_org_id_override": True}))


@pytest.fixture(scope="session")
def static_org_server(pool: Any, tenant_stack: TenantStack) -> LayeredServer:
    """No tenancy layer, but the upstream has a static org_id."""
    return _layered(pool, "no-tenancy-static-org",
                    lambda: layered_config(tenant_stack.url, tenancy=None, upstream_extra={"org_id": "tenant-c"}))


# --------------------------------------------------------------------------
# raw JSON-RPC requests of any method (policy / rate-limit tests)
# --------------------------------------------------------------------------

def raw_rpc(url: str, method: str, params: dict[str, Any] | None = None,
            headers: dict[str, str] | None = None) -> HttpResponse:
    """One stateless (2026-07-28) JSON-RPC request of any method (tools/list,
    ...), no SDK in between: the raw HTTP answer, e.g. for `cacheScope` or a
    429. `raw_call` in rawmcp.py is the tools/call special case."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**(params or {}), "_meta": MODERN_META}}
    h = {**BASE_HEADERS, "MCP-Protocol-Version": MODERN, "Mcp-Method": method, **(headers or {})}
    return http_post(url, json.dumps(body).encode(), h)
