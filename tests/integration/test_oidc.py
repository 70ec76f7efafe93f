"""A real OpenID Provider (npm oidc-provider, tests/oidc/provider.mjs) in
front of mcp-prometheus: users log in headlessly (authorization code + PKCE,
oidc_login.py) and use their ID token (aud = the client ID, trusted through
[layers.audience]) or their access token (a JWT for our resource).

The issuer entry has no jwks_url: the server discovers it from
{issuer}/.well-known/openid-configuration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from authasserts import assert_no_upstream, assert_refused, assert_tenants_within
from authstack import LayeredServer, TenantStack, _layered, issuer_entry, layered_config
from constants import ALICE_TENANTS, BOB_TENANTS, PRM_PATH
from httputil import free_port, http_get
from oidc_login import (
    CONFIDENTIAL_CLIENT,
    CONFIDENTIAL_SECRET,
    PUBLIC_CLIENT,
    OidcProvider,
    jwt_claims,
    login,
    refresh,
    start_oidc_provider,
)
from rawmcp import authed, bearer, raw_call, raw_tool_result
from tenant_router import TenantRouter

pytestmark = pytest.mark.anyio

QUERY = {"query": "up"}


@dataclass
class OidcStack:
    provider: OidcProvider
    server: LayeredServer


@pytest.fixture(scope="module")
def oidc(pool: Any, workdir: Any, tenant_stack: TenantStack) -> Iterator[OidcStack]:
    port = free_port()
    resource = f"http://127.0.0.1:{port}/mcp"
    provider = start_oidc_provider(workdir, resource=resource)
    try:
        srv = _layered(pool, "authn-oidc", lambda: layered_config(
            tenant_stack.url, listen_port=port,
            issuers=[issuer_entry(provider.issuer, algorithms=["RS256"])],
            trusted=[PUBLIC_CLIENT]))
        assert srv.resource == resource
        yield OidcStack(provider, srv)
    finally:
        provider.stop()


def test_alice_id_token_reads_only_tenant_a(oidc: OidcStack, router: TenantRouter) -> None:
    tokens = login(oidc.provider, "alice")
    claims = jwt_claims(tokens.id_token)
    assert claims["aud"] == PUBLIC_CLIENT and claims["groups"] == ["team-a"], claims
    mark = router.mark()
    res = raw_tool_result(raw_call(oidc.server.mcp_url, "execute_query", QUERY, bearer(tokens.id_token)))
    assert not res.get("isError"), res
    assert {s["metric"]["tenant"] for s in res["structuredContent"]["data"]["result"]} == ALICE_TENANTS, res
    assert assert_tenants_within(router, mark, ALICE_TENANTS, "alice (OIDC)") == ALICE_TENANTS


async def test_bob_id_token_with_sdk(oidc: OidcStack, router: TenantRouter) -> None:
    tokens = login(oidc.provider, "bob")
    mark = router.mark()
    async with authed(oidc.server.mcp_url, bearer(tokens.id_token)) as c:
        r = (await c.call("execute_query", QUERY)).ok()
        assert {s["metric"]["tenant"] for s in r.data["result"]} == BOB_TENANTS, r.describe()
        e = (await c.call("execute_query", {**QUERY, "org_id": "tenant-a"})).error()
        assert "tenant-b" in e.text and "tenant-c" in e.text, e.describe()
    assert_tenants_within(router, mark, BOB_TENANTS, "bob (OIDC)")


def test_access_token_for_the_resource(oidc: OidcStack, router: TenantRouter) -> None:
    """The access token is a JWT (typ at+jwt) whose aud is our resource URL:
    accepted through the default audiences, no trust needed."""
    tokens = login(oidc.provider, "alice", resource=oidc.server.resource)
    at = jwt_claims(tokens.access_token)
    assert at["aud"] == oidc.server.resource and at["groups"] == ["team-a"], at
    mark = router.mark()
    res = raw_tool_result(raw_call(oidc.server.mcp_url, "execute_query", QUERY, bearer(tokens.access_token)))
    assert not res.get("isError"), res
    assert assert_tenants_within(router, mark, ALICE_TENANTS, "alice access token") == ALICE_TENANTS


def test_refresh_with_offline_access(oidc: OidcStack) -> None:
    tokens = login(oidc.provider, "alice")
    assert tokens.refresh_token, f"no refresh token for offline_access: {tokens.raw}"
    again = refresh(oidc.provider, tokens.refresh_token)
    assert again.id_token and again.access_token != tokens.access_token
    assert again.refresh_token, again.raw  # rotated or reused, still there
    assert jwt_claims(again.id_token)["groups"] == ["team-a"]
    res = raw_tool_result(raw_call(oidc.server.mcp_url, "execute_query", QUERY, bearer(again.id_token)))
    assert not res.get("isError"), res


def test_untrusted_client_id_token_refused(oidc: OidcStack, router: TenantRouter) -> None:
    tokens = login(oidc.provider, "alice", client_id=CONFIDENTIAL_CLIENT, client_secret=CONFIDENTIAL_SECRET,
                   scope="openid groups")
    assert jwt_claims(tokens.id_token)["aud"] == CONFIDENTIAL_CLIENT
    mark = router.mark()
    r = raw_call(oidc.server.mcp_url, "execute_query", QUERY, bearer(tokens.id_token))
    assert_refused(r, oidc.server, 401, "invalid_token", "audience")
    assert_no_upstream(router, mark, "ID token of an untrusted client")


def test_protected_resource_metadata_names_the_provider(oidc: OidcStack) -> None:
    md = http_get(oidc.server.public_url + PRM_PATH + "/mcp").json()
    assert md["resource"] == oidc.server.resource and md["authorization_servers"] == [oidc.provider.issuer], md


def test_unknown_user_has_no_tenant(oidc: OidcStack, router: TenantRouter) -> None:
    tokens = login(oidc.provider, "mallory")
    assert jwt_claims(tokens.id_token)["groups"] == []
    mark = router.mark()
    r = raw_call(oidc.server.mcp_url, "execute_query", QUERY, bearer(tokens.id_token))
    assert r.status == 403 and r.json().get("error") == "forbidden", f"{r.status} {r.text[:300]}"
    assert_no_upstream(router, mark, "user without groups")
