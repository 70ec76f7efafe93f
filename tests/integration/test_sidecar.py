"""The shipped Mimir sidecar config (config/sidecar.toml), run as shipped.

In the sidecar pod the server and Mimir share one network namespace: the
server must not listen on the port its upstream (Mimir's HTTP port, 8080)
uses. Here a real Prometheus plays Mimir on the upstream's own address
(127.0.0.1:8080 under --web.route-prefix=/prometheus, so the file's
`http://localhost:8080/prometheus` works unchanged) and the server is started
from config/sidecar.toml itself. Only the listen *host* is overridden (to
127.0.0.1: tests bind loopback only), never a port, the upstream or anything
else in the file.

Port 8080 (and the file's two listener ports) must be free on the machine: a
busy port fails the test with a message saying so, it is never skipped.
"""

from __future__ import annotations

import errno
import socket
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from mcp.shared._httpx_utils import create_mcp_http_client

from httputil import http_get, port_open
from mcpclient import ToolResult, http_session
from mcpserver import require_binary
from procs import REPO, ManagedProcess, await_start, wait_until
from promstack import PROMETHEUS_BIN, PromApi, ready
from promtext import parse_metrics

SIDECAR_TOML = REPO / "config" / "sidecar.toml"

# Ports a sidecar must not take in Mimir's pod: Mimir's HTTP (its query path,
# our upstream), gRPC and memberlist ports, and Prometheus's default port.
MIMIR_HTTP, MIMIR_GRPC, MIMIR_MEMBERLIST, PROMETHEUS_PORT = 8080, 9095, 7946, 9090

JOB = "mimir-stand-in"


# --------------------------------------------------------------------------
# what the file says
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class SidecarFile:
    raw: dict[str, Any]

    @staticmethod
    def _port(listen: str) -> int:
        return int(listen.rsplit(":", 1)[1])

    @property
    def mcp_port(self) -> int:
        return self._port(self.raw["server"]["listen"])

    @property
    def obs_port(self) -> int:
        return self._port(self.raw["observability"]["listen"])

    @property
    def upstream(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.raw["upstreams"][0]["url"])

    @property
    def upstream_port(self) -> int:
        u = self.upstream
        return u.port or (443 if u.scheme == "https" else 80)

    @property
    def mcp_path(self) -> str:
        return self.raw["server"].get("mcp_path", "/mcp")


def load_sidecar() -> SidecarFile:
    with SIDECAR_TOML.open("rb") as f:
        return SidecarFile(tomllib.load(f))


@pytest.fixture(scope="module")
def sidecar_file() -> SidecarFile:
    return load_sidecar()


def test_sidecar_ports_do_not_collide(sidecar_file: SidecarFile) -> None:
    """MCP listener, observability listener and upstream (Mimir in the same
    pod) on three different ports, none of them Mimir's gRPC or memberlist
    port; our two listeners also stay off Mimir's HTTP port and Prometheus's."""
    f = sidecar_file
    assert f.upstream.hostname == "localhost", f"a sidecar reaches Mimir on localhost: {f.upstream.geturl()}"
    ports = {"server.listen": f.mcp_port, "observability.listen": f.obs_port, "upstreams[0].url": f.upstream_port}
    assert len(set(ports.values())) == 3, f"{SIDECAR_TOML}: ports must be pairwise distinct: {ports}"
    for what, port in ports.items():
        assert port not in (MIMIR_GRPC, MIMIR_MEMBERLIST), f"{what} uses Mimir's port {port}: {ports}"
    for what in ("server.listen", "observability.listen"):
        assert ports[what] not in (MIMIR_HTTP, PROMETHEUS_PORT), f"{what} uses Mimir's/Prometheus's port: {ports}"


# --------------------------------------------------------------------------
# a Prometheus on the upstream's own address, the server from the file
# --------------------------------------------------------------------------

def require_free(port: int, why: str) -> None:
    """Fail (never skip) when 127.0.0.1:`port` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            pytest.fail(f"port {port} on 127.0.0.1 is in use, but the sidecar test needs it: {why}. "
                        f"Stop whatever listens there (`ss -ltnp 'sport = :{port}'`) and run again.",
                        pytrace=False)


class MimirStandIn(PromApi):
    """A real Prometheus serving its API under the upstream URL of the file."""

    def __init__(self, url: str, port: int, proc: ManagedProcess):
        self.url = url
        self.port = port
        self.proc = proc

    def query_requests(self) -> float:
        """Instant queries Prometheus has answered, from its own request
        counter on its /metrics page (reading that page is no query)."""
        samples = parse_metrics(http_get(f"{self.url}/metrics").text)
        return sum(v for name, labels, v in samples
                   if name == "prometheus_http_requests_total" and labels.get("handler", "").endswith("/api/v1/query"))


@pytest.fixture(scope="module")
def mimir(sidecar_file: SidecarFile, workdir: Path) -> Iterator[MimirStandIn]:
    up = sidecar_file.upstream
    port, prefix = sidecar_file.upstream_port, up.path.rstrip("/")
    require_free(port, f"{SIDECAR_TOML.name} queries Mimir at {up.geturl()}, so the stand-in Prometheus "
                       f"must listen on 127.0.0.1:{port}")
    d = workdir / "sidecar-mimir"
    d.mkdir(parents=True, exist_ok=True)
    cfg = d / "prometheus.yml"
    cfg.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        f"scrape_configs:\n  - job_name: {JOB}\n    metrics_path: {prefix}/metrics\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    proc = ManagedProcess("prometheus-sidecar-mimir", [
        PROMETHEUS_BIN,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={d / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.route-prefix={prefix}",
        f"--web.external-url={up.scheme}://{up.netloc}{prefix}",
    ], workdir / "logs" / "prometheus-sidecar-mimir.log")
    m = MimirStandIn(f"{up.scheme}://{up.netloc}{prefix}", port, proc)
    try:
        await_start(proc, ("sidecar Mimir stand-in /-/ready", lambda: ready(m.url), 30))
        wait_until(f"stand-in: a sample of up{{job={JOB!r}}}", lambda: m.query(f'up{{job="{JOB}"}}'), 30, proc=proc)
        yield m
    finally:
        proc.stop()


@dataclass
class Sidecar:
    proc: ManagedProcess
    mcp_port: int
    obs_port: int
    mcp_path: str

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.mcp_port}{self.mcp_path}"

    @property
    def obs_url(self) -> str:
        return f"http://127.0.0.1:{self.obs_port}"


@pytest.fixture(scope="module")
def sidecar(sidecar_file: SidecarFile, mimir: MimirStandIn, workdir: Path) -> Iterator[Sidecar]:
    f = sidecar_file
    require_free(f.mcp_port, f"{SIDECAR_TOML.name} listens there ({f.raw['server']['listen']})")
    require_free(f.obs_port, f"{SIDECAR_TOML.name} serves /readyz there ({f.raw['observability']['listen']})")
    # the file itself; only the listen hosts change (0.0.0.0 -> 127.0.0.1), the ports stay the file's
    proc = ManagedProcess("mcp-prometheus[sidecar]", [
        require_binary(), "serve", "--config", SIDECAR_TOML,
        "--listen", f"127.0.0.1:{f.mcp_port}",
        "--observability-listen", f"127.0.0.1:{f.obs_port}",
    ], workdir / "logs" / "mcp-prometheus-sidecar.log")
    srv = Sidecar(proc, f.mcp_port, f.obs_port, f.mcp_path)
    try:
        await_start(proc,
                    ("sidecar /readyz", lambda: http_get(srv.obs_url + "/readyz", 1).status == 200, 30),
                    ("sidecar MCP listener", lambda: port_open(f.mcp_port), 15))
        yield srv
    finally:
        proc.stop()


def test_sidecar_binds_its_own_port(sidecar: Sidecar, sidecar_file: SidecarFile, mimir: MimirStandIn) -> None:
    assert sidecar.mcp_port != sidecar_file.upstream_port
    assert port_open(sidecar.mcp_port), f"nothing listens on the sidecar's MCP port {sidecar.mcp_port}"
    assert sidecar.proc.poll() is None, f"the sidecar exited:\n{sidecar.proc.tail()}"
    # the MCP port is ours, not the upstream's: a GET of the MCP path without
    # a session is refused by the MCP transport, whereas Prometheus would 404
    # an unknown path and never speak MCP
    r = http_get(sidecar.mcp_url, headers={"Accept": "text/event-stream"})
    assert r.status != 404 and "prometheus" not in r.text.lower(), f"{r.status} {r.text[:300]}"


def test_sidecar_ready_on_observability_port(sidecar: Sidecar, mimir: MimirStandIn) -> None:
    r = http_get(sidecar.obs_url + "/readyz")
    assert r.status == 200, f"{r.status} {r.text}"
    assert r.text.startswith("ready") and '"mimir"' in r.text, r.text
    assert http_get(sidecar.obs_url + "/healthz").status == 200


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sidecar_execute_query_answered_by_upstream(sidecar: Sidecar, mimir: MimirStandIn, mode: str) -> None:
    before = mimir.query_requests()
    async with http_session(sidecar.mcp_url, create_mcp_http_client(), mode=mode) as c:
        r: ToolResult = (await c.call("execute_query", {"query": "up"})).ok()
    assert r.structured["upstream"] == "mimir", r.describe()
    series = r.data["result"]
    ours = [s for s in series if s["metric"].get("job") == JOB]
    assert ours, f"no up{{job={JOB!r}}} in the answer, so it did not come from the stand-in:\n{r.describe()}"
    assert ours[0]["metric"]["instance"] == f"127.0.0.1:{mimir.port}", r.describe()
    assert float(ours[0]["value"][1]) == 1.0, r.describe()
    # Prometheus itself counted the sidecar's query
    after = mimir.query_requests()
    assert after > before, f"the stand-in counted no /api/v1/query ({before} -> {after})"
