#!/usr/bin/env python3
"""The mcp-prometheus benchmark (`make bench`; `make bench-smoke` for a tiny run).

Starts a real Prometheus (Debian package) on backfilled synthetic data, the
release server in several configs, a fake 300 MB upstream and a JWKS
endpoint, all on 127.0.0.1, drives them with bench/loadgen (Rust), and
writes target/bench/results.json, target/bench/results.md and (full runs
only) the README section "Performance".

Figures (see README "Performance"):
  overhead   execute_query `up` and a 1,000-series query through MCP
             (2026-07-28 stateless and a 2025-11-25 session) and directly
             against /api/v1/query, interleaved, at 1 and 32 clients;
  auth       the same `up` call with JWT authn + group-map tenancy on vs off;
  large      200k series through execute_query (default truncation) vs
             Prometheus directly; peak RSS; a range query over 10k series
             x 120 points through execute_range_query (format=summary, the
             budget raised so that every series is summarized) vs
             /api/v1/query_range directly; peak RSS; a 3 MiB and a 300 MiB
             answer from the fake upstream (peak RSS must stay flat);
  footprint  process start -> /readyz 200, idle RSS, tools/list bytes.

--only PHASES runs some of the phases (footprint, overhead, auth, big,
range, stream; "large" = big,range,stream) and writes partial.json/.md
(never the README); --binary and --loadgen measure copies of the binaries
instead of target/<profile>/.

Python 3.11 standard library only. Every process it starts is stopped at the
end (also on errors and Ctrl-C).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.server as hserver
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
# TOML rendering is shared with the integration tests (standard library only).
sys.path.insert(0, str(REPO / "tests" / "integration"))
from serverconfig import toml_value  # noqa: E402

OUT = REPO / "target" / "bench"

MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}

# Targets of the issue, checked against the figures.
TARGETS = {
    "throughput_32": 0.8,  # ours / direct, at 32 clients
    "median_1": 1.3,  # ours / direct, at 1 client
    "rss_200k_mb": 64,
    "range_10k_ratio": 1.1,  # median time ours / direct, 10k series x 120 points, format=summary
    "rss_range_mb": 64,  # peak RSS after that range query
    "rss_flat_mb": 4,  # peak RSS growth from a 3 MiB to a 300 MiB answer
    "idle_rss_mb": 16,
    # issue 15: 32 connections on one legacy session approach the stateless figure
    "shared_session_32": 0.8,
    "auth_ratio": 0.95,
    "tools_list_kb": 16,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# processes, HTTP
# --------------------------------------------------------------------------

PROCS: list["Proc"] = []


class Proc:
    def __init__(self, name: str, args: list[Any], log_dir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.t_start = time.monotonic()
        self.p = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, **(env or {})})
        PROCS.append(self)

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def tail(self, n: int = 30) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.log.close()
        if self in PROCS:
            PROCS.remove(self)


def stop_all() -> None:
    for p in list(reversed(PROCS)):
        try:
            p.stop()
        except Exception:  # noqa: BLE001
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         timeout: float = 60.0) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05,
               proc: Proc | None = None) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
        try:
            r = check()
            if r:
                return r
            last = r
        except Exception as e:  # noqa: BLE001
            last = e
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}; last: {last!r}")
        time.sleep(interval)


def proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def mcp_post(url: str, method: str, params: dict[str, Any], headers: dict[str, str] | None = None,
             name: str | None = None, timeout: float = 300.0) -> tuple[int, bytes]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}}).encode()
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "MCP-Protocol-Version": MODERN, "Mcp-Method": method, **(headers or {})}
    if name:
        h["Mcp-Name"] = name
    status, _, data = http("POST", url, body, h, timeout)
    return status, data


# --------------------------------------------------------------------------
# synthetic data and Prometheus
# --------------------------------------------------------------------------

def fresh_block(cache: Path) -> int | None:
    """The query time of the cached block in `cache` if it is there and
    younger than 3 days (it must stay inside Prometheus's 15-day
    retention); otherwise `cache` is emptied for a new one and None."""
    stamp = cache / "stamp.json"
    if stamp.exists():
        s = json.loads(stamp.read_text())
        if time.time() - s["end"] < 3 * 86400 and any(cache.glob("01*")):
            log(f"reusing synthetic block {cache} (end {s['end']})")
            return int(s["end"])
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    return None


def prepare_blocks(big: int, small: int, log_dir: Path) -> tuple[Path, int]:
    """A cached TSDB block of the synthetic series; returns (dir, query time).
    Rebuilt when missing, of other sizes, or older than 3 days (it must stay
    inside Prometheus's 15-day retention)."""
    cache = OUT / "data" / f"blocks-{big}-{small}"
    end = fresh_block(cache)
    if end is not None:
        return cache, end
    end = int(time.time()) - 600
    om = OUT / "data" / f"bench-{big}-{small}.om"
    t0 = time.monotonic()
    subprocess.run([sys.executable, BENCH / "gen_openmetrics.py", om, str(big), str(small), str(end)], check=True)
    log(f"wrote {om.stat().st_size / 2**20:.0f} MiB OpenMetrics in {time.monotonic() - t0:.1f}s")
    t0 = time.monotonic()
    with open(log_dir / "promtool.log", "wb") as f:
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, cache], check=True,
                       stdout=f, stderr=subprocess.STDOUT)
    om.unlink()
    log(f"promtool created the block in {time.monotonic() - t0:.1f}s")
    (cache / "stamp.json").write_text(json.dumps({"end": end, "big": big, "small": small}))
    return cache, end


RANGE_SAMPLES, RANGE_STEP = 120, 15


def prepare_range_block(series: int, log_dir: Path) -> tuple[Path, int]:
    """A cached TSDB block of `bench_range` (series x RANGE_SAMPLES samples,
    RANGE_STEP s apart, the last at the returned time); rebuilt like
    prepare_blocks's."""
    cache = OUT / "data" / f"range-{series}x{RANGE_SAMPLES}"
    end = fresh_block(cache)
    if end is not None:
        return cache, end
    end = int(time.time()) - 600
    end -= end % RANGE_STEP
    om = OUT / "data" / f"range-{series}.om"
    t0 = time.monotonic()
    times = [end - RANGE_STEP * (RANGE_SAMPLES - 1 - k) for k in range(RANGE_SAMPLES)]
    methods = ("GET", "POST", "PUT", "DELETE")
    with open(om, "w", buffering=1 << 20) as f:
        f.write("# HELP bench_range Synthetic series for the range query of make bench.\n"
                "# TYPE bench_range gauge\n")
        for i in range(series):
            labels = (f'bench_range{{job="api",instance="host-{i // 50:04d}:9100",zone="zone-{i % 7}",'
                      f'method="{methods[i % 4]}",handler="/api/v{i % 3 + 1}/item-{i % 97:02d}",id="{i:05d}"}}')
            # varied values with up to three decimals, as real gauges have
            f.writelines(f"{labels} {((i * 37 + k * 11) % 4000) / 8 + (i % 5) * 0.001:g} {t}\n"
                         for k, t in enumerate(times))
        f.write("# EOF\n")
    with open(log_dir / "promtool-range.log", "wb") as f:
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, cache], check=True,
                       stdout=f, stderr=subprocess.STDOUT)
    om.unlink()
    log(f"created the bench_range block ({series} x {RANGE_SAMPLES}) in {time.monotonic() - t0:.1f}s")
    (cache / "stamp.json").write_text(json.dumps({"end": end, "series": series}))
    return cache, end


def start_prometheus(work: Path, blocks: Path | list[Path]) -> tuple[Proc, str]:
    """Prometheus on a copy of the blocks in one or more cache directories."""
    if isinstance(blocks, Path):
        blocks = [blocks]
    port = free_port()
    data = work / "prometheus-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    for d in blocks:
        for b in d.glob("01*"):
            shutil.copytree(b, data / b.name)
    cfg = work / "prometheus.yml"
    cfg.write_text(f"""global:
  scrape_interval: 2s
  evaluation_interval: 5s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
""")
    p = Proc("prometheus", ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                            f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d",
                            "--log.level=warn"], work / "logs")
    url = f"http://127.0.0.1:{port}"
    wait_until("prometheus /-/ready", lambda: http("GET", url + "/-/ready", timeout=2)[0] == 200, proc=p)
    return p, url


def prom_query(url: str, q: str, t: int | None = None) -> list[Any]:
    qs = {"query": q} | ({"time": str(t)} if t else {})
    status, _, body = http("GET", f"{url}/api/v1/query?{urllib.parse.urlencode(qs)}", timeout=120)
    if status != 200:
        raise RuntimeError(f"{q}: HTTP {status} {body[:300]!r}")
    return json.loads(body)["data"]["result"]


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------

def server_config(upstream: str, port: int, obs: int, layers: dict[str, dict[str, Any]] | None = None,
                  timeout: str = "120s", tools: dict[str, Any] | None = None) -> str:
    lines = ["[server]", f'listen = "127.0.0.1:{port}"', 'mcp_path = "/mcp"',
             f'public_url = "http://127.0.0.1:{port}"',
             'allowed_hosts = ["127.0.0.1", "localhost"]', "json_response = true", "stateful_sessions = true",
             "", "[observability]", f'listen = "127.0.0.1:{obs}"', 'log_format = "text"', 'log_level = "warn"',
             "", "[[upstreams]]", 'name = "local"', f"url = {toml_value(upstream)}",
             f"timeout = {toml_value(timeout)}"]
    if tools:
        lines += ["", "[tools]"] + [f"{k} = {toml_value(v)}" for k, v in tools.items()]
    for name, keys in (layers or {}).items():
        lines += ["", f"[layers.{name}]"] + [f"{k} = {toml_value(v)}" for k, v in keys.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Server:
    name: str
    proc: Proc
    port: int
    obs: int
    ready_s: float

    @property
    def mcp(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def rss_kib(self) -> int:
        return proc_status_kib(self.proc.pid, "VmRSS")

    def hwm_kib(self) -> int:
        return proc_status_kib(self.proc.pid, "VmHWM")


def readyz_ok(obs: int) -> bool:
    """One GET /readyz on a fresh connection (raw socket: cheap enough to poll every few ms)."""
    with socket.create_connection(("127.0.0.1", obs), timeout=2) as s:
        s.sendall(b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        head = s.recv(64)
    return head.startswith(b"HTTP/1.1 200")


def start_server(binary: Path, work: Path, name: str, upstream: str,
                 layers: dict[str, dict[str, Any]] | None = None, port: int | None = None,
                 tools: dict[str, Any] | None = None) -> Server:
    port, obs = port or free_port(), free_port()
    cfg = work / f"{name}.toml"
    cfg.write_text(server_config(upstream, port, obs, layers, tools=tools))
    p = Proc(f"server-{name}", [binary, "serve", "--config", cfg], work / "logs")
    # time from process start (just before fork/exec) to the first 200 of /readyz
    wait_until(f"{name} /readyz", lambda: readyz_ok(obs), timeout=30, interval=0.002, proc=p)
    ready = time.monotonic() - p.t_start

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    wait_until(f"{name} MCP listener", listening, timeout=10, interval=0.01, proc=p)
    return Server(name, p, port, obs, ready)


# --------------------------------------------------------------------------
# loadgen and statistics
# --------------------------------------------------------------------------

def loadgen(binary: Path, work: Path, scenarios: list[dict[str, Any]], label: str) -> dict[str, Any]:
    spec = work / f"spec-{label}.json"
    spec.write_text(json.dumps({"scenarios": scenarios}, indent=1))
    with open(work / "logs" / f"loadgen-{label}.log", "wb") as errlog:
        r = subprocess.run([binary, "run", spec], stdout=subprocess.PIPE, stderr=errlog, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"loadgen {label} failed: {(work / 'logs' / f'loadgen-{label}.log').read_text()[-2000:]}")
    return {s["name"]: s for s in json.loads(r.stdout)["scenarios"]}


def med(xs: list[float]) -> float:
    xs = [x for x in xs if x == x]  # drop NaN
    return statistics.median(xs) if xs else float("nan")


def summarize(sc: dict[str, Any], ours: str, direct: str) -> dict[str, Any]:
    """Medians over rounds, and medians of the per-round ratios ours / direct."""
    a, b = sc["targets"][ours], sc["targets"][direct]
    out: dict[str, Any] = {}
    for who, rounds in ((ours, a), (direct, b)):
        out[who] = {k: med([r[k] for r in rounds]) for k in ("median_us", "p99_us", "rps", "bytes")}
        out[who]["errors"] = sum(r["errors"] for r in rounds)
        out[who]["n"] = sum(r["n"] for r in rounds)
        errs = [r["first_error"] for r in rounds if r.get("first_error")]
        if errs:
            out[who]["first_error"] = errs[0]
    pairs = list(zip(a, b))
    out["ratio_median"] = med([x["median_us"] / y["median_us"] for x, y in pairs])
    out["ratio_p99"] = med([x["p99_us"] / y["p99_us"] for x, y in pairs])
    out["ratio_rps"] = med([x["rps"] / y["rps"] for x, y in pairs if y["rps"]])
    rr = [x["rps"] / y["rps"] for x, y in pairs if y["rps"]]
    out["ratio_rps_range"] = [min(rr), max(rr)] if rr else []
    mr = [x["median_us"] / y["median_us"] for x, y in pairs]
    out["ratio_median_range"] = [min(mr), max(mr)] if mr else []
    return out


# --------------------------------------------------------------------------
# JWKS endpoint (auth-cost run)
# --------------------------------------------------------------------------

def serve_jwks(holder: dict[str, bytes]) -> tuple[hserver.ThreadingHTTPServer, str]:
    """Serves holder["jwks"] at /jwks (set it once the key exists: the issuer
    URL, which names this server's port, goes into the token)."""

    class H(hserver.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            body = holder.get("jwks", b"{}")
            self.send_response(200 if self.path.startswith("/jwks") else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = hserver.ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


# --------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------

@dataclass
class Sizes:
    big: int
    small: int
    rounds: int
    up_n1: int
    up_n32: int
    small_n1: int
    small_n32: int
    big_rounds: int
    small_mb: int
    large_mb: int
    starts: int
    max_s: float
    # the range query (defaults: results.json files written before it)
    range_series: int = 10_000
    range_n: int = 3  # timed calls per side and round
    range_rounds: int = 5


FULL = Sizes(big=200_000, small=1000, rounds=5, up_n1=3000, up_n32=12000, small_n1=250, small_n32=1000,
             big_rounds=5, small_mb=3, large_mb=300, starts=5, max_s=6.0,
             range_series=10_000, range_n=3, range_rounds=5)
SMOKE = Sizes(big=2000, small=1000, rounds=2, up_n1=30, up_n32=64, small_n1=10, small_n32=64,
              big_rounds=2, small_mb=1, large_mb=8, starts=2, max_s=3.0,
              range_series=200, range_n=2, range_rounds=2)
PHASES = ("footprint", "overhead", "auth", "big", "range", "stream")


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    prom_version = subprocess.run(["prometheus", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"cpus": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release(), "prometheus": prom_version}


def run(args: argparse.Namespace) -> int:
    sz = SMOKE if args.smoke else FULL
    phases = set(PHASES)
    if args.only:
        phases = set()
        for p in args.only.split(","):
            p = p.strip()
            if p == "large":
                phases |= {"big", "range", "stream"}
            elif p in PHASES:
                phases.add(p)
            else:
                raise SystemExit(f"--only: unknown phase {p!r} (phases: {', '.join(PHASES)}, large)")
    partial = phases != set(PHASES)
    profile_dir = REPO / "target" / args.profile
    binary = Path(args.binary) if args.binary else profile_dir / "mcp-prometheus"
    lg = Path(args.loadgen) if args.loadgen else profile_dir / "loadgen"
    for b in (binary, lg):
        if not b.exists():
            raise SystemExit(f"{b} missing: build it first (make bench does)")
    # a partial run keeps the logs of the last whole run
    work = OUT / (("smoke-" if args.smoke else "") + ("partial-run" if partial else "run"))
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    t_all = time.monotonic()
    res: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "smoke" if args.smoke else "full",
        "profile": args.profile,
        "binary": str(binary),
        "phases": [p for p in PHASES if p in phases],
        "machine": machine(),
        "git": subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip(),
        "sizes": sz.__dict__,
    }

    # bench_small and bench_big (overhead, big); bench_range (range)
    blocks: list[Path] = []
    t_data = t_range = 0
    if phases & {"overhead", "big"}:
        b, t_data = prepare_blocks(sz.big, sz.small, work / "logs")
        blocks.append(b)
    if "range" in phases:
        b, t_range = prepare_range_block(sz.range_series, work / "logs")
        blocks.append(b)
    prom, prom_url = start_prometheus(work, blocks)
    direct_query = prom_url + "/api/v1/query"
    wait_until("up has a sample", lambda: prom_query(prom_url, "up"), timeout=30, interval=0.2)
    res["data"] = {}
    if t_data:
        n_small = len(prom_query(prom_url, "bench_small", t_data))
        n_big = int(float(prom_query(prom_url, "count(bench_big)", t_data)[0]["value"][1]))
        log(f"prometheus {prom_url}: bench_small {n_small} series, bench_big {n_big} series at t={t_data}")
        res["data"] |= {"bench_big_series": n_big, "bench_small_series": n_small, "time": t_data}
    if t_range:
        n_range = int(float(prom_query(prom_url, "count(bench_range)", t_range)[0]["value"][1]))
        log(f"prometheus {prom_url}: bench_range {n_range} series at t={t_range}")
        res["data"] |= {"bench_range_series": n_range, "range_end": t_range}

    def scen(name: str, c: int, n: int, targets: list[dict[str, Any]], rounds: int | None = None,
             warmup: int | None = None, max_s: float | None = None) -> dict[str, Any]:
        return {"name": name, "rounds": rounds or sz.rounds, "concurrency": c, "requests": n,
                "warmup": warmup if warmup is not None else max(c, n // 20), "max_seconds": max_s or sz.max_s,
                "targets": targets}

    # ---------------------------------------------------------------- footprint
    if "footprint" in phases:
        log("footprint: start -> /readyz, idle RSS, tools/list")
        starts, idle = [], []
        for i in range(sz.starts):
            s = start_server(binary, work, f"footprint-{i}", prom_url)
            time.sleep(1.0)
            idle.append(s.rss_kib())
            starts.append(s.ready_s)
            if i == 0:
                status, body = mcp_post(s.mcp, "tools/list", {})
                assert status == 200, (status, body[:300])
                tools = json.loads(body)["result"]["tools"]
                res["footprint_tools"] = len(tools)
                res["tools_list_bytes"] = len(body)
            s.proc.stop()
        res["ready_ms"] = med(starts) * 1000
        res["ready_ms_all"] = [round(x * 1000, 1) for x in starts]
        res["idle_rss_kib"] = med(idle)
        res["idle_rss_kib_all"] = idle

    # ---------------------------------------------------------------- overhead
    # the truncate budget is raised so that the 1,000-series answer passes
    # whole: both sides deliver the same series
    wide = {"truncate": {"enabled": True, "max_bytes": 4_000_000, "max_series": 5000,
                         "hard_ceiling_bytes": 5_000_000}}
    up_args = {"query": "up"}
    plain = start_server(binary, work, "plain", prom_url, wide) if phases & {"overhead", "auth"} else None
    if "overhead" in phases:
        assert plain is not None
        small_args = {"query": "bench_small", "time": t_data, "limit": 1000}

        def trio(args_: dict[str, Any], params: dict[str, str]) -> list[dict[str, Any]]:
            return [
                {"name": "direct", "kind": "direct", "url": direct_query, "params": params},
                {"name": "stateless", "kind": "mcp-stateless", "url": plain.mcp, "tool": "execute_query",
                 "arguments": args_},
                {"name": "legacy", "kind": "mcp-legacy", "url": plain.mcp, "tool": "execute_query",
                 "arguments": args_},
                # every client on its own connection, all in one 2025-11-25 session
                {"name": "shared", "kind": "mcp-legacy-shared", "url": plain.mcp, "tool": "execute_query",
                 "arguments": args_},
            ]

        log("overhead: up and 1,000 series, 1 and 32 clients, stateless/legacy/shared session/direct")
        ov = loadgen(lg, work, [
            scen("up-c1", 1, sz.up_n1, trio(up_args, {"query": "up"})),
            scen("up-c32", 32, sz.up_n32, trio(up_args, {"query": "up"})),
            scen("small-c1", 1, sz.small_n1, trio(small_args, {"query": "bench_small", "time": str(t_data)})),
            scen("small-c32", 32, sz.small_n32, trio(small_args, {"query": "bench_small", "time": str(t_data)})),
        ], "overhead")
        res["overhead"] = {}
        for name, sc in ov.items():
            res["overhead"][name] = {mode: summarize(sc, mode, "direct")
                                     for mode in ("stateless", "legacy", "shared")}
        res["plain_server_hwm_kib"] = plain.hwm_kib()

    # ---------------------------------------------------------------- auth
    if "auth" in phases:
        assert plain is not None
        log("auth: authn (ES256 JWT, JWKS) + group-map tenancy on vs off")
        tok_dir = work / "jwt"
        jwks_srv, jwks_url = None, ""
        try:
            holder: dict[str, bytes] = {}
            jwks_srv, jwks_url = serve_jwks(holder)
            port_on = free_port()
            aud = f"http://127.0.0.1:{port_on}/mcp"  # public_url + mcp_path
            subprocess.run([lg, "mint", tok_dir, jwks_url, aud, "bench", "7200"], check=True)
            holder["jwks"] = (tok_dir / "jwks.json").read_bytes()
            token = (tok_dir / "token").read_text()
            auth_layers = {
                **wide,
                "authn": {"enabled": True, "issuers": [{"issuer": jwks_url, "jwks_url": jwks_url + "/jwks",
                                                         "algorithms": ["ES256"], "groups_claim": "groups",
                                                         "allow_private_urls": True}]},
                "tenancy": {"enabled": True, "mode": "group-map", "groups": {"bench": ["tenant-a"]}},
            }
            on = start_server(binary, work, "auth", prom_url, auth_layers, port=port_on)
            status, body = mcp_post(on.mcp, "tools/call", {"name": "execute_query", "arguments": up_args},
                                    {"Authorization": f"Bearer {token}"}, name="execute_query")
            assert status == 200 and b'"isError":true' not in body, (status, body[:500])
            status, _ = mcp_post(on.mcp, "tools/call", {"name": "execute_query", "arguments": up_args},
                                 name="execute_query")
            assert status == 401, f"auth server answered {status} without a token"

            def pair() -> list[dict[str, Any]]:
                return [
                    {"name": "off", "kind": "mcp-stateless", "url": plain.mcp, "tool": "execute_query",
                     "arguments": up_args},
                    {"name": "on", "kind": "mcp-stateless", "url": on.mcp, "tool": "execute_query",
                     "arguments": up_args, "headers": {"Authorization": f"Bearer {token}"}},
                ]

            au = loadgen(lg, work, [scen("auth-c1", 1, sz.up_n1, pair()), scen("auth-c32", 32, sz.up_n32, pair())],
                         "auth")
            res["auth"] = {name: summarize(sc, "on", "off") for name, sc in au.items()}
            on.proc.stop()
        finally:
            if jwks_srv is not None:
                jwks_srv.shutdown()
    if plain is not None:
        plain.proc.stop()

    # ---------------------------------------------------------------- large results
    if "big" in phases:
        n_big = res["data"]["bench_big_series"]
        log(f"large: {n_big} series through execute_query (default truncation) vs direct")
        big = start_server(binary, work, "large", prom_url)  # no [layers.truncate]: the defaults
        rss0, hwm0 = big.rss_kib(), big.hwm_kib()
        lr = loadgen(lg, work, [scen("big-c1", 1, 1, [
            {"name": "direct", "kind": "direct", "url": direct_query,
             "params": {"query": "bench_big", "time": str(t_data)}},
            {"name": "ours", "kind": "mcp-stateless", "url": big.mcp, "tool": "execute_query",
             "arguments": {"query": "bench_big", "time": t_data}},
        ], rounds=sz.big_rounds, warmup=0, max_s=300)], "large")
        s = summarize(lr["big-c1"], "ours", "direct")
        status, body = mcp_post(big.mcp, "tools/call", {"name": "execute_query",
                                                         "arguments": {"query": "bench_big", "time": t_data}},
                                name="execute_query")
        sc_ = json.loads(body)["result"].get("structuredContent", {})
        res["large"] = {**s, "rss_before_kib": rss0, "hwm_before_kib": hwm0, "hwm_after_kib": big.hwm_kib(),
                        "truncated": sc_.get("truncated"), "returned": sc_.get("returned"),
                        "total": sc_.get("total")}
        big.proc.stop()

    if "range" in phases:
        res["range"] = measure_range(binary, lg, work, prom_url, t_range, res["data"]["bench_range_series"], sz,
                                     scen)

    if "stream" in phases:
        log(f"large: fake upstream, {sz.small_mb} MiB then {sz.large_mb} MiB answers")
        port_file = work / "big_upstream.port"
        fake = Proc("big-upstream", [sys.executable, BENCH / "big_upstream.py", port_file], work / "logs")
        fake_url = "http://127.0.0.1:" + wait_until("fake upstream port", lambda: port_file.exists()
                                                    and port_file.read_text(), proc=fake)
        srv = start_server(binary, work, "stream", fake_url)
        st = {"rss_before_kib": srv.rss_kib(), "hwm_before_kib": srv.hwm_kib()}
        for mb in (sz.small_mb, sz.large_mb):
            t0 = time.monotonic()
            status, body = mcp_post(srv.mcp, "tools/call", {"name": "execute_query",
                                                             "arguments": {"query": f"big_mb_{mb}"}},
                                    name="execute_query")
            el = time.monotonic() - t0
            r = json.loads(body)["result"]
            assert status == 200 and not r.get("isError"), body[:500]
            fs = json.loads(http("GET", fake_url + "/stats")[2])
            st[f"mb{mb}"] = {"seconds": el, "hwm_kib": srv.hwm_kib(), "bytes_returned": len(body),
                             "upstream_sent_bytes": fs["last_sent_bytes"],
                             "truncated": r.get("structuredContent", {}).get("truncated")}
            log(f"  {mb} MiB: {el:.1f}s, VmHWM {srv.hwm_kib() / 1024:.1f} MiB, upstream sent "
                f"{fs['last_sent_bytes'] / 2**20:.0f} MiB, {len(body)} bytes returned")
        st["hwm_growth_kib"] = st[f"mb{sz.large_mb}"]["hwm_kib"] - st[f"mb{sz.small_mb}"]["hwm_kib"]
        res["stream"] = st
        srv.proc.stop()
        fake.stop()
    prom.stop()

    res["seconds"] = time.monotonic() - t_all
    res["targets"] = check_targets(res, sz)
    errors = count_errors(res)
    res["errors"] = errors

    name = ("smoke" if args.smoke else "results") if not partial else ("smoke-partial" if args.smoke else "partial")
    (OUT / f"{name}.json").write_text(json.dumps(res, indent=1))
    md = render_markdown(res, sz)
    (OUT / f"{name}.md").write_text(md)
    if not args.smoke and not args.no_readme and not partial:
        write_readme(md)
        log("README.md section Performance updated")
    print(md)
    log(f"done in {res['seconds']:.0f}s: {OUT / (name + '.json')}")
    if errors:
        log(f"{errors} failed requests: see the JSON's first_error fields and {work / 'logs'}")
        return 1
    return 0


def range_check(status: int, body: bytes, series: int) -> dict[str, Any]:
    """The summary answer is whole: no error, not truncated, every series
    with all its points; returns structuredContent's counts."""
    msg = json.loads(body)
    r = msg.get("result") or {}
    assert status == 200 and r and not r.get("isError"), f"range: {status} {body[:500]!r}"
    sc = r.get("structuredContent") or {}
    assert sc.get("truncated") is False, f"range: truncated answer ({json.dumps(sc)[:300]})"
    rows = (sc.get("data") or {}).get("series")
    assert isinstance(rows, list) and len(rows) == series, f"range: {len(rows or [])} series, not {series}"
    points = sum(x["points"] for x in rows)
    assert points == series * RANGE_SAMPLES, f"range: {points} points, not {series * RANGE_SAMPLES}"
    return {"truncated": sc.get("truncated"), "series": len(rows), "points": points}


def measure_range(binary: Path, lg: Path, work: Path, prom_url: str, end: int, series: int, sz: Sizes,
                  scen: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """bench_range over its whole window (RANGE_SAMPLES points a series):
    GET /api/v1/query_range vs execute_range_query (stateless, default
    format=summary) with a budget that keeps every series; ratio of
    medians and the server's peak RSS after."""
    start = end - RANGE_STEP * (RANGE_SAMPLES - 1)
    params = {"query": "bench_range", "start": str(start), "end": str(end), "step": str(RANGE_STEP)}
    status, _, raw = http("GET", f"{prom_url}/api/v1/query_range?{urllib.parse.urlencode(params)}", timeout=300)
    assert status == 200, (status, raw[:300])
    direct_rows = json.loads(raw)["data"]["result"]
    assert len(direct_rows) == series and all(len(x["values"]) == RANGE_SAMPLES for x in direct_rows), \
        f"bench_range: {len(direct_rows)} series from Prometheus, not {series} x {RANGE_SAMPLES}"
    upstream_bytes = len(raw)
    del raw, direct_rows
    # the budget holds the whole upstream answer and every series
    budget = 64_000_000
    assert upstream_bytes < budget, f"bench_range answer {upstream_bytes} bytes: raise the budget"
    layers = {"truncate": {"enabled": True, "max_bytes": budget, "max_series": series,
                           "hard_ceiling_bytes": budget}}
    tools = {"max_limit": max(5000, series)}
    arguments = {"query": "bench_range", "start": start, "end": end, "step": f"{RANGE_STEP}s", "limit": series}
    log(f"large: bench_range {series} x {RANGE_SAMPLES} points ({upstream_bytes / 1e6:.1f} MB upstream) through "
        "execute_range_query (format=summary) vs direct")
    srv = start_server(binary, work, "range", prom_url, layers, tools=tools)
    rss0, hwm0 = srv.rss_kib(), srv.hwm_kib()
    # the whole answer is summarized (checked before the timed calls too)
    status, body = mcp_post(srv.mcp, "tools/call", {"name": "execute_range_query", "arguments": arguments},
                            name="execute_range_query")
    check = range_check(status, body, series)
    lr = loadgen(lg, work, [scen("range-c1", 1, sz.range_n, [
        {"name": "direct", "kind": "direct", "url": prom_url + "/api/v1/query_range", "params": params},
        {"name": "ours", "kind": "mcp-stateless", "url": srv.mcp, "tool": "execute_range_query",
         "arguments": arguments},
    ], rounds=sz.range_rounds, warmup=1, max_s=300)], "range")
    s = summarize(lr["range-c1"], "ours", "direct")
    out = {**s, **check, "rss_before_kib": rss0, "hwm_before_kib": hwm0, "hwm_after_kib": srv.hwm_kib(),
           "upstream_bytes": upstream_bytes, "samples": RANGE_SAMPLES, "step_s": RANGE_STEP,
           "max_bytes": budget}
    log(f"  ours {us(s['ours']['median_us'])} / direct {us(s['direct']['median_us'])} "
        f"(÷ {s['ratio_median']:.2f}), VmHWM {out['hwm_after_kib'] / 1024:.1f} MiB")
    srv.proc.stop()
    return out


def count_errors(res: dict[str, Any]) -> int:
    n = 0
    for group in ("overhead", "auth"):
        for sc in res.get(group, {}).values():
            for v in (sc.values() if group == "overhead" else [sc]):
                n += sum(x.get("errors", 0) for x in v.values() if isinstance(x, dict))
    for group in ("large", "range"):
        n += sum(x.get("errors", 0) for x in res.get(group, {}).values() if isinstance(x, dict))
    return n


def check_targets(res: dict[str, Any], sz: Sizes) -> list[dict[str, Any]]:
    """The issue's targets, for the phases the run measured."""
    t = []

    def add(what: str, value: float, target: str, ok: bool, unit: str = "") -> None:
        t.append({"target": what, "value": value, "goal": target, "met": ok, "unit": unit})

    if "overhead" in res:
        for mode in ("stateless", "legacy"):
            for q in ("up", "small"):
                r = res["overhead"][f"{q}-c32"][mode]["ratio_rps"]
                add(f"throughput ÷ direct, 32 clients, {q}, {mode}", r, f"≥ {TARGETS['throughput_32']}",
                    r >= TARGETS["throughput_32"])
        for q in ("up", "small"):
            ov = res["overhead"][f"{q}-c32"]
            if "shared" in ov:
                r = ov["shared"]["shared"]["rps"] / ov["stateless"]["stateless"]["rps"]
                add(f"throughput, 32 clients in one session ÷ stateless, {q}", r,
                    f"≥ {TARGETS['shared_session_32']}", r >= TARGETS["shared_session_32"])
        for mode in ("stateless", "legacy"):
            for q in ("up", "small"):
                r = res["overhead"][f"{q}-c1"][mode]["ratio_median"]
                add(f"median ÷ direct, 1 client, {q}, {mode}", r, f"≤ {TARGETS['median_1']}",
                    r <= TARGETS["median_1"])
    if "large" in res:
        hwm = res["large"]["hwm_after_kib"] / 1024
        add(f"peak RSS, {res['data']['bench_big_series']} series query", hwm, f"≤ {TARGETS['rss_200k_mb']} MiB",
            hwm <= TARGETS["rss_200k_mb"], "MiB")
    if "range" in res:
        rg = res["range"]
        what = f"{rg['series']:,} series × {rg['samples']} points range query (summary)"
        r = rg["ratio_median"]
        add(f"median time ÷ direct, {what}", r, f"≤ {TARGETS['range_10k_ratio']}", r <= TARGETS["range_10k_ratio"])
        hwm = rg["hwm_after_kib"] / 1024
        add(f"peak RSS, {what}", hwm, f"≤ {TARGETS['rss_range_mb']} MiB", hwm <= TARGETS["rss_range_mb"], "MiB")
    if "stream" in res:
        g = res["stream"]["hwm_growth_kib"] / 1024
        add(f"peak RSS growth {sz.small_mb} → {sz.large_mb} MiB answer", g,
            f"≤ {TARGETS['rss_flat_mb']} MiB (flat)", g <= TARGETS["rss_flat_mb"], "MiB")
    if "idle_rss_kib" in res:
        idle = res["idle_rss_kib"] / 1024
        add("idle RSS", idle, f"≤ {TARGETS['idle_rss_mb']} MiB", idle <= TARGETS["idle_rss_mb"], "MiB")
    if "auth" in res:
        for c in ("c32", "c1"):
            a = res["auth"][f"auth-{c}"]
            r = a["ratio_rps"] if c == "c32" else 1 / a["ratio_median"]
            what = "throughput" if c == "c32" else "1 ÷ median latency"
            add(f"auth on ÷ off, {what}, {c[1:]} client(s)", r, f"≥ {TARGETS['auth_ratio']}",
                r >= TARGETS["auth_ratio"])
    if "tools_list_bytes" in res:
        kb = res["tools_list_bytes"] / 1024
        add("tools/list response", kb, f"≤ {TARGETS['tools_list_kb']} KiB", kb <= TARGETS["tools_list_kb"], "KiB")
    return t


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------

def us(x: float) -> str:
    return f"{x / 1000:.2f} ms" if x >= 1000 else f"{x:.0f} µs"


def render_markdown(res: dict[str, Any], sz: Sizes) -> str:
    m = res["machine"]
    only = "" if set(res.get("phases", PHASES)) == set(PHASES) else f", only {', '.join(res['phases'])}"
    L = [f"Run of {res['date']} (commit {res['git']}, {res['mode']} run{only}, {res['profile']} build) on "
         f"{m['cpus']} CPUs ({m['cpu_model']}), {m['mem_gib']} GiB RAM, Linux {m['kernel']}, "
         f"{m['prometheus']}; {res['seconds']:.0f} s in all. Medians of {sz.rounds} interleaved rounds; "
         "ratios are medians of the per-round ratios (ours ÷ direct, measured back to back).", ""]
    if "overhead" in res:
        L += ["**Tool-call overhead** (`execute_query` through MCP vs `GET /api/v1/query`; `up` = 1 series, "
              f"`bench_small` = {res['data']['bench_small_series']} series):", "",
              "| query | clients | MCP mode | median ours / direct | ÷ | p99 ours / direct | ÷ | "
              "throughput ours / direct | ÷ | bytes ours / direct |",
              "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, sc in res["overhead"].items():
            q, c = name.rsplit("-c", 1)
            for mode, s in sc.items():
                o, d = s[mode], s["direct"]
                L.append(f"| `{'up' if q == 'up' else 'bench_small'}` | {c} | {mode} | {us(o['median_us'])} / "
                         f"{us(d['median_us'])} | {s['ratio_median']:.2f} | {us(o['p99_us'])} / {us(d['p99_us'])} | "
                         f"{s['ratio_p99']:.2f} | {o['rps']:.0f}/s / {d['rps']:.0f}/s | {s['ratio_rps']:.2f} | "
                         f"{o['bytes']:.0f} / {d['bytes']:.0f} |")
        L.append("")
    if "auth" in res:
        L += ["**Auth cost** (stateless `execute_query up`; on = JWT authn (ES256, JWKS) + group-map tenancy):", "",
              "| clients | median on / off | ÷ | p99 on / off | throughput on / off | ÷ |",
              "|---:|---:|---:|---:|---:|---:|"]
        for name, s in res["auth"].items():
            o, f = s["on"], s["off"]
            L.append(f"| {name.rsplit('-c', 1)[1]} | {us(o['median_us'])} / {us(f['median_us'])} | "
                     f"{s['ratio_median']:.2f} | {us(o['p99_us'])} / {us(f['p99_us'])} | {o['rps']:.0f}/s / "
                     f"{f['rps']:.0f}/s | {s['ratio_rps']:.2f} |")
        L.append("")
    L += ["**Large results and footprint:**", "", "| figure | value |", "|---|---:|"]
    if "large" in res:
        lg = res["large"]
        L += [f"| `bench_big` ({res['data']['bench_big_series']} series) via `execute_query`, default truncation: "
              f"time ours / direct | {us(lg['ours']['median_us'])} / {us(lg['direct']['median_us'])} "
              f"(÷ {lg['ratio_median']:.2f}) |",
              f"| … bytes to the client, ours / direct | {lg['ours']['bytes']:.0f} / {lg['direct']['bytes']:.0f} "
              f"({lg.get('returned')} of {lg.get('total')} series, truncated={lg.get('truncated')}) |",
              f"| … server peak RSS (VmHWM) before / after | {lg['hwm_before_kib'] / 1024:.1f} / "
              f"{lg['hwm_after_kib'] / 1024:.1f} MiB |"]
    if "range" in res:
        rg = res["range"]
        L += [f"| `bench_range` ({rg['series']:,} series × {rg['samples']} points, {rg['step_s']} s step) via "
              "`execute_range_query`, `format=summary`, every series kept: time ours / direct | "
              f"{us(rg['ours']['median_us'])} / {us(rg['direct']['median_us'])} (÷ {rg['ratio_median']:.2f}) |",
              f"| … bytes to the client, ours / direct | {rg['ours']['bytes']:.0f} / {rg['direct']['bytes']:.0f} "
              f"({rg['series']:,} series, {rg['points']:,} points summarized, truncated={rg['truncated']}) |",
              f"| … server peak RSS (VmHWM) before / after | {rg['hwm_before_kib'] / 1024:.1f} / "
              f"{rg['hwm_after_kib'] / 1024:.1f} MiB |"]
    if "stream" in res:
        st = res["stream"]
        for mb in (sz.small_mb, sz.large_mb):
            x = st[f"mb{mb}"]
            L.append(f"| fake upstream, {mb} MiB answer: peak RSS after / time / upstream bytes read | "
                     f"{x['hwm_kib'] / 1024:.1f} MiB / {x['seconds']:.1f} s / "
                     f"{x['upstream_sent_bytes'] / 2**20:.0f} MiB |")
        L.append(f"| peak RSS growth {sz.small_mb} → {sz.large_mb} MiB | {st['hwm_growth_kib'] / 1024:.1f} MiB |")
    if "idle_rss_kib" in res:
        L += [f"| idle RSS (1 s after ready) | {res['idle_rss_kib'] / 1024:.1f} MiB |",
              f"| process start → `/readyz` 200 | {res['ready_ms']:.0f} ms |",
              f"| `tools/list` response ({res['footprint_tools']} tools) | {res['tools_list_bytes']} bytes "
              f"({res['tools_list_bytes'] / 1024:.1f} KiB) |"]
    L += ["", "**Targets:**", "", "| target | measured | goal | met |", "|---|---:|---:|:---:|"]
    for t in res["targets"]:
        L.append(f"| {t['target']} | {t['value']:.2f}{(' ' + t['unit']) if t['unit'] else ''} | {t['goal']} | "
                 f"{'yes' if t['met'] else '**no**'} |")
    if res.get("errors"):
        L += ["", f"**{res['errors']} requests failed** in this run (see target/bench/results.json)."]
    return "\n".join(L) + "\n"


def write_readme(results_md: str) -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    head, _, rest = text.partition("\n## Performance\n")
    # Keep the sections after Performance (Reliability, written by soak.py).
    _, next_heading, tail = rest.partition("\n## ")
    intro = (BENCH / "performance.md").read_text().rstrip("\n")
    section = intro.replace("<!-- results -->", results_md.rstrip("\n"))
    # keep the figures bench/instructions.py wrote between its markers
    begin, end = "<!-- instructions:begin -->", "<!-- instructions:end -->"
    if begin in rest and end in rest and begin in section:
        block = rest.split(begin, 1)[1].split(end, 1)[0]
        section = section.replace(begin + "\n" + end, begin + block + end)
    after = f"\n## {tail.rstrip()}\n" if next_heading else ""
    readme.write_text(head.rstrip("\n") + "\n\n## Performance\n\n" + section + "\n" + after)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, no README update (< 60 s)")
    ap.add_argument("--profile", default="release", help="target/<profile>/ holds the binaries")
    ap.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    ap.add_argument("--only", help="comma-separated phases: " + ", ".join(PHASES) + ", or large "
                    "(= big,range,stream); writes partial.json/.md and never the README")
    ap.add_argument("--binary", help="the server binary (default target/<profile>/mcp-prometheus)")
    ap.add_argument("--loadgen", help="the load driver (default target/<profile>/loadgen)")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite results.md and the README section from target/bench/results.json")
    args = ap.parse_args()
    if args.render_only:
        res = json.loads((OUT / "results.json").read_text())
        md = render_markdown(res, Sizes(**res["sizes"]))
        (OUT / "results.md").write_text(md)
        write_readme(md)
        return 0
    try:
        return run(args)
    finally:
        stop_all()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
