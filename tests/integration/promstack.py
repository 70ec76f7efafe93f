"""Real Prometheus and Alertmanager processes for the integration tests, on
free 127.0.0.1 ports, with their readiness and data waited for by polling.

`PromApi` is the HTTP API of any Prometheus (also the per-tenant ones of
tenant_router.py).
"""

from __future__ import annotations

import os
import string
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from httputil import free_port, http_get, local_url
from procs import REPO, ManagedProcess, await_start, wait_until

FIXTURES = REPO / "tests" / "fixtures"
CONFIG_DIR = REPO / "config"
RULES_FILE = CONFIG_DIR / "rules.yml"
ALERTMANAGER_CONFIG = CONFIG_DIR / "alertmanager.yml"

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "prometheus")
ALERTMANAGER_BIN = os.environ.get("ALERTMANAGER_BIN", "prometheus-alertmanager")

START_TIMEOUT = 30.0


def ready(url: str) -> bool:
    """GET `url`/-/ready answers 200."""
    return http_get(f"{url}/-/ready", 1).status == 200


class PromApi:
    """The HTTP API of a Prometheus whose base URL is `self.url`."""

    url: str

    def api(self, path: str, **params: Any) -> Any:
        """`data` of a successful answer of /api/v1/`path` (else RuntimeError)."""
        qs = ("?" + urllib.parse.urlencode(params)) if params else ""
        r = http_get(f"{self.url}/api/v1/{path}{qs}", timeout=5)
        if r.status != 200:
            raise RuntimeError(f"{path}: HTTP {r.status}: {r.text[:300]}")
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def query(self, q: str) -> list[dict[str, Any]]:
        return self.api("query", query=q)["result"]

    def scalar(self, q: str) -> float:
        """The value of the first sample of an instant query, 0 when there is none."""
        res = self.query(q)
        return float(res[0]["value"][1]) if res else 0.0

    def firing(self, alertname: str) -> bool:
        """The alert `alertname` is firing."""
        return any(a["labels"].get("alertname") == alertname and a["state"] == "firing"
                   for a in self.api("alerts")["alerts"])


@dataclass
class Alertmanager:
    port: int
    proc: ManagedProcess

    @property
    def url(self) -> str:
        return local_url(self.port)


def start_alertmanager(workdir: Path) -> Alertmanager:
    port = free_port()
    data = workdir / "alertmanager-data"
    data.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess(
        "alertmanager",
        [
            ALERTMANAGER_BIN,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        workdir / "logs" / "alertmanager.log",
    )
    am = Alertmanager(port, proc)
    await_start(proc, ("alertmanager /-/ready", lambda: ready(am.url), START_TIMEOUT))
    return am


@dataclass
class Prometheus(PromApi):
    name: str
    port: int
    route_prefix: str  # "" or "/prometheus"
    proc: ManagedProcess
    config_path: Path

    @property
    def root(self) -> str:
        return local_url(self.port)

    @property
    def url(self) -> str:  # type: ignore[override]
        """Base URL as configured in mcp-prometheus (includes the route prefix)."""
        return self.root + self.route_prefix

    @property
    def instance(self) -> str:
        """The `instance` label of its self-scrape target."""
        return f"127.0.0.1:{self.port}"


def start_prometheus(workdir: Path, name: str, am: Alertmanager, route_prefix: str = "") -> Prometheus:
    port = free_port()
    d = workdir / name
    d.mkdir(parents=True, exist_ok=True)
    cfg = d / "prometheus.yml"
    tmpl = string.Template((FIXTURES / "prometheus.yml.tmpl").read_text())
    cfg.write_text(tmpl.substitute(
        SELF_PORT=port,
        METRICS_PATH=f"{route_prefix}/metrics",
        INSTANCE=name,
        RULES_FILE=str(RULES_FILE),
        AM_PORT=am.port,
    ))
    args = [
        PROMETHEUS_BIN,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={d / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        "--web.enable-admin-api",
        "--rules.alert.resend-delay=2s",
    ]
    if route_prefix:
        args += [f"--web.route-prefix={route_prefix}", f"--web.external-url=http://127.0.0.1:{port}{route_prefix}"]
    proc = ManagedProcess(f"prometheus-{name}", args, workdir / "logs" / f"prometheus-{name}.log")
    prom = Prometheus(name, port, route_prefix, proc, cfg)
    await_start(proc, (f"{name} /-/ready", lambda: ready(prom.url), START_TIMEOUT))
    return prom


def wait_for_prometheus_data(prom: Prometheus, am: Alertmanager, timeout: float = 45.0) -> None:
    """Wait until everything the tests look at exists (no fixed sleeps)."""

    # several samples of its own `up` (range queries want several points) and
    # both targets (prometheus + alertmanager) scraped at least once
    wait_until(f"{prom.name}: 3 samples of up{{job=prometheus}}",
               lambda: prom.scalar('count_over_time(up{job="prometheus"}[1m])') >= 3, timeout, proc=prom.proc)
    wait_until(f"{prom.name}: both targets up", lambda: prom.scalar("sum(up)") >= 2, timeout, proc=prom.proc)
    wait_until(f"{prom.name}: recording rule job:up:sum", lambda: prom.query('job:up:sum{job="prometheus"}'),
               timeout, proc=prom.proc)
    wait_until(f"{prom.name}: AlwaysFiring firing", lambda: prom.firing("AlwaysFiring"), timeout, proc=prom.proc)

    def am_listed() -> bool:
        ams = prom.api("alertmanagers")["activeAlertmanagers"]
        return any(f"127.0.0.1:{am.port}" in a["url"] for a in ams)

    wait_until(f"{prom.name}: alertmanager discovered", am_listed, timeout, proc=prom.proc)

    def metadata() -> bool:
        md = prom.api("metadata", metric="prometheus_http_requests_total")
        tmd = prom.api("targets/metadata", match_target='{job="prometheus"}', metric="prometheus_build_info")
        return bool(md) and bool(tmd)

    wait_until(f"{prom.name}: metric metadata", metadata, timeout, proc=prom.proc)
