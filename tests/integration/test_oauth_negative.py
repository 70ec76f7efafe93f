"""The negative matrix of mcp-prometheus's OAuth 2.1 authorization server,
driven by a hand-written client (oauth_client.DirectClient): every refusal
asserts its HTTP status and OAuth error code, and at /oauth/authorize
whether the error is shown (untrusted client or redirect: HTTP 400, no
redirect) or sent back to the client's redirect URI (with state and iss).
Plus the encryption-key checks of `check-config`.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from pathlib import Path

import pytest

from constants import CLIENT_REDIRECT
from docserver import DocServer
from mcpserver import run_cli
from oauth_browse import browse
from oauth_client import DirectClient, assert_error_redirect, assert_no_redirect, assert_token_response, oauth_error
from oauth_fixtures import REGISTRATION_TOKEN, STRICT_RATE_LIMIT
from oauth_server import OAuthServer, oauth_config
from oidc_login import OidcProvider, pkce_pair

UNTRUSTED = {"invalid_request", "invalid_client"}


@pytest.fixture(scope="module")
def client(oauth_server: OAuthServer) -> DirectClient:
    """One registered public client for the module."""
    return DirectClient.register(oauth_server, name="negative-matrix")


# --------------------------------------------------------------------------
# /oauth/authorize: errors sent back to the client
# --------------------------------------------------------------------------

def test_missing_pkce(client: DirectClient, oauth_server: OAuthServer) -> None:
    res = browse(client.authorize_url(challenge=None, method=None, state="s-nopkce"), oauth_server.follow)
    assert_error_redirect(res, CLIENT_REDIRECT, "invalid_request", "s-nopkce", oauth_server.issuer, "no PKCE")


def test_plain_pkce(client: DirectClient, oauth_server: OAuthServer) -> None:
    verifier = secrets.token_urlsafe(48)
    res = browse(client.authorize_url(challenge=verifier, method="plain", state="s-plain"), oauth_server.follow)
    assert_error_redirect(res, CLIENT_REDIRECT, "invalid_request", "s-plain", oauth_server.issuer, "plain PKCE")


def test_challenge_without_method(client: DirectClient, oauth_server: OAuthServer) -> None:
    """RFC 7636 4.3: no method means plain, which OAuth 2.1 servers refuse."""
    res = browse(client.authorize_url(challenge=pkce_pair()[1], method=None, state="s-nomethod"), oauth_server.follow)
    assert_error_redirect(res, CLIENT_REDIRECT, "invalid_request", "s-nomethod", oauth_server.issuer,
                          "code_challenge without code_challenge_method")


def test_bad_response_type(client: DirectClient, oauth_server: OAuthServer) -> None:
    res = browse(client.authorize_url(challenge=pkce_pair()[1], response_type="token", state="s-rt"),
                 oauth_server.follow)
    assert res.stopped_at and res.stopped_at.startswith(CLIENT_REDIRECT), res.describe()
    p = res.params
    assert p.get("error") in ("invalid_request", "unsupported_response_type"), p
    assert p.get("state") == "s-rt" and p.get("iss") == oauth_server.issuer, p


def test_foreign_resource_at_authorize(client: DirectClient, oauth_server: OAuthServer) -> None:
    res = browse(client.authorize_url(challenge=pkce_pair()[1], resource="https://other.example/mcp",
                                      state="s-res"), oauth_server.follow)
    assert_error_redirect(res, CLIENT_REDIRECT, "invalid_target", "s-res", oauth_server.issuer, "foreign resource")


def test_user_denies_at_the_provider(client: DirectClient, oauth_server: OAuthServer) -> None:
    """The user aborts at the provider: the provider sends access_denied to
    our callback, we pass it on to the client (with state and iss), no code."""
    res = browse(client.authorize_url(challenge=pkce_pair()[1], state="s-deny"), oauth_server.follow, deny=True)
    assert res.stopped_at and res.stopped_at.startswith(CLIENT_REDIRECT), res.describe()
    assert any("/abort" in h.url for h in res.hops), f"the abort link was not taken\n{res.describe()}"
    p = res.params
    assert p.get("error") == "access_denied", p
    assert p.get("state") == "s-deny" and p.get("iss") == oauth_server.issuer and "code" not in p, p


def test_callback_with_forged_state(oauth_server: OAuthServer) -> None:
    """/oauth/callback with a state we never issued: refused, no redirect."""
    res = browse(oauth_server.url("/oauth/callback?code=forged&state=forged"), oauth_server.follow)
    assert res.stopped_at is None and res.response is not None, res.describe()
    assert res.response.status_code == 400, res.describe()


# --------------------------------------------------------------------------
# /oauth/authorize: untrusted client or redirect -> 400, no redirect
# --------------------------------------------------------------------------

def test_unknown_client(client: DirectClient, oauth_server: OAuthServer) -> None:
    res = browse(client.authorize_url(challenge=pkce_pair()[1], client_id="no-such-client"), oauth_server.follow)
    assert_no_redirect(res, 400, UNTRUSTED, "unknown client_id")


@pytest.mark.parametrize("redirect", [
    "https://evil.example/callback",
    "http://evil.example/callback",
    "http://127.0.0.1.evil.example/callback",
    CLIENT_REDIRECT + "/extra",
    CLIENT_REDIRECT + "?x=1",
    CLIENT_REDIRECT.replace("127.0.0.1", "127.0.0.2"),
], ids=["https-foreign", "http-foreign", "lookalike-host", "longer-path", "extra-query", "other-loopback-ip"])
def test_unregistered_redirect(client: DirectClient, oauth_server: OAuthServer, redirect: str) -> None:
    res = browse(client.authorize_url(challenge=pkce_pair()[1], redirect_uri=redirect), oauth_server.follow)
    body = assert_no_redirect(res, 400, UNTRUSTED, f"redirect_uri {redirect}")
    assert body.get("error") == "invalid_request", f"redirect_uri mismatch is invalid_request: {body}"


def test_missing_redirect_uri(client: DirectClient, oauth_server: OAuthServer) -> None:
    url = client.authorize_url(challenge=pkce_pair()[1]).replace("redirect_uri=", "unused=")
    res = browse(url, oauth_server.follow)
    # with exactly one registered redirect URI a server may use it (RFC 6749 3.1.2.3)
    if res.stopped_at is not None:
        assert res.stopped_at.startswith(oauth_server.provider.issuer) or res.stopped_at.startswith(CLIENT_REDIRECT), \
            res.describe()
    else:
        assert_no_redirect(res, 400, UNTRUSTED, "no redirect_uri")


# --------------------------------------------------------------------------
# /oauth/token
# --------------------------------------------------------------------------

def test_wrong_verifier(client: DirectClient) -> None:
    grant = client.login()
    oauth_error(client.exchange(grant, code_verifier=pkce_pair()[0]), 400, "invalid_grant", "wrong code_verifier")


def test_missing_verifier(client: DirectClient) -> None:
    grant = client.login()
    oauth_error(client.exchange(grant, code_verifier=None), 400, {"invalid_request", "invalid_grant"},
                "no code_verifier")


def test_redirect_mismatch_at_token(client: DirectClient) -> None:
    grant = client.login()
    oauth_error(client.exchange(grant, redirect_uri="http://127.0.0.1:1/other"), 400, "invalid_grant",
                "redirect_uri differs from the authorization request")


def test_code_of_another_client(client: DirectClient, oauth_server: OAuthServer) -> None:
    grant = client.login()
    other = DirectClient.register(oauth_server, name="thief")
    oauth_error(other.exchange(grant), 400, "invalid_grant", "code redeemed by another client")


def test_code_replay_revokes_what_it_issued(client: DirectClient) -> None:
    grant = client.login()
    first = assert_token_response(client.exchange(grant))
    oauth_error(client.exchange(grant), 400, "invalid_grant", "code replay")
    oauth_error(client.refresh(first["refresh_token"]), 400, "invalid_grant",
                "the refresh token issued for a replayed code must be revoked")


def test_expired_code(oauth_fastcode_server: OAuthServer) -> None:
    client = DirectClient.register(oauth_fastcode_server)
    grant = client.login()
    time.sleep(2.5)  # code_ttl = 1s
    oauth_error(client.exchange(grant), 400, "invalid_grant", "expired code")


def test_fresh_code_on_fast_server_works(oauth_fastcode_server: OAuthServer) -> None:
    """Control for test_expired_code: the same server accepts a prompt exchange."""
    client = DirectClient.register(oauth_fastcode_server)
    assert_token_response(client.exchange(client.login()))


def test_refresh_replay_revokes_the_family(client: DirectClient) -> None:
    tok = client.tokens()
    r1 = assert_token_response(client.refresh(tok["refresh_token"]))
    time.sleep(1.2)  # past refresh_reuse_grace: a replay, not a race
    oauth_error(client.refresh(tok["refresh_token"]), 400, "invalid_grant", "replayed refresh token")
    oauth_error(client.refresh(r1["refresh_token"]), 400, "invalid_grant",
                "after a replay the newest refresh token of the family must be revoked too")


def test_refresh_by_another_client(client: DirectClient, oauth_server: OAuthServer) -> None:
    tok = client.tokens()
    other = DirectClient.register(oauth_server, name="other")
    oauth_error(other.refresh(tok["refresh_token"]), 400, "invalid_grant", "refresh token of another client")


def test_wrong_resource_at_token(client: DirectClient) -> None:
    grant = client.login()
    oauth_error(client.exchange(grant, resource="https://other.example/mcp"), 400, "invalid_target",
                "foreign resource at the token endpoint")


def test_wrong_resource_at_refresh(client: DirectClient) -> None:
    tok = client.tokens()
    oauth_error(client.refresh(tok["refresh_token"], resource="https://other.example/mcp"), 400, "invalid_target",
                "foreign resource at refresh")


def test_bad_grant_type_and_garbage(client: DirectClient) -> None:
    oauth_error(client.token({"grant_type": "password", "username": "a", "password": "b"}), 400,
                "unsupported_grant_type", "password grant")
    oauth_error(client.refresh("not-a-refresh-token"), 400, "invalid_grant", "garbage refresh token")
    oauth_error(client.token({"grant_type": "authorization_code", "code": "garbage", "redirect_uri": CLIENT_REDIRECT,
                              "code_verifier": pkce_pair()[0]}), 400, "invalid_grant", "garbage code")


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_confidential_client_bad_secret(oauth_server: OAuthServer, method: str) -> None:
    c = DirectClient.register(oauth_server, auth_method=method)
    grant = c.login()
    form = {"grant_type": "authorization_code", "code": grant.code, "redirect_uri": grant.redirect_uri,
            "code_verifier": grant.verifier}
    r = c.token(form, secret="wrong-" + secrets.token_hex(8))
    oauth_error(r, 401, "invalid_client", f"{method} with a wrong secret")
    if method == "client_secret_basic":
        assert r.headers.get("www-authenticate", "").lower().startswith("basic"), (
            f"RFC 6749 5.2: a 401 after Basic auth carries WWW-Authenticate: {r.headers}")
    nosecret = DirectClient(oauth_server, c.client_id)  # no secret at all
    oauth_error(nosecret.token(form), 401, "invalid_client", f"{method} client without its secret")


# --------------------------------------------------------------------------
# /oauth/register
# --------------------------------------------------------------------------

@pytest.mark.parametrize("uris", [
    ["http://example.com/callback"],
    ["javascript:alert(1)"],
    ["data:text/html,<script>alert(1)</script>"],
    ["file:///etc/passwd"],
    ["http://127.0.0.1:8080/callback#frag"],
    ["https://example.com/callback#frag"],
    [],
    None,
    ["not a url"],
    [CLIENT_REDIRECT, "http://evil.example/cb"],
], ids=["http-non-loopback", "javascript", "data", "file", "loopback-fragment", "https-fragment", "empty", "missing",
        "garbage", "one-bad-of-two"])
def test_registration_bad_redirect_uris(oauth_server: OAuthServer, uris: list[str] | None) -> None:
    meta: dict = {"client_name": "bad", "token_endpoint_auth_method": "none"}
    if uris is not None:
        meta["redirect_uris"] = uris
    r = oauth_server.register(meta)
    oauth_error(r, 400, "invalid_redirect_uri", f"redirect_uris {uris}")


@pytest.mark.parametrize("uri", ["https://app.example/callback", "http://localhost:1234/callback",
                                 "http://[::1]:5555/cb"])
def test_registration_good_redirect_uris(oauth_server: OAuthServer, uri: str) -> None:
    r = oauth_server.register({"redirect_uris": [uri], "token_endpoint_auth_method": "none"})
    assert r.status == 201, f"{uri}: {r.status} {r.text[:300]}"


def test_registration_bad_metadata(oauth_server: OAuthServer) -> None:
    r = oauth_server.register({"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "private_key_jwt"})
    oauth_error(r, 400, "invalid_client_metadata", "unsupported token_endpoint_auth_method")
    r = oauth_server.register({"redirect_uris": [CLIENT_REDIRECT], "grant_types": ["password"]})
    oauth_error(r, 400, "invalid_client_metadata", "unsupported grant type")


def test_registration_rate_limit(oauth_ratelimit_server: OAuthServer) -> None:
    statuses = []
    for i in range(STRICT_RATE_LIMIT + 3):
        r = oauth_ratelimit_server.register({"redirect_uris": [CLIENT_REDIRECT], "client_name": f"rl-{i}",
                                             "token_endpoint_auth_method": "none"})
        statuses.append(r.status)
        if r.status == 429:
            break
    assert 429 in statuses, f"no 429 after {len(statuses)} registrations (limit {STRICT_RATE_LIMIT}/min): {statuses}"
    assert statuses.index(429) <= STRICT_RATE_LIMIT, f"throttled late: {statuses}"
    assert statuses[0] == 201, statuses


def test_token_endpoint_rate_limit(oauth_ratelimit_server: OAuthServer) -> None:
    """The same limiter guards /oauth/token (garbage grants count too)."""
    c = DirectClient(oauth_ratelimit_server, "whoever")
    statuses = [c.refresh("garbage").status for _ in range(STRICT_RATE_LIMIT + 3)]
    assert 429 in statuses, statuses


def test_registration_policy_token(oauth_token_reg_server: OAuthServer) -> None:
    meta = {"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "none"}
    r = oauth_token_reg_server.register(meta)
    assert r.status == 401, f"no registration token: {r.status} {r.text[:300]}"
    r = oauth_token_reg_server.register(meta, {"Authorization": "Bearer wrong-token"})
    assert r.status == 401, f"wrong registration token: {r.status} {r.text[:300]}"
    r = oauth_token_reg_server.register(meta, {"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
    assert r.status == 201, f"right registration token: {r.status} {r.text[:300]}"
    assert oauth_token_reg_server.metadata().get("registration_endpoint") == \
        oauth_token_reg_server.issuer + "/oauth/register"


def test_registration_policy_off(oauth_reg_off_server: OAuthServer) -> None:
    assert "registration_endpoint" not in oauth_reg_off_server.metadata(), oauth_reg_off_server.metadata()
    r = oauth_reg_off_server.register({"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "none"})
    assert r.status in (403, 404), f"registration off: {r.status} {r.text[:300]}"


# --------------------------------------------------------------------------
# client ID metadata documents
# --------------------------------------------------------------------------

def _cimd_refused(srv: OAuthServer, url: str, what: str, reason: str | None) -> None:
    """authorize with the document URL as client_id: 400, no redirect, and
    an error_description matching /reason/ (so it is refused for the right
    reason). reason None: fetch failures, whose text must not tell them
    apart (test_oauth_bounds.test_cimd_fetch_errors_look_alike)."""
    c = DirectClient(srv, url)
    res = browse(c.authorize_url(challenge=pkce_pair()[1]), srv.follow)
    body = assert_no_redirect(res, 400, UNTRUSTED, what)
    if reason is not None:
        assert re.search(reason, body.get("error_description", ""), re.I), (
            f"{what}: error_description {body.get('error_description')!r} does not match /{reason}/")


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_cimd_private_address_refused(oauth_nopriv_server: OAuthServer, cimd_docs: DocServer, scheme: str) -> None:
    path = f"/clients/private-{scheme}.json"
    url = cimd_docs.doc(path).replace("http://", f"{scheme}://")
    before = cimd_docs.hits(path)
    _cimd_refused(oauth_nopriv_server, url, f"CIMD at a loopback address ({scheme})", "private|loopback|https")
    assert cimd_docs.hits(path) == before, "a private address must not even be fetched"


def test_cimd_redirect_refused(oauth_server: OAuthServer, cimd_docs: DocServer) -> None:
    target = cimd_docs.doc("/clients/redirect-target.json")
    url = cimd_docs.redirect("/clients/redirecting.json", target)
    # the target names itself: even a follower would find a client_id mismatch
    _cimd_refused(oauth_server, url, "CIMD answering with a redirect", None)
    assert cimd_docs.hits("/clients/redirect-target.json") == 0, "the redirect was followed"


def test_cimd_oversized_refused(oauth_server: OAuthServer, cimd_docs: DocServer) -> None:
    url = cimd_docs.doc("/clients/big.json", pad=6 * 1024)
    _cimd_refused(oauth_server, url, "CIMD over 5 KiB", "bytes|size|large|5 ?ki?b")


def test_cimd_not_json_refused(oauth_server: OAuthServer, cimd_docs: DocServer) -> None:
    url = cimd_docs.raw("/clients/page.html", b"<html><body>hello</body></html>", "text/html")
    _cimd_refused(oauth_server, url, "CIMD that is HTML", "json")
    url = cimd_docs.raw("/clients/broken.json", b'{"client_id": ', "application/json")
    _cimd_refused(oauth_server, url, "CIMD that is broken JSON", "json")


def test_cimd_client_id_mismatch_refused(oauth_server: OAuthServer, cimd_docs: DocServer) -> None:
    url = cimd_docs.doc("/clients/mismatch.json", client_id="https://someone-else.example/client.json")
    _cimd_refused(oauth_server, url, "CIMD whose client_id is another URL", "client_id")


def test_cimd_redirect_not_listed_refused(oauth_server: OAuthServer, cimd_docs: DocServer) -> None:
    url = cimd_docs.doc("/clients/other-redirect.json", redirect_uris=["http://127.0.0.1:1/elsewhere"])
    _cimd_refused(oauth_server, url, "redirect_uri not in the CIMD", "redirect_uri")


def test_cimd_not_found_refused(oauth_server: OAuthServer, cimd_docs: DocServer) -> None:
    _cimd_refused(oauth_server, cimd_docs.url("/clients/missing.json"), "CIMD that is 404", None)


# --------------------------------------------------------------------------
# encryption keys (check-config)
# --------------------------------------------------------------------------

def _check(workdir: Path, name: str, oauth_provider: OidcProvider, env: dict[str, str] | None = None,
           **kw: object) -> tuple[int, str]:
    cfg = oauth_config("http://127.0.0.1:1/prometheus", oauth_provider, **kw)  # type: ignore[arg-type]
    path = cfg.write(workdir / "servers" / f"oauth-key-{name}.toml")
    p = run_cli(["check-config", "--config", path], env=env)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.parametrize("key", ["0" * 64, "a" * 64, "0123456789abcdef" * 4, base64.b64encode(bytes(32)).decode()],
                         ids=["zeros-hex", "one-char-hex", "repeating-hex", "zeros-base64"])
def test_low_entropy_key_refused(workdir: Path, oauth_provider: OidcProvider, key: str) -> None:
    rc, out = _check(workdir, "weak", oauth_provider, key=key)
    assert rc == 2, f"low-entropy key accepted (exit {rc}):\n{out}"
    assert "encryption_key" in out or "entropy" in out.lower(), f"the message should name the key:\n{out}"
    assert key not in out, f"the key itself was printed:\n{out}"


@pytest.mark.parametrize("key", ["short", "zz" * 32, secrets.token_hex(16), secrets.token_hex(48)],
                         ids=["short", "not-hex", "16-bytes", "48-bytes"])
def test_malformed_key_refused(workdir: Path, oauth_provider: OidcProvider, key: str) -> None:
    rc, out = _check(workdir, "malformed", oauth_provider, key=key)
    assert rc == 2, f"malformed key accepted (exit {rc}):\n{out}"


@pytest.mark.parametrize("form", ["hex", "base64"])
def test_good_keys_accepted(workdir: Path, oauth_provider: OidcProvider, form: str) -> None:
    raw = secrets.token_bytes(32)
    key = raw.hex() if form == "hex" else base64.b64encode(raw).decode()
    rc, out = _check(workdir, form, oauth_provider, key=key)
    assert rc == 0, f"{form} key refused (exit {rc}):\n{out}"
    assert key not in out, f"the key was printed by check-config:\n{out}"


def test_key_from_file_and_env(workdir: Path, oauth_provider: OidcProvider) -> None:
    key_file = workdir / "oauth-key.hex"
    key_file.write_text(secrets.token_hex(32) + "\n")
    rc, out = _check(workdir, "file", oauth_provider, key=None, encryption_key_file=str(key_file))
    assert rc == 0, f"encryption_key_file refused (exit {rc}):\n{out}"
    rc, out = _check(workdir, "env", oauth_provider, key=None, env={"MCP_OAUTH_ENCRYPTION_KEY": secrets.token_hex(32)})
    assert rc == 0, f"MCP_OAUTH_ENCRYPTION_KEY refused (exit {rc}):\n{out}"
    rc, out = _check(workdir, "env-weak", oauth_provider, key=None, env={"MCP_OAUTH_ENCRYPTION_KEY": "00" * 32})
    assert rc == 2, f"weak MCP_OAUTH_ENCRYPTION_KEY accepted (exit {rc}):\n{out}"


def test_missing_key_refused(workdir: Path, oauth_provider: OidcProvider) -> None:
    rc, out = _check(workdir, "none", oauth_provider, key=None, env={"MCP_OAUTH_ENCRYPTION_KEY": ""})
    assert rc == 2, f"[oauth] without any encryption key accepted (exit {rc}):\n{out}"


def test_unknown_oauth_key_refused(workdir: Path, oauth_provider: OidcProvider) -> None:
    rc, out = _check(workdir, "unknown", oauth_provider, bogus_setting=1)
    assert rc == 2 and "bogus_setting" in out, f"exit {rc}:\n{out}"
