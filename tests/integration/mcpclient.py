"""Thin wrapper over the official MCP Python SDK (mcp 2.x) client.

Every test talks to the server through `connect()`, parametrized over the
transports in TRANSPORTS:

* stdio             - `mcp-prometheus serve --transport stdio` spawned by the SDK,
                      initialize handshake (mode="legacy")
* http-legacy-json  - streamable HTTP, initialize handshake + session, server
                      configured with json_response = true
* http-legacy-sse   - same, json_response = false (answers as SSE streams)
* http-auto-json    - streamable HTTP, SDK default mode="auto": sends
                      `server/discover` and speaks the stateless 2026-07-28 protocol
* http-auto-sse     - same against the json_response = false server
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import mcp_types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

CALL_TIMEOUT = 30.0


@dataclass(frozen=True)
class TransportSpec:
    id: str
    kind: str  # "stdio" | "http"
    mode: str  # SDK connect mode: "legacy" | "auto"
    json_response: bool | None  # server setting for HTTP; None for stdio
    expected_version: str

    def __str__(self) -> str:
        return self.id


STDIO = TransportSpec("stdio", "stdio", "legacy", None, LATEST_HANDSHAKE_VERSION)
HTTP_LEGACY_JSON = TransportSpec("http-legacy-json", "http", "legacy", True, LATEST_HANDSHAKE_VERSION)
HTTP_LEGACY_SSE = TransportSpec("http-legacy-sse", "http", "legacy", False, LATEST_HANDSHAKE_VERSION)
HTTP_AUTO_JSON = TransportSpec("http-auto-json", "http", "auto", True, LATEST_MODERN_VERSION)
HTTP_AUTO_SSE = TransportSpec("http-auto-sse", "http", "auto", False, LATEST_MODERN_VERSION)

TRANSPORTS = [STDIO, HTTP_LEGACY_JSON, HTTP_LEGACY_SSE, HTTP_AUTO_JSON, HTTP_AUTO_SSE]
TRANSPORT_IDS = [t.id for t in TRANSPORTS]


@dataclass
class Target:
    """Where a transport connects: a config file for stdio, MCP URLs for HTTP."""

    binary: Path
    stdio_config: Path
    http_json_url: str | None
    http_sse_url: str | None
    stderr_log: Path
    tool_prefix: str = ""


class ToolResult:
    def __init__(self, name: str, arguments: dict[str, Any] | None, raw: mcp_types.CallToolResult):
        self.name = name
        self.arguments = arguments
        self.raw = raw

    @property
    def is_error(self) -> bool:
        return bool(self.raw.is_error)

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.raw.content if getattr(c, "type", None) == "text"]

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    @property
    def structured(self) -> dict[str, Any]:
        sc = self.raw.structured_content
        assert isinstance(sc, dict), f"{self.name}: structuredContent is not an object: {sc!r}\n{self.describe()}"
        return sc

    @property
    def data(self) -> Any:
        sc = self.structured
        assert "data" in sc, f"{self.name}: structuredContent has no 'data': {self.describe()}"
        return sc["data"]

    def describe(self, limit: int = 3000) -> str:
        sc = self.raw.structured_content
        sc_text = json.dumps(sc, default=str)[:limit] if sc is not None else "None"
        return (f"tool={self.name} args={json.dumps(self.arguments)} isError={self.raw.is_error}\n"
                f"  text: {self.text[:limit]!r}\n  structuredContent: {sc_text}")

    def ok(self) -> "ToolResult":
        """Assert success and that the common envelope is there; returns self."""
        assert not self.is_error, f"expected success, got isError:\n{self.describe()}"
        sc = self.structured
        assert isinstance(sc.get("upstream"), str), f"no 'upstream' in structuredContent:\n{self.describe()}"
        assert "data" in sc, f"no 'data' in structuredContent:\n{self.describe()}"
        assert isinstance(sc.get("truncated"), bool), f"'truncated' missing/not bool:\n{self.describe()}"
        assert self.texts and self.texts[0].strip(), f"no text content:\n{self.describe()}"
        return self

    def error(self) -> "ToolResult":
        assert self.is_error, f"expected an isError result, got success:\n{self.describe()}"
        assert self.text.strip(), f"isError result without text:\n{self.describe()}"
        return self


@dataclass
class HttpExchange:
    """One HTTP request/response seen by the SDK's HTTP client."""

    method: str
    status: int
    content_type: str
    session_id: str | None
    request_session_id: str | None
    protocol_header: str | None


class Conn:
    def __init__(self, client: Client, transport: TransportSpec, prefix: str,
                 http_log: list[HttpExchange] | None = None):
        self.client = client
        self.transport = transport
        self.prefix = prefix
        self.http_log: list[HttpExchange] = http_log if http_log is not None else []

    @property
    def protocol_version(self) -> str:
        return self.client.protocol_version

    async def list_tools(self) -> list[mcp_types.Tool]:
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(50):
            page = await self.client.list_tools(cursor=cursor, cache_mode="bypass")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def call(self, name: str, arguments: dict[str, Any] | None = None, *, raw_name: bool = False,
                   timeout: float = CALL_TIMEOUT) -> ToolResult:
        """Call a tool (name gets the configured tool_prefix unless raw_name).

        A JSON-RPC (protocol) error is turned into a test failure: the contract
        says every tool failure is an isError result.
        """
        full = name if raw_name else self.prefix + name
        try:
            raw = await self.client.call_tool(full, arguments, read_timeout_seconds=timeout)
        except MCPError as e:
            raise AssertionError(
                f"[{self.transport}] tools/call {full} {json.dumps(arguments)} raised a protocol error "
                f"(code {e.code}): {e} -- expected a CallToolResult"
            ) from e
        return ToolResult(full, arguments, raw)


def _single_leaf(eg: BaseExceptionGroup) -> BaseException | None:
    """The only leaf exception of a (nested) exception group, if there is exactly one."""
    excs = list(eg.exceptions)
    if len(excs) != 1:
        return None
    e = excs[0]
    return _single_leaf(e) if isinstance(e, BaseExceptionGroup) else e


@asynccontextmanager
async def unwrap_groups() -> AsyncIterator[None]:
    """Exceptions raised in the body come out of the SDK's task groups wrapped
    in ExceptionGroups; a group with a single leaf is unwrapped so that test
    failures read as the plain assertion."""
    try:
        yield
    except BaseExceptionGroup as eg:
        leaf = _single_leaf(eg)
        if leaf is None:
            raise
        raise leaf from None


@asynccontextmanager
async def connect(target: Target, transport: TransportSpec, mode: str | None = None) -> AsyncIterator[Conn]:
    """Open an MCP client connection over `transport`; yields a Conn (see
    unwrap_groups)."""
    async with unwrap_groups():
        async with _connect(target, transport, mode) as conn:
            yield conn


@asynccontextmanager
async def open_http(url: str, http: Any, mode: str, spec: TransportSpec, prefix: str = "",
                    log: list[HttpExchange] | None = None, **transport_kw: Any) -> AsyncIterator[Conn]:
    """An MCP session over streamable HTTP through `http` (an SDK HTTP
    client, closed at the end); `transport_kw` go to streamable_http_client."""
    async with http:
        async with Client(streamable_http_client(url, http_client=http, **transport_kw), mode=mode,
                          read_timeout_seconds=CALL_TIMEOUT) as client:
            yield Conn(client, spec, prefix, log)


@asynccontextmanager
async def http_session(url: str, http: Any, mode: str = "auto", **transport_kw: Any) -> AsyncIterator[Conn]:
    """`open_http` with no tool prefix (the authn and OAuth tests: `http`
    carries their credentials), exception groups unwrapped."""
    spec = HTTP_AUTO_JSON if mode == "auto" else HTTP_LEGACY_JSON
    async with unwrap_groups():
        async with open_http(url, http, mode, spec, **transport_kw) as conn:
            yield conn


@asynccontextmanager
async def _connect(target: Target, transport: TransportSpec, mode: str | None) -> AsyncIterator[Conn]:
    mode = mode or transport.mode
    if transport.kind == "stdio":
        params = StdioServerParameters(
            command=str(target.binary),
            args=["serve", "--config", str(target.stdio_config), "--transport", "stdio"],
            env={"RUST_BACKTRACE": "1"},
        )
        with open(target.stderr_log, "a") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode=mode,
                              read_timeout_seconds=CALL_TIMEOUT) as client:
                yield Conn(client, transport, target.tool_prefix)
        return
    url = target.http_json_url if transport.json_response else target.http_sse_url
    assert url, f"no HTTP server for {transport}"
    log: list[HttpExchange] = []

    async def record(response: Any) -> None:
        req = response.request
        log.append(HttpExchange(
            method=req.method,
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            session_id=response.headers.get("mcp-session-id"),
            request_session_id=req.headers.get("mcp-session-id"),
            protocol_header=req.headers.get("mcp-protocol-version"),
        ))

    http = create_mcp_http_client()
    http.event_hooks["response"] = [record]
    async with open_http(url, http, mode, transport, target.tool_prefix, log, max_sse_event_size=None) as conn:
        yield conn
