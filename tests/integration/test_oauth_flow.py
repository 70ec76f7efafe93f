"""mcp-prometheus's own OAuth 2.1 authorization server ([oauth]), end to end:
metadata (RFC 8414, RFC 9728), the official Python SDK's OAuthClientProvider
(discovery from the 401, dynamic registration or a client ID metadata
document, PKCE S256, resource, iss), login at the real OIDC provider as alice
or bob, our ES256 access tokens on MCP calls scoped to the user's tenants
(asserted at the tenant router), refresh with rotation, revocation.

The negative matrix is in test_oauth_negative.py, the Redis/Valkey store in
test_oauth_store.py; fixtures in oauth_fixtures.py, helpers in oauth_*.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from authasserts import assert_no_upstream, assert_tenants_within
from constants import ALICE_TENANTS, AS_METADATA_PATH, BOB_TENANTS, CLIENT_REDIRECT, PRM_PATH
from docserver import DocServer
from httputil import free_port, http_get
from oauth_client import DirectClient, assert_token_response, oauth_error
from oauth_sdk import expire_sdk_token, sdk_connect, sdk_oauth
from oauth_server import OAuthServer
from oidc_login import jwt_parts
from rawmcp import bearer, raw_call, raw_tool_result, www_authenticate
from tenant_router import TenantRouter

pytestmark = pytest.mark.anyio

QUERY = {"query": "up"}


def call_tenants(srv: OAuthServer, router: TenantRouter, access_token: str, allowed: set[str], who: str) -> set[str]:
    """One execute_query with the token; the tenants in the answer, checked
    at the router too."""
    mark = router.mark()
    res = raw_tool_result(raw_call(srv.mcp_url, "execute_query", QUERY, bearer(access_token)))
    assert not res.get("isError"), res
    got = {s["metric"].get("tenant") for s in res["structuredContent"]["data"]["result"]}
    seen = assert_tenants_within(router, mark, allowed, who)
    assert got == allowed and seen == allowed, f"{who}: answer {got}, router {seen}, want {allowed}"
    return got


def series_tenants(r: Any) -> set[str]:
    return {s["metric"].get("tenant", "?") for s in r.data["result"]}


# --------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------

@pytest.mark.parametrize("path", [AS_METADATA_PATH, AS_METADATA_PATH + "/mcp", "/.well-known/openid-configuration"])
def test_authorization_server_metadata(oauth_server: OAuthServer, path: str) -> None:
    r = http_get(oauth_server.url(path), 5)
    assert r.status == 200, f"{path}: HTTP {r.status}: {r.text[:300]}"
    assert "application/json" in r.headers.get("content-type", ""), r.headers
    md = r.json()
    iss = oauth_server.issuer
    want = {
        "issuer": iss,
        "authorization_endpoint": iss + "/oauth/authorize",
        "token_endpoint": iss + "/oauth/token",
        "registration_endpoint": iss + "/oauth/register",
        "revocation_endpoint": iss + "/oauth/revoke",
        "jwks_uri": iss + "/oauth/jwks",
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": True,
    }
    got = {k: md.get(k) for k in want}
    assert got == want, f"{path}: expected {want}\ngot {got}"
    assert set(md.get("grant_types_supported", [])) == {"authorization_code", "refresh_token"}, md
    assert set(md.get("token_endpoint_auth_methods_supported", [])) == {
        "none", "client_secret_basic", "client_secret_post"}, md
    assert isinstance(md.get("scopes_supported"), list), md


@pytest.mark.parametrize("path", [PRM_PATH, PRM_PATH + "/mcp"])
def test_protected_resource_metadata_names_us(oauth_server: OAuthServer, path: str) -> None:
    r = http_get(oauth_server.url(path), 5)
    assert r.status == 200, f"{path}: HTTP {r.status}: {r.text[:300]}"
    md = r.json()
    assert md.get("authorization_servers") == [oauth_server.issuer], md
    assert md.get("resource") == oauth_server.resource, md


def test_401_points_at_the_resource_metadata(oauth_server: OAuthServer, router: TenantRouter) -> None:
    mark = router.mark()
    r = raw_call(oauth_server.mcp_url, "execute_query", QUERY)
    assert r.status == 401, f"{r.status} {r.text[:300]}"
    ch = www_authenticate(r)
    assert ch.get("_scheme", "").lower() == "bearer", r.headers
    assert ch.get("resource_metadata") == oauth_server.public_url + PRM_PATH + "/mcp", ch
    assert_no_upstream(router, mark, "no token")


def test_jwks_has_public_ec_keys(oauth_server: OAuthServer) -> None:
    keys = oauth_server.jwks().get("keys")
    assert isinstance(keys, list) and keys, keys
    for k in keys:
        assert k.get("kty") == "EC" and k.get("crv") == "P-256" and k.get("kid"), k
        assert "d" not in k, f"private key material in the JWKS: {sorted(k)}"


# --------------------------------------------------------------------------
# the official SDK, end to end
# --------------------------------------------------------------------------

async def test_sdk_dynamic_registration_end_to_end(oauth_server: OAuthServer, router: TenantRouter) -> None:
    """401 -> PRM -> AS metadata -> register -> authorize (PKCE S256,
    resource) -> login as alice at the provider -> callback (code, state,
    iss) -> token -> the call, scoped to tenant-a; then a forced refresh
    (rotation, no new login); then revocation refuses the refresh token."""
    auth, headless, storage = sdk_oauth(oauth_server.mcp_url, oauth_server.follow, "alice")
    log: list[tuple[str, str, int]] = []
    mark = router.mark()
    async with sdk_connect(oauth_server.mcp_url, auth, http_log=log) as c:
        r = (await c.call("execute_query", QUERY)).ok()
        assert series_tenants(r) == ALICE_TENANTS, r.describe()

        assert log and log[0][2] == 401, f"the first MCP request should be refused: {log}"
        urls = [u for _, u, _ in log]
        assert any(u.startswith(oauth_server.issuer + "/oauth/register") for u in urls), urls
        assert any(u.startswith(oauth_server.issuer + "/oauth/token") for u in urls), urls
        p = headless.authorization_params
        assert p.get("code_challenge_method") == "S256" and p.get("code_challenge"), p
        assert p.get("resource") == oauth_server.resource, p
        assert p.get("client_id") == storage.client_info.client_id, p
        back = headless.results[-1].params
        assert back.get("iss") == oauth_server.issuer, back
        first = storage.tokens
        hdr, claims = jwt_parts(first.access_token)
        assert hdr.get("alg") == "ES256" and claims.get("groups") == ["team-a"], (hdr, claims)
        assert first.refresh_token, first

        # refresh: the SDK believes its token expired
        expire_sdk_token(auth)
        n = len(log)
        r = (await c.call("execute_query", QUERY)).ok()
        assert series_tenants(r) == ALICE_TENANTS, r.describe()
        second = storage.tokens
        assert len(headless.results) == 1, "a refresh must not need a new login"
        assert any(u.startswith(oauth_server.issuer + "/oauth/token") and s == 200 for _, u, s in log[n:]), log[n:]
        assert second.access_token != first.access_token, "no new access token after the refresh"
        assert second.refresh_token and second.refresh_token != first.refresh_token, "refresh tokens must rotate"
    assert_tenants_within(router, mark, ALICE_TENANTS, "alice via the SDK")

    direct = DirectClient(oauth_server, storage.client_info.client_id)
    assert direct.revoke(second.refresh_token, "refresh_token").status == 200
    oauth_error(direct.refresh(second.refresh_token), 400, "invalid_grant", "refresh after revocation")
    oauth_error(direct.refresh(first.refresh_token), 400, "invalid_grant", "the rotated-out refresh token")


async def test_sdk_client_id_metadata_document(oauth_server: OAuthServer, cimd_docs: DocServer,
                                               router: TenantRouter) -> None:
    """The same with a client ID metadata document instead of registration:
    the client_id is the document's URL, fetched by our server."""
    path = f"/clients/sdk-{free_port()}.json"
    doc_url = cimd_docs.doc(path, name="SDK via CIMD")
    auth, headless, storage = sdk_oauth(oauth_server.mcp_url, oauth_server.follow, "bob",
                                        client_metadata_url=doc_url)
    log: list[tuple[str, str, int]] = []
    mark = router.mark()
    async with sdk_connect(oauth_server.mcp_url, auth, http_log=log) as c:
        r = (await c.call("execute_query", QUERY)).ok()
        assert series_tenants(r) == BOB_TENANTS, r.describe()
        assert not any("/oauth/register" in u for _, u, _ in log), f"registered despite CIMD: {log}"
        assert headless.authorization_params.get("client_id") == doc_url
        assert storage.client_info.client_id == doc_url
        assert cimd_docs.hits(path) >= 1, "our server never fetched the client's metadata document"
        first = storage.tokens
        assert jwt_parts(first.access_token)[1].get("client_id") == doc_url

        expire_sdk_token(auth)
        r = (await c.call("execute_query", QUERY)).ok()
        assert series_tenants(r) == BOB_TENANTS, r.describe()
        assert storage.tokens.refresh_token != first.refresh_token
    assert_tenants_within(router, mark, BOB_TENANTS, "bob via CIMD")

    direct = DirectClient(oauth_server, doc_url)
    assert direct.revoke(storage.tokens.refresh_token).status == 200
    oauth_error(direct.refresh(storage.tokens.refresh_token), 400, "invalid_grant", "refresh after revocation")


# --------------------------------------------------------------------------
# a hand-written client: the tokens themselves
# --------------------------------------------------------------------------

def test_access_token_claims(oauth_server: OAuthServer) -> None:
    client = DirectClient.register(oauth_server)
    grant = client.login("alice")
    assert grant.iss == oauth_server.issuer, f"iss {grant.iss!r} (RFC 9207)"
    t0 = int(time.time())
    tok = assert_token_response(client.exchange(grant))
    hdr, _ = jwt_parts(tok["access_token"])
    assert hdr.get("alg") == "ES256" and hdr.get("kid"), hdr
    claims = oauth_server.verify(tok["access_token"])  # signature, iss, aud, exp
    assert claims["iss"] == oauth_server.issuer and claims["aud"] in (oauth_server.resource, [oauth_server.resource])
    assert claims.get("sub"), claims
    assert claims.get("groups") == ["team-a"], claims
    assert claims.get("client_id") == client.client_id, claims
    assert claims.get("jti") and isinstance(claims.get("scope"), str), claims
    assert t0 - 5 <= claims["iat"] <= t0 + 5 and claims["exp"] > claims["iat"], claims
    assert abs((claims["exp"] - claims["iat"]) - tok["expires_in"]) <= 5, (claims, tok["expires_in"])
    assert claims["exp"] - claims["iat"] <= 600 + 5, "access_token_ttl is 10m"
    assert tok["refresh_token"] != tok["access_token"]


def test_alice_and_bob_see_their_tenants(oauth_server: OAuthServer, router: TenantRouter) -> None:
    client = DirectClient.register(oauth_server)
    call_tenants(oauth_server, router, client.tokens("alice")["access_token"], ALICE_TENANTS, "alice")
    call_tenants(oauth_server, router, client.tokens("bob")["access_token"], BOB_TENANTS, "bob")


def test_user_without_groups_is_forbidden(oauth_server: OAuthServer, router: TenantRouter) -> None:
    client = DirectClient.register(oauth_server)
    tok = client.tokens("mallory")
    assert jwt_parts(tok["access_token"])[1].get("groups") in ([], None)
    mark = router.mark()
    r = raw_call(oauth_server.mcp_url, "execute_query", QUERY, bearer(tok["access_token"]))
    assert r.status == 403, f"{r.status} {r.text[:300]}"
    assert_no_upstream(router, mark, "a user without groups")


def test_refresh_rotates_and_new_tokens_work(oauth_server: OAuthServer, router: TenantRouter) -> None:
    client = DirectClient.register(oauth_server)
    tok = client.tokens("bob")
    again = assert_token_response(client.refresh(tok["refresh_token"]))
    assert again["refresh_token"] != tok["refresh_token"], "refresh tokens must rotate"
    assert again["access_token"] != tok["access_token"]
    claims = oauth_server.verify(again["access_token"])
    assert claims.get("groups") == ["team-b", "team-c"], claims
    call_tenants(oauth_server, router, again["access_token"], BOB_TENANTS, "bob after refresh")
    third = assert_token_response(client.refresh(again["refresh_token"]))
    assert third["refresh_token"] not in (tok["refresh_token"], again["refresh_token"])


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_confidential_client(oauth_server: OAuthServer, method: str) -> None:
    client = DirectClient.register(oauth_server, auth_method=method)
    grant = client.login("alice")
    tok = assert_token_response(client.exchange(grant))
    assert_token_response(client.refresh(tok["refresh_token"]))


def test_revocation(oauth_server: OAuthServer) -> None:
    client = DirectClient.register(oauth_server)
    tok = client.tokens("alice")
    r = client.revoke(tok["refresh_token"], "refresh_token")
    assert r.status == 200, f"{r.status} {r.text[:300]}"
    oauth_error(client.refresh(tok["refresh_token"]), 400, "invalid_grant", "refresh after revocation")
    # RFC 7009 2.2: unknown tokens and repeats are 200 too
    assert client.revoke(tok["refresh_token"]).status == 200
    assert client.revoke("no-such-token").status == 200


@pytest.mark.parametrize("registered,used", [
    ("http://127.0.0.1:{a}/callback", "http://127.0.0.1:{b}/callback"),
    ("http://localhost:{a}/callback", "http://localhost:{b}/callback"),
    ("http://[::1]:{a}/callback", "http://[::1]:{b}/callback"),
], ids=["127.0.0.1", "localhost", "ipv6"])
def test_loopback_redirect_any_port(oauth_server: OAuthServer, registered: str, used: str) -> None:
    """RFC 8252 7.3: a loopback redirect URI matches on any port."""
    a, b = free_port(), free_port()
    client = DirectClient.register(oauth_server, redirect_uris=[registered.format(a=a, b=b)])
    grant = client.login("alice", redirect_uri=used.format(a=a, b=b))
    assert_token_response(client.exchange(grant))


def test_cimd_document_is_cached(oauth_server: OAuthServer, cimd_docs: DocServer) -> None:
    path = f"/clients/cached-{free_port()}.json"
    url = cimd_docs.doc(path)
    client = DirectClient(oauth_server, url)
    tok = client.tokens("alice")
    assert oauth_server.verify(tok["access_token"]).get("client_id") == url
    client.login("bob")
    assert cimd_docs.hits(path) == 1, f"fetched {cimd_docs.hits(path)} times: not cached"


def test_resource_parameter_is_optional(oauth_server: OAuthServer) -> None:
    """Without `resource` the token is still for our resource (the only one)."""
    client = DirectClient.register(oauth_server)
    grant = client.login("alice", resource=None)
    tok = assert_token_response(client.exchange(grant, resource=None))
    oauth_server.verify(tok["access_token"])


def test_registration_response(oauth_server: OAuthServer) -> None:
    r = oauth_server.register({"redirect_uris": [CLIENT_REDIRECT], "client_name": "reg-test",
                               "token_endpoint_auth_method": "client_secret_basic",
                               "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]})
    assert r.status == 201, f"{r.status} {r.text[:300]}"
    body = r.json()
    assert body.get("client_id") and body.get("client_secret"), body
    assert body.get("redirect_uris") == [CLIENT_REDIRECT], body
    assert body.get("token_endpoint_auth_method") == "client_secret_basic", body
    pub = oauth_server.register({"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "none"})
    assert pub.status == 201 and "client_secret" not in pub.json(), pub.text
