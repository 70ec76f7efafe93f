"""Resource-server authentication ([layers.authn], [layers.audience]) end to
end: the test issuer (jwt_issuer.py) signs tokens, mcp-prometheus checks them
in front of the tenant router (tenant_router.py, a stand-in for Mimir).

Every refusal is also checked at the tenant router: a refused call must not
reach the upstream at all.
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from authasserts import assert_no_upstream, assert_refused, assert_tenants_within
from authstack import LayeredServer, TenantStack, _layered, issuer_entry, issuer_fixture, layered_config
from constants import ALICE_TENANTS, BOB_TENANTS, PRM_PATH
from httputil import http_get
from jwt_issuer import JwtIssuer
from mcpserver import run_cli
from promtext import metric_names, metric_sum
from rawmcp import authed, bearer, raw_call, raw_initialize, raw_tool_result
from tenant_router import TenantRouter

QUERY = {"query": "up"}


def query_tenants(result: dict[str, Any]) -> set[str]:
    """The `tenant` target label of every series of an execute_query result."""
    return {s["metric"].get("tenant", "?") for s in result["structuredContent"]["data"]["result"]}


# --------------------------------------------------------------------------
# the attack matrix: each must be 401 and must not reach the upstream
# --------------------------------------------------------------------------

def _attacks(srv: LayeredServer) -> dict[str, tuple[dict[str, str], str | None, str | None]]:
    """name -> (headers, expected challenge error, error_description regex)."""
    i = srv.issuer
    assert i is not None
    kw: dict[str, Any] = {"aud": srv.resource, "groups": ["team-a"], "sub": "mallory"}
    good = srv.token(["team-a"])
    return {
        "no-token": ({}, None, None),
        "alg-none": (bearer(i.attack_alg_none(**kw)), "invalid_token", r"algorithm|well-formed|malformed"),
        "hs256-with-rsa-public-key": (bearer(i.attack_hs256_with_public_key(**kw)), "invalid_token", r"algorithm"),
        "expired": (bearer(i.attack_expired(**kw)), "invalid_token", r"expired"),
        "not-yet-valid": (bearer(i.attack_not_yet_valid(**kw)), "invalid_token", r"not (yet )?valid|nbf|future"),
        "wrong-issuer": (bearer(i.attack_wrong_issuer(**kw)), "invalid_token", r"issuer"),
        "wrong-audience": (bearer(i.attack_wrong_audience(**{**kw, "aud": None})), "invalid_token", r"audience"),
        "unknown-kid": (bearer(i.attack_unknown_kid(**kw)), "invalid_token", r"key"),
        "tampered-payload": (bearer(i.attack_tampered(**kw)), "invalid_token", r"signature"),
        "oversized": (bearer(i.attack_oversized(**kw)), "invalid_token", r"larger|too large|size|bytes"),
        "valid-token-in-wrong-header": ({"Teleport-Jwt-Assertion": good}, None, None),
        "valid-token-without-bearer-scheme": ({"Authorization": good}, None, None),
        "valid-token-with-basic-scheme": ({"Authorization": f"Basic {good}"}, None, None),
    }


ATTACK_IDS = [
    "no-token", "alg-none", "hs256-with-rsa-public-key", "expired", "not-yet-valid", "wrong-issuer",
    "wrong-audience", "unknown-kid", "tampered-payload", "oversized", "valid-token-in-wrong-header",
    "valid-token-without-bearer-scheme", "valid-token-with-basic-scheme",
]


@pytest.mark.parametrize("attack", ATTACK_IDS)
def test_attack_is_refused_before_the_upstream(authn_server: LayeredServer, router: TenantRouter,
                                               attack: str) -> None:
    headers, error, description = _attacks(authn_server)[attack]
    mark = router.mark()
    r = raw_call(authn_server.mcp_url, "execute_query", QUERY, headers)
    assert_refused(r, authn_server, 401, error, description)
    assert_no_upstream(router, mark, attack)


def test_attack_matrix_is_complete(authn_server: LayeredServer) -> None:
    assert set(_attacks(authn_server)) == set(ATTACK_IDS)


def test_good_token_reaches_the_upstream(authn_server: LayeredServer, router: TenantRouter) -> None:
    """The control for the matrix: the same raw request with a good token
    does reach the tenant router."""
    mark = router.mark()
    r = raw_call(authn_server.mcp_url, "execute_query", QUERY, bearer(authn_server.token(["team-a"])))
    res = raw_tool_result(r)
    assert not res.get("isError"), res
    assert query_tenants(res) == ALICE_TENANTS, res
    assert assert_tenants_within(router, mark, ALICE_TENANTS, "alice") == ALICE_TENANTS


def test_every_mcp_method_needs_a_token(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    r = raw_initialize(authn_server.mcp_url)
    assert_refused(r, authn_server, 401, None)
    r = raw_initialize(authn_server.mcp_url, bearer(authn_server.issuer.attack_expired(aud=authn_server.resource)))
    assert_refused(r, authn_server, 401, "invalid_token", "expired")
    assert_no_upstream(router, mark, "initialize")


def test_jwks_on_loopback_refused_without_allow_private_urls(pool: Any, tenant_stack: TenantStack,
                                                             issuer: JwtIssuer, router: TenantRouter) -> None:
    """allow_private_urls = false: an https issuer whose JWKS resolves to
    127.0.0.1 is never fetched, and its tokens get 401."""
    iss_url = f"https://127.0.0.1:{issuer.port}"
    srv = _layered(pool, "authn-private-refused", lambda: layered_config(
        tenant_stack.url,
        issuers=[issuer_entry(iss_url, jwks_url=f"https://127.0.0.1:{issuer.port}/jwks", allow_private_urls=False)]),
        issuer)
    fetches = issuer.fetch_count()
    mark = router.mark()
    tok = issuer.mint(claims=issuer.claims(aud=srv.resource, groups=["team-a"], iss=iss_url))
    r = raw_call(srv.mcp_url, "execute_query", QUERY, bearer(tok))
    assert_refused(r, srv, 401, "invalid_token")
    assert_no_upstream(router, mark, "loopback JWKS")
    assert issuer.fetch_count() == fetches, "the loopback JWKS must not even be fetched"


def test_plain_http_issuer_needs_allow_private_urls(workdir: Path, issuer: JwtIssuer) -> None:
    """An http:// issuer without allow_private_urls is a config error, named."""
    cfg = layered_config("http://127.0.0.1:1/prometheus",
                         issuers=[issuer_entry(issuer, allow_private_urls=False)])
    path = cfg.write(workdir / "servers" / "authn-http-issuer.toml")
    p = run_cli(["check-config", "--config", path])
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"accepted:\n{out}"
    assert "allow_private_urls" in out and "issuers" in out, out


# --------------------------------------------------------------------------
# good tokens
# --------------------------------------------------------------------------

@pytest.mark.anyio
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_good_token_sdk(authn_server: LayeredServer, router: TenantRouter, alg: str, mode: str) -> None:
    """A real MCP client (SDK) with an RS256 / ES256 token, stateless and
    with a session: alice reads tenant-a only."""
    mark = router.mark()
    async with authed(authn_server.mcp_url, bearer(authn_server.token(["team-a"], alg=alg, sub="alice")),
                      mode) as c:
        tools = await c.list_tools()
        assert any(t.name == "execute_query" for t in tools)
        r = (await c.call("execute_query", QUERY)).ok()
        assert {s["metric"]["tenant"] for s in r.data["result"]} == ALICE_TENANTS, r.describe()
    assert assert_tenants_within(router, mark, ALICE_TENANTS, "alice") == ALICE_TENANTS


def test_token_at_public_url_audience(authn_server: LayeredServer) -> None:
    """The default audiences are public_url + mcp_path and public_url."""
    for aud in (authn_server.resource, authn_server.public_url, [authn_server.public_url, "other"]):
        r = raw_call(authn_server.mcp_url, "execute_query", QUERY, bearer(authn_server.token(["team-a"], aud=aud)))
        assert r.status == 200, f"aud={aud!r}: HTTP {r.status} {r.text[:300]}"


def test_key_rotation_refetches_once(pool: Any, tenant_stack: TenantStack, router: TenantRouter) -> None:
    """After a rotation, a token with the new kid is accepted after one JWKS
    refetch (the refetch interval is 2 s here; the default is 30 s)."""
    iss = JwtIssuer("rotation")
    try:
        srv = _layered(pool, "authn-rotation",
                       lambda: layered_config(tenant_stack.url,
                                              issuers=[issuer_entry(iss, jwks_min_refetch_interval="2s")]), iss)
        r = raw_call(srv.mcp_url, "execute_query", QUERY, bearer(srv.token(["team-a"])))
        assert r.status == 200, r.text[:300]
        before = iss.fetch_count()
        assert before >= 1
        iss.rotate()
        token = srv.token(["team-a"])
        t0 = time.monotonic()
        attempts = []
        while True:
            r = raw_call(srv.mcp_url, "execute_query", QUERY, bearer(token))
            attempts.append(r.status)
            if r.status == 200 or time.monotonic() - t0 > 8:
                break
            time.sleep(0.25)
        assert r.status == 200, f"new kid never accepted; attempts {attempts}: {r.text[:300]}"
        grew = iss.fetch_count() - before
        print(f"rotation: new kid accepted after {time.monotonic() - t0:.2f}s, attempts {attempts}, "
              f"{grew} JWKS fetch(es)")
        assert 1 <= grew <= 2, f"JWKS fetched {grew} times for one rotation (attempts {attempts})"
    finally:
        iss.close()


def test_unknown_kids_do_not_cause_a_fetch_storm(pool: Any, tenant_stack: TenantStack, router: TenantRouter) -> None:
    iss = JwtIssuer("storm")
    try:
        srv = _layered(pool, "authn-storm", lambda: layered_config(tenant_stack.url, issuers=[issuer_entry(iss)]),
                       iss)
        before = iss.fetch_count()
        tokens = [iss.attack_unknown_kid(aud=srv.resource, groups=["team-a"]) for _ in range(20)]
        mark = router.mark()
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as ex:
            statuses = list(ex.map(lambda t: raw_call(srv.mcp_url, "execute_query", QUERY, bearer(t)).status, tokens))
        assert statuses == [401] * 20, statuses
        grew = iss.fetch_count() - before
        print(f"storm: 20 unknown kids -> {grew} JWKS fetch(es)")
        assert grew <= 2, f"20 unknown kids caused {grew} JWKS fetches"
        assert_no_upstream(router, mark, "unknown kids")
        # and a good token still works right after (the keys were fetched once)
        r = raw_call(srv.mcp_url, "execute_query", QUERY, bearer(srv.token(["team-a"])))
        assert r.status == 200, r.text[:300]
    finally:
        iss.close()


# --------------------------------------------------------------------------
# Teleport style: raw JWT in Teleport-Jwt-Assertion, groups in traits.groups
# --------------------------------------------------------------------------

teleport_issuer = issuer_fixture("teleport")


@pytest.fixture(scope="module")
def teleport_server(pool: Any, tenant_stack: TenantStack, teleport_issuer: JwtIssuer) -> LayeredServer:
    return _layered(pool, "authn-teleport", lambda: layered_config(
        tenant_stack.url,
        issuers=[issuer_entry(teleport_issuer, header="Teleport-Jwt-Assertion", groups_claim="traits.groups")],
        upstream_extra={"auth": {"kind": "forward", "header": "Teleport-Jwt-Assertion", "to": "X-Grafana-JWT"}},
    ), teleport_issuer, wait_ready=False)  # readiness: see test_forward_mode_server_becomes_ready


def test_forward_mode_server_becomes_ready(teleport_server: LayeredServer) -> None:
    """/readyz has no inbound request to forward credentials from; a healthy
    upstream (the router answers /-/ready without credentials) must still
    make the server ready, else a Teleport deployment never becomes Ready."""
    r = http_get(teleport_server.obs_url + "/readyz", 5)
    assert r.status == 200, f"/readyz: HTTP {r.status}: {r.text[:500]}"


def teleport_token(srv: LayeredServer, groups: list[str], **kw: Any) -> str:
    assert srv.issuer is not None
    return srv.issuer.mint(aud=srv.resource, sub="bob@teleport", roles=["access", "editor"],
                           traits={"groups": groups, "logins": ["bob"]}, username="bob", **kw)


@pytest.mark.anyio
async def test_teleport_header_and_traits_groups(teleport_server: LayeredServer, router: TenantRouter) -> None:
    token = teleport_token(teleport_server, ["team-b"])
    mark = router.mark()
    async with authed(teleport_server.mcp_url, {"Teleport-Jwt-Assertion": token}) as c:
        r = (await c.call("execute_query", QUERY)).ok()
        assert {s["metric"]["tenant"] for s in r.data["result"]} == BOB_TENANTS, r.describe()
    reqs = router.since(mark)
    assert reqs and assert_tenants_within(router, mark, BOB_TENANTS, "teleport bob") == BOB_TENANTS
    # forward mode: the inbound assertion goes upstream, renamed
    assert all(q.headers.get("x-grafana-jwt") == token for q in reqs), [q.headers for q in reqs]
    assert all("teleport-jwt-assertion" not in q.headers for q in reqs), [q.headers for q in reqs]


def test_teleport_token_refused_in_authorization(teleport_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    r = raw_call(teleport_server.mcp_url, "execute_query", QUERY, bearer(teleport_token(teleport_server, ["team-b"])))
    assert r.status == 401, r.text[:300]
    assert_no_upstream(router, mark, "teleport token in Authorization")


def test_teleport_bad_assertion(teleport_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    bad = teleport_server.issuer.attack_expired(aud=teleport_server.resource, traits={"groups": ["team-b"]})
    r = raw_call(teleport_server.mcp_url, "execute_query", QUERY, {"Teleport-Jwt-Assertion": bad})
    assert_refused(r, teleport_server, 401, "invalid_token", "expired")
    assert_no_upstream(router, mark, "expired teleport assertion")


def test_roles_claim(pool: Any, tenant_stack: TenantStack, issuer: JwtIssuer, router: TenantRouter) -> None:
    srv = _layered(pool, "authn-roles", lambda: layered_config(
        tenant_stack.url, issuers=[issuer_entry(issuer, groups_claim="roles")]), issuer)
    mark = router.mark()
    tok = issuer.mint(aud=srv.resource, roles=["team-a", "unmapped"], groups=["team-b"])
    res = raw_tool_result(raw_call(srv.mcp_url, "execute_query", QUERY, bearer(tok)))
    assert not res.get("isError") and query_tenants(res) == ALICE_TENANTS, res
    assert assert_tenants_within(router, mark, ALICE_TENANTS, "roles claim") == ALICE_TENANTS


# --------------------------------------------------------------------------
# trusted audiences ([layers.audience])
# --------------------------------------------------------------------------

def test_trusted_audience_accepted_only_when_listed(authn_server: LayeredServer, trusted_server: LayeredServer,
                                                    router: TenantRouter) -> None:
    i = authn_server.issuer
    tok = i.mint(aud="muster-client", groups=["team-b"], sub="bob", azp="muster-client")
    mark = router.mark()
    r = raw_call(authn_server.mcp_url, "execute_query", QUERY, bearer(tok))
    assert_refused(r, authn_server, 401, "invalid_token", "audience")
    assert_no_upstream(router, mark, "aud=muster-client without the audience layer")
    res = raw_tool_result(raw_call(trusted_server.mcp_url, "execute_query", QUERY, bearer(tok)))
    assert not res.get("isError") and query_tenants(res) == BOB_TENANTS, res
    assert_tenants_within(router, mark, BOB_TENANTS, "trusted bob")
    # a client ID that is not trusted stays out
    mark = router.mark()
    other = i.mint(aud="some-other-client", groups=["team-b"])
    assert_refused(raw_call(trusted_server.mcp_url, "execute_query", QUERY, bearer(other)), trusted_server, 401,
                   "invalid_token", "audience")
    assert_no_upstream(router, mark, "untrusted client ID")


def test_env_trusted_audiences_and_group_map(pool: Any, tenant_stack: TenantStack, issuer: JwtIssuer,
                                             router: TenantRouter) -> None:
    """OAUTH_TRUSTED_AUDIENCES and TENANCY_STATIC_GROUP_MAP from the environment."""
    env = {"OAUTH_TRUSTED_AUDIENCES": "other-client, muster-client",
           "TENANCY_STATIC_GROUP_MAP": '{"team-x": ["tenant-c"]}'}
    srv = _layered(pool, "authn-env", lambda: layered_config(
        tenant_stack.url, issuers=[issuer_entry(issuer)], trusted=[], groups={}), issuer, env=env)
    mark = router.mark()
    tok = issuer.mint(aud="muster-client", groups=["team-x"])
    res = raw_tool_result(raw_call(srv.mcp_url, "execute_query", QUERY, bearer(tok)))
    assert not res.get("isError") and query_tenants(res) == {"tenant-c"}, res
    assert assert_tenants_within(router, mark, {"tenant-c"}, "env group map") == {"tenant-c"}


# --------------------------------------------------------------------------
# required scopes
# --------------------------------------------------------------------------

def test_required_scope(scope_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    for extra in ({}, {"scope": "openid mcp:write"}, {"scp": ["mcp:write"]}):
        r = raw_call(scope_server.mcp_url, "execute_query", QUERY, bearer(scope_server.token(["team-a"], **extra)))
        ch = assert_refused(r, scope_server, 403, "insufficient_scope")
        assert ch.get("scope") == "mcp:read", ch
    assert_no_upstream(router, mark, "insufficient scope")
    for extra in ({"scope": "openid mcp:read"}, {"scp": ["mcp:read", "x"]}):
        r = raw_call(scope_server.mcp_url, "execute_query", QUERY, bearer(scope_server.token(["team-a"], **extra)))
        res = raw_tool_result(r)
        assert not res.get("isError") and query_tenants(res) == ALICE_TENANTS, (extra, res)


def test_missing_token_challenge_names_required_scope(scope_server: LayeredServer) -> None:
    ch = assert_refused(raw_call(scope_server.mcp_url, "execute_query", QUERY), scope_server, 401, None)
    assert ch.get("scope") == "mcp:read", ch


# --------------------------------------------------------------------------
# discovery and unauthenticated endpoints
# --------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", "/mcp"])
def test_protected_resource_metadata(authn_server: LayeredServer, suffix: str) -> None:
    r = http_get(authn_server.public_url + PRM_PATH + suffix)
    assert r.status == 200, f"{r.status} {r.text[:300]}"
    assert "application/json" in r.headers.get("content-type", ""), r.headers
    md = r.json()
    assert md["resource"] == authn_server.resource, md
    assert md["authorization_servers"] == [authn_server.issuer.issuer], md
    assert md["bearer_methods_supported"] == ["header"], md


def test_resource_metadata_url_from_challenge_resolves(authn_server: LayeredServer) -> None:
    r = raw_call(authn_server.mcp_url, "execute_query", QUERY)
    ch = assert_refused(r, authn_server, 401, None)
    md = http_get(ch["resource_metadata"])
    assert md.status == 200 and md.json()["resource"] == authn_server.resource, md.text[:300]


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz"])
def test_observability_endpoints_need_no_token(authn_server: LayeredServer, path: str) -> None:
    r = http_get(authn_server.obs_url + path)
    assert r.status == 200, f"{path}: {r.status} {r.text[:300]}"


def test_authn_failure_metrics(authn_server: LayeredServer) -> None:
    before = authn_server.metrics()
    i = authn_server.issuer
    raw_call(authn_server.mcp_url, "execute_query", QUERY)
    raw_call(authn_server.mcp_url, "execute_query", QUERY, bearer(i.attack_expired(aud=authn_server.resource)))
    raw_call(authn_server.mcp_url, "execute_query", QUERY, bearer(i.attack_tampered(aud=authn_server.resource)))
    raw_call(authn_server.mcp_url, "execute_query", QUERY, bearer(authn_server.token(["team-a"])))
    after = authn_server.metrics()
    name = "mcp_prometheus_authn_failures_total"
    assert name in metric_names(after), f"no {name} in /metrics"
    for reason in ("missing", "expired", "signature"):
        grew = metric_sum(after, name, reason=reason) - metric_sum(before, name, reason=reason)
        assert grew >= 1, f"{name}{{reason={reason!r}}} grew by {grew}"
    assert "mcp_prometheus_http_requests_total" in metric_names(after), sorted(metric_names(after))
