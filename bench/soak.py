#!/usr/bin/env python3
"""The mcp-prometheus soak and fault-injection run (`make soak`; not in `make test`).

Load: a real Prometheus (Debian package; itself, the server's /metrics and a
backfilled 1,000-series `bench_small` as data, recording rules and alerts),
the release server, and 200 concurrent MCP clients (asyncio, one keep-alive
connection each, stateless 2026-07-28 `tools/call`s drawn from a weighted
mix of 20 tools) for --minutes (10), after a 30 s warm-up and before 30 s
idle. Every answer is checked: any HTTP status but 200, a JSON-RPC error or
an `isError` result is an error. Pass: 0 errors; RSS at the end within 5 %
(growth) of the RSS after warm-up.

Faults, each with a moderate load running (20 clients, ~50 ms think time),
on the same server process (never restarted):
  a  Prometheus SIGKILLed for 10 s, then restarted: callers get isError with
     a clear message within the upstream timeout; calls succeed again
     once it is back;
  b  upstreams that answer after the timeout, trickle the body, answer HTML,
     cut the body mid-stream (Content-Length and chunked) or reset the
     connection (bench/fault_upstream.py): isError with a clear message, no
     hang, and no error on the healthy upstream meanwhile;
  c  Valkey (the OAuth store) stopped and restarted, then frozen (SIGSTOP)
     and thawed, while OAuth clients refresh tokens and MCP clients call
     tools with our access tokens: clear errors (OAuth JSON, 5xx), no
     hang, refreshes and calls succeed again afterwards;
  d  the OIDC provider down during a login (between the provider's login
     and our /oauth/callback): a clear error, no crash; a login works
     again once the provider is back.
(c) and (d) need the test venv (scripts/setup-test-env.sh: the OIDC provider
in node, Valkey, httpx2): run this with .venv/bin/python, as `make soak` does.

Writes target/soak/results.json, target/soak/results.md and (unless
--no-readme, or a run shorter than 10 minutes) the README section
"Reliability". Exits 1 when a criterion fails. Every process it starts is
stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from array import array
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
import bench as B  # noqa: E402  (also puts tests/integration on sys.path)
from serverconfig import toml_value  # noqa: E402

OUT = REPO / "target" / "soak"
MODERN = B.MODERN
META = B.META

RSS_GROWTH_MAX = 0.05  # end RSS may exceed the post-warm-up RSS by at most 5 %
LOCAL_TIMEOUT_S = 10.0  # upstream timeout of the real Prometheus
FAULT_TIMEOUT_S = 3.0  # upstream timeout of the misbehaving upstreams
SLOW_S = 10.0  # the slow upstream answers after this long
FAULT_MODES = ["slow", "slowbody", "garbage", "cut", "chunkcut", "reset"]
# What a caller must read for each misbehaviour (case-insensitive).
FAULT_EXPECT = {
    "slow": r"timed out",
    "slowbody": r"timed out",
    "garbage": r"not valid Prometheus API JSON",
    "cut": r"unreachable|closed|incomplete|not valid Prometheus API JSON",
    "chunkcut": r"unreachable|closed|incomplete|not valid Prometheus API JSON",
    "reset": r"unreachable",
}
OUTAGE_EXPECT = r"unreachable|timed out|answered HTTP 503"


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# the MCP load: asyncio clients over raw HTTP/1.1 keep-alive connections
# --------------------------------------------------------------------------

OK, IS_ERROR, RPC_ERROR, HTTP_ERROR, TRANSPORT, TIMEOUT = range(6)
OUTCOME = ["ok", "isError", "jsonrpc_error", "http_error", "transport", "timeout"]


def norm(msg: str) -> str:
    """An error message with its numbers and addresses blurred, for grouping."""
    msg = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", msg)
    msg = re.sub(r"\d+(\.\d+)?", "N", msg)
    return msg[:240]


class Recorder:
    """One record per finished call, in compact arrays (10 minutes at a few
    thousand calls a second fit in a few tens of MB)."""

    def __init__(self) -> None:
        self.end = array("d")  # time.monotonic() when the call finished
        self.lat = array("f")  # seconds
        self.code = array("b")  # OUTCOME index
        self.tool = array("H")  # index into the mix
        self.msgs: dict[int, str] = {}  # record index -> error message (errors only, capped)

    def add(self, end: float, lat: float, code: int, tool: int, msg: str | None = None) -> None:
        i = len(self.end)
        self.end.append(end)
        self.lat.append(lat)
        self.code.append(code)
        self.tool.append(tool)
        if code != OK and len(self.msgs) < 200_000:
            self.msgs[i] = msg or ""

    def window(self, t0: float, t1: float) -> list[int]:
        return [i for i in range(len(self.end)) if t0 <= self.end[i] < t1]

    def unclear(self, t0: float, t1: float, pattern: str) -> dict[str, int]:
        """Errors in [t0, t1) that are no isError whose message matches `pattern`."""
        out: dict[str, int] = {}
        for i in self.window(t0, t1):
            c, msg = self.code[i], self.msgs.get(i, "")
            if c != OK and not (c == IS_ERROR and re.search(pattern, msg, re.I)):
                k = f"{OUTCOME[c]}: {norm(msg)}"
                out[k] = out.get(k, 0) + 1
        return out

    def stats(self, t0: float = 0.0, t1: float = float("inf"), names: list[str] | None = None) -> dict[str, Any]:
        idx = self.window(t0, t1)
        lats = sorted(self.lat[i] for i in idx)
        out: dict[str, Any] = {"calls": len(idx), "errors": sum(1 for i in idx if self.code[i] != OK)}
        out["by_outcome"] = {OUTCOME[c]: n for c in range(len(OUTCOME))
                             if (n := sum(1 for i in idx if self.code[i] == c))}
        if lats:
            out |= {"p50_ms": pct(lats, 0.5) * 1e3, "p90_ms": pct(lats, 0.9) * 1e3, "p99_ms": pct(lats, 0.99) * 1e3,
                    "max_ms": lats[-1] * 1e3, "mean_ms": statistics.fmean(lats) * 1e3}
        span = (max(self.end[i] for i in idx) - min(self.end[i] for i in idx)) if len(idx) > 1 else 0.0
        out["rate_per_s"] = len(idx) / span if span > 0 else 0.0
        msgs: dict[str, int] = {}
        raw: dict[str, str] = {}
        for i in idx:
            if self.code[i] != OK:
                k = f"{OUTCOME[self.code[i]]}: {norm(self.msgs.get(i, '?'))}"
                msgs[k] = msgs.get(k, 0) + 1
                raw.setdefault(k, self.msgs.get(i, "?"))
        top = sorted(msgs.items(), key=lambda kv: -kv[1])[:12]
        out["error_messages"] = dict(top)
        out["error_samples"] = [raw[k] for k, _ in top]  # one message as sent, per kind, same order
        if names is not None:
            per: dict[str, dict[str, Any]] = {}
            for i in idx:
                p = per.setdefault(names[self.tool[i]], {"calls": 0, "errors": 0, "lat": []})
                p["calls"] += 1
                p["errors"] += self.code[i] != OK
                p["lat"].append(self.lat[i])
            for p in per.values():
                ls = sorted(p.pop("lat"))
                p["p50_ms"], p["p99_ms"] = pct(ls, 0.5) * 1e3, pct(ls, 0.99) * 1e3
            out["per_call"] = per
        return out


def pct(sorted_xs: list[float], q: float) -> float:
    if not sorted_xs:
        return float("nan")
    k = min(len(sorted_xs), max(1, int(-(-q * len(sorted_xs) // 1))))
    return sorted_xs[k - 1]


class Loop:
    """An asyncio loop in a background thread (the load runs there while the
    main thread injects faults)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="load-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


Call = tuple[str, str, dict[str, Any]]  # (label, tool, arguments)


class Load:
    """`clients` MCP clients, each on its own keep-alive connection, calling
    tools drawn from `mix` ((weight, call) pairs) back to back (plus an
    exponential think time of mean `think_s`) until stopped."""

    def __init__(self, loop: Loop, name: str, url: str, mix: list[tuple[float, Call]], clients: int,
                 headers: dict[str, str] | None = None, think_s: float = 0.0, call_timeout: float = 60.0,
                 limit: int | None = None):
        u = urllib.parse.urlsplit(url)
        self.loop, self.name, self.host, self.port, self.path = loop, name, u.hostname or "", u.port or 80, u.path
        self.calls = [c for _, c in mix]
        self.weights = [w for w, _ in mix]
        self.names = [c[0] for c in self.calls]
        self.clients, self.think_s, self.call_timeout = clients, think_s, call_timeout
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.rec = Recorder()
        self.stopping = False
        self.tasks: list[asyncio.Task[None]] = []
        self.connects = 0
        self.limit = limit  # stop after this many calls (None: when stopped)

    def request(self, i: int, rid: int) -> bytes:
        _, tool, args = self.calls[i]
        body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                           "params": {"name": tool, "arguments": args, "_meta": META}},
                          separators=(",", ":")).encode()
        head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
                f"MCP-Protocol-Version: {MODERN}\r\nMcp-Method: tools/call\r\nMcp-Name: {tool}\r\n"
                f"{self.extra}Content-Length: {len(body)}\r\n\r\n")
        return head.encode() + body

    @staticmethod
    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       req: bytes) -> tuple[int, bytes, bool, str]:
        writer.write(req)
        await writer.drain()
        line = await reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        status = int(line.split()[1])
        clen, chunked, close, ctype = None, False, False, ""
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b"\n", b""):
                break
            k, _, v = h.partition(b":")
            k, v = k.strip().lower(), v.strip()
            if k == b"content-length":
                clen = int(v)
            elif k == b"transfer-encoding" and b"chunked" in v.lower():
                chunked = True
            elif k == b"connection" and v.lower() == b"close":
                close = True
            elif k == b"content-type":
                ctype = v.decode("latin-1")
        if chunked:
            parts = []
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b""):
                        pass
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif clen is not None:
            body = await reader.readexactly(clen)
        else:
            body, close = await reader.read(), True
        return status, body, close, ctype

    @staticmethod
    def classify(status: int, body: bytes, ctype: str) -> tuple[int, str | None]:
        if status != 200:
            return HTTP_ERROR, f"HTTP {status}: {body[:300].decode(errors='replace')}"
        try:
            if ctype.startswith("text/event-stream"):
                msg = None
                for ln in body.decode().splitlines():
                    if ln.startswith("data:") and ln[5:].strip():
                        v = json.loads(ln[5:])
                        if "id" in v:
                            msg = v
                obj = msg or {}
            else:
                obj = json.loads(body)
        except ValueError as e:
            return RPC_ERROR, f"answer is not JSON ({e}): {body[:200]!r}"
        if "error" in obj:
            return RPC_ERROR, json.dumps(obj["error"])[:300]
        res = obj.get("result")
        if not isinstance(res, dict):
            return RPC_ERROR, f"no result: {body[:200]!r}"
        if res.get("isError"):
            texts = [c.get("text", "") for c in res.get("content", []) if isinstance(c, dict)]
            return IS_ERROR, (" ".join(texts) or json.dumps(res))[:400]
        return OK, None

    async def client(self, n: int) -> None:
        rnd = random.Random(n * 7919 + len(self.name))
        conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        rid = 0
        while not self.stopping and (self.limit is None or len(self.rec.end) < self.limit):
            i = rnd.choices(range(len(self.calls)), self.weights)[0]
            if conn is None:
                t0 = time.monotonic()
                try:
                    conn = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 10)
                    self.connects += 1
                except (OSError, asyncio.TimeoutError) as e:
                    self.rec.add(time.monotonic(), time.monotonic() - t0, TRANSPORT, i, f"connect: {e!r}")
                    await asyncio.sleep(0.2)
                    continue
            rid += 1
            req = self.request(i, rid)
            t0 = time.monotonic()
            try:
                status, body, close, ctype = await asyncio.wait_for(self.exchange(*conn, req), self.call_timeout)
            except asyncio.TimeoutError:
                self.rec.add(time.monotonic(), time.monotonic() - t0, TIMEOUT, i,
                             f"no answer within {self.call_timeout:.0f} s")
                conn[1].close()
                conn = None
                continue
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
                self.rec.add(time.monotonic(), time.monotonic() - t0, TRANSPORT, i, repr(e))
                conn[1].close()
                conn = None
                continue
            t1 = time.monotonic()
            code, msg = self.classify(status, body, ctype)
            self.rec.add(t1, t1 - t0, code, i, msg)
            if close:
                conn[1].close()
                conn = None
            if self.think_s > 0:
                await asyncio.sleep(rnd.expovariate(1 / self.think_s))
        if conn is not None:
            conn[1].close()

    async def _start(self) -> None:
        self.tasks = [asyncio.get_running_loop().create_task(self.client(n)) for n in range(self.clients)]

    async def _wait(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def start(self) -> "Load":
        self.stopping = False
        self.loop.run(self._start())
        return self

    def stop(self) -> None:
        self.stopping = True
        self.loop.run(self._wait(), timeout=self.call_timeout + 30)

    def stats(self, t0: float = 0.0, t1: float = float("inf"), per_call: bool = False) -> dict[str, Any]:
        return self.rec.stats(t0, t1, self.names if per_call else None)


def call_once(loop: Loop, url: str, call: Call, headers: dict[str, str] | None = None,
              timeout: float = 60.0) -> tuple[int, str | None, float]:
    """One tool call (outcome, message, seconds)."""
    ld = Load(loop, "once", url, [(1, call)], 1, headers, call_timeout=timeout, limit=1)
    loop.run(ld.client(0), timeout=timeout + 30)
    return ld.rec.code[0], ld.rec.msgs.get(0), float(ld.rec.lat[0])


# --------------------------------------------------------------------------
# what the clients call
# --------------------------------------------------------------------------

def load_mix(t_data: int, upstream: str | None = None) -> list[tuple[float, Call]]:
    """The tool-call mix (weights); `t_data` is when the backfilled
    `bench_small` series have samples."""
    up = {"upstream": upstream} if upstream else {}
    c: list[tuple[float, Call]] = [
        (10, ("query up", "execute_query", {"query": "up"})),
        (10, ("query rate by handler", "execute_query",
              {"query": "sum by (handler) (rate(prometheus_http_requests_total[1m]))"})),
        (5, ("query topk bench_small", "execute_query", {"query": "topk(20, bench_small)", "time": t_data})),
        (4, ("query bench_small limit 50", "execute_query", {"query": "bench_small", "time": t_data, "limit": 50})),
        (4, ("query histogram_quantile", "execute_query",
             {"query": "histogram_quantile(0.9, sum by (le) "
                       "(rate(prometheus_http_request_duration_seconds_bucket[1m])))"})),
        (1, ("query bench_small (truncated)", "execute_query", {"query": "bench_small", "time": t_data})),
        (8, ("range rate 10m", "execute_range_query",
             {"query": "rate(prometheus_http_requests_total[1m])", "start": "now-10m", "end": "now",
              "step": "15s", "limit": 20})),
        (4, ("range sum bench_small 1h", "execute_range_query",
             {"query": "sum(bench_small)", "start": t_data - 3600, "end": t_data, "step": "60s"})),
        (2, ("range recording rule", "execute_range_query",
             {"query": "job:up:sum", "start": "now-5m", "end": "now", "step": "10s"})),
        (4, ("list_metrics", "list_metrics", {"limit": 100})),
        (3, ("list_label_names", "list_label_names", {})),
        (4, ("list_label_values job", "list_label_values", {"label": "job"})),
        (2, ("list_label_values instance", "list_label_values", {"label": "instance", "matches": ["up"]})),
        (4, ("find_series up", "find_series", {"matches": ["up"]})),
        (2, ("find_series bench_small", "find_series",
             {"matches": ["bench_small"], "start": t_data - 300, "end": t_data, "limit": 20})),
        (2, ("get_metric_metadata", "get_metric_metadata", {"metric": "prometheus_http_requests_total"})),
        (3, ("get_targets", "get_targets", {})),
        (3, ("get_alerts", "get_alerts", {})),
        (3, ("get_rules", "get_rules", {})),
        (1, ("get_targets_metadata", "get_targets_metadata", {"metric": "up"})),
        (1, ("query_exemplars", "query_exemplars", {"query": "prometheus_http_requests_total",
                                                     "start": "now-5m"})),
        (1, ("get_build_info", "get_build_info", {})),
        (1, ("get_runtime_info", "get_runtime_info", {})),
        (1, ("get_flags", "get_flags", {})),
        (1, ("get_config", "get_config", {})),
        (1, ("get_tsdb_stats", "get_tsdb_stats", {})),
        (1, ("get_alertmanagers", "get_alertmanagers", {})),
        (1, ("check_ready", "check_ready", {})),
    ]
    return [(w, (lbl, tool, {**args, **up})) for w, (lbl, tool, args) in c]


def tenant_mix() -> list[tuple[float, Call]]:
    """What the OAuth server's callers do (tenancy on: per-tenant tools)."""
    return [
        (3, ("query up", "execute_query", {"query": "up"})),
        (1, ("range rate 5m", "execute_range_query",
             {"query": "rate(prometheus_http_requests_total[1m])", "start": "now-5m", "end": "now", "step": "15s",
              "limit": 10})),
        (1, ("list_label_values job", "list_label_values", {"label": "job"})),
        (1, ("find_series up", "find_series", {"matches": ["up"]})),
    ]


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


# --------------------------------------------------------------------------
# phase 1: the soak
# --------------------------------------------------------------------------

def soak_phase(loop: Loop, srv: B.Server, prom: Prometheus, mix: list[tuple[float, Call]],
               args: argparse.Namespace) -> dict[str, Any]:
    sampler = RssSampler(srv, prom)
    rss_start = srv.rss_kib()
    log(f"soak: {args.clients} clients, {args.warmup:.0f} s warm-up, {args.minutes:g} min, {args.idle:.0f} s idle")
    load = Load(loop, "soak", srv.mcp, mix, args.clients).start()
    t0 = time.monotonic()
    time.sleep(args.warmup)
    t_warm, rss_warm = time.monotonic(), srv.rss_kib()
    log(f"  warm-up done: {len(load.rec.end)} calls, RSS {rss_warm / 1024:.1f} MiB")
    end = t_warm + args.minutes * 60
    next_note = t_warm + 60
    while time.monotonic() < end:
        time.sleep(min(5.0, max(0.0, end - time.monotonic())))
        if time.monotonic() >= next_note:
            next_note += 60
            n = len(load.rec.end)
            errs = sum(1 for c in load.rec.code if c != OK)
            log(f"  {(time.monotonic() - t_warm) / 60:.0f} min: {n} calls, {errs} errors, "
                f"RSS {srv.rss_kib() / 1024:.1f} MiB, Prometheus {prom.rss_kib() / 1024:.0f} MiB")
    t_load_end = time.monotonic()
    rss_load_end = srv.rss_kib()
    load.stop()
    t_stopped = time.monotonic()
    time.sleep(args.idle)
    rss_end = srv.rss_kib()
    hwm = srv.hwm_kib()
    sampler.stop()
    warm = load.stats(0, t_warm)
    main = load.stats(t_warm, float("inf"), per_call=True)
    every = load.stats()
    soak_rss = [s[1] for s in sampler.samples if t_warm <= s[0] <= t_load_end]
    res = {
        "clients": args.clients, "minutes": args.minutes, "warmup_s": args.warmup, "idle_s": args.idle,
        "warmup": warm, "main": main, "all": {k: every[k] for k in ("calls", "errors", "by_outcome", "error_messages")},
        "connections_opened": load.connects,
        "rss_start_kib": rss_start, "rss_after_warmup_kib": rss_warm, "rss_load_end_kib": rss_load_end,
        "rss_end_kib": rss_end, "peak_rss_kib": hwm,
        "rss_min_during_kib": min(soak_rss, default=0), "rss_max_during_kib": max(soak_rss, default=0),
        "rss_growth": (rss_end - rss_warm) / rss_warm,
        "rss_samples": [(round(t - t0, 1), r, p) for t, r, p in sampler.samples],
        "seconds": t_stopped - t0,
    }
    log(f"soak: {every['calls']} calls ({main['rate_per_s']:.0f}/s), {every['errors']} errors, "
        f"p50 {main.get('p50_ms', 0):.1f} ms p99 {main.get('p99_ms', 0):.1f} ms; RSS after warm-up "
        f"{rss_warm / 1024:.1f} MiB, end {rss_end / 1024:.1f} MiB ({res['rss_growth'] * 100:+.1f} %), "
        f"peak {hwm / 1024:.1f} MiB")
    return res


# --------------------------------------------------------------------------
# phase 2: faults on the data path
# --------------------------------------------------------------------------

def fault_prometheus(loop: Loop, srv: B.Server, prom: Prometheus, mix: list[tuple[float, Call]],
                     args: argparse.Namespace) -> dict[str, Any]:
    log("fault a: Prometheus SIGKILLed for 10 s under load, then restarted")
    bg = Load(loop, "bg-a", srv.mcp, mix, args.fault_clients, think_s=0.05).start()
    time.sleep(5)
    t_kill = time.monotonic()
    prom.kill()
    time.sleep(args.outage / 2)
    ready_during = readyz_text(srv.obs)
    time.sleep(args.outage / 2)
    t_restart = time.monotonic()
    t_ready = prom.start()
    time.sleep(15)
    bg.stop()
    t_end = time.monotonic()
    before = bg.stats(0, t_kill)
    outage = bg.stats(t_kill, t_ready)
    # the first 2 s after /-/ready: calls that were already on their way
    after = bg.stats(t_ready + 2, t_end)
    idx = bg.rec.window(t_ready, t_end)
    first_ok = next((bg.rec.end[i] for i in idx if bg.rec.code[i] == OK), None)
    unclear = bg.rec.unclear(t_kill, t_ready, OUTAGE_EXPECT)
    res = {
        "outage_s": t_ready - t_kill, "prometheus_down_s": t_restart - t_kill,
        "before": before, "outage": outage, "after": after, "readyz_during": ready_during,
        "readyz_after": readyz_text(srv.obs),
        "first_ok_after_ready_s": (first_ok - t_ready) if first_ok else None,
        "max_outage_latency_s": outage.get("max_ms", 0) / 1e3,
        "server_alive": srv.proc.alive(),
    }
    res["checks"] = {
        "no errors before the kill": before["errors"] == 0,
        "every outage error is an isError naming the cause": not unclear and outage["errors"] > 0,
        f"no call longer than the upstream timeout ({LOCAL_TIMEOUT_S:g} s) + 2 s":
            res["max_outage_latency_s"] <= LOCAL_TIMEOUT_S + 2,
        "calls succeed again within 2 s of Prometheus being ready, then 0 errors":
            first_ok is not None and first_ok - t_ready <= 2 and after["errors"] == 0 and after["calls"] > 0,
        "server alive, same process": srv.proc.alive(),
    }
    res["unclear"] = unclear
    log(f"  outage {res['outage_s']:.1f} s: {outage['calls']} calls, {outage['errors']} errors "
        f"{list(outage['error_messages'])[:2]}, max {res['max_outage_latency_s']:.2f} s; after: "
        f"{after['calls']} calls {after['errors']} errors; first ok {res['first_ok_after_ready_s']}")
    return res


def fault_upstreams(loop: Loop, srv: B.Server, mix: list[tuple[float, Call]], args: argparse.Namespace,
                    fake_url: str) -> dict[str, Any]:
    log("fault b: misbehaving upstreams, with load on the healthy one")
    bg = Load(loop, "bg-b", srv.mcp, mix, args.fault_clients, think_s=0.05).start()
    t0 = time.monotonic()
    out: dict[str, Any] = {"modes": {}}
    code, msg, sec = call_once(loop, srv.mcp, ("control", "execute_query", {"query": "up", "upstream": "ok"}))
    out["control_ok_upstream"] = {"outcome": OUTCOME[code], "message": msg, "seconds": sec}
    for mode in FAULT_MODES:
        fl = Load(loop, f"fault-{mode}", srv.mcp,
                  [(1, (mode, "execute_query", {"query": "up", "upstream": mode})),
                   (1, (mode + " range", "execute_range_query", {"query": "up", "start": "now-5m", "upstream": mode})),
                   (1, (mode + " labels", "list_label_values", {"label": "job", "upstream": mode}))],
                  args.fault_callers, call_timeout=60).start()
        time.sleep(args.fault_seconds)
        fl.stop()
        st = fl.stats()
        bound = (FAULT_TIMEOUT_S + 2) if mode in ("slow", "slowbody") else 2.0
        msgs = st["error_messages"]
        clear = not fl.rec.unclear(0, float("inf"), FAULT_EXPECT[mode])
        sample = next((fl.rec.msgs[i] for i in sorted(fl.rec.msgs)), "")
        out["modes"][mode] = {
            **{k: st[k] for k in ("calls", "errors", "by_outcome", "error_messages")},
            "max_s": st.get("max_ms", 0) / 1e3, "p50_s": st.get("p50_ms", 0) / 1e3, "bound_s": bound,
            "sample": sample,
            "checks": {"every call an isError": st["calls"] > 0 and st["by_outcome"].get("isError", 0) == st["calls"],
                       "message names the cause": clear,
                       f"no call longer than {bound:g} s": st.get("max_ms", 0) / 1e3 <= bound},
        }
        log(f"  {mode}: {st['calls']} calls, {st['by_outcome']}, max {st.get('max_ms', 0) / 1e3:.2f} s: "
            f"{sample[:150]}")
    bg.stop()
    t1 = time.monotonic()
    after = call_once(loop, srv.mcp, ("after", "execute_query", {"query": "up"}))
    out["healthy_upstream_meanwhile"] = bg.stats(t0, t1)
    out["server_alive"] = srv.proc.alive()
    out["checks"] = {
        "0 errors on the healthy upstream meanwhile": out["healthy_upstream_meanwhile"]["errors"] == 0,
        "control upstream (same fake, healthy path) answers": code == OK,
        "a call succeeds afterwards": after[0] == OK,
        "server alive, same process": srv.proc.alive(),
    }
    return out


# --------------------------------------------------------------------------
# phase 3: OAuth store and provider faults (needs the test venv)
# --------------------------------------------------------------------------

def oauth_faults(loop: Loop, binary: Path, work: Path, prom_url: str, args: argparse.Namespace) -> dict[str, Any]:
    os.environ["MCP_PROMETHEUS_BIN"] = str(binary)
    from constants import CLIENT_REDIRECT, SERVER_CLIENT_SECRET  # noqa: PLC0415
    from kvstore import KvServer, valkey_server_binary  # noqa: PLC0415
    from oauth_browse import browser  # noqa: PLC0415
    from oauth_client import DirectClient  # noqa: PLC0415
    from oauth_server import oauth_config, start_oauth_server  # noqa: PLC0415
    from oidc_login import (NODE_BIN, OIDC_DIR, PROVIDER_SCRIPT, OidcProvider, pkce_pair,  # noqa: PLC0415
                            provider_installed)
    from procs import ManagedProcess, await_start  # noqa: PLC0415
    import httputil  # noqa: PLC0415

    if not provider_installed() or valkey_server_binary() is None:
        raise RuntimeError("the OIDC provider or Valkey is missing: run scripts/setup-test-env.sh")
    owork = work / "oauth"
    (owork / "logs").mkdir(parents=True, exist_ok=True)
    started: list[Any] = []

    # --- Valkey with persistence (append-only file), restartable on its port
    kv_port, kv_pass = B.free_port(), "soak-" + os.urandom(8).hex()
    kv_dir = owork / "valkey"
    kv_dir.mkdir(exist_ok=True)

    def start_valkey(n: int) -> Any:
        p = ManagedProcess(f"valkey-{n}", [valkey_server_binary(), "--port", kv_port, "--bind", "127.0.0.1",
                                           "--requirepass", kv_pass, "--save", "", "--appendonly", "yes",
                                           "--appendfsync", "everysec", "--dir", kv_dir],
                           owork / "logs" / f"valkey-{n}.log")
        kv_ = KvServer("valkey", kv_port, kv_pass, p)
        await_start(p, ("valkey PING", lambda: kv_.client().ping(), 20))
        started.append(p)
        return kv_

    # --- the provider, restartable on its port
    prov_port = B.free_port()

    def start_provider(n: int) -> Any:
        env = {"OIDC_PORT": str(prov_port), "OIDC_REDIRECT_URIS": CLIENT_REDIRECT, "OIDC_RESOURCE": "",
               "OIDC_ID_TOKEN_TTL": "600", "OIDC_SERVER_CLIENT_SECRET": SERVER_CLIENT_SECRET,
               "OIDC_REGISTRATION": "", "DEBUG": "", "NODE_ENV": "test"}
        p = ManagedProcess(f"oidc-provider-{n}", [NODE_BIN, PROVIDER_SCRIPT], owork / "logs" / f"oidc-{n}.log",
                           env=env, cwd=OIDC_DIR)
        pr = OidcProvider(prov_port, httputil.local_url(prov_port), CLIENT_REDIRECT, None, p)
        await_start(p, ("provider discovery", lambda: httputil.http_get(
            pr.issuer + "/.well-known/openid-configuration", 1).status == 200, 30))
        started.append(p)
        return pr

    res: dict[str, Any] = {}
    try:
        kv = start_valkey(1)
        provider = start_provider(1)
        cfg = oauth_config(prom_url, provider, storage=kv.storage("soak:"), access_token_ttl="30m")
        srv = start_oauth_server(owork, "oauth", cfg, provider)
        started.append(srv.proc)
        mcp_url = srv.mcp_url
        log(f"OAuth server {srv.base_url} (Valkey :{kv_port}, provider {provider.issuer})")

        def post_form(path: str, form: dict[str, str], timeout: float = 60.0) -> tuple[int, str, float]:
            body = urllib.parse.urlencode(form).encode()
            req = urllib.request.Request(srv.url(path), data=body, method="POST", headers={
                "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(req, timeout=timeout) as r:
                    return r.status, r.read().decode(errors="replace"), time.monotonic() - t0
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode(errors="replace"), time.monotonic() - t0
            except Exception as e:  # noqa: BLE001 (timeouts, resets)
                return -1, repr(e), time.monotonic() - t0

        class Refresher:
            """One OAuth client refreshing its tokens in a loop (its own login)."""

            def __init__(self, n: int):
                self.client = DirectClient.register(srv, name=f"soak-refresher-{n}")
                self.refresh_token = self.client.tokens("alice")["refresh_token"]
                self.log: list[tuple[float, int, str, float]] = []  # (end, status, body, seconds)
                self.stopping = False
                self.t: threading.Thread | None = None

            def run(self) -> None:
                while not self.stopping:
                    st, body, sec = post_form("/oauth/token", {"grant_type": "refresh_token",
                                                               "refresh_token": self.refresh_token,
                                                               "client_id": self.client.client_id})
                    self.log.append((time.monotonic(), st, body[:300], sec))
                    if st == 200:
                        self.refresh_token = json.loads(body)["refresh_token"]
                    time.sleep(0.3)

            def start(self) -> None:
                self.stopping, self.log = False, []
                self.t = threading.Thread(target=self.run, daemon=True)
                self.t.start()

            def stop(self) -> None:
                self.stopping = True
                assert self.t is not None
                self.t.join(90)

        def refresh_summary(rs: list[Refresher], t0: float, t1: float) -> dict[str, Any]:
            rows = [r for x in rs for r in x.log if t0 <= r[0] < t1]
            kinds: dict[str, int] = {}
            for _, st, body, _ in rows:
                try:
                    e = json.loads(body).get("error", "") if st != 200 else ""
                except ValueError:
                    e = "not JSON: " + body[:80]
                k = f"{st} {e}".strip()
                kinds[k] = kinds.get(k, 0) + 1
            sample = next((f"{st} {body}" for _, st, body, _ in rows if st != 200), "")
            return {"calls": len(rows), "outcomes": kinds, "max_s": max((r[3] for r in rows), default=0.0),
                    "sample_error": sample[:300]}

        def mcp_summary(ld: Load, t0: float, t1: float) -> dict[str, Any]:
            s = ld.stats(t0, t1)
            return {k: s.get(k) for k in ("calls", "errors", "by_outcome", "error_messages", "error_samples",
                                          "max_ms")}

        def bearer(user: str = "alice") -> dict[str, str]:
            tok = DirectClient.register(srv, name="soak-mcp").tokens(user)
            return {"Authorization": f"Bearer {tok['access_token']}"}

        # ------------------------------------------------ (c) Valkey faults
        refreshers = [Refresher(n) for n in range(args.refreshers)]
        valkey_runs: dict[str, Any] = {}
        for how in ("stopped", "frozen"):
            # frozen for longer: a request stuck until the thaw would be unmistakable
            down_s = args.outage if how == "stopped" else 2 * args.outage
            log(f"fault c: Valkey {how} for {down_s:g} s during refreshes and MCP calls")
            kv_proc = kv.proc
            mcp_load = Load(loop, f"oauth-mcp-{how}", mcp_url, tenant_mix(), args.fault_clients // 2,
                            headers=bearer(), think_s=0.1).start()
            for r in refreshers:
                r.start()
            time.sleep(5)
            t_fault = time.monotonic()
            if how == "stopped":
                kv_proc.stop()
            else:
                kv_proc.signal(signal.SIGSTOP)
            time.sleep(down_s / 2)
            # a new login while the store is away
            t_l = time.monotonic()
            try:
                lr = DirectClient(srv, refreshers[0].client.client_id).start("alice", stop_before="/oauth/callback")
                login_during = {"status": lr.hops[0].status if lr.hops else None,
                                "body": lr.response.text[:300] if lr.response is not None else None,
                                "location": (lr.stopped_at or "")[:120], "seconds": time.monotonic() - t_l}
            except Exception as e:  # noqa: BLE001
                login_during = {"exception": repr(e)[:300], "seconds": time.monotonic() - t_l}
            rest = down_s / 2 - (time.monotonic() - t_l)
            time.sleep(max(0.0, rest))
            t_back = time.monotonic()
            if how == "stopped":
                kv = start_valkey(2)
            else:
                kv_proc.signal(signal.SIGCONT)
            time.sleep(15)
            for r in refreshers:
                r.stop()
            mcp_load.stop()
            t_end = time.monotonic()
            # after: per refresher, when its first success came, and whether its login survived
            recov = []
            for r in refreshers:
                after = [x for x in r.log if x[0] >= t_back]
                ok = next((x[0] - t_back for x in after if x[1] == 200), None)
                lost = ok is None and any(x[1] == 400 for x in after)
                recov.append({"first_ok_after_s": ok, "login_lost": lost,
                              "last": f"{after[-1][1]} {after[-1][2][:120]}" if after else None})
            idx = mcp_load.rec.window(t_back, t_end)
            mcp_first_ok = next((mcp_load.rec.end[i] - t_back for i in idx if mcp_load.rec.code[i] == OK), None)
            lost = [r for r in recov if r["login_lost"]]
            # logins lost to a refresh the store applied but the client never heard of get a fresh one
            fresh = None
            if lost:
                t_f = time.monotonic()
                st, body, _ = post_form("/oauth/token", {"grant_type": "refresh_token", "refresh_token":
                                                         refreshers[0].client.tokens("alice")["refresh_token"],
                                                         "client_id": refreshers[0].client.client_id})
                fresh = {"status": st, "seconds": time.monotonic() - t_f}
            for r, rc in zip(refreshers, recov):
                if rc["login_lost"]:
                    r.refresh_token = r.client.tokens("alice")["refresh_token"]
            run = {
                "down_s": down_s,
                "before": refresh_summary(refreshers, 0, t_fault),
                "during": refresh_summary(refreshers, t_fault, t_back),
                "after": refresh_summary(refreshers, t_back, t_end),
                "recovery": recov, "fresh_login_then_refresh": fresh,
                "mcp_before": mcp_summary(mcp_load, 0, t_fault),
                "mcp_during": mcp_summary(mcp_load, t_fault, t_back),
                "mcp_after": mcp_summary(mcp_load, t_back + 5, t_end),
                "mcp_first_ok_after_s": mcp_first_ok,
                "login_during": login_during,
                "server_alive": srv.proc.poll() is None,
            }
            dur = run["during"]
            clear = all(k.startswith("5") and k.split(" ", 1)[-1] in ("server_error", "temporarily_unavailable")
                        for k in dur["outcomes"] if not k.startswith("200"))
            run["checks"] = {
                "no refresh failed before the fault": set(run["before"]["outcomes"]) <= {"200"},
                "refreshes during the fault fail with an OAuth error JSON (5xx)": clear and any(
                    not k.startswith("200") for k in dur["outcomes"]),
                "no refresh or MCP call longer than 10 s": dur["max_s"] <= 10 and
                    (run["mcp_during"]["max_ms"] or 0) <= 10_000,
                "MCP calls get an answer (HTTP error or isError), no dropped connection":
                    set(run["mcp_during"]["by_outcome"] or {}) <= {"ok", "isError", "http_error", "jsonrpc_error"},
                "every refresher refreshes again within 10 s (or, login lost, after a new login)": all(
                    (r["first_ok_after_s"] is not None and r["first_ok_after_s"] <= 10) or r["login_lost"]
                    for r in recov) and (fresh is None or fresh["status"] == 200),
                "MCP calls succeed again within 10 s, then 0 errors": mcp_first_ok is not None and
                    mcp_first_ok <= 10 and run["mcp_after"]["errors"] == 0,
                "server alive, same process": srv.proc.poll() is None,
            }
            valkey_runs[how] = run
            log(f"  during: refresh {dur['outcomes']} max {dur['max_s']:.2f} s; MCP {run['mcp_during']['by_outcome']}"
                f" {list((run['mcp_during']['error_messages'] or {}))[:1]}; after: refresh "
                f"{run['after']['outcomes']}, lost logins {len(lost)}; MCP first ok {mcp_first_ok}")
        res["valkey"] = valkey_runs

        # ------------------------------------------------ (d) provider down during a login
        log("fault d: the OIDC provider stops between its login and our /oauth/callback")
        mcp_load = Load(loop, "oauth-mcp-provider", mcp_url, tenant_mix(), args.fault_clients // 2,
                        headers=bearer(), think_s=0.1).start()
        client = DirectClient.register(srv, name="soak-login")
        jar = browser()
        half = client.start("alice", stop_before="/oauth/callback", http=jar)
        callback_url = half.stopped_at
        provider.stop()
        t0 = time.monotonic()
        d: dict[str, Any] = {"callback_url_reached": bool(callback_url and "/oauth/callback" in callback_url)}
        r = jar.get(callback_url) if callback_url else None
        d["callback"] = {"seconds": time.monotonic() - t0, "status": r.status_code if r is not None else None,
                         "location": (r.headers.get("location") or "")[:300] if r is not None else None,
                         "body": r.text[:300] if r is not None else None}
        loc_q = urllib.parse.parse_qs(urllib.parse.urlsplit(d["callback"]["location"] or "").query)
        d["callback"]["error"] = (loc_q.get("error") or [None])[0]
        d["callback"]["error_description"] = (loc_q.get("error_description") or [None])[0]
        # a new login while the provider is down: what /oauth/authorize answers
        t1 = time.monotonic()
        with browser() as b:
            a = b.get(client.authorize_url(challenge=pkce_pair()[1]))
        d["authorize_during"] = {"seconds": time.monotonic() - t1, "status": a.status_code,
                                 "location": (a.headers.get("location") or "")[:100], "body": a.text[:300]}
        # a second server that never reached the provider (discovery is lazy) starts while it is down
        srv2 = start_oauth_server(owork, "oauth-fresh", oauth_config(prom_url, provider), provider)
        started.append(srv2.proc)
        client2 = DirectClient.register(srv2, name="soak-fresh")
        t1 = time.monotonic()
        with browser() as b:
            a = b.get(client2.authorize_url(challenge=pkce_pair()[1]))
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(a.headers.get("location") or "").query)
        d["fresh_server_authorize_during"] = {"seconds": time.monotonic() - t1, "status": a.status_code,
                                              "location": (a.headers.get("location") or "")[:300],
                                              "error": (q.get("error") or [None])[0],
                                              "error_description": (q.get("error_description") or [None])[0],
                                              "body": a.text[:300]}
        time.sleep(3)
        t_back = time.monotonic()
        provider = start_provider(2)
        # a whole login again (the provider has new signing keys: the server must notice)
        attempts = []
        t_ok = None
        while time.monotonic() - t_back < 120:
            try:
                tok = client.tokens("alice")
                code, msg, _ = call_once(loop, mcp_url, ("after", "execute_query", {"query": "up"}),
                                         {"Authorization": f"Bearer {tok['access_token']}"})
                attempts.append(f"ok, MCP call {OUTCOME[code]}")
                if code == OK:
                    t_ok = time.monotonic() - t_back
                    break
            except Exception as e:  # noqa: BLE001
                attempts.append(repr(e)[:200])
            time.sleep(5)
        try:
            client2.tokens("alice")
            d["fresh_server_login_after"] = "ok"
        except Exception as e:  # noqa: BLE001
            d["fresh_server_login_after"] = repr(e)[:300]
        mcp_load.stop()
        d["login_after"] = {"seconds_after_restart": t_ok, "attempts": attempts[:6], "n_attempts": len(attempts)}
        d["mcp_meanwhile"] = mcp_summary(mcp_load, 0, float("inf"))
        d["server_alive"] = srv.proc.poll() is None and srv2.proc.poll() is None
        cb, fa = d["callback"], d["fresh_server_authorize_during"]
        d["checks"] = {
            "the callback answers within 20 s": cb["status"] is not None and cb["seconds"] <= 20,
            "it is a clear error (redirect with error= or OAuth JSON), no code": (
                (cb["status"] in (302, 303) and cb["error"] is not None and "code=" not in (cb["location"] or ""))
                or (cb["status"] is not None and cb["status"] >= 400 and '"error"' in (cb["body"] or ""))),
            "a fresh server's /oauth/authorize answers a clear error (redirect with error= or OAuth JSON 5xx) "
            "within 20 s": fa["seconds"] <= 20 and (
                (fa["status"] in (302, 303) and fa["error"] in ("temporarily_unavailable", "server_error"))
                or (fa["status"] >= 500 and '"error"' in fa["body"])),
            "a login works again once the provider is back (both servers)": t_ok is not None and
                d["fresh_server_login_after"] == "ok",
            "MCP calls with existing tokens never failed": d["mcp_meanwhile"]["errors"] == 0,
            "server alive, same process": d["server_alive"],
        }
        log(f"  callback: {cb['status']} in {cb['seconds']:.2f} s: error={cb['error']} "
            f"({cb['error_description']}); login after restart: {t_ok} s; {attempts[:2]}")
        res["provider"] = d
    finally:
        for p in reversed(started):
            try:
                p.signal(signal.SIGCONT)
                p.stop()
            except Exception:  # noqa: BLE001
                pass
    return res


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------

def criteria(res: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    s = res["soak"]
    out.append({"phase": "soak", "criterion": "0 errors (HTTP ≠ 200, JSON-RPC error, isError), warm-up included",
                "value": f"{s['all']['errors']} of {s['all']['calls']}", "met": s["all"]["errors"] == 0})
    out.append({"phase": "soak", "criterion": f"RSS at the end ≤ RSS after warm-up + {RSS_GROWTH_MAX:.0%}",
                "value": f"{s['rss_after_warmup_kib'] / 1024:.1f} → {s['rss_end_kib'] / 1024:.1f} MiB "
                         f"({s['rss_growth'] * 100:+.1f} %)",
                "met": s["rss_growth"] <= RSS_GROWTH_MAX})
    for key, name in (("prometheus", "a Prometheus killed"), ("upstreams", "b bad upstreams")):
        f = res.get("faults", {}).get(key)
        if f is None:
            continue
        checks = dict(f["checks"])
        if key == "upstreams":
            for mode, m in f["modes"].items():
                checks |= {f"{mode}: {k}": v for k, v in m["checks"].items()}
        out += [{"phase": name, "criterion": k, "value": "", "met": v} for k, v in checks.items()]
    o = res.get("oauth")
    if o is not None:
        if "error" in o:
            out.append({"phase": "c/d OAuth", "criterion": "ran", "value": o["error"][:200], "met": False})
        for how, run in o.get("valkey", {}).items():
            out += [{"phase": f"c Valkey {how}", "criterion": k, "value": "", "met": v} for k, v in run["checks"].items()]
        if "provider" in o:
            out += [{"phase": "d provider down", "criterion": k, "value": "", "met": v}
                    for k, v in o["provider"]["checks"].items()]
    return out


def ms(x: float | None) -> str:
    if x is None or x != x:
        return "–"
    return f"{x:.1f} ms" if x < 1000 else f"{x / 1000:.2f} s"


def core(msg: str, n: int = 150) -> str:
    """The first clause of an error message, for a table cell."""
    m = msg.split("; it may", 1)[0].split("; narrow", 1)[0].split("; is the url", 1)[0]
    m = m.replace("|", "/").replace("\n", " ")
    return m if len(m) <= n else m[:n] + "…"


def oauth_err(sample: str) -> str:
    """'401 {"error":…,"error_description":…}' -> 401 `error` "description"."""
    st, _, body = sample.partition(" ")
    try:
        j = json.loads(body)
        return f"{st} `{j.get('error')}` \"{core(str(j.get('error_description')), 110)}\""
    except ValueError:
        return core(sample, 120)


def render_markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    s = res["soak"]
    mn = s["main"]
    built = f", binary built {res['binary_built'][11:]}" if res.get("binary_built") else ""
    L = [f"Run of {res['date']} (HEAD {res['git']}{built}, release build) on {m['cpus']} CPUs ({m['cpu_model']}), "
         f"{m['prometheus'].split(' (')[0]}; {res['seconds'] / 60:.0f} min in all.", ""]
    L += [f"**Soak:** {s['clients']} clients, {s['warmup_s']:.0f} s warm-up, {s['minutes']:g} min of mixed calls "
          f"({len(mn.get('per_call', {}))} kinds over 20 tools), {s['idle_s']:.0f} s idle.", "",
          "| figure | value |", "|---|---:|",
          f"| tool calls after warm-up (in all) | {mn['calls']:,} ({s['all']['calls']:,}) |",
          f"| errors | {s['all']['errors']} |",
          f"| call rate | {mn['rate_per_s']:.0f}/s |",
          f"| latency p50 / p99 / max | {ms(mn.get('p50_ms'))} / {ms(mn.get('p99_ms'))} / {ms(mn.get('max_ms'))} |",
          f"| RSS after warm-up → end of load → after idle | {s['rss_after_warmup_kib'] / 1024:.1f} → "
          f"{s['rss_load_end_kib'] / 1024:.1f} → {s['rss_end_kib'] / 1024:.1f} MiB "
          f"({s['rss_growth'] * 100:+.1f} %) |",
          f"| RSS range under load; peak (VmHWM) | {s['rss_min_during_kib'] / 1024:.1f}–"
          f"{s['rss_max_during_kib'] / 1024:.1f} MiB; {s['peak_rss_kib'] / 1024:.1f} MiB |"]
    f = res.get("faults", {})
    o = res.get("oauth", {})
    rows = []
    if "prometheus" in f:
        a = f["prometheus"]
        out_ = a["outage"]
        msgs = out_["error_samples"]
        rows.append(("a: Prometheus SIGKILLed, restarted after 10 s",
                     f"{out_['errors']:,} `isError` in {a['outage_s']:.0f} s, each in ≤ "
                     f"{a['max_outage_latency_s'] * 1000:.0f} ms: \"{core(msgs[0] if msgs else '–', 120)}\""
                     + (f", then \"{core(msgs[1], 80)}\" while it started" if len(msgs) > 1 else "")
                     + f"; `/readyz` {a['readyz_during'][:3]}",
                     f"first success {a['first_ok_after_ready_s'] * 1000:.0f} ms after it was ready; then "
                     f"{a['after']['calls']:,} calls, {a['after']['errors']} errors"
                     if a["first_ok_after_ready_s"] is not None else "none", ok(a["checks"])))
    if "upstreams" in f:
        b = f["upstreams"]
        for mode, mm in b["modes"].items():
            desc = {"slow": f"answers after {SLOW_S:g} s (timeout {FAULT_TIMEOUT_S:g} s)",
                    "slowbody": "headers, then 1 byte/s", "garbage": "200, HTML body",
                    "cut": "Content-Length 100000, 1000 bytes, close", "chunkcut": "chunked, closed mid-body",
                    "reset": "TCP reset"}[mode]
            all_err = mm["by_outcome"].get("isError", 0) == mm["calls"]
            rows.append((f"b: upstream {desc}",
                         f"{mm['calls']:,} calls, {'all' if all_err else 'not all'} `isError` in ≤ {mm['max_s']:.2f} s: "
                         f"\"{core(mm['sample'])}\"", "–", ok(mm["checks"])))
        hm = b["healthy_upstream_meanwhile"]
        rows.append(("b: meanwhile, the healthy upstream", f"{hm['calls']:,} calls, {hm['errors']} errors", "–",
                     ok(b["checks"])))
    for how, run in o.get("valkey", {}).items():
        du, mcpd = run["during"], run["mcp_during"]
        lost = sum(r["login_lost"] for r in run["recovery"])
        fo = [r["first_ok_after_s"] for r in run["recovery"] if r["first_ok_after_s"] is not None]
        what = (f"c: Valkey stopped, restarted after {run['down_s']:g} s" if how == "stopped"
                else f"c: Valkey frozen (SIGSTOP) {run['down_s']:g} s")
        fails = sum(n for k, n in du["outcomes"].items() if not k.startswith("200"))
        got = (f"refresh: {fails} × {oauth_err(du['sample_error'])}, each in ≤ {ms(du['max_s'] * 1000)}; "
               f"MCP calls: {mcpd['errors']:,} errors")
        if mcpd["error_samples"]:
            e = mcpd["error_samples"][0]
            m_ = re.match(r"HTTP (\d+): (.*)", e, re.S)
            got += ", HTTP " + (oauth_err(f"{m_.group(1)} {m_.group(2)}") if m_ else core(e, 110))
        got += f", each in ≤ {ms(mcpd['max_ms'])}"
        rec = f"refresh OK after ≤ {max(fo):.1f} s" if fo else "no refresh succeeded"
        if lost:
            rec += f"; {lost} of {len(run['recovery'])} logins lost (refresh-token reuse), a new login works"
        if run["mcp_first_ok_after_s"] is not None:
            rec += f"; MCP OK after {run['mcp_first_ok_after_s']:.1f} s"
        rows.append((what, got, rec, ok(run["checks"])))
    if "provider" in o:
        d = o["provider"]
        cb, ad, fa = d["callback"], d["authorize_during"], d["fresh_server_authorize_during"]
        rows.append(("d: provider stopped between its login and our `/oauth/callback`",
                     f"callback: {cb['status']} in {cb['seconds'] * 1000:.0f} ms to the client with "
                     f"`error={cb['error']}` \"{cb['error_description']}\"; new `/oauth/authorize`: "
                     f"{ad['status']} to the provider (discovery cached), or, on a server that never reached it, "
                     f"{fa['status']} to the client with `error={fa['error']}` \"{fa['error_description']}\"; "
                     f"MCP calls with existing tokens: {d['mcp_meanwhile']['errors']} errors",
                     f"login OK {d['login_after']['seconds_after_restart']:.1f} s after the provider restarted"
                     if d["login_after"]["seconds_after_restart"] is not None else "no login", ok(d["checks"])))
    if "error" in o:
        rows.append(("c/d: OAuth faults", f"not run: {core(o['error'])}", "–", "**no**"))
    crit = res["criteria"]
    soak_c = [c for c in crit if c["phase"] == "soak"]
    L += ["", "| soak criterion | measured | met |", "|---|---:|:---:|"]
    L += [f"| {c['criterion']} | {c['value']} | {'yes' if c['met'] else '**no**'} |" for c in soak_c]
    if rows:
        L += ["", f"**Faults** (one server process throughout, never restarted; {res['args']['fault_clients']} "
              "clients of load running):", "", "| fault | what the caller got | recovery | met |",
              "|---|---|---|:---:|"]
        L += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    failed = [c for c in crit if not c["met"]]
    L += ["", f"**{sum(c['met'] for c in crit)} of {len(crit)} criteria met**"
          + (" (all checks: `target/soak/results.json`)." if not failed else
             "; failed: " + "; ".join(f"{c['phase']}: {c['criterion']}" for c in failed) + ".")]
    return "\n".join(L) + "\n"


def ok(checks: dict[str, bool]) -> str:
    return "yes" if all(checks.values()) else "**no**"


def write_readme(results_md: str) -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    intro = (BENCH / "reliability.md").read_text().rstrip("\n")
    block = "## Reliability\n\n" + intro.replace("<!-- results -->", results_md.rstrip("\n")) + "\n"
    if "\n## Reliability\n" in text:
        head, rest = text.split("\n## Reliability\n", 1)
        m = re.search(r"^## ", rest, re.M)
        tail = rest[m.start():] if m else ""
    else:
        i = text.index("\n## Performance\n") + 1
        m = re.search(r"^## ", text[i + 3:], re.M)
        cut = i + 3 + m.start() if m else len(text)
        head, tail = text[:cut], text[cut:]
    readme.write_text(head.rstrip("\n") + "\n\n" + block + ("\n" + tail if tail else ""))


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    binary = REPO / "target" / args.profile / "mcp-prometheus"
    if not binary.exists():
        raise SystemExit(f"{binary} missing: build it first (make soak does)")
    work = OUT / "run"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    t_all = time.monotonic()
    res: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip(),
        "machine": B.machine(), "args": vars(args),
        "binary_built": dt.datetime.fromtimestamp(binary.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    blocks, t_data = B.prepare_blocks(2000, 1000, work / "logs")
    port, obs = B.free_port(), B.free_port()
    prom = Prometheus(work, blocks, [f"127.0.0.1:{obs}"])
    prom.start()
    port_file = work / "fault_upstream.port"
    fake = B.Proc("fault-upstream", [sys.executable, BENCH / "fault_upstream.py", port_file, SLOW_S], work / "logs")
    fake_url = "http://127.0.0.1:" + B.wait_until("fault upstream port", lambda: port_file.exists()
                                                  and port_file.read_text(), proc=fake)
    upstreams = [("local", prom.url, LOCAL_TIMEOUT_S), ("ok", fake_url + "/ok", FAULT_TIMEOUT_S)]
    upstreams += [(m, f"{fake_url}/{m}", FAULT_TIMEOUT_S) for m in FAULT_MODES]
    srv = start_server(binary, work, port, obs, upstreams)
    log(f"prometheus {prom.url}, server {srv.mcp} (pid {srv.proc.pid}), fake upstream {fake_url}")
    B.wait_until("up has samples", lambda: B.prom_query(prom.url, "up"), timeout=30, interval=0.2)
    B.wait_until("rules evaluated", lambda: B.prom_query(prom.url, "job:up:sum"), timeout=30, interval=0.5)
    loop = Loop()
    mix = load_mix(t_data)
    # every call of the mix once: a bad argument fails here, not as 10 minutes of errors
    for _, call in mix:
        code, msg, _ = call_once(loop, srv.mcp, call)
        if code != OK:
            raise SystemExit(f"sanity call {call[0]} failed: {OUTCOME[code]}: {msg}")
    log(f"all {len(mix)} calls of the mix answer")
    try:
        res["soak"] = soak_phase(loop, srv, prom, mix, args)
        res["faults"] = {}
        if not args.skip_faults:
            res["faults"]["prometheus"] = fault_prometheus(loop, srv, prom, mix, args)
            res["faults"]["upstreams"] = fault_upstreams(loop, srv, mix, args, fake_url)
        res["server_pid_unchanged"] = srv.proc.alive()
        res["rss_after_faults_kib"] = srv.rss_kib()
        if not args.skip_oauth:
            try:
                res["oauth"] = oauth_faults(loop, binary, work, prom.url, args)
            except Exception as e:  # noqa: BLE001 - reported as a failed criterion
                log(f"OAuth faults failed: {e!r}")
                import traceback  # noqa: PLC0415

                traceback.print_exc()
                res["oauth"] = {"error": repr(e)}
    finally:
        loop.close()
        srv.proc.stop()
        fake.stop()
        if prom.proc is not None:
            prom.proc.stop()
    res["seconds"] = time.monotonic() - t_all
    res["criteria"] = criteria(res)
    name = "results" if not args.out_name else args.out_name
    (OUT / f"{name}.json").write_text(json.dumps(res, indent=1, default=str))
    md = render_markdown(res)
    (OUT / f"{name}.md").write_text(md)
    if not args.no_readme and args.minutes >= 10:
        write_readme(md)
        log("README.md section Reliability updated")
    print(md)
    failed = [c for c in res["criteria"] if not c["met"]]
    for c in failed:
        log(f"FAILED: {c['phase']}: {c['criterion']} {c['value']}")
    log(f"done in {res['seconds'] / 60:.1f} min: {OUT / (name + '.json')}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="soak length after the warm-up (10)")
    ap.add_argument("--clients", type=int, default=200, help="concurrent MCP clients of the soak (200)")
    ap.add_argument("--warmup", type=float, default=30.0, help="warm-up seconds (30)")
    ap.add_argument("--idle", type=float, default=30.0, help="idle seconds after the load (30)")
    ap.add_argument("--fault-clients", type=int, default=20, help="clients of load during the faults (20)")
    ap.add_argument("--fault-callers", type=int, default=4, help="clients calling each bad upstream (4)")
    ap.add_argument("--fault-seconds", type=float, default=12.0, help="seconds per bad upstream (12)")
    ap.add_argument("--outage", type=float, default=10.0, help="seconds each dependency is down (10)")
    ap.add_argument("--refreshers", type=int, default=4, help="OAuth clients refreshing during (c) (4)")
    ap.add_argument("--skip-faults", action="store_true", help="no faults a and b")
    ap.add_argument("--skip-oauth", action="store_true", help="no faults c and d (no venv needed)")
    ap.add_argument("--profile", default="release", help="target/<profile>/mcp-prometheus")
    ap.add_argument("--no-readme", action="store_true", help="do not touch README.md (shorter runs never do)")
    ap.add_argument("--out-name", default="", help="target/soak/<name>.{json,md} (default results)")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite results.md and the README section from target/soak/results.json")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.render_only:
        res = json.loads((OUT / "results.json").read_text())
        res["criteria"] = criteria(res)
        md = render_markdown(res)
        (OUT / "results.md").write_text(md)
        write_readme(md)
        print(md)
        return 0
    try:
        return run(args)
    finally:
        B.stop_all()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
