"""A real OpenID Provider for the tests, and a headless browser for it.

`start_oidc_provider()` runs tests/oidc/provider.mjs (npm `oidc-provider` 9.x,
installed by scripts/setup-test-env.sh into tests/oidc/node_modules) on a free
127.0.0.1 port. `login()` runs the authorization code flow with PKCE (S256)
against it the way a browser would, but without one: it follows redirects
itself with a cookie jar, posts the development login form
(`prompt=login`, `login=<user>`, any password) and the consent form
(`prompt=consent`), stops at the redirect URI and exchanges the code at the
token endpoint. `refresh()` uses a refresh token (scope `offline_access`).

Standalone check:  .venv/bin/python tests/integration/oidc_login.py
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from httputil import free_port, http_get, local_url  # noqa: E402
from procs import REPO, ManagedProcess, await_start  # noqa: E402

OIDC_DIR = REPO / "tests" / "oidc"
PROVIDER_SCRIPT = OIDC_DIR / "provider.mjs"
NODE_BIN = shutil.which("node") or "node"

PUBLIC_CLIENT = "mcp-test"
CONFIDENTIAL_CLIENT = "muster-client"
CONFIDENTIAL_SECRET = "muster-secret"
DEFAULT_SCOPES = "openid profile email groups offline_access"


@dataclass
class OidcProvider:
    port: int
    issuer: str
    redirect_uri: str
    resource: str | None
    proc: ManagedProcess
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return local_url(self.port)

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            r = http_get(f"{self.issuer}/.well-known/openid-configuration", timeout=5)
            assert r.status == 200, f"discovery: HTTP {r.status}: {r.text[:300]}"
            self._metadata = r.json()
        return self._metadata

    def stop(self) -> None:
        self.proc.stop()


def provider_installed() -> bool:
    return (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").exists()


def start_oidc_provider(workdir: Path, redirect_uri: str | None = None, resource: str | None = None,
                        name: str = "oidc-provider", id_token_ttl: int = 600, *, server_client_secret: str = "",
                        registration: bool = False) -> OidcProvider:
    """Start provider.mjs on a free port; waits for its discovery document.
    `redirect_uri` may list several, comma-separated (the first is the
    provider's `redirect_uri`); `server_client_secret` and `registration`:
    OIDC_SERVER_CLIENT_SECRET and OIDC_REGISTRATION (see its header)."""
    if not provider_installed():
        raise FileNotFoundError(
            f"{OIDC_DIR}/node_modules is missing: run scripts/setup-test-env.sh (npm ci in tests/oidc)")
    port = free_port()
    redirect_uri = redirect_uri or f"http://127.0.0.1:{free_port()}/callback"
    env = {
        "OIDC_PORT": str(port),
        "OIDC_REDIRECT_URIS": redirect_uri,
        "OIDC_RESOURCE": resource or "",
        "OIDC_ID_TOKEN_TTL": str(id_token_ttl),
        "OIDC_SERVER_CLIENT_SECRET": server_client_secret,
        "OIDC_REGISTRATION": "1" if registration else "",
        "DEBUG": "",
        "NODE_ENV": "test",
    }
    proc = ManagedProcess(name, [NODE_BIN, PROVIDER_SCRIPT], workdir / "logs" / f"{name}.log", env=env,
                          cwd=OIDC_DIR)
    prov = OidcProvider(port, local_url(port), redirect_uri.split(",")[0], resource, proc)
    await_start(proc, (f"{name} discovery",
                       lambda: http_get(f"{prov.issuer}/.well-known/openid-configuration", 1).status == 200, 30))
    return prov


# --------------------------------------------------------------------------
# the headless authorization code + PKCE flow
# --------------------------------------------------------------------------

@dataclass
class Tokens:
    id_token: str | None
    access_token: str
    refresh_token: str | None
    token_type: str
    scope: str
    expires_in: int | None
    raw: dict[str, Any]

    def claims(self, which: str = "id_token") -> dict[str, Any]:
        """Unverified claims of the ID token or the access token (if a JWT)."""
        return jwt_claims(getattr(self, which))


def decode_segment(part: str) -> dict[str, Any]:
    """A JWT segment (unpadded base64url JSON), decoded."""
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_claims(token: str | None) -> dict[str, Any]:
    assert token and token.count(".") == 2, f"not a JWT: {token!r}"
    return decode_segment(token.split(".")[1])


def jwt_header(token: str) -> dict[str, Any]:
    return decode_segment(token.split(".")[0])


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a JWT, unverified."""
    assert isinstance(token, str) and token.count(".") == 2, f"not a JWT: {token!r}"
    h, c, _ = token.split(".")
    return decode_segment(h), decode_segment(c)


class LoginError(AssertionError):
    pass


def _form_action(html: str, base: str) -> str:
    m = re.search(r'<form[^>]*action="([^"]+)"', html)
    if not m:
        raise LoginError(f"no form in page:\n{html[:2000]}")
    return urllib.parse.urljoin(base, m.group(1).replace("&amp;", "&"))


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def login(provider: OidcProvider, user: str = "alice", *, client_id: str = PUBLIC_CLIENT,
          client_secret: str | None = None, scope: str = DEFAULT_SCOPES, resource: str | None = None,
          password: str = "anything", max_steps: int = 20, use_pkce: bool = True) -> Tokens:
    """Authorization code flow with PKCE, headless. Returns the token response."""
    md = provider.metadata()
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    nonce = secrets.token_urlsafe(16)
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": provider.redirect_uri,
        "scope": scope,
        "state": state,
        "nonce": nonce,
    }
    if use_pkce:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    if "offline_access" in scope.split():
        params["prompt"] = "consent"  # offline_access is dropped without it (OIDC core 11)
    if resource:
        params["resource"] = resource
    url = md["authorization_endpoint"] + "?" + urllib.parse.urlencode(params)

    with httpx2.Client(follow_redirects=False, timeout=10.0) as http:
        code: str | None = None
        resp = http.get(url)
        for _ in range(max_steps):
            if resp.status_code in (301, 302, 303, 307, 308):
                loc = urllib.parse.urljoin(str(resp.url), resp.headers["location"])
                if loc.startswith(provider.redirect_uri):
                    q = urllib.parse.parse_qs(urllib.parse.urlsplit(loc).query)
                    if "error" in q:
                        raise LoginError(f"authorization error at the redirect URI: {q}")
                    if q.get("state") != [state]:
                        raise LoginError(f"state mismatch: {q.get('state')} != {state}")
                    if q.get("iss") and q["iss"] != [provider.issuer]:
                        raise LoginError(f"iss mismatch: {q['iss']} (RFC 9207)")
                    code = q["code"][0]
                    break
                resp = http.get(loc)
                continue
            if resp.status_code != 200:
                raise LoginError(f"unexpected HTTP {resp.status_code} at {resp.url}:\n{resp.text[:2000]}")
            html = resp.text
            action = _form_action(html, str(resp.url))
            if 'name="prompt" value="login"' in html:
                resp = http.post(action, data={"prompt": "login", "login": user, "password": password})
            elif 'name="prompt" value="consent"' in html:
                resp = http.post(action, data={"prompt": "consent"})
            else:
                raise LoginError(f"unknown interaction page at {resp.url}:\n{html[:2000]}")
        if code is None:
            raise LoginError(f"no code after {max_steps} steps; last {resp.status_code} {resp.url}")

        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": provider.redirect_uri,
        }
        if use_pkce:
            form["code_verifier"] = verifier
        if resource:
            form["resource"] = resource
        tok = _token_request(http, md["token_endpoint"], form, client_id, client_secret)
    id_token = tok.get("id_token")
    if id_token:
        claims = jwt_claims(id_token)
        if claims.get("nonce") != nonce:
            raise LoginError(f"nonce mismatch in ID token: {claims}")
    return _tokens(tok)


def refresh(provider: OidcProvider, refresh_token: str, *, client_id: str = PUBLIC_CLIENT,
            client_secret: str | None = None, resource: str | None = None) -> Tokens:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if resource:
        form["resource"] = resource
    with httpx2.Client(follow_redirects=False, timeout=10.0) as http:
        return _tokens(_token_request(http, provider.metadata()["token_endpoint"], form, client_id, client_secret))


def _token_request(http: httpx2.Client, endpoint: str, form: dict[str, str], client_id: str,
                   client_secret: str | None) -> dict[str, Any]:
    auth = None
    if client_secret is None:
        form = {**form, "client_id": client_id}
    else:
        auth = (client_id, client_secret)
    r = http.post(endpoint, data=form, auth=auth)
    if r.status_code != 200:
        raise LoginError(f"token endpoint: HTTP {r.status_code}: {r.text[:1000]}")
    return r.json()


def _tokens(tok: dict[str, Any]) -> Tokens:
    return Tokens(
        id_token=tok.get("id_token"),
        access_token=tok["access_token"],
        refresh_token=tok.get("refresh_token"),
        token_type=tok.get("token_type", ""),
        scope=tok.get("scope", ""),
        expires_in=tok.get("expires_in"),
        raw=tok,
    )


if __name__ == "__main__":  # standalone smoke test
    import tempfile

    wd = Path(tempfile.mkdtemp(prefix="oidc-smoke-"))
    resource = "http://127.0.0.1:1/mcp"
    prov = start_oidc_provider(wd, resource=resource)
    try:
        t0 = time.monotonic()
        t = login(prov, "alice", resource=resource)
        print(f"login in {time.monotonic() - t0:.2f}s")
        print("id_token claims:", json.dumps(t.claims()))
        print("access_token header:", jwt_header(t.access_token) if t.access_token.count(".") == 2 else "opaque")
        if t.access_token.count(".") == 2:
            print("access_token claims:", json.dumps(t.claims("access_token")))
        print("scope:", t.scope, "refresh:", bool(t.refresh_token))
        if t.refresh_token:
            t2 = refresh(prov, t.refresh_token, resource=resource)
            print("refreshed:", bool(t2.access_token), "id_token:", bool(t2.id_token))
        t3 = login(prov, "bob", client_id=CONFIDENTIAL_CLIENT, client_secret=CONFIDENTIAL_SECRET,
                   scope="openid groups")
        print("bob via muster-client:", json.dumps(t3.claims()))
    finally:
        prov.stop()
        print("log:", prov.proc.log_path)
