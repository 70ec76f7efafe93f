"""The Go server's environment as a drop-in (issue 9, items 9 and 10):

* `serve --enable-oauth --tenancy-mode static` with no config file, only the
  seed's documented variables (MCP_OAUTH_ISSUER is our public URL, DEX_*,
  OAUTH_STORAGE, VALKEY_*, TENANCY_STATIC_GROUP_MAP, PROMETHEUS_URL), starts
  and serves a whole login: register, authorize, provider, consent, token,
  and a tool call scoped to the user's tenants (checked at the tenant
  router); without a token the MCP endpoint refuses;
* credentials inside `oauth.storage.url` are redacted by `check-config` and
  never echoed by a failing `serve`.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from authasserts import assert_no_upstream, assert_reads_tenants
from authstack import TenantStack
from constants import ALICE_TENANTS, BOB_TENANTS, GROUP_MAP
from httputil import closed_port, free_port
from kvstore import KvServer
from mcpserver import run_cli
from oauth_client import DirectClient
from oauth_server import OAuthServer, go_oauth_env, oauth_config, start_env_server
from oidc_login import OidcProvider
from rawmcp import raw_call
from tenant_router import TenantRouter

QUERY = {"query": "up"}


def tenants_of(srv: OAuthServer, router: TenantRouter, access_token: str, allowed: set[str], who: str) -> None:
    assert_reads_tenants(srv.mcp_url, router, access_token, allowed, who)


@pytest.fixture(scope="module")
def go_env_server(workdir: Path, valkey_store: KvServer, tenant_stack: TenantStack,
                  oauth_provider: OidcProvider) -> Iterator[tuple[OAuthServer, str]]:
    port, obs = free_port(), free_port()
    public_url = f"http://127.0.0.1:{port}"
    prefix = f"mcp-it-goenv-{secrets.token_hex(4)}:"  # VALKEY_KEY_PREFIX: keeps the shared Valkey tidy
    env = {
        "PROMETHEUS_URL": tenant_stack.url,
        **go_oauth_env(public_url, valkey_store, oauth_provider, prefix),
        "TENANCY_STATIC_GROUP_MAP": json.dumps(GROUP_MAP),
    }
    args = ["--enable-oauth", "--tenancy-mode", "static", "--listen", f"127.0.0.1:{port}",
            "--observability-listen", f"127.0.0.1:{obs}"]
    srv = start_env_server(workdir, "oauth-goenv", env, oauth_provider, port, obs, args)
    try:
        yield srv, prefix
    finally:
        srv.proc.stop()


def test_go_env_metadata(go_env_server: tuple[OAuthServer, str]) -> None:
    srv, _ = go_env_server
    md = srv.metadata()
    assert md.get("issuer") == srv.public_url, f"MCP_OAUTH_ISSUER is our issuer and public URL: {md.get('issuer')}"
    assert md.get("registration_endpoint") == srv.public_url + "/oauth/register", md
    assert md.get("authorization_endpoint") == srv.public_url + "/oauth/authorize", md


def test_go_env_refuses_without_a_token(go_env_server: tuple[OAuthServer, str], router: TenantRouter) -> None:
    srv, _ = go_env_server
    mark = router.mark()
    r = raw_call(srv.mcp_url, "execute_query", QUERY)
    assert r.status == 401, f"--enable-oauth must protect /mcp: HTTP {r.status} {r.text[:300]}"
    assert "resource_metadata" in r.headers.get("www-authenticate", ""), r.headers
    assert_no_upstream(router, mark, "no token (Go env server)")


def test_go_env_whole_login(go_env_server: tuple[OAuthServer, str], valkey_store: KvServer,
                            router: TenantRouter) -> None:
    srv, prefix = go_env_server
    client = DirectClient.register(srv, name="go-env")
    bob = client.login("bob")
    assert bob.browse.consents == ["approve"], f"the consent page was not shown\n{bob.browse.describe()}"
    tok = client.exchange(bob).json()
    assert tok.get("access_token"), tok
    tenants_of(srv, router, tok["access_token"], BOB_TENANTS, "bob (Go env server)")
    tenants_of(srv, router, client.tokens("alice")["access_token"], ALICE_TENANTS, "alice (Go env server)")
    assert valkey_store.keys(prefix), f"nothing under VALKEY_KEY_PREFIX {prefix!r}: OAUTH_STORAGE=valkey ignored"


# --------------------------------------------------------------------------
# storage URL credentials
# --------------------------------------------------------------------------

def _storage_config(workdir: Path, oauth_provider: OidcProvider, name: str, url: str) -> Path:
    cfg = oauth_config("http://127.0.0.1:1/prometheus", oauth_provider,
                       storage={"kind": "valkey", "url": url, "key_prefix": "mcp-it-redact:"})
    return cfg.write(workdir / "servers" / f"oauth-redact-{name}.toml")


@pytest.mark.parametrize("form", ["password-only", "user-and-password"])
def test_check_config_redacts_the_storage_url(workdir: Path, oauth_provider: OidcProvider, form: str) -> None:
    pw = "pw-" + secrets.token_hex(8)
    port = closed_port()
    url = f"redis://:{pw}@127.0.0.1:{port}" if form == "password-only" else f"redis://default:{pw}@127.0.0.1:{port}/0"
    path = _storage_config(workdir, oauth_provider, form, url)
    p = run_cli(["check-config", "--config", path])
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"check-config refused a valid config (exit {p.returncode}):\n{out}"
    assert pw not in out, f"check-config printed the storage password:\n{out}"
    assert f"127.0.0.1:{port}" in out, f"check-config should still print oauth.storage.url (redacted):\n{out}"


def test_check_config_redacts_valkey_url_from_env(workdir: Path, oauth_provider: OidcProvider) -> None:
    pw = "envpw-" + secrets.token_hex(8)
    path = _storage_config(workdir, oauth_provider, "env", f"redis://127.0.0.1:{closed_port()}")
    p = run_cli(["check-config", "--config", path], env={"VALKEY_URL": f"redis://:{pw}@127.0.0.1:6399"})
    out = p.stdout + p.stderr
    assert pw not in out, f"check-config printed the password of VALKEY_URL:\n{out}"


def test_failing_serve_does_not_echo_the_storage_password(workdir: Path, oauth_provider: OidcProvider,
                                                          tenant_stack: TenantStack) -> None:
    """The store is down: whatever serve says about it names no password."""
    pw = "servepw-" + secrets.token_hex(8)
    port = closed_port()
    cfg = oauth_config(tenant_stack.url, oauth_provider,
                       storage={"kind": "valkey", "url": f"redis://:{pw}@127.0.0.1:{port}",
                                "key_prefix": "mcp-it-redact:"})
    cfg.listen_port, cfg.obs_port = free_port(), free_port()
    path = cfg.write(workdir / "servers" / "oauth-redact-serve.toml")
    try:
        p = run_cli(["serve", "--config", path, "--transport", "streamable-http"], timeout=15)
        out, rc = p.stdout + p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out = "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "") for x in (e.stdout, e.stderr))
        rc = None
    assert pw not in out, f"serve echoed the storage password (exit {rc}):\n{out[-3000:]}"
