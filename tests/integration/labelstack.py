"""One real Prometheus holding three tenants' series, told apart by the label
`tenant` (what label tenancy, `[layers.tenancy] enforce = "label"`, serves),
behind a recording proxy, plus the checks that nothing of another tenant's
reached an answer.

* the exporter serves the same metric names for tenants a, b and c (a counter,
  a gauge, a histogram, and an `owner` label whose value is a per-tenant
  secret), each tenant with values no other tenant has, scraped with
  `honor_labels: true` every second;
* the rules file has an alerting rule per tenant (labels `tenant: <t>`),
  one shared alerting rule (an alert per tenant, no tenant label of its own)
  and a shared recording rule;
* `RecordingProxy` forwards to Prometheus and records every request, so a
  test can assert what reached the upstream (nothing, for a refusal).
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from httputil import LocalServer, QuietHandler, RecordedRequest, free_port, http_get, local_url, reply_unless_gone
from procs import ManagedProcess, await_start, wait_until
from promstack import PROMETHEUS_BIN, PromApi, ready

TENANTS = ("a", "b", "c")
# Per tenant: values nobody else has (and no sum of them equals another's).
VALUES: dict[str, dict[str, Any]] = {
    "a": {"counter": 1117, "gauge": 11.5, "buckets": (1201, 1303, 1409), "sum": 1511.5},
    "b": {"counter": 2229, "gauge": 27.25, "buckets": (2203, 2309, 2411), "sum": 2521.5},
    "c": {"counter": 3331, "gauge": 43.125, "buckets": (3203, 3307, 3413), "sum": 3529.5},
}
LE = ("0.1", "1", "+Inf")


def owner(tenant: str) -> str:
    """The secret `owner` label value of `tenant`'s series."""
    return f"owner-{tenant}-secret"


def exposition() -> str:
    out = ["# TYPE demo_requests_total counter"]
    out += [f'demo_requests_total{{tenant="{t}",owner="{owner(t)}"}} {VALUES[t]["counter"]}' for t in TENANTS]
    out += ["# TYPE demo_gauge gauge"]
    out += [f'demo_gauge{{tenant="{t}",owner="{owner(t)}"}} {VALUES[t]["gauge"]}' for t in TENANTS]
    out += ["# TYPE demo_latency_seconds histogram"]
    for t in TENANTS:
        v = VALUES[t]
        out += [f'demo_latency_seconds_bucket{{tenant="{t}",owner="{owner(t)}",le="{le}"}} {n}'
                for le, n in zip(LE, v["buckets"])]
        out += [f'demo_latency_seconds_sum{{tenant="{t}",owner="{owner(t)}"}} {v["sum"]}',
                f'demo_latency_seconds_count{{tenant="{t}",owner="{owner(t)}"}} {v["buckets"][-1]}']
    return "\n".join(out) + "\n"


def start_exporter(workdir: Path) -> tuple[ManagedProcess, int]:
    """The exposition as a static file served by a process of its own, so a
    busy test process never makes a scrape time out (and the series stale)."""
    d = workdir / "label-exporter"
    d.mkdir(parents=True, exist_ok=True)
    (d / "metrics").write_text(exposition())
    port = free_port()
    proc = ManagedProcess("label-exporter", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                             str(port), "--directory", str(d)],
                          workdir / "logs" / "label-exporter.log")
    await_start(proc, ("label exporter", lambda: http_get(local_url(port, "/metrics"), 1).status == 200, 15.0))
    return proc, port


def forbidden_numbers(allowed: set[str]) -> set[float]:
    """Every value of a tenant outside `allowed`, and every sum and mean over
    tenants that includes one: none may appear in an answer to a caller
    who reads only `allowed`."""
    out: set[float] = set()
    series = [lambda t: VALUES[t]["counter"], lambda t: VALUES[t]["gauge"], lambda t: VALUES[t]["sum"]]
    series += [lambda t, i=i: VALUES[t]["buckets"][i] for i in range(len(LE))]
    for n in range(1, len(TENANTS) + 1):
        for group in itertools.combinations(TENANTS, n):
            if set(group) <= allowed:
                continue
            for value in series:
                total = sum(value(t) for t in group)
                out |= {float(total), float(total) / n}
    return out


def leaks(answer: Any, allowed: set[str], relabelled: bool = False) -> list[str]:
    """What of another tenant's is in `answer` (any JSON value or text): a
    secret owner, a forbidden number (as a number, a string, or in text), or
    (unless the query relabels `tenant` itself) a series of another tenant."""
    found: list[str] = []
    text = answer if isinstance(answer, str) else json.dumps(answer)
    found += [f"secret {owner(t)}" for t in TENANTS if t not in allowed and owner(t) in text]
    bad = forbidden_numbers(allowed)
    for token in re.findall(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?", text):
        if float(token) in bad:
            found.append(f"number {token}")

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            # a query result's `metric`, an alert's or rule's `labels`, a
            # series (find_series) as a label set of its own
            for labels in (node.get("metric"), node.get("labels"), node if "__name__" in node else None):
                if isinstance(labels, dict) and not relabelled and labels.get("tenant", "-") not in allowed | {"-"}:
                    found.append(f"series of tenant {labels['tenant']}: {labels}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    if not isinstance(answer, str):
        walk(answer)
    return found


@dataclass
class ProxiedRequest(RecordedRequest):
    pass


class RecordingProxy:
    """Forwards every request to `target` and records it."""

    def __init__(self, target: str):
        self.target = target
        self.requests: list[ProxiedRequest] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def forward(self) -> None:
                req = self.recorded(ProxiedRequest)
                with proxy.lock:
                    proxy.requests.append(req)
                headers = {k: v for k, v in req.headers.items() if k in ("content-type", "accept")}
                up = urllib.request.Request(proxy.target + req.path, data=req.body or None, headers=headers,
                                            method=req.method)
                try:
                    with urllib.request.urlopen(up, timeout=20) as r:
                        status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
                except urllib.error.HTTPError as e:
                    status, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
                reply_unless_gone(self, status, body, ctype or "application/json")

            do_GET = forward  # noqa: N815
            do_POST = forward  # noqa: N815

        self.server = LocalServer(Handler, "label-proxy")

    @property
    def url(self) -> str:
        return self.server.url

    def mark(self) -> int:
        with self.lock:
            return len(self.requests)

    def since(self, mark: int) -> list[ProxiedRequest]:
        with self.lock:
            return list(self.requests[mark:])

    def close(self) -> None:
        self.server.close()


PROM_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: demo
    honor_labels: true
    static_configs:
      - targets: ["127.0.0.1:{exporter}"]
"""

RULES = "groups:\n" + "".join(f"""\
  - name: tenant-{t}-alerts
    rules:
      - alert: DemoTenant{t.upper()}
        expr: demo_gauge{{tenant="{t}"}} > 0
        labels: {{tenant: "{t}", severity: info}}
        annotations: {{summary: "gauge of {t} is {{{{ $value }}}}"}}
""" for t in TENANTS) + """\
  - name: shared
    rules:
      - alert: DemoShared
        expr: demo_gauge > 0
        labels: {severity: page}
      - record: demo:gauge:max
        expr: max by (tenant) (demo_gauge)
"""


@dataclass
class LabelStack(PromApi):
    exporter: ManagedProcess
    proc: ManagedProcess
    port: int
    proxy: RecordingProxy
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:  # type: ignore[override]
        """Prometheus itself (the tests' own view)."""
        return local_url(self.port)

    def close(self) -> None:
        self.proxy.close()
        self.proc.stop()
        self.exporter.stop()


def start_label_stack(workdir: Path) -> LabelStack:
    exporter, exporter_port = start_exporter(workdir)
    d = workdir / "label-prom"
    d.mkdir(parents=True, exist_ok=True)
    rules = d / "rules.yml"
    rules.write_text(RULES)
    cfg = d / "prometheus.yml"
    cfg.write_text(PROM_CONFIG.format(rules=rules, exporter=exporter_port))
    port = free_port()
    proc = ManagedProcess("prometheus-label", [
        PROMETHEUS_BIN, f"--config.file={cfg}", f"--storage.tsdb.path={d / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--rules.alert.resend-delay=2s"],
        workdir / "logs" / "prometheus-label.log")
    stack = LabelStack(exporter, proc, port, RecordingProxy(local_url(port)))
    await_start(proc, ("label prometheus /-/ready", lambda: ready(stack.url), 30.0))
    wait_until("3 samples of every tenant", lambda: all(
        stack.scalar(f'count_over_time(demo_requests_total{{tenant="{t}"}}[1m])') >= 3 for t in TENANTS),
        45.0, proc=proc)
    wait_until("every tenant's alerts firing", lambda: sum(
        a["state"] == "firing" for a in stack.api("alerts")["alerts"]) == 2 * len(TENANTS), 45.0, proc=proc)
    wait_until("the recording rule", lambda: len(stack.query("demo:gauge:max")) == len(TENANTS), 45.0, proc=proc)
    return stack
