"""The official SDK's OAuth client (`mcp.client.auth.OAuthClientProvider`),
headless: `HeadlessAuth` holds its redirect and callback handlers (the
redirect handler runs `browse()`), `sdk_oauth()` builds one,
`sdk_connect()` opens an MCP session with it.
"""

from __future__ import annotations

import time
import urllib.parse
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import httpx2
from mcp.shared._httpx_utils import create_mcp_http_client

from constants import CLIENT_REDIRECT
from mcpclient import http_session
from oauth_browse import BrowseResult, browse
from oidc_login import LoginError

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
    http = create_mcp_http_client(auth=auth)
    if http_log is not None:
        async def log_response(resp: httpx2.Response) -> None:
            http_log.append((resp.request.method, str(resp.request.url), resp.status_code))

        http.event_hooks["response"].append(log_response)
    async with http_session(url, http, mode) as conn:
        yield conn
