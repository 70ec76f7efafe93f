"""Bounds and honesty of the authorization server (issue 9, items 3 to 7):

* bounded state: `state` / `scope` at most 1 KiB, /oauth/authorize rate
  limited per client address, pending logins capped per address (429) and
  in total (503), registration bodies capped (413) and rate limited before
  the registration token is looked at, unused clients expire;
* scopes: a token carries requested ∩ advertised ∩ registered, nothing else;
* client ID metadata documents: redirect URIs on the document's origin (or
  loopback), one error text for every fetch failure (no port scanning
  through us), their own private-address switch and host allow-list;
* revocation that bites: revoking a refresh token (or replaying one) stops
  the family's access tokens at /mcp within seconds; families have an
  absolute lifetime;
* the authorize flood: 3,000 requests with a 16 KiB state, then 3,000 valid
  ones, and the server's memory before and after (printed, and written to
  target/oauth-flood.txt).

Every refusal asserts that nothing was issued: no redirect (so no code and
no visit to the provider), or invalid_grant at the token endpoint.
"""

from __future__ import annotations

import http.client
import os
import secrets
import threading
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest

from authasserts import assert_no_upstream
from constants import CLIENT_REDIRECT, PROVIDER_SCOPES
from docserver import DocServer
from httputil import closed_port
from oauth_browse import browse, browser
from oauth_client import DirectClient, assert_json_error, assert_no_redirect, assert_token_response, oauth_error
from oauth_fixtures import (
    CIMD_ALLOWED_HOST,
    CUSTOM_SCOPES,
    FLOOD_PENDING_CAP,
    PENDING_CAP_PER_ADDRESS,
    PENDING_CAP_TOTAL,
    REGISTRATION_TOKEN,
    SHORT_CLIENT_IDLE_S,
    SHORT_REFRESH_LIFETIME_S,
    STRICT_RATE_LIMIT,
)
from oauth_server import OAuthServer
from oidc_login import pkce_pair
from procs import REPO, current_rss_kib
from rawmcp import bearer, raw_call, raw_tool_result
from tenant_router import TenantRouter

UNTRUSTED = {"invalid_request", "invalid_client"}
MAX_PARAM = 1024
QUERY = {"query": "up"}
REVOCATION_POLL_S = 10.0
FLOOD_REQUESTS = int(os.environ.get("OAUTH_FLOOD_REQUESTS", "3000"))
FLOOD_BIG_STATE = 16 * 1024
FLOOD_MAX_GROWTH_MIB = 40
FLOOD_REPORT = REPO / "target" / "oauth-flood.txt"


@pytest.fixture(scope="module")
def client(oauth_server: OAuthServer) -> DirectClient:
    return DirectClient.register(oauth_server, name="bounds")


def ours_only(srv: OAuthServer) -> list[str]:
    """Follow only our own server: the browser stops, unfetched, at the provider."""
    return [srv.base_url, srv.public_url]


def assert_to_provider(srv: OAuthServer, url: str, what: str) -> None:
    res = browse(url, ours_only(srv))
    assert res.stopped_at and srv.provider is not None and res.stopped_at.startswith(srv.provider.issuer), (
        f"{what}: expected a 302 to the provider\n{res.describe()}")


def no_login_cookie(res: Any, what: str) -> None:
    cookies = [c for h in res.hops for c in h.set_cookies if c.startswith("mcp_login_")]
    assert not cookies, f"{what}: a refused authorize must not start a login (Set-Cookie {cookies})"


def token_scopes(srv: OAuthServer, tok: dict[str, Any], what: str) -> set[str]:
    """The scopes of a token response: its `scope` and the JWT's, which agree."""
    assert isinstance(tok.get("scope"), str), f"{what}: the token response has no scope: {tok}"
    claim = srv.verify(tok["access_token"]).get("scope")
    assert isinstance(claim, str), f"{what}: the access token has no scope claim"
    got, in_jwt = set(tok["scope"].split()), set(claim.split())
    assert got == in_jwt, f"{what}: token response scope {got} != access token scope {in_jwt}"
    return got


# --------------------------------------------------------------------------
# state and scope size
# --------------------------------------------------------------------------

@pytest.mark.parametrize("param", ["state", "scope"])
def test_parameter_over_1kib_refused(client: DirectClient, oauth_server: OAuthServer, param: str) -> None:
    big = ("openid " + "x" * (MAX_PARAM + 1 - 7)) if param == "scope" else "s" * (MAX_PARAM + 1)
    assert len(big.encode()) == MAX_PARAM + 1
    res = browse(client.authorize_url(challenge=pkce_pair()[1], **{param: big}), oauth_server.follow)
    body = assert_no_redirect(res, 400, {"invalid_request"}, f"{param} of {MAX_PARAM + 1} bytes")
    assert big not in body.get("error_description", ""), f"the oversized {param} was echoed back"
    no_login_cookie(res, f"{param} of {MAX_PARAM + 1} bytes")


@pytest.mark.parametrize("param", ["state", "scope"])
def test_parameter_of_1kib_accepted(client: DirectClient, oauth_server: OAuthServer, param: str) -> None:
    """Control: exactly 1 KiB still starts the login."""
    ok = ("openid " + "x" * (MAX_PARAM - 7)) if param == "scope" else "s" * MAX_PARAM
    assert_to_provider(oauth_server, client.authorize_url(challenge=pkce_pair()[1], **{param: ok}),
                       f"{param} of {MAX_PARAM} bytes")


# --------------------------------------------------------------------------
# rate limit and pending-login caps
# --------------------------------------------------------------------------

def test_authorize_rate_limit(oauth_ratelimit_server: OAuthServer, cimd_docs: DocServer) -> None:
    """GET /oauth/authorize counts per client address (its own bucket): the
    request over the limit gets a JSON 429, no redirect, no login."""
    srv = oauth_ratelimit_server
    c = DirectClient(srv, cimd_docs.doc(f"/clients/ratelimit-{secrets.token_hex(4)}.json"))
    results = []
    for _ in range(STRICT_RATE_LIMIT + 3):
        res = browse(c.authorize_url(challenge=pkce_pair()[1]), ours_only(srv))
        results.append(res)
        if res.response is not None and res.response.status_code == 429:
            break
    statuses = [r.hops[0].status for r in results]
    assert statuses[0] == 302, f"the first authorize should go to the provider: {statuses}\n{results[0].describe()}"
    assert statuses[-1] == 429, f"no 429 after {len(statuses)} authorize requests (limit {STRICT_RATE_LIMIT}/min): " \
                                f"{statuses}"
    assert len(statuses) <= STRICT_RATE_LIMIT + 1, f"throttled late: {statuses}"
    assert_no_redirect(results[-1], 429, {"too_many_requests"}, "authorize over the rate limit")
    no_login_cookie(results[-1], "authorize over the rate limit")


def _authorize_from(srv: OAuthServer, url: str, address: str) -> httpx2.Response:
    with browser() as http:
        return http.get(url, headers={"X-Forwarded-For": address})


def test_pending_login_caps(oauth_pending_cap_server: OAuthServer) -> None:
    """Unfinished logins are capped per client address (429) and in total
    (503): JSON, no redirect. Addresses come from X-Forwarded-For (the
    server trusts it)."""
    srv = oauth_pending_cap_server
    c = DirectClient.register(srv, name="pending-cap")

    def start(address: str) -> httpx2.Response:
        return _authorize_from(srv, c.authorize_url(challenge=pkce_pair()[1]), address)

    a = [start("198.51.100.7") for _ in range(PENDING_CAP_PER_ADDRESS + 1)]
    assert [r.status_code for r in a[:-1]] == [302] * PENDING_CAP_PER_ADDRESS, (
        f"the first {PENDING_CAP_PER_ADDRESS} logins of one address must start: {[r.status_code for r in a]}")
    assert_json_error(a[-1], 429, {"too_many_requests", "temporarily_unavailable", "invalid_request"},
                      f"pending login {PENDING_CAP_PER_ADDRESS + 1} of one address")
    assert "mcp_login_" not in a[-1].headers.get("set-cookie", ""), a[-1].headers

    room = PENDING_CAP_TOTAL - PENDING_CAP_PER_ADDRESS
    b = [start("198.51.100.8") for _ in range(room + 1)]
    assert [r.status_code for r in b[:-1]] == [302] * room, (
        f"a second address may start {room} more logins: {[r.status_code for r in b]}")
    assert_json_error(b[-1], 503, {"temporarily_unavailable", "too_many_requests", "server_error"},
                      f"pending login {PENDING_CAP_TOTAL + 1} in total")
    assert_json_error(start("198.51.100.9"), 503, {"temporarily_unavailable", "too_many_requests", "server_error"},
                      "a third address while the total cap is reached")


# --------------------------------------------------------------------------
# /oauth/register
# --------------------------------------------------------------------------

def test_registration_body_capped(oauth_server: OAuthServer) -> None:
    meta = {"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "none",
            "client_name": "x" * (17 * 1024)}
    r = oauth_server.register(meta)
    assert r.status == 413, f"a registration body over 16 KiB: expected 413, got {r.status}: {r.text[:300]}"
    assert b"client_id" not in r.body, f"a client was registered: {r.text[:300]}"


def test_registration_rate_limited_before_the_token(oauth_ratelimit_token_server: OAuthServer) -> None:
    """Wrong registration tokens count against the limit and are throttled
    (429) before the token is checked; then even the right token waits."""
    srv = oauth_ratelimit_token_server
    meta = {"redirect_uris": [CLIENT_REDIRECT], "token_endpoint_auth_method": "none"}
    statuses = []
    for _ in range(STRICT_RATE_LIMIT + 3):
        r = srv.register(meta, {"Authorization": f"Bearer wrong-{secrets.token_hex(8)}"})
        statuses.append(r.status)
        if r.status == 429:
            break
    assert statuses[-1] == 429, f"bad registration tokens are never throttled: {statuses}"
    assert set(statuses[:-1]) <= {401}, f"before the limit, bad tokens are 401: {statuses}"
    assert len(statuses) <= STRICT_RATE_LIMIT + 1, f"throttled late: {statuses}"
    r = srv.register(meta, {"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
    assert r.status == 429, f"over the limit the right token must wait too: {r.status} {r.text[:300]}"


def test_unused_client_expires(oauth_idle_client_server: OAuthServer) -> None:
    """client_idle_ttl: a registered client nobody uses is forgotten."""
    srv = oauth_idle_client_server
    c = DirectClient.register(srv, name="idle")
    assert_token_response(c.exchange(c.login("alice")))
    time.sleep(SHORT_CLIENT_IDLE_S + 1.5)
    res = c.start()
    assert_no_redirect(res, 400, UNTRUSTED, f"a client unused for more than {SHORT_CLIENT_IDLE_S}s")


# --------------------------------------------------------------------------
# scopes
# --------------------------------------------------------------------------

def test_scopes_supported_default(oauth_server: OAuthServer) -> None:
    got = oauth_server.metadata().get("scopes_supported")
    assert isinstance(got, list) and set(got) == set(PROVIDER_SCOPES), (
        f"scopes_supported {got}, want the default {PROVIDER_SCOPES}")


def test_scopes_outside_the_advertised_set_dropped(client: DirectClient, oauth_server: OAuthServer) -> None:
    grant = client.login("alice", scope="openid admin:all prometheus:write groups")
    tok = assert_token_response(client.exchange(grant))
    assert token_scopes(oauth_server, tok, "self-granted scopes") == {"openid", "groups"}
    again = assert_token_response(client.refresh(tok["refresh_token"]))
    assert token_scopes(oauth_server, again, "after refresh") == {"openid", "groups"}


def test_no_scope_requested_gets_the_advertised_set(client: DirectClient, oauth_server: OAuthServer) -> None:
    tok = assert_token_response(client.exchange(client.login("alice", scope=None)))
    assert token_scopes(oauth_server, tok, "no scope requested") == set(oauth_server.metadata()["scopes_supported"])


def test_registered_scope_narrows(oauth_server: OAuthServer) -> None:
    c = DirectClient.register(oauth_server, name="narrow", scope="openid groups")
    tok = assert_token_response(c.exchange(c.login("alice", scope="openid profile groups email admin:all")))
    assert token_scopes(oauth_server, tok, "more than registered") == {"openid", "groups"}
    tok = assert_token_response(c.exchange(c.login("alice", scope=None)))
    assert token_scopes(oauth_server, tok, "no scope, registered scope") == {"openid", "groups"}


def test_configured_scopes(oauth_scopes_server: OAuthServer) -> None:
    srv = oauth_scopes_server
    assert srv.metadata().get("scopes_supported") == CUSTOM_SCOPES, srv.metadata().get("scopes_supported")
    c = DirectClient.register(srv, name="custom-scopes")
    tok = assert_token_response(c.exchange(c.login("bob", scope="openid email prometheus:read prometheus:write")))
    assert token_scopes(srv, tok, "configured scopes") == {"openid", "prometheus:read"}


# --------------------------------------------------------------------------
# client ID metadata documents
# --------------------------------------------------------------------------

@pytest.mark.parametrize("uris,use", [
    (["https://evil.example/cb"], "https://evil.example/cb"),
    ([CLIENT_REDIRECT, "https://evil.example/cb"], CLIENT_REDIRECT),
], ids=["foreign-only", "foreign-beside-loopback"])
def test_cimd_cross_origin_redirect_refused(oauth_server: OAuthServer, cimd_docs: DocServer, uris: list[str],
                                            use: str) -> None:
    """A document (on http://127.0.0.1:P) naming a redirect URI on another
    origin (not loopback) is refused as a whole: anyone could otherwise
    publish a document sending codes to their own host."""
    url = cimd_docs.doc(f"/clients/cross-{secrets.token_hex(4)}.json", redirect_uris=uris)
    c = DirectClient(oauth_server, url)
    res = browse(c.authorize_url(challenge=pkce_pair()[1], redirect_uri=use), oauth_server.follow)
    assert_no_redirect(res, 400, {"invalid_client"}, f"CIMD with redirect_uris {uris}")
    no_login_cookie(res, "cross-origin CIMD")


def test_cimd_fetch_errors_look_alike(oauth_server: OAuthServer, cimd_docs: DocServer) -> None:
    """Connection refused, 404, timeout and redirect: one error text (up to
    the URL), so callers cannot map internal ports through us."""
    tag = secrets.token_hex(4)
    urls = {
        "refused": f"http://127.0.0.1:{closed_port()}/clients/{tag}.json",
        "404": cimd_docs.url(f"/clients/missing-{tag}.json"),
        "timeout": cimd_docs.slow(f"/clients/slow-{tag}.json", 8.0),
        "redirect": cimd_docs.redirect(f"/clients/redir-{tag}.json", cimd_docs.doc(f"/clients/target-{tag}.json")),
    }

    def attempt(url: str) -> Any:
        return browse(DirectClient(oauth_server, url).authorize_url(challenge=pkce_pair()[1]), oauth_server.follow,
                      timeout=20)

    with ThreadPoolExecutor(len(urls)) as pool:
        results = dict(zip(urls, pool.map(attempt, urls.values())))
    texts = {}
    for kind, res in results.items():
        body = assert_no_redirect(res, 400, UNTRUSTED, f"CIMD fetch failure ({kind})")
        texts[kind] = (body["error"], body["error_description"].replace(urls[kind], "<url>"))
    assert len(set(texts.values())) == 1, "the fetch failures are told apart:\n" + "\n".join(
        f"  {k}: {v}" for k, v in texts.items())


def test_cimd_private_switch_is_separate(oauth_cimd_nopriv_server: OAuthServer, cimd_docs: DocServer) -> None:
    """client_metadata_allow_private = false refuses (without fetching) a
    document on 127.0.0.1, while the provider on 127.0.0.1 still works
    (allow_private_urls = true)."""
    srv = oauth_cimd_nopriv_server
    path = f"/clients/nopriv-{secrets.token_hex(4)}.json"
    url = cimd_docs.doc(path)
    res = browse(DirectClient(srv, url).authorize_url(challenge=pkce_pair()[1]), srv.follow)
    assert_no_redirect(res, 400, UNTRUSTED, "CIMD on 127.0.0.1 with client_metadata_allow_private = false")
    assert cimd_docs.hits(path) == 0, "a private document must not even be fetched"
    c = DirectClient.register(srv, name="nopriv-control")
    assert_token_response(c.exchange(c.login("alice")))


def test_cimd_allowed_hosts(oauth_cimd_hosts_server: OAuthServer, cimd_docs: DocServer) -> None:
    """client_metadata_allowed_hosts = [localhost]: a document on 127.0.0.1
    is refused unfetched; the same server's document via localhost works."""
    srv = oauth_cimd_hosts_server
    tag = secrets.token_hex(4)
    refused_path = f"/clients/ip-{tag}.json"
    url = cimd_docs.doc(refused_path)
    res = browse(DirectClient(srv, url).authorize_url(challenge=pkce_pair()[1]), srv.follow)
    assert_no_redirect(res, 400, UNTRUSTED, "CIMD host not in client_metadata_allowed_hosts")
    assert cimd_docs.hits(refused_path) == 0, "a document on a host outside the allow-list was fetched"

    path = f"/clients/host-{tag}.json"
    local_url = cimd_docs.url(path).replace("127.0.0.1", CIMD_ALLOWED_HOST)
    cimd_docs.doc(path, client_id=local_url)
    c = DirectClient(srv, local_url)
    assert_token_response(c.exchange(c.login("alice")))


# --------------------------------------------------------------------------
# revocation that bites
# --------------------------------------------------------------------------

def _mcp_status(srv: OAuthServer, access_token: str) -> int:
    return raw_call(srv.mcp_url, "execute_query", QUERY, bearer(access_token)).status


def wait_refused(srv: OAuthServer, router: TenantRouter, access_token: str, what: str) -> float:
    """Poll /mcp with the token until 401 (at most REVOCATION_POLL_S); the
    seconds it took. The refused call reaches no upstream."""
    t0 = time.monotonic()
    statuses = []
    while True:
        mark = router.mark()
        status = _mcp_status(srv, access_token)
        statuses.append(status)
        if status == 401:
            assert_no_upstream(router, mark, f"{what}: the refused call")
            took = time.monotonic() - t0
            print(f"{what}: access token refused after {took:.2f}s")
            return took
        assert status == 200, f"{what}: unexpected HTTP {status} while waiting for 401"
        if time.monotonic() - t0 > REVOCATION_POLL_S:
            raise AssertionError(f"{what}: the access token still works {REVOCATION_POLL_S}s after its family "
                                 f"was revoked ({len(statuses)} calls, all {set(statuses)})")
        time.sleep(0.25)


def test_access_tokens_carry_their_family(client: DirectClient, oauth_server: OAuthServer) -> None:
    tok = client.tokens("alice")
    sid = oauth_server.verify(tok["access_token"]).get("sid")
    assert isinstance(sid, str) and sid, "access tokens must carry sid (their refresh family)"
    again = assert_token_response(client.refresh(tok["refresh_token"]))
    assert oauth_server.verify(again["access_token"]).get("sid") == sid, "a refresh keeps the family"
    other = client.tokens("alice")
    assert oauth_server.verify(other["access_token"]).get("sid") != sid, "two logins share a family"
    assert sid not in (tok["refresh_token"], again["refresh_token"]), "sid is the refresh token itself"


def test_revoking_the_refresh_token_stops_its_access_tokens(client: DirectClient, oauth_server: OAuthServer,
                                                             router: TenantRouter) -> None:
    tok = client.tokens("alice")
    bystander = client.tokens("alice")
    res = raw_tool_result(raw_call(oauth_server.mcp_url, "execute_query", QUERY, bearer(tok["access_token"])))
    assert not res.get("isError"), f"the fresh access token should work: {res}"
    assert client.revoke(tok["refresh_token"], "refresh_token").status == 200
    wait_refused(oauth_server, router, tok["access_token"], "after revoking its refresh token")
    oauth_error(client.refresh(tok["refresh_token"]), 400, "invalid_grant", "refresh after revocation")
    assert _mcp_status(oauth_server, bystander["access_token"]) == 200, "another family was revoked too"


def test_refresh_replay_stops_the_familys_access_tokens(client: DirectClient, oauth_server: OAuthServer,
                                                         router: TenantRouter) -> None:
    tok = client.tokens("bob")
    newer = assert_token_response(client.refresh(tok["refresh_token"]))
    time.sleep(1.2)  # past refresh_reuse_grace: a replay, not a race
    oauth_error(client.refresh(tok["refresh_token"]), 400, "invalid_grant", "replayed refresh token")
    wait_refused(oauth_server, router, newer["access_token"], "newest access token after a replay")
    wait_refused(oauth_server, router, tok["access_token"], "first access token after a replay")


def test_refresh_family_absolute_lifetime(oauth_short_refresh_server: OAuthServer) -> None:
    """refresh_token_max_lifetime: rotation does not extend the family."""
    srv = oauth_short_refresh_server
    c = DirectClient.register(srv, name="short-family")
    t0 = time.monotonic()
    tok = c.tokens("alice")
    again = assert_token_response(c.refresh(tok["refresh_token"]))
    assert time.monotonic() - t0 < SHORT_REFRESH_LIFETIME_S, "too slow to test the lifetime"
    time.sleep(max(0.0, SHORT_REFRESH_LIFETIME_S + 1.0 - (time.monotonic() - t0)))
    oauth_error(c.refresh(again["refresh_token"]), 400, "invalid_grant",
                f"a refresh of a family older than refresh_token_max_lifetime ({SHORT_REFRESH_LIFETIME_S}s)")
    assert_token_response(c.refresh(c.tokens("alice")["refresh_token"]))  # control: a young family refreshes


# --------------------------------------------------------------------------
# the flood
# --------------------------------------------------------------------------

def _flood(srv: OAuthServer, paths: list[str], workers: int = 8) -> Counter[int]:
    """GET each path once over keep-alive connections (no cookies kept);
    the count of each status."""
    host, port = "127.0.0.1", srv.config.listen_port
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        local: Counter[int] = Counter()
        try:
            for p in chunk:
                conn.request("GET", p)
                r = conn.getresponse()
                r.read()
                local[r.status] += 1
                if r.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
        finally:
            conn.close()
            with lock:
                counts.update(local)

    chunks = [paths[i::workers] for i in range(workers)]
    threads = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return counts


def test_authorize_flood_memory(oauth_flood_server: OAuthServer) -> None:
    """3,000 authorize requests with a 16 KiB state (refused: 400), then
    3,000 valid ones with a 1 KiB state (each a pending login, up to the
    default total cap of 10,000; beyond it 503), rate limit relaxed. The
    server's RSS growth stays within 40 MiB. With OAUTH_FLOOD_REQUESTS=30000
    the cap shows: memory stops growing at the cap. Figures printed and in
    target/oauth-flood.txt."""
    srv = oauth_flood_server
    c = DirectClient.register(srv, name="flood")
    challenge = pkce_pair()[1]

    def path(state: str) -> str:
        u = urllib.parse.urlsplit(c.authorize_url(challenge=challenge, state=state))
        return f"{u.path}?{u.query}"

    warm = _flood(srv, [path("w" * 1024)] * 20 + [path("W" * FLOOD_BIG_STATE)] * 20)
    assert warm == Counter({302: 20, 400: 20}), f"warm-up: {warm}"
    pid = srv.proc.pid
    rss0 = current_rss_kib(pid)
    t0 = time.monotonic()
    big = _flood(srv, [path(secrets.token_hex(FLOOD_BIG_STATE // 2)) for _ in range(FLOOD_REQUESTS)])
    t_big = time.monotonic() - t0
    rss1 = current_rss_kib(pid)
    t0 = time.monotonic()
    valid = _flood(srv, [path(secrets.token_hex(512)) for _ in range(FLOOD_REQUESTS)])
    t_valid = time.monotonic() - t0
    rss2 = current_rss_kib(pid)
    assert srv.proc.poll() is None, "the server died under the flood"

    growth_mib = (rss2 - rss0) / 1024
    report = "\n".join([
        f"authorize flood against {srv.srv.name} (pid {pid}, {srv.proc.args[0]})",
        f"  RSS before (after a 40-request warm-up): {rss0 / 1024:6.1f} MiB",
        f"  {FLOOD_REQUESTS} x {FLOOD_BIG_STATE // 1024:2d} KiB state (refused): RSS {rss1 / 1024:6.1f} MiB "
        f"({(rss1 - rss0) / 1024:+.1f}), answers {dict(big)}, {t_big:.1f}s",
        f"  {FLOOD_REQUESTS} x  1 KiB state (valid):   RSS {rss2 / 1024:6.1f} MiB "
        f"({(rss2 - rss1) / 1024:+.1f}), answers {dict(valid)}, {t_valid:.1f}s",
        f"  total growth: {growth_mib:.1f} MiB (bound {FLOOD_MAX_GROWTH_MIB} MiB)",
    ])
    print("\n" + report)
    FLOOD_REPORT.parent.mkdir(parents=True, exist_ok=True)
    FLOOD_REPORT.write_text(report + "\n")
    assert big == Counter({400: FLOOD_REQUESTS}), f"a 16 KiB state must be refused every time: {big}"
    room = FLOOD_PENDING_CAP - 20  # the warm-up's valid logins are pending too
    expected = Counter({302: min(FLOOD_REQUESTS, room)})
    if FLOOD_REQUESTS > room:
        expected[503] = FLOOD_REQUESTS - room
    assert valid == expected, f"logins start up to the cap of pending logins, then 503: {valid}"
    assert growth_mib <= FLOOD_MAX_GROWTH_MIB, report
