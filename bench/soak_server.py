"""The soak run's Prometheus (restartable on its port), the server under
test and its RSS sampler (bench/soak.py)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

from soak_common import B
from serverconfig import toml_value  # on sys.path once soak_common has imported bench


# --------------------------------------------------------------------------
# Prometheus (restartable on its port), the server
# --------------------------------------------------------------------------

class Prometheus:
    def __init__(self, work: Path, blocks: Path, scrape: list[str]):
        self.work, self.port = work, B.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = work / "prometheus-data"
        shutil.rmtree(self.data, ignore_errors=True)
        self.data.mkdir(parents=True)
        for b in blocks.glob("01*"):
            shutil.copytree(b, self.data / b.name)
        rules = work / "rules.yml"
        rules.write_text("""groups:
  - name: soak
    interval: 5s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - record: handler:prometheus_http_requests:rate1m
        expr: sum by (handler) (rate(prometheus_http_requests_total[1m]))
      - alert: SoakAlwaysFiring
        expr: vector(1)
        labels: {severity: info}
        annotations: {summary: "always firing (soak)"}
      - alert: SoakTargetDown
        expr: up == 0
        for: 30s
        labels: {severity: warning}
        annotations: {summary: "{{ $labels.instance }} is down"}
""")
        self.cfg = work / "prometheus.yml"
        targets = ", ".join(json.dumps(t) for t in [f"127.0.0.1:{self.port}", *scrape])
        self.cfg.write_text(f"""global:
  scrape_interval: 2s
  evaluation_interval: 5s
rule_files: ["{rules}"]
scrape_configs:
  - job_name: soak
    static_configs:
      - targets: [{targets}]
""")
        self.proc: B.Proc | None = None
        self.starts = 0

    def start(self) -> float:
        """Starts it; returns the monotonic time it answered /-/ready."""
        self.starts += 1
        self.proc = B.Proc(f"prometheus-{self.starts}", [
            "prometheus", f"--config.file={self.cfg}", f"--storage.tsdb.path={self.data}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=30d",
            "--log.level=warn"], self.work / "logs")
        B.wait_until("prometheus /-/ready", lambda: B.http("GET", self.url + "/-/ready", timeout=2)[0] == 200,
                     timeout=60, proc=self.proc)
        return time.monotonic()

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        assert self.proc is not None
        self.proc.p.kill()
        self.proc.p.wait(10)
        self.proc.stop()

    def rss_kib(self) -> int:
        try:
            return B.proc_status_kib(self.proc.pid, "VmRSS") if self.proc and self.proc.alive() else 0
        except (OSError, RuntimeError):
            return 0


def server_toml(port: int, obs: int, upstreams: list[tuple[str, str, float]]) -> str:
    lines = ["[server]", f'listen = "127.0.0.1:{port}"', 'mcp_path = "/mcp"', f'public_url = "http://127.0.0.1:{port}"',
             'allowed_hosts = ["127.0.0.1", "localhost"]', "json_response = true", "stateful_sessions = true",
             "", "[observability]", f'listen = "127.0.0.1:{obs}"', 'log_format = "text"', 'log_level = "warn"']
    for name, url, timeout in upstreams:
        lines += ["", "[[upstreams]]", f"name = {toml_value(name)}", f"url = {toml_value(url)}",
                  f'timeout = "{timeout:g}s"']
    lines += ["", "[layers.metrics]", "enabled = true"]
    return "\n".join(lines) + "\n"


def start_server(binary: Path, work: Path, port: int, obs: int, upstreams: list[tuple[str, str, float]]) -> B.Server:
    cfg = work / "soak-server.toml"
    cfg.write_text(server_toml(port, obs, upstreams))
    p = B.Proc("server", [binary, "serve", "--config", cfg], work / "logs")
    B.wait_until("server /readyz", lambda: B.readyz_ok(obs), timeout=30, interval=0.01, proc=p)
    B.wait_until("server MCP listener", lambda: B.http("GET", f"http://127.0.0.1:{port}/", timeout=2)[0] > 0,
                 timeout=10, proc=p)
    return B.Server("soak", p, port, obs, time.monotonic() - p.t_start)


class RssSampler:
    """RSS of the server (and Prometheus) once a second, in a thread."""

    def __init__(self, srv: B.Server, prom: Prometheus):
        self.srv, self.prom = srv, prom
        self.samples: list[tuple[float, int, int]] = []
        self.stopping = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self) -> None:
        while not self.stopping:
            try:
                self.samples.append((time.monotonic(), self.srv.rss_kib(), self.prom.rss_kib()))
            except (OSError, RuntimeError):
                pass
            time.sleep(1.0)

    def stop(self) -> None:
        self.stopping = True
        self.t.join(3)


def readyz_text(obs: int) -> str:
    try:
        st, _, body = B.http("GET", f"http://127.0.0.1:{obs}/readyz", timeout=5)
        return f"{st} {body.decode(errors='replace').strip()}"
    except Exception as e:  # noqa: BLE001
        return repr(e)
