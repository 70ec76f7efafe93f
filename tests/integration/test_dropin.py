"""Drop-in polish found while trying real clients:

* a session DELETE answers 204 (rmcp says 202, which the official Python
  SDK logs as "Session termination failed: 202" on every close);
* the Go server's non-standard `/.well-known/protected-resources` serves the
  RFC 9728 document byte for byte.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import urllib.request

from authstack import LayeredServer
from constants import PRM_PATH
from httputil import HttpResponse, _fetch, http_get
from mcpserver import McpServer
from rawmcp import BASE_HEADERS, raw_initialize, rpc_message

GO_ALIAS = "/.well-known/protected-resources"


def _request(url: str, method: str, headers: dict[str, str], body: bytes | None = None) -> HttpResponse:
    return _fetch(urllib.request.Request(url, data=body, headers=headers, method=method), 10.0)


def test_session_delete_answers_204_and_ends_the_session(http_json_server: McpServer) -> None:
    url = http_json_server.mcp_url
    init = raw_initialize(url)
    assert rpc_message(init)["result"]["serverInfo"]["name"] == "mcp-prometheus", init.text[:300]
    session = init.headers["mcp-session-id"]
    headers = {**BASE_HEADERS, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    # A POSTed notification keeps rmcp's 202: only DELETE is rewritten.
    note = _request(url, "POST", headers, b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    assert note.status == 202, f"{note.status} {note.text[:300]}"
    gone = _request(url, "DELETE", headers)
    assert gone.status == 204, f"{gone.status} {gone.text[:300]}"
    assert gone.body == b""
    # The session really ended: it is unknown now.
    again = _request(url, "POST", headers, b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}')
    assert again.status == 404, f"{again.status} {again.text[:300]}"


def test_delete_without_a_session_is_still_refused(http_json_server: McpServer) -> None:
    r = _request(http_json_server.mcp_url, "DELETE", {**BASE_HEADERS, "MCP-Protocol-Version": "2025-11-25"})
    assert 400 <= r.status < 500, f"{r.status} {r.text[:300]}"


SDK_SESSION = textwrap.dedent("""
    import asyncio, logging, sys
    from mcp.client import Client
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    async def main(url):
        async with Client(url, mode="legacy") as client:
            tools = await client.list_tools()
            print(len(tools.tools))

    asyncio.run(main(sys.argv[1]))
""")


def test_python_sdk_closes_a_session_without_warning(http_json_server: McpServer) -> None:
    """The official SDK, in its own process, as a user runs it: no warning on stderr."""
    p = subprocess.run([sys.executable, "-c", SDK_SESSION, http_json_server.mcp_url],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert int(p.stdout.strip()) >= 20, p.stdout
    assert "Session termination failed" not in p.stderr, p.stderr[-2000:]
    # The SDK did send the DELETE (else the check above proves nothing).
    assert "DELETE" in p.stderr, p.stderr[-2000:]


def test_go_server_metadata_path_is_an_alias(authn_server: LayeredServer) -> None:
    standard = http_get(authn_server.public_url + PRM_PATH)
    alias = http_get(authn_server.public_url + GO_ALIAS)
    assert standard.status == 200 and alias.status == 200, (standard.status, alias.status)
    assert alias.body == standard.body
    assert alias.headers.get("content-type") == standard.headers.get("content-type") == "application/json"
    assert alias.json()["resource"] == authn_server.resource
