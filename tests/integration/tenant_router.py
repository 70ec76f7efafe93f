"""A stand-in for Mimir's multi-tenant query path: one real Prometheus per
tenant behind a threaded HTTP router that routes on `X-Scope-OrgID`.

* `start_tenant_prometheus()` runs a Prometheus that scrapes itself under job
  `prom-<tenant>` with the target label `tenant="<tenant>"`, and evaluates a
  per-tenant rule group `<tenant>-rules` (recording rule
  `tenant:up:sum`, alert `TenantAlert` labelled `tenant=<tenant>`), so every
  answer shows whose data it is.
* `TenantRouter` serves the Prometheus HTTP API at `/prometheus/api/v1/...`
  (and, like Mimir, also without the prefix), records every request (method,
  path, query, headers, body) and:
  - no `X-Scope-OrgID`                -> 401 `no org id` (Mimir's answer)
  - one known tenant                  -> proxied to that tenant's Prometheus
  - an unknown tenant                 -> 404 JSON error `unknown tenant`
  - `a|b` (federation)                -> fan-out to each tenant, merged:
      query / query_range:   results concatenated, label `__tenant_id__` added
      labels / label values: union;  series: union;  metadata: union
      rules / alerts:        400 (Mimir's ruler refuses several tenants)
      anything else:         the first tenant's answer
  - `/-/ready`, `/ready`              -> 200 without a tenant (recorded too)
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from httputil import LocalServer, QuietHandler, RecordedRequest, free_port, local_url, reply_unless_gone
from procs import ManagedProcess, wait_until
from promstack import PROMETHEUS_BIN, PromApi, ready

TENANTS = ("tenant-a", "tenant-b", "tenant-c")
PREFIX = "/prometheus"
FEDERATION_LABEL = "__tenant_id__"
RULER_MULTI_TENANT_ERROR = "multiple org IDs present"


# --------------------------------------------------------------------------
# per-tenant Prometheus
# --------------------------------------------------------------------------

TENANT_PROM_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
  external_labels:
    test_tenant: {tenant}
rule_files:
  - {rules}
scrape_configs:
  - job_name: prom-{tenant}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
        labels:
          tenant: {tenant}
"""

TENANT_RULES = """\
groups:
  - name: {tenant}-rules
    rules:
      - record: tenant:up:sum
        expr: sum by (job, tenant) (up)
      - alert: TenantAlert
        expr: vector(1)
        labels:
          severity: info
          tenant: {tenant}
        annotations:
          summary: Always firing in {tenant}.
"""


@dataclass
class TenantPrometheus(PromApi):
    tenant: str
    port: int
    proc: ManagedProcess

    @property
    def url(self) -> str:  # type: ignore[override]
        return local_url(self.port)

    @property
    def job(self) -> str:
        return f"prom-{self.tenant}"


def start_tenant_prometheus(workdir: Path, tenant: str) -> TenantPrometheus:
    """Start (not wait for data); see wait_for_tenant_data."""
    port = free_port()
    d = workdir / f"prom-{tenant}"
    d.mkdir(parents=True, exist_ok=True)
    rules = d / "rules.yml"
    rules.write_text(TENANT_RULES.format(tenant=tenant))
    cfg = d / "prometheus.yml"
    cfg.write_text(TENANT_PROM_CONFIG.format(tenant=tenant, rules=rules, port=port))
    proc = ManagedProcess(
        f"prometheus-{tenant}",
        [PROMETHEUS_BIN, f"--config.file={cfg}", f"--storage.tsdb.path={d / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--rules.alert.resend-delay=2s"],
        workdir / "logs" / f"prometheus-{tenant}.log",
    )
    return TenantPrometheus(tenant, port, proc)


def wait_for_tenant_data(p: TenantPrometheus, timeout: float = 45.0) -> None:
    wait_until(f"{p.tenant} /-/ready", lambda: ready(p.url), timeout=timeout, proc=p.proc)
    wait_until(f"{p.tenant}: 3 samples of up", lambda: p.scalar(f'count_over_time(up{{job="{p.job}"}}[1m])') >= 3,
               timeout, proc=p.proc)
    wait_until(f"{p.tenant}: recording rule", lambda: p.query("tenant:up:sum"), timeout, proc=p.proc)
    wait_until(f"{p.tenant}: TenantAlert firing", lambda: p.firing("TenantAlert"), timeout, proc=p.proc)
    wait_until(f"{p.tenant}: metadata", lambda: p.api("metadata", metric="prometheus_http_requests_total"),
               timeout, proc=p.proc)


def start_tenant_proms(workdir: Path, tenants: Iterable[str] = TENANTS) -> dict[str, TenantPrometheus]:
    started: dict[str, TenantPrometheus] = {}
    try:
        for t in tenants:
            started[t] = start_tenant_prometheus(workdir, t)
        for p in started.values():
            wait_for_tenant_data(p)
    except Exception:
        for p in started.values():
            p.proc.stop()
        raise
    return started


# --------------------------------------------------------------------------
# the router
# --------------------------------------------------------------------------

@dataclass
class RoutedRequest(RecordedRequest):
    status: int = 0

    @property
    def org_id(self) -> str | None:
        """The raw X-Scope-OrgID header, if any."""
        return self.headers.get("x-scope-orgid")

    @property
    def tenants(self) -> list[str]:
        """The tenants named by X-Scope-OrgID (split on |)."""
        return self.org_id.split("|") if self.org_id is not None else []

    @property
    def is_api(self) -> bool:
        return "/api/v1/" in self.route


@dataclass
class _Upstream:
    status: int
    body: bytes
    ctype: str


class TenantRouter(LocalServer):
    """Routes on X-Scope-OrgID to one Prometheus per tenant; records requests."""

    def __init__(self, backends: dict[str, str], prefix: str = PREFIX, name: str = "tenant-router"):
        self.backends = dict(backends)  # tenant -> Prometheus base URL
        self.prefix = prefix
        self.name = name
        self._lock = threading.Lock()
        self.requests: list[RoutedRequest] = []
        outer = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                rec = self.recorded(RoutedRequest)
                with outer._lock:
                    outer.requests.append(rec)
                try:
                    status, out, ctype = outer._route(rec)
                except Exception as e:  # noqa: BLE001 - report, do not hang the client
                    status, out, ctype = 502, f"tenant router error: {e!r}\n".encode(), "text/plain"
                rec.status = status
                reply_unless_gone(self, status, out, ctype)

            do_GET = _handle
            do_POST = _handle

        super().__init__(Handler, name)

    # ------------------------------------------------------------ addresses

    @property
    def root(self) -> str:
        return super().url

    @property
    def url(self) -> str:  # type: ignore[override]
        """Base URL for mcp-prometheus (with the /prometheus prefix, as Mimir)."""
        return self.root + self.prefix

    # ------------------------------------------------------------ recording

    def mark(self) -> int:
        """A position in the request log; see since()."""
        with self._lock:
            return len(self.requests)

    def since(self, mark: int, api_only: bool = True) -> list[RoutedRequest]:
        with self._lock:
            reqs = self.requests[mark:]
        return [r for r in reqs if r.is_api or not api_only]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def tenants_seen(self, mark: int = 0) -> set[str]:
        return {t for r in self.since(mark) for t in r.tenants}

    # ------------------------------------------------------------ routing

    def _strip(self, route: str) -> str:
        if self.prefix and (route == self.prefix or route.startswith(self.prefix + "/")):
            return route[len(self.prefix):] or "/"
        return route

    def _route(self, rec: RoutedRequest) -> tuple[int, bytes, str]:
        split = urllib.parse.urlsplit(rec.path)
        path = self._strip(split.path)
        if path in ("/-/ready", "/ready"):
            return 200, b"ready\n", "text/plain"
        if path in ("/-/healthy",):
            return 200, b"healthy\n", "text/plain"
        org = rec.org_id
        if org is None or org.strip() == "":
            return 401, b"no org id\n", "text/plain; charset=utf-8"
        tenants = org.split("|")
        unknown = [t for t in tenants if t not in self.backends]
        if unknown:
            return 404, _err("not_found", f"unknown tenant {unknown[0]!r}"), "application/json"
        if len(tenants) == 1:
            up = self._forward(tenants[0], rec, path, split.query)
            return up.status, up.body, up.ctype
        # federation
        if path in ("/api/v1/rules", "/api/v1/alerts"):
            return 400, _err("bad_data", RULER_MULTI_TENANT_ERROR), "application/json"
        answers = [(t, self._forward(t, rec, path, split.query)) for t in tenants]
        bad = [(t, a) for t, a in answers if a.status != 200]
        if bad:
            return bad[0][1].status, bad[0][1].body, bad[0][1].ctype
        try:
            parsed = [(t, json.loads(a.body)) for t, a in answers]
        except ValueError:
            first = answers[0][1]
            return first.status, first.body, first.ctype
        return 200, json.dumps(_merge(path, parsed)).encode(), "application/json"

    def _forward(self, tenant: str, rec: RoutedRequest, path: str, query: str) -> _Upstream:
        url = self.backends[tenant] + path + (f"?{query}" if query else "")
        headers = {}
        for h in ("content-type", "accept", "traceparent", "tracestate"):
            if h in rec.headers:
                headers[h] = rec.headers[h]
        req = urllib.request.Request(url, data=rec.body if rec.method == "POST" else None, headers=headers,
                                     method=rec.method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return _Upstream(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
        except urllib.error.HTTPError as e:
            return _Upstream(e.code, e.read(), e.headers.get("Content-Type", "text/plain"))


def _err(kind: str, msg: str) -> bytes:
    return json.dumps({"status": "error", "errorType": kind, "error": msg}).encode()


def _merge(path: str, answers: list[tuple[str, Any]]) -> Any:
    """Merge per-tenant API answers the way Mimir's tenant federation does."""
    first = answers[0][1]
    data0 = first.get("data")
    if path in ("/api/v1/query", "/api/v1/query_range"):
        if not isinstance(data0, dict) or data0.get("resultType") not in ("vector", "matrix"):
            return first
        result = []
        for tenant, a in answers:
            for s in a["data"]["result"]:
                s = dict(s)
                s["metric"] = {**s.get("metric", {}), FEDERATION_LABEL: tenant}
                result.append(s)
        return {"status": "success", "data": {"resultType": data0["resultType"], "result": result}}
    if path == "/api/v1/labels" or (path.startswith("/api/v1/label/") and path.endswith("/values")):
        names = set()
        for _, a in answers:
            names |= set(a.get("data") or [])
        if path == "/api/v1/labels":
            names.add(FEDERATION_LABEL)
        return {"status": "success", "data": sorted(names)}
    if path == "/api/v1/series":
        seen: dict[str, Any] = {}
        for tenant, a in answers:
            for s in a.get("data") or []:
                s = {**s, FEDERATION_LABEL: tenant}
                seen[json.dumps(s, sort_keys=True)] = s
        return {"status": "success", "data": list(seen.values())}
    if path == "/api/v1/metadata":
        merged: dict[str, list[Any]] = {}
        for _, a in answers:
            for metric, entries in (a.get("data") or {}).items():
                lst = merged.setdefault(metric, [])
                for e in entries:
                    if e not in lst:
                        lst.append(e)
        return {"status": "success", "data": merged}
    return first
