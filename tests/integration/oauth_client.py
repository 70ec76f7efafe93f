"""A hand-written OAuth client for the negative matrix (`DirectClient`:
register, authorize + login, token, refresh, revoke) and the assertions on
our OAuth answers (token responses, RFC 6749 errors, error redirects).
"""

from __future__ import annotations

import base64
import secrets
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import httpx2

from constants import CLIENT_REDIRECT
from httputil import HttpResponse
from oauth_browse import BrowseResult, browse
from oauth_server import OAuthServer
from oidc_login import pkce_pair


@dataclass
class Grant:
    code: str
    state: str
    iss: str | None
    verifier: str
    redirect_uri: str
    browse: BrowseResult


@dataclass
class DirectClient:
    srv: OAuthServer
    client_id: str
    client_secret: str | None = None
    auth_method: str = "none"
    redirect_uri: str = CLIENT_REDIRECT
    registration: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def register(cls, srv: OAuthServer, *, auth_method: str = "none", redirect_uris: list[str] | None = None,
                 name: str = "direct-test-client", headers: dict[str, str] | None = None,
                 scope: str | None = None) -> "DirectClient":
        """Register (a 201 asserted); `scope` registers the client's scope."""
        redirect_uris = redirect_uris or [CLIENT_REDIRECT]
        meta: dict[str, Any] = {
            "redirect_uris": redirect_uris,
            "client_name": name,
            "token_endpoint_auth_method": auth_method,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }
        if scope is not None:
            meta["scope"] = scope
        r = srv.register(meta, headers)
        assert r.status == 201, f"registration: HTTP {r.status}: {r.text[:500]}"
        body = r.json()
        assert isinstance(body.get("client_id"), str) and body["client_id"], body
        if auth_method != "none":
            assert body.get("client_secret"), f"confidential client without a client_secret: {body}"
        return cls(srv, body["client_id"], body.get("client_secret"), auth_method, redirect_uris[0], body)

    # ---- authorization endpoint ----

    def authorize_url(self, *, challenge: str | None, method: str | None = "S256", state: str = "st",
                      redirect_uri: str | None = None, response_type: str = "code", scope: str | None = None,
                      resource: str | None = "", client_id: str | None = None, **extra: str) -> str:
        params: dict[str, str] = {
            "response_type": response_type,
            "client_id": client_id if client_id is not None else self.client_id,
            "redirect_uri": redirect_uri or self.redirect_uri,
            "state": state,
        }
        if challenge is not None:
            params["code_challenge"] = challenge
        if method is not None:
            params["code_challenge_method"] = method
        if scope is not None:
            params["scope"] = scope
        if resource == "":
            resource = self.srv.resource
        if resource is not None:
            params["resource"] = resource
        params.update(extra)
        return self.srv.url("/oauth/authorize") + "?" + urllib.parse.urlencode(params)

    def start(self, user: str = "alice", *, consent: str | None = "approve", stop_before: str | None = None,
              http: httpx2.Client | None = None, **kw: Any) -> BrowseResult:
        """authorize with PKCE S256 (override anything in kw) and browse
        (`consent`, `stop_before`, `http`: as browse())."""
        kw.setdefault("challenge", pkce_pair()[1])
        return browse(self.authorize_url(**kw), self.srv.follow, user, consent=consent, stop_before=stop_before,
                      http=http)

    def login(self, user: str = "alice", *, redirect_uri: str | None = None, resource: str | None = "",
              scope: str | None = None) -> Grant:
        """The whole front channel, asserting success: the code, state, iss."""
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(16)
        redirect_uri = redirect_uri or self.redirect_uri
        res = browse(self.authorize_url(challenge=challenge, state=state, redirect_uri=redirect_uri,
                                        resource=resource, scope=scope), self.srv.follow, user)
        assert res.stopped_at and res.stopped_at.startswith(redirect_uri), (
            f"login of {user} did not end at the client's redirect URI {redirect_uri}\n{res.describe()}")
        p = res.params
        assert "error" not in p, f"authorization error: {p}\n{res.describe()}"
        assert p.get("state") == state, f"state not round-tripped: {p}"
        assert p.get("code"), f"no code: {p}"
        return Grant(p["code"], state, p.get("iss"), verifier, redirect_uri, res)

    # ---- token endpoint ----

    def _auth(self, form: dict[str, str], secret: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
        secret = self.client_secret if secret is None else secret
        headers: dict[str, str] = {}
        form = dict(form)
        if self.auth_method == "client_secret_basic":
            cred = f"{urllib.parse.quote(self.client_id, safe='')}:{urllib.parse.quote(secret or '', safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        else:
            form.setdefault("client_id", self.client_id)
            if self.auth_method == "client_secret_post":
                form["client_secret"] = secret or ""
        return form, headers

    def token(self, form: dict[str, str], secret: str | None = None, srv: OAuthServer | None = None) -> HttpResponse:
        form, headers = self._auth(form, secret)
        return (srv or self.srv).post_form("/oauth/token", form, headers)

    def exchange(self, grant: Grant, **over: str | None) -> HttpResponse:
        form: dict[str, Any] = {
            "grant_type": "authorization_code",
            "code": grant.code,
            "redirect_uri": grant.redirect_uri,
            "code_verifier": grant.verifier,
            "resource": self.srv.resource,
        }
        form.update(over)
        return self.token({k: v for k, v in form.items() if v is not None})

    def refresh(self, refresh_token: str, srv: OAuthServer | None = None, **over: str | None) -> HttpResponse:
        form: dict[str, Any] = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        form.update(over)
        return self.token({k: v for k, v in form.items() if v is not None}, srv=srv)

    def revoke(self, token: str, hint: str | None = None) -> HttpResponse:
        form = {"token": token}
        if hint:
            form["token_type_hint"] = hint
        form, headers = self._auth(form)
        return self.srv.post_form("/oauth/revoke", form, headers)

    def tokens(self, user: str = "alice") -> dict[str, Any]:
        """login + code exchange, asserting a good token response."""
        r = self.exchange(self.login(user))
        return assert_token_response(r)


def _error_body(resp: HttpResponse | httpx2.Response, want: set[str], what: str) -> dict[str, Any]:
    """An RFC 6749 error body: JSON whose `error` is one of `want`."""
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"{what}: error body is not JSON: {resp.text[:500]!r}") from None
    assert body.get("error") in want, f"{what}: expected error in {sorted(want)}, got {body}"
    return body


def oauth_error(r: HttpResponse, status: int, error: str | set[str], what: str) -> dict[str, Any]:
    """An RFC 6749 JSON error answer."""
    assert r.status == status, f"{what}: expected HTTP {status} {error}, got {r.status}: {r.text[:500]}"
    return _error_body(r, {error} if isinstance(error, str) else error, what)


def assert_token_response(r: HttpResponse) -> dict[str, Any]:
    assert r.status == 200, f"token endpoint: HTTP {r.status}: {r.text[:500]}"
    body = r.json()
    assert body.get("token_type", "").lower() == "bearer", body
    assert isinstance(body.get("access_token"), str) and body["access_token"], body
    assert isinstance(body.get("refresh_token"), str) and body["refresh_token"], body
    assert isinstance(body.get("expires_in"), int) and body["expires_in"] > 0, body
    assert "no-store" in r.headers.get("cache-control", ""), f"token response without Cache-Control: no-store: {r.headers}"
    return body


def assert_no_redirect(res: BrowseResult, status: int, errors: set[str], what: str) -> dict[str, Any]:
    """The first answer of our server is an error page (JSON), not a redirect."""
    assert res.stopped_at is None and res.response is not None, (
        f"{what}: expected HTTP {status} with no redirect, but the browser was sent to {res.stopped_at}\n"
        f"{res.describe()}")
    assert len(res.hops) == 1, f"{what}: our server must answer itself, not redirect\n{res.describe()}"
    assert res.response.status_code == status, (
        f"{what}: expected HTTP {status}, got {res.response.status_code}\n{res.describe()}")
    return assert_json_error(res.response, status, errors, what)


def assert_json_error(resp: httpx2.Response, status: int, errors: str | set[str], what: str) -> dict[str, Any]:
    """A browser-facing error answer of ours (httpx response): the status, a
    JSON {"error", "error_description"} body, and no Location (no redirect
    anywhere, so nothing reaches the client's redirect URI)."""
    want = {errors} if isinstance(errors, str) else errors
    assert resp.status_code == status, (
        f"{what}: expected HTTP {status} {sorted(want)}, got {resp.status_code}: {resp.text[:500]!r}")
    assert "location" not in resp.headers, f"{what}: error answer with a Location: {resp.headers.get('location')}"
    body = _error_body(resp, want, what)
    assert isinstance(body.get("error_description"), str), f"{what}: no error_description: {body}"
    return body


def assert_error_redirect(res: BrowseResult, redirect_uri: str, error: str, state: str, issuer: str,
                          what: str) -> dict[str, str]:
    """Our server redirected straight back to the client with an error (the
    provider was never visited)."""
    assert res.stopped_at is not None, f"{what}: expected a redirect to the client with error={error}\n{res.describe()}"
    assert res.stopped_at.startswith(redirect_uri), (
        f"{what}: redirected to {res.stopped_at}, not the client's {redirect_uri}\n{res.describe()}")
    assert len(res.hops) == 1, f"{what}: the error must come from /oauth/authorize itself\n{res.describe()}"
    p = res.params
    assert p.get("error") == error, f"{what}: expected error={error}, got {p}"
    assert p.get("state") == state, f"{what}: state not round-tripped: {p}"
    assert p.get("iss") == issuer, f"{what}: iss {p.get('iss')!r} != {issuer!r} (RFC 9207)"
    assert "code" not in p, p
    return p
