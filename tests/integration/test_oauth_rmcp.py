"""rmcp's own MCP client (the Rust SDK with its `auth` feature) as a second
real client of the authorization server: it discovers us, registers,
sends the user through the provider (the browser part is ours: `browse`),
exchanges the code and calls a tool with its token, scoped to the user's
tenants. The client is tests/rmcp-oauth-client, built by `make build`."""

from __future__ import annotations

import json
import subprocess

from authasserts import assert_tenants_within
from constants import ALICE_TENANTS
from httputil import free_port
from oauth_browse import browse
from oauth_server import OAuthServer
from procs import REPO
from tenant_router import TenantRouter

CLIENT = REPO / "target" / "debug" / "rmcp-oauth-client"


def test_rmcp_client_logs_in_and_queries_its_tenants(oauth_server: OAuthServer, router: TenantRouter) -> None:
    assert CLIENT.exists(), f"{CLIENT} missing: run `cargo build --workspace` (make build)"
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    mark = router.mark()
    proc = subprocess.Popen([str(CLIENT), oauth_server.mcp_url, redirect], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline()
        assert first.startswith("AUTHORIZE "), f"{first!r} / {proc.stderr.read() if proc.stderr else ''}"
        authorize = first.split(" ", 1)[1].strip()
        assert authorize.startswith(oauth_server.issuer + "/oauth/authorize"), authorize
        res = browse(authorize, oauth_server.follow, user="alice")
        assert res.stopped_at and res.stopped_at.startswith(redirect), res.describe()
        assert res.params.get("iss") == oauth_server.issuer and res.params.get("code"), res.params
        proc.stdin.write(f"CALLBACK {res.stopped_at}\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"rmcp client failed: {err}"
        line = next(l for l in out.splitlines() if l.startswith("RESULT "))
        result = json.loads(line.split(" ", 1)[1])
        assert result.get("isError") is False, result
        series = result["structuredContent"]["data"]["result"]
        tenants = {s["metric"].get("tenant") for s in series}
        assert tenants == ALICE_TENANTS, series
    finally:
        if proc.poll() is None:
            proc.kill()
    assert_tenants_within(router, mark, ALICE_TENANTS, "alice via the rmcp client")
