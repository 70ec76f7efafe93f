"""Session fixtures: real Prometheus x2 + Alertmanager, fake upstreams, and the
mcp-prometheus servers under test (one process per distinct config)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import FakeUpstream, fake_garbage, fake_http500, fake_slow  # noqa: E402
from httputil import closed_port  # noqa: E402
from mcpclient import TRANSPORT_IDS, TRANSPORTS, Target, TransportSpec  # noqa: E402
from mcpserver import McpServer, server_binary, start_mcp_server  # noqa: E402
from procs import ManagedProcess, live_processes, tail_file  # noqa: E402
from promstack import (  # noqa: E402
    Alertmanager,
    Prometheus,
    start_alertmanager,
    start_prometheus,
    wait_for_prometheus_data,
)
from serverconfig import ServerConfig, Upstream  # noqa: E402

# Fixtures of the authn / tenancy / truncation tests (authstack.py): the
# tenant router with one Prometheus per tenant, the test JWT issuer, and the
# servers with [layers.*] configs. Imported here so pytest registers them.
from authstack import (  # noqa: E402,F401
    authn_server,
    issuer,
    override_org_server,
    plain_router_server,
    router,
    scope_server,
    static_org_server,
    static_server,
    tenant_stack,
    trusted_server,
)
from oauth_fixtures import *  # noqa: E402,F401,F403 - OAuth fixtures (oauth_fixtures.__all__)

SLOW_UPSTREAM_TIMEOUT = "1s"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mcp-prometheus-it")
    (d / "logs").mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="session")
def binary() -> Path:
    b = server_binary()
    if not b.exists():
        pytest.fail(
            f"mcp-prometheus binary not found at {b}: run `cargo build` (or `make`) first, "
            "or set MCP_PROMETHEUS_BIN",
            pytrace=False,
        )
    return b


# --------------------------------------------------------------------------
# Prometheus / Alertmanager
# --------------------------------------------------------------------------

@dataclass
class Stack:
    am: Alertmanager
    prom: Prometheus  # plain, at the root path
    prom_prefixed: Prometheus  # under --web.route-prefix=/prometheus


@pytest.fixture(scope="session")
def stack(workdir: Path) -> Iterator[Stack]:
    started: list[ManagedProcess] = []
    try:
        am = start_alertmanager(workdir)
        started.append(am.proc)
        prom = start_prometheus(workdir, "local", am)
        started.append(prom.proc)
        prom_prefixed = start_prometheus(workdir, "prefixed", am, route_prefix="/prometheus")
        started.append(prom_prefixed.proc)
        wait_for_prometheus_data(prom, am)
        wait_for_prometheus_data(prom_prefixed, am)
        yield Stack(am, prom, prom_prefixed)
    finally:
        for p in reversed(started):
            p.stop()


@pytest.fixture(scope="session")
def prom(stack: Stack) -> Prometheus:
    return stack.prom


# --------------------------------------------------------------------------
# fake upstreams
# --------------------------------------------------------------------------

@dataclass
class Fakes:
    http500: FakeUpstream
    garbage: FakeUpstream
    slow: FakeUpstream
    closed_port: int

    @property
    def down_url(self) -> str:
        return f"http://127.0.0.1:{self.closed_port}"


@pytest.fixture(scope="session")
def fakes() -> Iterator[Fakes]:
    f = Fakes(fake_http500(), fake_garbage(), fake_slow(), closed_port())
    yield f
    for s in (f.http500, f.garbage, f.slow):
        s.close()


# The main servers let the query tools ask for `unlimited` results (up to the
# truncate layer's hard ceiling), so test_large_result can move > 1 MiB
# through every transport; everything else runs with the default budget.
MAIN_LAYERS = {"truncate": {"allow_unlimited": True}}


def main_upstreams(stack: Stack, fakes: Fakes) -> list[Upstream]:
    """local (default), prefixed, and the failure-mode upstreams."""
    return [
        Upstream("local", stack.prom.url, "5s"),
        Upstream("prefixed", stack.prom_prefixed.url, "5s"),
        Upstream("down", fakes.down_url, "2s"),
        Upstream("http500", fakes.http500.url, "2s"),
        Upstream("garbage", fakes.garbage.url, "2s"),
        Upstream("slow", fakes.slow.url, SLOW_UPSTREAM_TIMEOUT),
    ]


# --------------------------------------------------------------------------
# mcp-prometheus servers
# --------------------------------------------------------------------------

class ServerPool:
    """Starts each distinct streamable-HTTP server once per session."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.servers: dict[str, McpServer] = {}

    def get(self, name: str, make_config: Callable[[], ServerConfig], wait_ready: bool = True) -> McpServer:
        srv = self.servers.get(name)
        if srv is not None and srv.proc.poll() is None:
            return srv
        if srv is not None:  # it died: surface that, but start a fresh one for the next tests
            log = srv.proc.tail()
            srv.proc.stop()
            self.servers.pop(name)
            raise RuntimeError(f"server {name} died earlier (exit {srv.proc.returncode}); log tail:\n{log}")
        srv = start_mcp_server(self.workdir, name, make_config(), wait_ready=wait_ready)
        self.servers[name] = srv
        return srv

    def close(self) -> None:
        for srv in self.servers.values():
            srv.proc.stop()
        self.servers.clear()


@pytest.fixture(scope="session")
def pool(workdir: Path, binary: Path) -> Iterator[ServerPool]:
    p = ServerPool(workdir)
    yield p
    p.close()


@pytest.fixture(scope="session")
def http_json_server(pool: ServerPool, stack: Stack, fakes: Fakes) -> McpServer:
    return pool.get("main-json", lambda: ServerConfig(main_upstreams(stack, fakes), json_response=True, layers=MAIN_LAYERS))


@pytest.fixture(scope="session")
def http_stateless_json_server(pool: ServerPool, stack: Stack, fakes: Fakes) -> McpServer:
    return pool.get("main-stateless-json", lambda: ServerConfig(main_upstreams(stack, fakes), json_response=True,
                                                                 stateful_sessions=False))


@pytest.fixture(scope="session")
def http_sse_server(pool: ServerPool, stack: Stack, fakes: Fakes) -> McpServer:
    return pool.get("main-sse", lambda: ServerConfig(main_upstreams(stack, fakes), json_response=False, layers=MAIN_LAYERS))


@pytest.fixture(scope="session")
def stdio_config(workdir: Path, stack: Stack, fakes: Fakes) -> Path:
    # ports 0: many stdio processes may run, none may clash on a fixed port
    return ServerConfig(main_upstreams(stack, fakes), listen_port=0, obs_port=0, layers=MAIN_LAYERS).write(
        workdir / "servers" / "stdio.toml")


@pytest.fixture(scope="session")
def target(binary: Path, workdir: Path, stdio_config: Path, http_json_server: McpServer,
           http_sse_server: McpServer) -> Target:
    return Target(binary, stdio_config, http_json_server.mcp_url, http_sse_server.mcp_url,
                  workdir / "logs" / "mcp-prometheus-stdio.log")


TOOL_PREFIX = "mcp_prometheus_"


@pytest.fixture(scope="session")
def prefix_target(binary: Path, workdir: Path, pool: ServerPool, stack: Stack) -> Target:
    def cfg() -> ServerConfig:
        return ServerConfig([Upstream("local", stack.prom.url, "5s")], tool_prefix=TOOL_PREFIX)

    srv_json = pool.get("prefix-json", cfg)
    srv_sse = pool.get("prefix-sse", lambda: ServerConfig([Upstream("local", stack.prom.url, "5s")],
                                                          tool_prefix=TOOL_PREFIX, json_response=False))
    stdio = cfg()
    stdio_path = stdio.write(workdir / "servers" / "prefix-stdio.toml")
    return Target(binary, stdio_path, srv_json.mcp_url, srv_sse.mcp_url,
                  workdir / "logs" / "mcp-prometheus-stdio.log", tool_prefix=TOOL_PREFIX)


@pytest.fixture(params=TRANSPORTS, ids=TRANSPORT_IDS)
def transport(request: pytest.FixtureRequest) -> TransportSpec:
    return request.param


# --------------------------------------------------------------------------
# log tails on failure
# --------------------------------------------------------------------------

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Attach the tails of the relevant server logs to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    urls = set()
    for v in funcargs.values():
        if isinstance(v, Target):
            urls |= {v.http_json_url, v.http_sse_url}
    relevant = [p for p in live_processes()
                if any(isinstance(v, McpServer) and v.proc is p for v in funcargs.values())
                or any(isinstance(v, McpServer) and v.proc is p and v.mcp_url in urls
                       for v in getattr(funcargs.get("pool"), "servers", {}).values())]
    if report.when == "setup" or not relevant:
        relevant = live_processes()
    for proc in relevant:
        if proc.name.startswith("mcp-prometheus") or report.when == "setup":
            report.sections.append((f"log tail: {proc.name} ({proc.log_path})", proc.tail(30)))
    wd = funcargs.get("workdir")
    stdio_log = Path(wd) / "logs" / "mcp-prometheus-stdio.log" if wd is not None else None
    if stdio_log is not None and stdio_log.exists() and "stdio" in item.name:
        report.sections.append((f"log tail: stdio servers ({stdio_log})", tail_file(stdio_log, 30)))


def pytest_report_header(config: pytest.Config) -> list[str]:
    b = server_binary()
    return [f"mcp-prometheus binary: {b} ({'present' if b.exists() else 'MISSING'})",
            f"MCP_PROMETHEUS_BIN={os.environ.get('MCP_PROMETHEUS_BIN', '')}"]
