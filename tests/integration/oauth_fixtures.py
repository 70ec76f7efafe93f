"""Session fixtures of the OAuth 2.1 authorization server tests
(test_oauth*.py), registered by conftest.py (`from oauth_fixtures import *`:
the fixtures are listed in `__all__`).

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
                       (docserver.py);
* `redis_store` / `valkey_store` - Redis 7 and Valkey 9.1 (kvstore.py);
* servers            - mcp-prometheus with [oauth] (oauth_server.py), one
                       process per distinct config (conftest's ServerPool):
                       `oauth_server` (memory store, public registration),
                       and variants.

The helpers are in oauth_browse.py (the headless browser, our consent
page), oauth_client.py (`DirectClient`, the assertions), oauth_sdk.py (the
official SDK's OAuthClientProvider, headless), the constants in
constants.py.

Override the provider client our server uses with
MCP_OAUTH_TEST_PROVIDER_CLIENT=mcp-prometheus-post (client_secret_post).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Iterator, Protocol, TypeVar

import pytest

from authstack import TenantStack
from constants import CLIENT_REDIRECT, SERVER_CLIENT_SECRET
from docserver import DocServer
from kvstore import KvServer, start_kv
from oauth_server import OAuthServer, OAuthServerConfig, oauth_config
from oidc_login import OidcProvider, start_oidc_provider

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

# --------------------------------------------------------------------------
# what sets the session's OAuth servers apart (the tests check against it)
# --------------------------------------------------------------------------

REGISTRATION_TOKEN = "reg-" + secrets.token_urlsafe(24)
# oauth_ratelimit_server's limit per minute (the others' never bites).
STRICT_RATE_LIMIT = 5
# The flood server's cap of pending logins: the server's default.
FLOOD_PENDING_CAP = 10_000
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
# The key prefix of oauth_sealed_server's Valkey records.
SEALED_PREFIX = "mcp-it-sealed:"


class _Stoppable(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Stoppable)


def _until_teardown(service: S) -> Iterator[S]:
    """A session fixture's body: yield the started `service`, stop it at teardown."""
    yield service
    service.stop()


# --------------------------------------------------------------------------
# the OIDC provider (our upstream IdP), CIMD documents, Redis and Valkey
# --------------------------------------------------------------------------

def start_provider(workdir: Path, name: str, *, resource: str | None = None, registration: bool = False,
                   redirect_uris: str | None = None) -> OidcProvider:
    """provider.mjs with the extra settings of the OAuth tests (see its header)."""
    return start_oidc_provider(workdir, redirect_uris or CLIENT_REDIRECT, resource, name,
                               server_client_secret=SERVER_CLIENT_SECRET, registration=registration)


@pytest.fixture(scope="session")
def oauth_provider(workdir: Path) -> Iterator[OidcProvider]:
    yield from _until_teardown(start_provider(workdir, "oidc-oauth"))


@pytest.fixture(scope="session")
def cimd_docs() -> Iterator[DocServer]:
    d = DocServer()
    yield d
    d.close()


@pytest.fixture(scope="session")
def redis_store(workdir: Path) -> Iterator[KvServer]:
    yield from _until_teardown(start_kv(workdir, "redis"))


@pytest.fixture(scope="session")
def valkey_store(workdir: Path) -> Iterator[KvServer]:
    yield from _until_teardown(start_kv(workdir, "valkey"))


# --------------------------------------------------------------------------
# mcp-prometheus with [oauth]: one pooled process per variant
# --------------------------------------------------------------------------

def _server(fixture: str, server: str, doc: str, **oauth_kw: Any) -> Any:
    """The session fixture `fixture`: the pooled server `server` (conftest's
    ServerPool) on oauth_config(tenant_stack.url, oauth_provider, **oauth_kw)."""
    def start(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider) -> OAuthServer:
        return OAuthServer(pool.get(server, lambda: oauth_config(tenant_stack.url, oauth_provider, **oauth_kw)),
                           oauth_provider)

    start.__name__ = start.__qualname__ = fixture
    start.__doc__ = doc
    return pytest.fixture(scope="session", name=fixture)(start)


oauth_server = _server(
    "oauth_server", "oauth-main",
    """Memory store, public registration, private URLs allowed (provider and
    CIMD docs are on 127.0.0.1), relaxed rate limit.""")
oauth_fastcode_server = _server("oauth_fastcode_server", "oauth-fastcode", "Authorization codes live 1 s.",
                                code_ttl="1s")
oauth_nopriv_server = _server(
    "oauth_nopriv_server", "oauth-nopriv",
    """allow_private_urls = false (for CIMD address checks; no login through
    it). An http:// provider needs allow_private_urls, so this one names an
    https provider that is never contacted (discovery is lazy, and every test
    here is refused before the provider).""",
    allow_private_urls=False, client_metadata_allow_private=False, provider_issuer="https://dex.invalid")
oauth_token_reg_server = _server("oauth_token_reg_server", "oauth-token-reg", "Token-protected registration.",
                                 registration="token", registration_token=REGISTRATION_TOKEN)
oauth_reg_off_server = _server("oauth_reg_off_server", "oauth-reg-off", "Registration off.", registration="off")
oauth_ratelimit_server = _server("oauth_ratelimit_server", "oauth-ratelimit", "A strict rate limit.",
                                 rate_limit=STRICT_RATE_LIMIT)
oauth_ratelimit_token_server = _server(
    "oauth_ratelimit_token_server", "oauth-ratelimit-token",
    "Strict rate limit and token-protected registration (the limit comes first).",
    rate_limit=STRICT_RATE_LIMIT, registration="token", registration_token=REGISTRATION_TOKEN)
oauth_pending_cap_server = _server(
    "oauth_pending_cap_server", "oauth-pending-cap",
    """Tiny pending-login caps; counts per X-Forwarded-For client (so one test
    plays several addresses).""",
    trust_forwarded_for=True, max_pending_logins=PENDING_CAP_TOTAL,
    max_pending_logins_per_address=PENDING_CAP_PER_ADDRESS)
oauth_flood_server = _server(
    "oauth_flood_server", "oauth-flood",
    """For the authorize flood: relaxed rate limit, no per-address cap (the
    worst case: an attacker with many addresses), the default total cap of
    pending logins; used by nothing else, so its memory is the flood's.""",
    max_pending_logins=FLOOD_PENDING_CAP, max_pending_logins_per_address=1_000_000)
oauth_short_refresh_server = _server("oauth_short_refresh_server", "oauth-short-refresh",
                                     "Refresh tokens live SHORT_REFRESH_LIFETIME_S at most.",
                                     refresh_token_max_lifetime=f"{SHORT_REFRESH_LIFETIME_S}s")
oauth_idle_client_server = _server("oauth_idle_client_server", "oauth-idle-client",
                                   "Clients idle out after SHORT_CLIENT_IDLE_S.",
                                   client_idle_ttl=f"{SHORT_CLIENT_IDLE_S}s")
oauth_scopes_server = _server("oauth_scopes_server", "oauth-scopes", "Advertises CUSTOM_SCOPES.",
                              scopes=CUSTOM_SCOPES)
oauth_cimd_nopriv_server = _server(
    "oauth_cimd_nopriv_server", "oauth-cimd-nopriv",
    """The provider may be private (it is on 127.0.0.1), client metadata
    documents may not: the two switches are independent.""",
    allow_private_urls=True, client_metadata_allow_private=False)
oauth_cimd_hosts_server = _server("oauth_cimd_hosts_server", "oauth-cimd-hosts",
                                  "client_metadata_allowed_hosts = [CIMD_ALLOWED_HOST].",
                                  client_metadata_allowed_hosts=[CIMD_ALLOWED_HOST])


@pytest.fixture(scope="session")
def oauth_consent_always_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider,
                                cimd_docs: DocServer) -> OAuthServer:
    """consent_ttl = 0s: every login shows the consent page, except for the
    preapproved client ID metadata document (PREAPPROVED_DOC_PATH)."""
    def make() -> OAuthServerConfig:
        doc = cimd_docs.doc(PREAPPROVED_DOC_PATH, name="Preapproved test client")
        return oauth_config(tenant_stack.url, oauth_provider, consent_ttl="0s", preapproved_clients=[doc])

    return OAuthServer(pool.get("oauth-consent-always", make), oauth_provider)


@pytest.fixture(scope="session")
def oauth_sealed_server(pool: Any, tenant_stack: TenantStack, oauth_provider: OidcProvider,
                        valkey_store: KvServer) -> OAuthServer:
    """Valkey storage under SEALED_PREFIX (its records are inspected and
    tampered with), clients idle out after 10 minutes."""
    def make() -> OAuthServerConfig:
        return oauth_config(tenant_stack.url, oauth_provider, storage=valkey_store.storage(SEALED_PREFIX),
                            client_idle_ttl="10m")

    return OAuthServer(pool.get("oauth-sealed", make), oauth_provider)
