"""Our consent page and the browser binding of a login (issue 9, items 1, 2
and 6): after the provider login and before any code, the user sees a page
of ours naming the client, its redirect URI's host, the user, the resource
and the scopes, and approves or denies with a single-use CSRF token; the
login is bound to the browser that started it by a `mcp_login_<tag>`
cookie set at /oauth/authorize, which /oauth/callback and the consent POST
require.

Every refusal asserts the answer (HTTP 400, JSON invalid_request, no
Location) and that no code was issued (nothing reached the client's
redirect URI, and the login cannot be finished afterwards).

Servers: `oauth_server` (consent remembered for 30 days) and
`oauth_consent_always_server` (consent_ttl = 0s, one preapproved client
ID metadata document).
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from dataclasses import dataclass

import httpx2
import pytest

from docserver import DocServer
from oauth_browse import BrowseResult, ConsentPage, browse, browser, consent_page, login_cookies
from oauth_client import DirectClient, Grant, assert_json_error, assert_token_response
from oauth_fixtures import PREAPPROVED_DOC_PATH
from oauth_server import OAuthServer
from oidc_login import pkce_pair

CSP_PREFIX = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
NOT_LOCAL = re.compile(r"not on this computer", re.I)
HOSTILE_NAME = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


@dataclass
class Login:
    """A login stopped at our consent page, in its own browser."""

    client: DirectClient
    http: httpx2.Client
    res: BrowseResult
    page: ConsentPage
    state: str
    verifier: str
    redirect_uri: str

    def post(self, data: dict[str, str], http: httpx2.Client | None = None) -> httpx2.Response:
        """POST the consent form (from this browser unless `http`)."""
        return (http or self.http).post(self.page.action, data=data)

    def grant(self, code: str) -> Grant:
        return Grant(code, self.state, self.client.srv.issuer, self.verifier, self.redirect_uri, self.res)


def open_consent(c: DirectClient, http: httpx2.Client, user: str = "alice", *, scope: str | None = None,
                 redirect_uri: str | None = None) -> Login:
    """authorize + provider login, stopping at our consent page (asserted)."""
    verifier, challenge = pkce_pair()
    state = "st-" + secrets.token_urlsafe(8)
    redirect_uri = redirect_uri or c.redirect_uri
    res = browse(c.authorize_url(challenge=challenge, state=state, scope=scope, redirect_uri=redirect_uri),
                 c.srv.follow, user, consent=None, http=http)
    assert res.stopped_at is None and res.response is not None, (
        f"the login must stop at our consent page, not go on to {res.stopped_at}\n{res.describe()}")
    page = consent_page(res.response)
    assert page is not None, f"no consent page (a form with csrf_token and decision buttons)\n{res.describe()}"
    assert not any("code=" in (h.location or "") and h.location.startswith(redirect_uri) for h in res.hops), (
        f"a code went to the client before the user approved\n{res.describe()}")
    return Login(c, http, res, page, state, verifier, redirect_uri)


def assert_back_at_client(r: httpx2.Response, login: Login, what: str) -> dict[str, str]:
    """A 303 from the consent POST to the client's redirect URI with state and
    iss; the query parameters."""
    assert r.status_code == 303, f"{what}: expected 303 to the client, got {r.status_code}: {r.text[:500]!r}"
    loc = r.headers.get("location", "")
    assert loc.startswith(login.redirect_uri), f"{what}: sent to {loc!r}, not the client's {login.redirect_uri}"
    q = {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query).items()}
    assert q.get("state") == login.state, f"{what}: state not round-tripped: {q}"
    assert q.get("iss") == login.client.srv.issuer, f"{what}: iss {q.get('iss')!r} (RFC 9207)"
    return q


def assert_used_up(login: Login, what: str) -> None:
    """The login can no longer be finished, not even with its own cookie and
    its own CSRF token: no code."""
    r = login.post(login.page.form("approve"))
    assert_json_error(r, 400, "invalid_request", f"{what}: approving afterwards (the login must be used up)")


@pytest.fixture(scope="module")
def always(oauth_consent_always_server: OAuthServer) -> DirectClient:
    """A client of the always-ask server (every login shows the page)."""
    return DirectClient.register(oauth_consent_always_server, name="Consent Matrix Client")


# --------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------

def test_consent_page_content_and_headers(oauth_server: OAuthServer) -> None:
    c = DirectClient.register(oauth_server, name="Consent Page Client")
    with browser() as http:
        login = open_consent(c, http, "alice", scope="openid groups")
        r, page = login.res.response, login.page
        assert r is not None
        assert "text/html" in r.headers.get("content-type", ""), r.headers
        csp = r.headers.get("content-security-policy", "")
        assert csp.startswith(CSP_PREFIX), f"Content-Security-Policy {csp!r} must start with {CSP_PREFIX!r}"
        assert r.headers.get("x-frame-options", "").upper() == "DENY", f"X-Frame-Options: {r.headers}"
        assert "no-store" in r.headers.get("cache-control", ""), f"Cache-Control: {r.headers}"

        assert len(page.forms) == 1, f"exactly one form, got {len(page.forms)}:\n{page.html[:2000]}"
        assert page.method == "post", f"the form must POST: {page.method}"
        assert urllib.parse.urlsplit(page.action).path.endswith("/oauth/consent"), page.action
        assert page.action.startswith(oauth_server.public_url), f"form action {page.action} is not ours"
        csrf_inputs = [i for i in page.forms[0].inputs if i.get("name") == "csrf_token"]
        assert len(csrf_inputs) == 1 and csrf_inputs[0].get("type", "").lower() == "hidden", csrf_inputs
        assert len(page.csrf_token) >= 16, f"a guessable CSRF token: {page.csrf_token!r}"
        assert sorted(page.decisions) == ["approve", "deny"], f"decision buttons: {page.decisions}"
        for b in page.forms[0].buttons:
            assert b.get("type", "submit").lower() == "submit", f"decision control is not a submit button: {b}"
        assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page.html, re.I), (
            f"the consent page loads something (no external assets allowed):\n{page.html[:2000]}")

        text = page.text
        for what, want in [("client_name", "Consent Page Client"), ("client_id", c.client_id),
                           ("redirect URI host", "127.0.0.1"), ("resource", oauth_server.resource),
                           ("scope openid", "openid"), ("scope groups", "groups")]:
            assert want in text, f"the consent page does not name the {what} ({want!r}):\n{text[:2000]}"
        assert "alice" in text.lower(), f"the consent page does not name the signed-in user:\n{text[:2000]}"
        assert not NOT_LOCAL.search(text), f"a loopback redirect URI flagged as remote:\n{text[:2000]}"
        assert login.page.csrf_token not in str(login.res.hops), "the CSRF token travelled in a URL"


def test_authorize_sets_the_login_cookie(always: DirectClient) -> None:
    """/oauth/authorize binds the login to the browser: an HttpOnly,
    SameSite=Lax cookie for /oauth, 10 minutes, named per login (so two
    logins in one browser do not clobber each other); no Secure on an http
    public URL (the browser would not send it back)."""
    with browser() as http:
        res = always.start(stop_before="/oauth/callback", http=http)
        first = res.hops[0]
        assert first.status == 302 and first.location and first.location.startswith(
            always.srv.provider.issuer), f"authorize should send the browser to the provider\n{res.describe()}"
        ours = [sc for sc in first.set_cookies if sc.startswith("mcp_login_")]
        assert len(ours) == 1, f"/oauth/authorize must set one mcp_login_<tag> cookie, got {first.set_cookies}"
        name_value, *attrs = [p.strip() for p in ours[0].split(";")]
        name, _, value = name_value.partition("=")
        assert re.fullmatch(r"mcp_login_[A-Za-z0-9_-]{8,}", name), f"cookie name {name!r}"
        assert len(value) >= 16, f"cookie value too short to be random: {value!r}"
        a = {k.lower(): v for k, _, v in (x.partition("=") for x in attrs)}
        assert a.get("path") == "/oauth", f"cookie must be scoped to Path=/oauth: {ours[0]}"
        assert "httponly" in a, f"cookie without HttpOnly: {ours[0]}"
        assert a.get("samesite", "").lower() == "lax", f"cookie without SameSite=Lax: {ours[0]}"
        assert a.get("max-age") == "600", f"cookie must live 600 s: {ours[0]}"
        assert "secure" not in a, f"Secure on an http public URL: {ours[0]}"
        assert "domain" not in a, f"a Domain attribute widens the cookie: {ours[0]}"
        second = always.start(stop_before="/oauth/callback", http=http)
        names = [sc.split("=", 1)[0] for sc in second.hops[0].set_cookies if sc.startswith("mcp_login_")]
        assert names and names[0] != name, f"two logins got the same cookie name {name!r}: not per login"


def test_two_logins_in_one_browser(always: DirectClient) -> None:
    """Two tabs: two logins started in one browser both finish (each its own
    cookie), with their own codes."""
    with browser() as http:
        a = open_consent(always, http, "alice")
        b = open_consent(always, http, "alice")
        assert a.page.csrf_token != b.page.csrf_token, "two logins share a CSRF token"
        assert len(login_cookies(http)) >= 2, f"one cookie for two logins: {login_cookies(http)}"
        qa = assert_back_at_client(a.post(a.page.form("approve")), a, "first tab")
        qb = assert_back_at_client(b.post(b.page.form("approve")), b, "second tab")
        assert qa.get("code") and qb.get("code") and qa["code"] != qb["code"], (qa, qb)
        assert_token_response(always.exchange(a.grant(qa["code"])))
        assert_token_response(always.exchange(b.grant(qb["code"])))


# --------------------------------------------------------------------------
# approve, deny, remembered, preapproved
# --------------------------------------------------------------------------

def test_approve_issues_a_code(always: DirectClient) -> None:
    with browser() as http:
        login = open_consent(always, http, "bob")
        q = assert_back_at_client(login.post(login.page.form("approve")), login, "approve")
        assert q.get("code") and "error" not in q, q
        tok = assert_token_response(always.exchange(login.grant(q["code"])))
        assert always.srv.verify(tok["access_token"]).get("groups") == ["team-b", "team-c"]


def test_deny_sends_access_denied(always: DirectClient) -> None:
    with browser() as http:
        login = open_consent(always, http, "alice")
        q = assert_back_at_client(login.post(login.page.form("deny")), login, "deny")
        assert q.get("error") == "access_denied", f"deny must send error=access_denied: {q}"
        assert "code" not in q, f"a code despite deny: {q}"
        assert_used_up(login, "after deny")


def test_denial_is_not_remembered(oauth_server: OAuthServer) -> None:
    """browse(consent="deny"): access_denied at the client; the next login of
    the same client and user is asked again (only approval is remembered)."""
    c = DirectClient.register(oauth_server, name="deny-then-ask")
    res = c.start("alice", consent="deny", state="s-deny")
    assert res.consents == ["deny"], f"the consent page was not shown\n{res.describe()}"
    assert res.stopped_at and res.stopped_at.startswith(c.redirect_uri), res.describe()
    p = res.params
    assert p.get("error") == "access_denied" and "code" not in p, p
    assert p.get("state") == "s-deny" and p.get("iss") == oauth_server.issuer, p
    again = c.start("alice", consent=None)
    assert again.consent_shown, f"after a denial the next login must ask again\n{again.describe()}"


def test_remembered_consent_skips_the_page(oauth_server: OAuthServer) -> None:
    """Approval is remembered per (user, client, scopes): the same login
    again skips the page; more scopes or another user are asked again."""
    c = DirectClient.register(oauth_server, name="remembered-consent")
    with browser() as http:
        first = open_consent(c, http, "alice", scope="openid")
        q = assert_back_at_client(first.post(first.page.form("approve")), first, "first approval")
        assert_token_response(c.exchange(first.grant(q["code"])))

    again = c.login("alice", scope="openid")  # asserts the code
    assert not again.browse.consents and not again.browse.consent_shown, (
        f"the same user, client and scopes were asked again\n{again.browse.describe()}")
    assert_token_response(c.exchange(again))

    more = c.start("alice", consent=None, scope="openid groups")
    assert more.consent_shown, f"more scopes than approved must be asked for\n{more.describe()}"
    other = c.start("bob", consent=None, scope="openid")
    assert other.consent_shown, f"alice's approval must not count for bob\n{other.describe()}"


def test_consent_ttl_zero_always_asks(always: DirectClient) -> None:
    for i in range(2):
        with browser() as http:
            login = open_consent(always, http, "alice", scope="openid")
            q = assert_back_at_client(login.post(login.page.form("approve")), login, f"login {i + 1}")
            assert q.get("code"), q


def test_preapproved_client_skips_the_page(oauth_consent_always_server: OAuthServer, cimd_docs: DocServer) -> None:
    """oauth.preapproved_clients lists a metadata-document URL: no page even
    with consent_ttl = 0s. Another document on the same server is asked."""
    srv = oauth_consent_always_server
    pre = DirectClient(srv, cimd_docs.url(PREAPPROVED_DOC_PATH))
    grant = pre.login("alice")
    assert not grant.browse.consent_shown, f"the preapproved client saw the page\n{grant.browse.describe()}"
    assert_token_response(pre.exchange(grant))

    other = DirectClient(srv, cimd_docs.doc(f"/clients/not-preapproved-{secrets.token_hex(4)}.json"))
    res = other.start("alice", consent=None)
    assert res.consent_shown, f"a client that is not preapproved skipped the page\n{res.describe()}"


# --------------------------------------------------------------------------
# CSRF on the consent POST
# --------------------------------------------------------------------------

def test_consent_without_csrf_token(always: DirectClient) -> None:
    """A POST naming no login issues nothing; it cannot spend the user's
    own login either (it names none), which still finishes with its token."""
    with browser() as http:
        login = open_consent(always, http)
        r = login.post({"decision": "approve"})
        assert_json_error(r, 400, "invalid_request", "consent POST without csrf_token")
        assert "location" not in r.headers, f"a refused consent POST redirected: {r.headers}"
        q = assert_back_at_client(login.post(login.page.form("approve")), login, "the real approval")
        assert_token_response(always.exchange(login.grant(q["code"])))


def test_consent_with_unknown_csrf_token(always: DirectClient) -> None:
    with browser() as http:
        login = open_consent(always, http)
        r = login.post(login.page.form("approve", csrf_token=secrets.token_urlsafe(32)))
        assert_json_error(r, 400, "invalid_request", "consent POST with a made-up csrf_token")
        assert "location" not in r.headers, f"a refused consent POST redirected: {r.headers}"
        q = assert_back_at_client(login.post(login.page.form("approve")), login, "the real approval")
        assert q.get("code") and "error" not in q, q


def test_consent_csrf_token_is_single_use(always: DirectClient) -> None:
    with browser() as http:
        login = open_consent(always, http)
        q = assert_back_at_client(login.post(login.page.form("approve")), login, "first approval")
        assert q.get("code"), q
        r = login.post(login.page.form("approve"))
        assert_json_error(r, 400, "invalid_request", "the same csrf_token posted a second time")
        r = login.post(login.page.form("deny"))
        assert_json_error(r, 400, "invalid_request", "a deny after the approval")
        assert_token_response(always.exchange(login.grant(q["code"])))  # the first approval stands


def test_consent_with_csrf_token_of_another_login(always: DirectClient) -> None:
    """Login A's browser (A's cookie) posts login B's CSRF token: refused, no
    code, and login B, whose token was spent, cannot be finished afterwards."""
    with browser() as ha, browser() as hb:
        a = open_consent(always, ha)
        b = open_consent(always, hb)
        r = a.post(a.page.form("approve", csrf_token=b.page.csrf_token))
        assert_json_error(r, 400, "invalid_request", "A's cookie with B's csrf_token")
        assert_used_up(b, "login B after its token was posted with A's cookie")


def test_consent_with_cookie_of_another_login(always: DirectClient) -> None:
    """A's CSRF token posted from B's browser (B's cookie): refused."""
    with browser() as ha, browser() as hb:
        a = open_consent(always, ha)
        open_consent(always, hb)
        r = a.post(a.page.form("approve"), http=hb)
        assert_json_error(r, 400, "invalid_request", "A's csrf_token from B's browser")
        assert_used_up(a, "login A after it was posted from another browser")


def test_consent_without_cookie(always: DirectClient) -> None:
    with browser() as http, browser() as stranger:
        login = open_consent(always, http)
        r = login.post(login.page.form("approve"), http=stranger)
        assert_json_error(r, 400, "invalid_request", "consent POST without the login cookie")
        assert_used_up(login, "after a POST without the cookie")


@pytest.mark.parametrize("decision", ["maybe", "", None, "APPROVE"], ids=["garbage", "empty", "missing", "upper"])
def test_consent_bad_decision(always: DirectClient, decision: str | None) -> None:
    with browser() as http:
        login = open_consent(always, http)
        data: dict[str, str] = {"csrf_token": login.page.csrf_token}
        if decision is not None:
            data["decision"] = decision
        r = login.post(data)
        assert_json_error(r, 400, "invalid_request", f"decision={decision!r}")
        assert_used_up(login, f"after decision={decision!r}")


# --------------------------------------------------------------------------
# the callback's browser binding
# --------------------------------------------------------------------------

def _to_callback(c: DirectClient, http: httpx2.Client) -> str:
    """authorize + provider login, stopping (unfetched) at our callback."""
    res = c.start(stop_before="/oauth/callback", http=http)
    assert res.stopped_at and urllib.parse.urlsplit(res.stopped_at).path.endswith("/oauth/callback"), res.describe()
    assert login_cookies(http), f"no mcp_login_ cookie after /oauth/authorize\n{res.describe()}"
    return res.stopped_at


def test_callback_without_the_cookie(always: DirectClient) -> None:
    """The provider's redirect back, opened in a browser that never started
    the login (login CSRF): 400, no consent page, no code."""
    with browser() as http, browser() as stranger:
        url = _to_callback(always, http)
        res = browse(url, always.srv.follow, consent=None, http=stranger)
        assert res.response is not None and len(res.hops) == 1, res.describe()
        assert_json_error(res.response, 400, "invalid_request", "callback without the login cookie")


def test_callback_with_another_logins_cookie(always: DirectClient) -> None:
    """Session swapping: the attacker's callback URL (login A) opened in the
    victim's browser, which holds the cookie of its own login B: refused.
    Control: B's own callback in B's browser reaches the consent page."""
    with browser() as attacker, browser() as victim:
        url_a = _to_callback(always, attacker)
        url_b = _to_callback(always, victim)
        res = browse(url_a, always.srv.follow, consent=None, http=victim)
        assert res.response is not None and len(res.hops) == 1, res.describe()
        assert_json_error(res.response, 400, "invalid_request", "callback of login A with login B's cookie")
        own = browse(url_b, always.srv.follow, consent=None, http=victim)
        assert own.consent_shown, f"control: login B in its own browser should reach the page\n{own.describe()}"


def test_callback_with_forged_cookie(always: DirectClient) -> None:
    """The right cookie name with a made-up value: refused."""
    with browser() as http:
        url = _to_callback(always, http)
        forged = {name: secrets.token_urlsafe(32) for name in login_cookies(http)}
    with browser() as other:
        host = urllib.parse.urlsplit(url).hostname or "127.0.0.1"
        for name, value in forged.items():
            other.cookies.set(name, value, domain=host, path="/oauth")
        res = browse(url, always.srv.follow, consent=None, http=other)
        assert res.response is not None and len(res.hops) == 1, res.describe()
        assert_json_error(res.response, 400, "invalid_request", "callback with a forged cookie value")


# --------------------------------------------------------------------------
# what the page shows about the client
# --------------------------------------------------------------------------

def test_hostile_client_name_is_escaped(oauth_consent_always_server: OAuthServer) -> None:
    c = DirectClient.register(oauth_consent_always_server, name=HOSTILE_NAME)
    with browser() as http:
        login = open_consent(c, http)
        raw = login.page.html
        assert "<script>alert(1)" not in raw, f"client_name rendered as markup:\n{raw[:3000]}"
        assert "<img" not in raw.lower(), f"client_name broke out of its attribute/element:\n{raw[:3000]}"
        assert HOSTILE_NAME not in raw and '"><img' not in raw, f"client_name closed a tag:\n{raw[:3000]}"
        assert HOSTILE_NAME in login.page.text, (
            f"the escaped client_name should read as the literal name:\n{login.page.text[:2000]}")
        assert len(login.page.forms) == 1 and sorted(login.page.decisions) == ["approve", "deny"], (
            "the hostile name changed the form")
        r = login.post(login.page.form("deny"))
        q = assert_back_at_client(r, login, "deny")
        assert q.get("error") == "access_denied", q


def test_non_loopback_redirect_is_flagged(oauth_consent_always_server: OAuthServer) -> None:
    """A client whose redirect URI is on another host: the page names that
    host and warns that it is not on this computer; approving sends the code
    there (the user was told)."""
    redirect = "https://app.example/oauth/cb"
    c = DirectClient.register(oauth_consent_always_server, name="Remote App", redirect_uris=[redirect])
    with browser() as http:
        login = open_consent(c, http)
        text = login.page.text
        assert "app.example" in text, f"the redirect URI's host is not named:\n{text[:2000]}"
        assert NOT_LOCAL.search(text), f"a non-loopback redirect URI is not flagged:\n{text[:2000]}"
        csp = login.res.response.headers.get("content-security-policy", "") if login.res.response else ""
        assert csp.startswith(CSP_PREFIX), csp
        q = assert_back_at_client(login.post(login.page.form("approve")), login, "approve (remote app)")
        assert q.get("code"), q


def test_consent_page_names_the_cimd_client(oauth_consent_always_server: OAuthServer, cimd_docs: DocServer) -> None:
    url = cimd_docs.doc(f"/clients/named-{secrets.token_hex(4)}.json", name="Doc & Co <Client>")
    c = DirectClient(oauth_consent_always_server, url)
    with browser() as http:
        login = open_consent(c, http)
        assert "Doc & Co <Client>" in login.page.text, login.page.text[:2000]
        assert "<Client>" not in login.page.html, "client_name from a metadata document rendered as markup"
        assert url in login.page.text, f"the client_id (document URL) is not shown:\n{login.page.text[:2000]}"
