"""The OAuth login in a real browser: headless Chromium (Debian package
`chromium`, /usr/bin/chromium) driven by npm playwright-core through
tests/browser/login.mjs (one `node` run per login, JSON result on stdout).

The other OAuth tests browse with httpx (oauth_browse.browse), which follows
redirects but enforces no Content-Security-Policy. A browser does: it applies
the consent page's `form-action` to the redirect that answers the form POST
(our 303 to the client's redirect URI), so the page lists the client's origin
next to 'self'. Here Chromium opens /oauth/authorize, signs in at the provider
(login + consent forms), presses Approve or Deny on our consent page, and must
land on the client's redirect URI: a listener of the test records what it got.

Needs /usr/bin/chromium and tests/browser/node_modules: both installed by
scripts/setup-browser-test-env.sh. When either is missing the tests fail
(never skip) and say so.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest

from fakes import FakeUpstream
from httputil import reply
from oauth_browse import origin
from oauth_client import DirectClient, assert_token_response
from oauth_server import OAuthServer
from oidc_login import pkce_pair
from procs import REPO

BROWSER_DIR = REPO / "tests" / "browser"
LOGIN_SCRIPT = BROWSER_DIR / "login.mjs"
CHROMIUM = Path("/usr/bin/chromium")
SETUP = "scripts/setup-browser-test-env.sh"
LOGIN_BUDGET_MS = 15000  # one whole login in the browser, launch included


@pytest.fixture(scope="session")
def browser_env() -> None:
    """Chromium, node and playwright-core are there (else fail, naming the
    setup script). Session-scoped and listed first, so it fails before the
    OAuth stack starts."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (Debian package chromium)")
    if not shutil.which("node"):
        missing.append("node")
    if not (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").exists():
        missing.append(f"{BROWSER_DIR}/node_modules/playwright-core (npm ci in tests/browser)")
    if missing:
        pytest.fail(f"browser test environment incomplete, missing: {', '.join(missing)}; run {SETUP}",
                    pytrace=False)


@pytest.fixture
def callback() -> Iterator[FakeUpstream]:
    """The client's redirect URI listener: records every request, answers a small page."""
    body = b"<!doctype html><title>client callback</title><p>back at the client</p>\n"
    srv = FakeUpstream("browser-callback", lambda h: reply(h, 200, body, "text/html; charset=utf-8"))
    yield srv
    srv.close()


def run_login(srv: OAuthServer, url: str, redirect_uri: str, decision: str) -> dict[str, Any]:
    """One login in Chromium (login.mjs); its JSON result, asserting it reached `redirect_uri`."""
    args = {
        "url": url,
        "callback": redirect_uri,
        "ourOrigin": origin(srv.base_url),
        "decision": decision,
        "user": "alice",
        "password": "anything",
        "executablePath": str(CHROMIUM),
        "timeoutMs": LOGIN_BUDGET_MS,
    }
    proc = subprocess.Popen([shutil.which("node") or "node", str(LOGIN_SCRIPT), json.dumps(args)],
                            cwd=BROWSER_DIR, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=LOGIN_BUDGET_MS / 1000 + 10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # node and its Chromium
        out, err = proc.communicate()
        raise AssertionError(f"login.mjs hung past its own watchdog; stderr:\n{err.decode(errors='replace')[-2000:]}")
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        res = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise AssertionError(f"login.mjs exited {proc.returncode} without a JSON result:\nstdout: {out[-2000:]!r}\n"
                             f"stderr: {err.decode(errors='replace')[-2000:]}") from None
    assert res.get("ok") and proc.returncode == 0, (
        f"the browser did not reach the client's redirect URI {redirect_uri}: {res.get('error')}\n"
        f"{describe(res)}\nstderr: {err.decode(errors='replace')[-1500:]}")
    return res


def describe(res: dict[str, Any]) -> str:
    navs = "\n".join(f"  {n['method']} {n['url']} -> {n['status']}" for n in res.get("navigations", []))
    cons = "\n".join(f"  {c}" for c in res.get("console", []))
    return (f"steps: {res.get('steps')}\nnavigations:\n{navs}\nconsole:\n{cons or '  (none)'}\n"
            f"final URL: {res.get('finalUrl')}")


def callback_params(callback: FakeUpstream) -> dict[str, list[str]]:
    """The query of the one request the listener got at /callback."""
    hits = [r for r in list(callback.requests) if r.route == "/callback"]
    assert len(hits) == 1, f"the client's redirect URI was requested {len(hits)} times: {[r.path for r in hits]}"
    assert hits[0].method == "GET", hits[0]
    return urllib.parse.parse_qs(urllib.parse.urlsplit(hits[0].path).query, keep_blank_values=True)


def assert_consent_page(res: dict[str, Any], redirect_uri: str, client_name: str) -> None:
    """Our consent page was shown, with its security headers as Chromium received them."""
    page = res.get("consent")
    assert page is not None, f"our consent page was never shown\n{describe(res)}"
    assert page["status"] == 200, page
    h = {k.lower(): v for k, v in page["headers"].items()}
    csp = h.get("content-security-policy", "")
    assert "form-action 'self'" in csp, f"consent page CSP without form-action 'self': {csp!r}"
    # the client's origin is what lets the browser follow our 303 after the POST
    form_action = next((d.strip() for d in csp.split(";") if d.strip().startswith("form-action")), "")
    assert origin(redirect_uri) in form_action.split(), (
        f"the client's origin {origin(redirect_uri)} is not in the consent page's {form_action!r}")
    assert "frame-ancestors 'none'" in csp, csp
    assert h.get("x-frame-options", "").upper() == "DENY", h
    assert "no-store" in h.get("cache-control", ""), h
    assert client_name in page["text"] and "alice@example.test" in page["text"], page["text"][:800]
    violations = [c for c in res.get("console", []) if "Content Security Policy" in c]
    assert not violations, f"CSP violations in the browser: {violations}"


def browser_login(oauth_server: OAuthServer, callback: FakeUpstream, name: str,
                  decision: str) -> tuple[DirectClient, str, str, dict[str, list[str]]]:
    """Register a client `name` for the listener's /callback and log alice in
    with it in Chromium, answering our consent page with `decision`. Asserts
    the steps, our consent page, and that the redirect URI got the state
    back and our iss; returns (client, redirect_uri, PKCE verifier, the
    redirect URI's query)."""
    redirect_uri = callback.url + "/callback"
    client = DirectClient.register(oauth_server, redirect_uris=[redirect_uri], name=name)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    url = client.authorize_url(challenge=challenge, state=state)
    res = run_login(oauth_server, url, redirect_uri, decision)
    assert res["steps"] == ["provider-login", "provider-consent", f"consent:{decision}"], describe(res)
    assert_consent_page(res, redirect_uri, name)

    p = callback_params(callback)
    assert p.get("state") == [state], f"state not round-tripped: {p.get('state')} != {state!r}"
    assert p.get("iss") == [oauth_server.issuer], f"iss {p.get('iss')} != {oauth_server.issuer!r} (RFC 9207)"
    return client, redirect_uri, verifier, p


def test_browser_login_approve(browser_env: None, oauth_server: OAuthServer, callback: FakeUpstream) -> None:
    t0 = time.monotonic()
    client, redirect_uri, verifier, p = browser_login(oauth_server, callback, "Browser E2E (approve)", "approve")
    assert "error" not in p, f"authorization error at the redirect URI: {p}"
    assert len(p.get("code", [])) == 1 and p["code"][0], f"no code at the redirect URI: {p}"

    tok = assert_token_response(client.token({
        "grant_type": "authorization_code",
        "code": p["code"][0],
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "resource": oauth_server.resource,
    }))
    claims = oauth_server.verify(tok["access_token"])
    assert claims.get("client_id") == client.client_id and claims.get("groups") == ["team-a"], claims
    assert time.monotonic() - t0 < 20, f"the browser login took {time.monotonic() - t0:.1f} s"


def test_browser_login_deny(browser_env: None, oauth_server: OAuthServer, callback: FakeUpstream) -> None:
    t0 = time.monotonic()
    _client, _redirect_uri, _verifier, p = browser_login(oauth_server, callback, "Browser E2E (deny)", "deny")
    assert p.get("error") == ["access_denied"], f"expected error=access_denied at the redirect URI: {p}"
    assert "code" not in p, f"a code despite Deny: {p}"
    assert time.monotonic() - t0 < 20, f"the browser login took {time.monotonic() - t0:.1f} s"
