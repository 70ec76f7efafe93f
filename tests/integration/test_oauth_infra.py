"""Self-tests of the OAuth test infrastructure (oauth_*.py), independent
of mcp-prometheus's own authorization server: Redis and Valkey fixtures, the
client ID metadata document server, the headless browser against the real
OIDC provider (including the provider clients our server uses, on loopback
redirect URIs with any port), and the official SDK's OAuthClientProvider
driven headlessly through a whole MCP authorization flow against the
provider as the authorization server of a stand-in resource server.
"""

from __future__ import annotations

import http.server
import json
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any

import httpx2
import pytest

from constants import CLIENT_REDIRECT, ENCRYPTION_KEY, PRM_PATH, SERVER_CLIENT_SECRET
from docserver import DocServer
from fakes import FakeUpstream
from httputil import free_port, http_get, http_post, reply
from kvstore import KvServer
from oauth_browse import browse
from oauth_fixtures import start_provider
from oauth_sdk import expire_sdk_token, sdk_oauth
from oauth_server import oauth_config
from oidc_login import PUBLIC_CLIENT, OidcProvider, jwt_parts, pkce_pair

pytestmark = pytest.mark.anyio


# --------------------------------------------------------------------------
# Redis 7 and Valkey 9
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["redis", "valkey"])
def test_kv_store_fixture(kind: str, request: pytest.FixtureRequest) -> None:
    import valkey

    kv: KvServer = request.getfixturevalue(f"{kind}_store")
    want = "7." if kind == "redis" else "9.1"
    assert kv.version().startswith(want), f"{kind}: version {kv.version()}"
    c = kv.client()
    c.set("selftest:k", "v")
    assert c.get("selftest:k") == b"v"
    assert kv.keys("selftest:") == ["selftest:k"]
    c.delete("selftest:k")
    with pytest.raises(valkey.exceptions.AuthenticationError):
        kv.client(password="").ping()
    assert kv.storage("mcp:") == {"kind": "valkey", "url": f"redis://127.0.0.1:{kv.port}",
                                  "password": kv.password, "key_prefix": "mcp:"}


# --------------------------------------------------------------------------
# client ID metadata documents
# --------------------------------------------------------------------------

def test_cimd_doc_server(cimd_docs: DocServer) -> None:
    good = cimd_docs.doc("/selftest/good.json")
    r = http_get(good)
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["client_id"] == good and doc["redirect_uris"] == [CLIENT_REDIRECT], doc
    assert cimd_docs.hits("/selftest/good.json") == 1

    big = cimd_docs.doc("/selftest/big.json", pad=6000)
    assert len(http_get(big).body) > 5 * 1024

    redir = cimd_docs.redirect("/selftest/redirect.json", good)
    with httpx2.Client(follow_redirects=False) as c:
        resp = c.get(redir)
    assert resp.status_code == 302 and resp.headers["location"] == good

    html = cimd_docs.raw("/selftest/page.html", b"<html>not json</html>", "text/html")
    r = http_get(html)
    assert r.status == 200 and r.headers["content-type"] == "text/html"
    assert http_get(cimd_docs.url("/selftest/missing")).status == 404


# --------------------------------------------------------------------------
# the headless browser against the provider
# --------------------------------------------------------------------------

def test_browser_logs_in_at_the_provider(oauth_provider: OidcProvider) -> None:
    """browse() from the provider's authorization endpoint stops, unfetched,
    at the client's redirect URI with code, state and iss."""
    md = oauth_provider.metadata()
    verifier, challenge = pkce_pair()
    url = md["authorization_endpoint"] + "?" + urllib.parse.urlencode({
        "client_id": PUBLIC_CLIENT, "response_type": "code", "redirect_uri": CLIENT_REDIRECT,
        "scope": "openid groups", "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256"})
    res = browse(url, [oauth_provider.issuer], "bob")
    assert res.stopped_at and res.stopped_at.startswith(CLIENT_REDIRECT), res.describe()
    p = res.params
    assert p["state"] == "s1" and p["iss"] == oauth_provider.issuer and p["code"], p
    assert any(h.method == "POST" for h in res.hops), res.describe()  # the forms were posted
    r = http_post(md["token_endpoint"], urllib.parse.urlencode({
        "grant_type": "authorization_code", "code": p["code"], "redirect_uri": CLIENT_REDIRECT,
        "code_verifier": verifier, "client_id": PUBLIC_CLIENT}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r.text
    _, claims = jwt_parts(r.json()["id_token"])
    assert claims["sub"] == "bob" and claims["groups"] == ["team-b", "team-c"], claims


def test_browser_stops_at_an_error_page(oauth_provider: OidcProvider) -> None:
    """A non-redirect, non-form answer ends the walk and is returned."""
    res = browse(oauth_provider.issuer + "/auth?client_id=nope", [oauth_provider.issuer])
    assert res.stopped_at is None and res.response is not None and res.response.status_code == 400, res.describe()
    assert len(res.hops) == 1


@pytest.mark.parametrize("client_id,method", [("mcp-prometheus", "basic"), ("mcp-prometheus-post", "post")])
def test_provider_client_of_our_server(oauth_provider: OidcProvider, client_id: str, method: str) -> None:
    """The provider clients our server uses: confidential, PKCE optional, and
    a loopback redirect `http://127.0.0.1:<any port>/oauth/callback` (native
    client, RFC 8252 7.3). The ID token carries the groups."""
    md = oauth_provider.metadata()
    redirect = f"http://127.0.0.1:{free_port()}/oauth/callback"
    url = md["authorization_endpoint"] + "?" + urllib.parse.urlencode({
        "client_id": client_id, "response_type": "code", "redirect_uri": redirect,
        "scope": "openid profile email groups offline_access", "state": "s2", "prompt": "consent"})
    res = browse(url, [oauth_provider.issuer], "alice")
    assert res.stopped_at and res.stopped_at.startswith(redirect), res.describe()
    form = {"grant_type": "authorization_code", "code": res.params["code"], "redirect_uri": redirect}
    with httpx2.Client() as c:
        if method == "basic":
            r = c.post(md["token_endpoint"], data=form, auth=(client_id, SERVER_CLIENT_SECRET))
        else:
            r = c.post(md["token_endpoint"], data={**form, "client_id": client_id,
                                                   "client_secret": SERVER_CLIENT_SECRET})
    assert r.status_code == 200, r.text
    tok = r.json()
    _, claims = jwt_parts(tok["id_token"])
    assert claims["sub"] == "alice" and claims["groups"] == ["team-a"] and claims["aud"] == client_id, claims
    assert tok.get("refresh_token"), f"offline_access with prompt=consent gives a refresh token: {tok}"


def test_provider_refuses_a_non_loopback_redirect(oauth_provider: OidcProvider) -> None:
    md = oauth_provider.metadata()
    url = md["authorization_endpoint"] + "?" + urllib.parse.urlencode({
        "client_id": "mcp-prometheus", "response_type": "code", "redirect_uri": "http://evil.example/oauth/callback",
        "scope": "openid", "state": "s"})
    res = browse(url, [oauth_provider.issuer])
    assert res.stopped_at is None and res.response is not None and res.response.status_code == 400, res.describe()


# --------------------------------------------------------------------------
# the official SDK's OAuthClientProvider, headless, against the provider
# --------------------------------------------------------------------------

def _resource_server() -> tuple[FakeUpstream, dict[str, Any]]:
    """A stand-in protected resource: PRM naming the provider, 401 with
    resource_metadata without a bearer token, 200 with one."""
    state: dict[str, Any] = {"as": None, "seen": []}

    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        route = urllib.parse.urlsplit(h.path).path
        base = f"http://127.0.0.1:{h.server.server_address[1]}"
        if route.startswith(PRM_PATH):
            body = {"resource": base + "/mcp", "authorization_servers": [state["as"]]}
            reply(h, 200, json.dumps(body).encode(), "application/json")
            return
        auth = h.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            state["seen"].append(auth[7:])
            reply(h, 200, b'{"ok": true}', "application/json")
            return
        h.send_response(401)
        h.send_header("WWW-Authenticate", f'Bearer resource_metadata="{base}{PRM_PATH}/mcp"')
        h.send_header("Content-Length", "0")
        h.end_headers()

    return FakeUpstream("resource", handler), state


async def test_sdk_oauth_flow_headless(workdir: Path) -> None:
    """OAuthClientProvider: 401 -> RFC 9728 -> RFC 8414 -> dynamic
    registration -> PKCE S256 + resource -> headless login -> iss check ->
    token -> retried request; then a refresh."""
    rs, state = _resource_server()
    resource = rs.url + "/mcp"
    prov = start_provider(workdir, "oidc-sdk-selftest", resource=resource, registration=True)
    try:
        state["as"] = prov.issuer
        auth, headless, storage = sdk_oauth(resource, [prov.issuer], "alice")
        async with httpx2.AsyncClient(auth=auth, timeout=20) as c:
            r = await c.get(resource)
            assert r.status_code == 200, r.text
            p = headless.authorization_params
            assert p["code_challenge_method"] == "S256" and p["resource"] == resource, p
            assert p["client_id"] == storage.client_info.client_id, p
            assert headless.results[-1].params["iss"] == prov.issuer
            token = storage.tokens.access_token
            assert state["seen"][-1] == token
            _, claims = jwt_parts(token)
            assert claims["aud"] == resource and claims["groups"] == ["team-a"], claims
            assert storage.tokens.refresh_token, storage.tokens

            expire_sdk_token(auth)  # the next request refreshes first
            old_refresh = storage.tokens.refresh_token
            r = await c.get(resource)
            assert r.status_code == 200
            assert storage.tokens.access_token != token and state["seen"][-1] == storage.tokens.access_token
            assert len(headless.results) == 1, "a refresh needs no new login"
            assert storage.tokens.refresh_token != old_refresh  # the provider rotates refresh tokens
    finally:
        prov.stop()
        rs.close()


# --------------------------------------------------------------------------
# config rendering
# --------------------------------------------------------------------------

def test_oauth_config_renders(oauth_provider: OidcProvider) -> None:
    cfg = oauth_config("http://127.0.0.1:1", oauth_provider, registration="token", registration_token="t",
                       storage={"kind": "valkey", "url": "redis://127.0.0.1:2", "password": "p", "key_prefix": "mcp:"})
    doc = tomllib.loads(cfg.render())
    o = doc["oauth"]
    public_url = doc["server"]["public_url"]
    assert o["enabled"] is True and o["encryption_key"] == ENCRYPTION_KEY and o["registration"] == "token"
    assert o["storage"] == {"kind": "valkey", "url": "redis://127.0.0.1:2", "password": "p", "key_prefix": "mcp:"}
    assert o["provider"]["redirect_url"] == public_url + "/oauth/callback"
    assert o["provider"]["issuer_url"] == oauth_provider.issuer
    assert doc["layers"]["authn"]["issuers"] == [] and doc["layers"]["authn"]["enabled"] is True
    assert doc["layers"]["tenancy"]["groups"] == {"team-a": ["tenant-a"], "team-b": ["tenant-b", "tenant-c"]}
