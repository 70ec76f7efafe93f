"""mcp-prometheus with [oauth]: its config (`oauth_config`, `oauth_table`),
its processes (`start_oauth_server`, `start_env_server` for the Go server's
environment variables, `go_oauth_env`), and `OAuthServer`, its endpoints.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from authstack import layered_config
from constants import (
    AS_METADATA_PATH,
    ENCRYPTION_KEY,
    PROVIDER_SCOPES,
    RELAXED_RATE_LIMIT,
    SERVER_CLIENT_ID,
    SERVER_CLIENT_SECRET,
)
from httputil import HttpResponse, free_port, http_get, http_post, local_url
from kvstore import KvServer
from mcpserver import ServerView, launch, start_mcp_server
from oidc_login import OidcProvider, jwt_parts
from serverconfig import ServerConfig


@dataclass
class OAuthServerConfig(ServerConfig):
    """A ServerConfig whose `tables` hold [oauth] (rendered by ServerConfig)."""


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
class OAuthServer(ServerView):
    """An mcp-prometheus process with [oauth], plus its endpoints."""

    provider: OidcProvider | None
    _metadata: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def config(self) -> OAuthServerConfig:
        return self.srv.config  # type: ignore[return-value]

    @property
    def oauth(self) -> dict[str, Any]:
        return self.config.tables["oauth"]

    @property
    def base_url(self) -> str:
        """Where this process listens (differs from public_url for a second replica)."""
        return self.srv.base_url

    @property
    def issuer(self) -> str:
        return self.public_url

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
    return OAuthServer(start_mcp_server(workdir, name, cfg, env=env, extra_args=extra_args), provider)


def start_env_server(workdir: Path, name: str, env: dict[str, str], provider: OidcProvider | None,
                     listen_port: int, obs_port: int, args: list[str]) -> OAuthServer:
    """`mcp-prometheus serve <args>` with no config file: configured by `env`
    and flags alone (the Go server's way). Waits for /readyz on `obs_port`
    and the listener on `listen_port`; the caller stops it. Its OAuthServer
    carries a stand-in config (ports and public URL) that is never written."""
    cfg = OAuthServerConfig([], listen_port=listen_port, obs_port=obs_port,
                            server_extra={"public_url": local_url(listen_port)})
    return OAuthServer(launch(workdir, name, cfg, Path("/dev/null"), ["serve", *args], env=env), provider)


def go_oauth_env(public_url: str, kv: KvServer, provider: OidcProvider, key_prefix: str) -> dict[str, str]:
    """The Go server's environment for OAuth at `public_url`: MCP_OAUTH_*
    (a fresh encryption key, public registration, private URLs allowed),
    OAUTH_STORAGE + VALKEY_* (`kv`, keys under `key_prefix`) and DEX_*
    (`provider`, as SERVER_CLIENT_ID)."""
    return {
        "MCP_OAUTH_ISSUER": public_url,
        "MCP_OAUTH_ENCRYPTION_KEY": secrets.token_hex(32),
        "MCP_OAUTH_ALLOW_PUBLIC_REGISTRATION": "true",
        "MCP_OAUTH_ALLOW_PRIVATE_URLS": "true",
        "OAUTH_STORAGE": "valkey",
        "VALKEY_URL": f"127.0.0.1:{kv.port}",
        "VALKEY_PASSWORD": kv.password,
        "VALKEY_KEY_PREFIX": key_prefix,
        "DEX_ISSUER_URL": provider.issuer,
        "DEX_CLIENT_ID": SERVER_CLIENT_ID,
        "DEX_CLIENT_SECRET": SERVER_CLIENT_SECRET,
        "DEX_REDIRECT_URL": public_url + "/oauth/callback",
    }
