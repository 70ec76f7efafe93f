#!/usr/bin/env python3
"""CPU instructions per tool call (`make bench-instructions`; also run by `make bench`).

Wall-clock figures on these shared 2-core machines move by ±10 % between
runs; instruction counts do not. This script counts the instructions the
server process executes per tool call, under valgrind's callgrind (the
machine has no hardware counters: `perf stat -e instructions` answers
"<not supported>"), next to what Prometheus itself executes for the same
HTTP query, also under callgrind.

Calls measured (one keep-alive connection, calls back to back):
  up        execute_query {query: up}                 GET /api/v1/query
  instant   execute_query {query: bench_small}        (1,000 series)
  range     execute_range_query {query: bench_small, 120 steps},
            format=summary (the default) and format=samples
                                                      GET /api/v1/query_range
each in the 2026-07-28 stateless mode (JSON answers, no session) and in a
2025-11-25 session (initialize once, outside the count; SSE answers).

How: the release binary runs under `valgrind --tool=callgrind`; after a
warm-up, `callgrind_control -z` zeroes the counters, N calls are sent,
`callgrind_control -d` dumps, and the dump's `summary:` (Ir, all threads) is
divided by N. Each figure is the median of ROUNDS such rounds (the spread is
in the JSON). Startup, the warm-up, initialize and the client are not
counted. Prometheus (Go) runs under callgrind the same way, with
GODEBUG=asyncpreemptoff=1 and no scrape jobs, so its count is its HTTP
handling, query engine and JSON encoding (plus a little Go runtime
background: GC, timers).

Data: its own block (`promtool tsdb create-blocks-from openmetrics`, cached
in target/bench/data/instr-*): `bench_small`, 1,000 series x 120 samples
15 s apart, and one `up` series, queried at the block's last timestamp (the
server passes `time` through), so both sides answer from the same block and
Prometheus needs no scrape job.

Baseline (--baseline REV; make bench and make bench-instructions pass
c999e7d, the tree when issue 15 was filed): REV's release binary, built once
(`git archive REV` into target/bench/baseline-src, `cargo build --release
--locked` into target/bench/baseline-target, seeded with hard links to
target/release's dependencies; the binary cached in
target/bench/baseline-<hash>/, rebuilt only when missing), is measured in the
same run exactly like the current one: same upstream Prometheus, same data,
same cases and N, both modes. An argument REV's tool schema does not declare
is left out of its calls (c999e7d has no `format` on execute_range_query
and refuses unknown arguments; its range answers are every sample), and the
table says so. Its answers are checked whole like ours (no error, nothing
truncated, every series and point). --baseline none skips it.

Writes target/bench/instructions.json and .md, the callgrind profiles in
target/bench/instructions-run/ (`callgrind_annotate FILE`), and the README
block between <!-- instructions:begin --> and <!-- instructions:end -->.

usage: bench/instructions.py [--profile release] [--binary PATH] [--baseline REV|none] [--quick]
                             [--only CASES] [--no-readme] [--no-prometheus] [--render-only]
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench as B  # noqa: E402  (processes, ports, server config, README helpers)
import callgrind_breakdown as CB  # noqa: E402

REPO, OUT, log = B.REPO, B.OUT, B.log
WORK = OUT / "instructions-run"
SERIES, SAMPLES, STEP = 1000, 120, 15
LEGACY = "2025-11-25"
# today's main when issue 15 ("half the instructions per call") was filed
ISSUE_BASELINE = "c999e7d"
BEGIN, END = "<!-- instructions:begin -->", "<!-- instructions:end -->"

# (name, N calls per round for the server, warm-up calls, N for Prometheus):
# Go's garbage collector (tens of millions of instructions a cycle) runs every
# few calls of the heavy queries and every few hundred `up`s, so Prometheus
# needs more calls per round for a steady mean
CASES = [("up", 200, 20, 1000), ("instant", 10, 2, 16), ("range_summary", 4, 1, 10), ("range_samples", 4, 1, 10)]
QUICK = [("up", 40, 5, 40), ("instant", 3, 1, 4), ("range_summary", 2, 1, 3), ("range_samples", 2, 1, 3)]


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------

def prepare_block() -> tuple[Path, int]:
    cache = OUT / "data" / f"instr-{SERIES}x{SAMPLES}"
    stamp = cache / "stamp.json"
    if stamp.exists():
        s = json.loads(stamp.read_text())
        if time.time() - s["end"] < 3 * 86400 and any(cache.glob("01*")):
            return cache, s["end"]
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    end = int(time.time()) - 600
    end -= end % STEP
    times = [end - STEP * (SAMPLES - 1 - k) for k in range(SAMPLES)]
    om = cache.with_suffix(".om")
    with open(om, "w", buffering=1 << 20) as f:
        f.write("# HELP up Synthetic up.\n# TYPE up gauge\n")
        f.writelines(f'up{{job="bench",instance="127.0.0.1:9090"}} 1 {t}\n' for t in times)
        f.write("# HELP bench_small Synthetic series for make bench.\n# TYPE bench_small gauge\n")
        for i in range(SERIES):
            labels = (f'bench_small{{job="bench",instance="host-{i // 100:05d}:9100",'
                      f'zone="zone-{i % 7}",shard="{i % 128:03d}",id="{i:06d}"}}')
            # varied values with decimals, as real gauges have
            f.write("".join(f"{labels} {((i * 37 + k * 11) % 1000) / 8} {t}\n" for k, t in enumerate(times)))
        f.write("# EOF\n")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, cache], check=True,
                   stdout=subprocess.DEVNULL)
    om.unlink()
    stamp.write_text(json.dumps({"end": end}))
    log(f"created block {cache} (end {end})")
    return cache, end


def start_prometheus(name: str, blocks: Path, prefix: list[str], env: dict[str, str]) -> tuple[B.Proc, str]:
    port = B.free_port()
    data = WORK / f"{name}-data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    for b in blocks.glob("01*"):
        shutil.copytree(b, data / b.name)
    cfg = WORK / f"{name}.yml"
    cfg.write_text("global:\n  scrape_interval: 1h\n  evaluation_interval: 1h\n")  # no jobs: no background work
    p = B.Proc(name, prefix + ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                               f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=30d",
                               "--log.level=warn"], WORK / "logs", env)
    url = f"http://127.0.0.1:{port}"
    B.wait_until(f"{name} /-/ready", lambda: B.http("GET", url + "/-/ready", timeout=5)[0] == 200,
                 timeout=180, interval=0.5, proc=p)
    return p, url


def callgrind(name: str) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={WORK / 'profiles' / name}.%p.out"]


# --------------------------------------------------------------------------
# the baseline: another revision's release binary, built once
# --------------------------------------------------------------------------

# names of the workspace's own artifacts in a target dir (the server, its
# layers crate, the load driver, the OAuth test client)
WORKSPACE_ARTIFACT = re.compile(r"^(lib)?(mcp[-_]prometheus|loadgen|rmcp[-_]oauth[-_]client)")


def seed_target(target: Path) -> None:
    """Seed a fresh target dir for the baseline with hard links to
    target/release's artifacts: the dependencies are mostly the same crates
    at the same versions and features, so cargo finds them fresh. The
    workspace's own artifacts are removed from the copy (the baseline's
    crates have the same names and relative paths, so cargo would rewrite
    them in place, through the links, into target/release), as is the lock."""
    src = REPO / "target" / "release"
    if not (src / "deps").is_dir():
        return
    tmp = target.with_name(target.name + ".seeding")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    subprocess.run(["cp", "-al", src, tmp / "release"], check=True)
    rel = tmp / "release"
    (rel / ".cargo-lock").unlink(missing_ok=True)
    for d in (rel / "incremental", rel / "examples"):
        shutil.rmtree(d, ignore_errors=True)
    for d in (rel, rel / "deps", rel / ".fingerprint", rel / "build"):
        for f in list(d.iterdir()) if d.is_dir() else []:
            if WORKSPACE_ARTIFACT.match(f.name):
                shutil.rmtree(f) if f.is_dir() and not f.is_symlink() else f.unlink()
    tmp.rename(target)


def baseline_binary(rev: str) -> dict[str, Any]:
    """REV's release server binary, cached in target/bench/baseline-<hash>/
    (built only when missing): REV's tree from `git archive` into
    target/bench/baseline-src, built with `cargo build --release --locked`
    into target/bench/baseline-target. The archive has no .git, so
    MCP_PROMETHEUS_REVISION gives a build.rs the revision (trees before
    build.rs ignore it)."""
    r = subprocess.run(["git", "-C", REPO, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"--baseline {rev}: not a commit of this repository")
    full = r.stdout.strip()
    out = OUT / f"baseline-{full[:7]}"
    binary, meta = out / "mcp-prometheus", out / "build.json"
    if binary.exists() and meta.exists():
        return {**json.loads(meta.read_text()), "binary": str(binary), "build_seconds": None}
    src, target = OUT / "baseline-src", OUT / "baseline-target"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    archive = subprocess.Popen(["git", "-C", REPO, "archive", "--format=tar", full], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", src], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {full} failed")
    if not target.exists():
        seed_target(target)
    out.mkdir(parents=True, exist_ok=True)
    build_log = out / "build.log"
    log(f"building the baseline {full[:7]} (release) in {src}; log {build_log}")
    t0 = time.monotonic()
    with open(build_log, "wb") as f:
        b = subprocess.run(["cargo", "build", "--release", "--locked", "-p", "mcp-prometheus"], cwd=src,
                           stdout=f, stderr=subprocess.STDOUT,
                           env={**os.environ, "CARGO_TARGET_DIR": str(target), "MCP_PROMETHEUS_REVISION": full})
    secs = time.monotonic() - t0
    if b.returncode != 0:
        raise SystemExit(f"baseline build failed ({build_log}):\n" + build_log.read_text()[-3000:])
    shutil.copy2(target / "release" / "mcp-prometheus", binary)
    subject = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%cs %s", full], capture_output=True,
                             text=True).stdout.strip()
    info = {"rev": full[:7], "full": full, "subject": subject, "built_seconds": round(secs)}
    meta.write_text(json.dumps(info, indent=1))
    log(f"baseline {full[:7]} built in {secs:.0f} s: {binary}")
    return {**info, "binary": str(binary), "build_seconds": secs}


# --------------------------------------------------------------------------
# calls
# --------------------------------------------------------------------------

class Conn:
    """One keep-alive HTTP/1.1 connection (http.client) to the server or to Prometheus."""

    def __init__(self, url: str):
        u = urllib.parse.urlsplit(url)
        self.path = u.path
        self.c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)

    def get(self, path_qs: str) -> tuple[int, dict[str, str], bytes]:
        self.c.request("GET", path_qs)
        r = self.c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()

    def post(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **headers}
        self.c.request("POST", self.path, json.dumps(body).encode(), h)
        r = self.c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def rpc_result(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    if headers.get("content-type", "").startswith("text/event-stream"):
        for line in body.decode().splitlines():
            if line.startswith("data:") and '"id"' in line:
                return json.loads(line[5:])
        raise RuntimeError(f"no JSON-RPC answer in the SSE stream: {body[:300]!r}")
    return json.loads(body)


class McpClient:
    def __init__(self, url: str, mode: str):
        self.conn, self.mode, self.session, self.id = Conn(url), mode, None, 0
        if mode == "legacy":
            st, h, body = self.conn.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "instr", "version": "1"}}},
                {"MCP-Protocol-Version": LEGACY})
            assert st == 200, (st, body[:300])
            self.session = h["mcp-session-id"]
            st, _, body = self.conn.post({"jsonrpc": "2.0", "method": "notifications/initialized"},
                                         self.headers())
            assert st in (200, 202), (st, body[:300])

    def headers(self, tool: str | None = None, method: str = "tools/call") -> dict[str, str]:
        if self.mode == "legacy":
            return {"MCP-Protocol-Version": LEGACY, "Mcp-Session-Id": self.session or ""}
        h = {"MCP-Protocol-Version": B.MODERN, "Mcp-Method": method}
        return {**h, "Mcp-Name": tool} if tool is not None else h

    def request(self, method: str, params: dict[str, Any], tool: str | None = None) -> tuple[int, bytes, dict[str, str]]:
        self.id += 1
        if self.mode == "stateless":
            params = {**params, "_meta": B.META}
        st, h, body = self.conn.post({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params},
                                     self.headers(tool, method))
        return st, body, h

    def call(self, tool: str, arguments: dict[str, Any]) -> tuple[int, bytes, dict[str, str]]:
        return self.request("tools/call", {"name": tool, "arguments": arguments}, tool or "")

    def tool_arguments(self) -> dict[str, set[str]]:
        """The argument names each tool's input schema declares (tools/list)."""
        out: dict[str, set[str]] = {}
        cursor = None
        while True:
            st, body, h = self.request("tools/list", {"cursor": cursor} if cursor else {})
            assert st == 200, ("tools/list", st, body[:300])
            r = rpc_result(h, body)["result"]
            for t in r["tools"]:
                out[t["name"]] = set(t.get("inputSchema", {}).get("properties", {}))
            cursor = r.get("nextCursor")
            if not cursor:
                return out

    def close(self) -> None:
        if self.session:
            self.conn.c.request("DELETE", self.conn.path, headers=self.headers())
            self.conn.c.getresponse().read()
        self.conn.c.close()


def tool_calls(t: int) -> dict[str, tuple[str, dict[str, Any]]]:
    start = t - STEP * (SAMPLES - 1)
    rng = {"query": "bench_small", "start": start, "end": t, "step": f"{STEP}s", "limit": SERIES}
    return {
        "up": ("execute_query", {"query": "up", "time": t}),
        "instant": ("execute_query", {"query": "bench_small", "time": t, "limit": SERIES}),
        "range_summary": ("execute_range_query", {**rng, "format": "summary"}),
        "range_samples": ("execute_range_query", {**rng, "format": "samples"}),
    }


def direct_paths(t: int) -> dict[str, str]:
    start = t - STEP * (SAMPLES - 1)
    q = urllib.parse.urlencode
    rng = "/api/v1/query_range?" + q({"query": "bench_small", "start": start, "end": t, "step": STEP})
    return {"up": "/api/v1/query?" + q({"query": "up", "time": t}),
            "instant": "/api/v1/query?" + q({"query": "bench_small", "time": t}),
            "range_summary": rng, "range_samples": rng}


# --------------------------------------------------------------------------
# counting
# --------------------------------------------------------------------------

def ctl(pid: int, *args: str) -> None:
    r = subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or "OK" not in r.stdout:
        raise RuntimeError(f"callgrind_control {' '.join(args)} {pid}: {r.stdout}{r.stderr}")


def dumps(name: str, pid: int) -> set[Path]:
    return set((WORK / "profiles").glob(f"{name}.{pid}.out.*"))


def count(proc: B.Proc, name: str, label: str, n: int, one: Any, settle: float) -> tuple[int, Path]:
    """Zero the counters, make n calls (one() each), let the process finish
    its trailing work (settle seconds), dump; returns (Ir, dump file)."""
    time.sleep(settle)
    ctl(proc.pid, "-z")
    for _ in range(n):
        one()
    time.sleep(settle)
    before = dumps(name, proc.pid)
    ctl(proc.pid, "-d", label)
    new = B.wait_until("callgrind dump", lambda: dumps(name, proc.pid) - before, timeout=60)
    f = max(new, key=lambda p: int(p.name.rsplit(".", 1)[1]))
    m = re.search(r"^summary:\s+(\d+)", f.read_text(errors="replace"), re.M)
    if not m:
        raise RuntimeError(f"no summary in {f}")
    return int(m.group(1)), f


def measure(proc: B.Proc, name: str, label: str, n: int, rounds: int, one: Any, settle: float) -> dict[str, Any]:
    per, files, secs = [], [], []
    for r in range(rounds):
        t0 = time.monotonic()
        ir, f = count(proc, name, f"{label}-r{r}", n, one, settle)
        secs.append(time.monotonic() - t0)
        per.append(ir / n)
        files.append(f)
    keep = WORK / "profiles" / f"{name}-{label}.callgrind.out"
    # the median round's profile, under a stable name, for callgrind_annotate
    shutil.copy(sorted(zip(per, files))[len(per) // 2][1], keep)
    med = B.med(per)
    log(f"  {name} {label}: {med:,.0f} Ir/call (rounds {', '.join(f'{x:,.0f}' for x in per)}; "
        f"{n} calls, {B.med(secs):.1f} s/round)")
    return {"ir_per_call": med, "rounds": per, "n": n, "profile": str(keep.relative_to(REPO))}


def check_answer(what: str, case: str, status: int, msg: dict[str, Any]) -> None:
    """The answer is whole: not an error, not cut, every series (and for
    the range cases every point, as samples or as each series' count)."""
    r = msg.get("result") or {}
    assert status == 200 and r and not r.get("isError"), f"{what}: {status} {json.dumps(msg)[:500]}"
    sc = r.get("structuredContent") or {}
    assert sc.get("truncated") is False, f"{what}: truncated answer ({json.dumps(sc)[:300]})"
    data = sc.get("data") or {}
    rows = data.get("series", data.get("result"))
    want = 1 if case == "up" else SERIES
    assert isinstance(rows, list) and len(rows) == want, f"{what}: {len(rows or [])} series, not {want}"
    if case.startswith("range"):
        points = sum(len(x["values"]) if "values" in x else x["points"] for x in rows)
        assert points == SERIES * SAMPLES, f"{what}: {points} points, not {SERIES * SAMPLES}"


def measure_server(name: str, binary: Path, prom_url: str, cases: list[tuple[str, int, int, int]],
                   calls: dict[str, tuple[str, dict[str, Any]]], rounds: int
                   ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """binary under callgrind, upstream prom_url: every case in both modes.
    An argument the binary's tool schema does not declare is left out of
    its calls (an older tree refuses unknown arguments): returns the counts
    by mode and case, the answer bytes by case and mode, and per case the
    arguments left out and whether the call is the same as an earlier
    case's (then it is measured once)."""
    port, obs = B.free_port(), B.free_port()
    cfg = WORK / f"{name}.toml"
    # the truncate budget is raised so that every answer passes whole (1,000
    # series x 120 samples as text and as structuredContent)
    cfg.write_text(B.server_config(prom_url, port, obs, {"truncate": {
        "enabled": True, "max_bytes": 40_000_000, "max_series": 5000, "hard_ceiling_bytes": 50_000_000}}))
    srv = B.Proc(name, callgrind(name) + [binary, "serve", "--config", cfg], WORK / "logs")
    B.wait_until(f"{name} /readyz", lambda: B.readyz_ok(obs), timeout=120, interval=0.2, proc=srv)
    mcp_url = f"http://127.0.0.1:{port}/mcp"
    lister = McpClient(mcp_url, "stateless")
    declared = lister.tool_arguments()
    lister.close()
    adapted: dict[str, Any] = {}
    own: dict[str, tuple[str, dict[str, Any]]] = {}
    for case, *_ in cases:
        tool, arguments = calls[case]
        left_out = sorted(set(arguments) - declared[tool])
        own[case] = (tool, {k: v for k, v in arguments.items() if k not in left_out})
        same = next((c for c in own if c != case and own[c] == own[case]), None)
        adapted[case] = {"left_out": left_out, "same_call_as": same}
    counts: dict[str, Any] = {}
    sizes: dict[str, Any] = {}
    for mode in ("stateless", "legacy"):
        client = McpClient(mcp_url, mode)
        counts[mode] = {}
        for case, n, warm, _ in cases:
            tool, arguments = own[case]
            if adapted[case]["same_call_as"] in counts[mode]:
                counts[mode][case] = counts[mode][adapted[case]["same_call_as"]]
                sizes[case] = {**sizes.get(case, {}), mode: sizes[adapted[case]["same_call_as"]][mode]}
                continue
            st, body, h = client.call(tool, arguments)
            check_answer(f"{name} {case} {mode}", case, st, rpc_result(h, body))
            sizes.setdefault(case, {})[mode] = len(body)
            for _ in range(warm - 1):
                client.call(tool, arguments)

            def one(tool: str = tool, arguments: dict[str, Any] = arguments) -> None:
                st, body, _ = client.call(tool, arguments)
                if st != 200:
                    raise RuntimeError(f"{case} {mode}: HTTP {st} {body[:300]!r}")

            counts[mode][case] = measure(srv, name, f"{mode}-{case}", n, rounds, one, settle=0.5)
        client.close()
    srv.stop()
    return counts, sizes, adapted


def run(args: argparse.Namespace) -> dict[str, Any]:
    global WORK
    cases = QUICK if args.quick else CASES
    if args.quick or args.only:  # keep the last full run's profiles
        WORK = OUT / "instructions-run-quick"
    if args.only:
        cases = [c for c in cases if c[0] in args.only.split(",")]
    rounds = 2 if args.quick else 3
    binary = Path(args.binary).resolve() if args.binary else REPO / "target" / args.profile / "mcp-prometheus"
    if not binary.exists():
        raise SystemExit(f"{binary} missing: build it first (make bench-instructions does)")
    for tool in ("valgrind", "callgrind_control", "prometheus", "promtool"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} missing (apt-get install valgrind prometheus)")
    base = None if args.baseline.lower() == "none" else baseline_binary(args.baseline)
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    (WORK / "profiles").mkdir()
    t_all = time.monotonic()
    blocks, t = prepare_block()
    calls, paths = tool_calls(t), direct_paths(t)
    res: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip(),
        "profile": args.profile, "binary": str(binary), "machine": B.machine(), "rounds": rounds,
        "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(),
        "cases": {c: {"n": n, "warmup": w, "n_prometheus": np_} for c, n, w, np_ in cases}, "series": SERIES, "samples": SAMPLES,
        "time": t, "server": {}, "prometheus": {}, "bytes": {},
    }

    # ---- the server under callgrind, its upstream a plain Prometheus; then
    # the baseline binary the same way against the same upstream
    prom, prom_url = start_prometheus("prometheus-upstream", blocks, [], {})
    n_small = len(B.prom_query(prom_url, "bench_small", t))
    assert n_small == SERIES, f"bench_small has {n_small} series at {t}"
    t0 = time.monotonic()
    res["server"], res["bytes"], adapted = measure_server("server", binary, prom_url, cases, calls, rounds)
    res["phase_seconds"] = {"server": round(time.monotonic() - t0)}
    left_out = {c: a["left_out"] for c, a in adapted.items() if a["left_out"]}
    assert not left_out, f"{binary} does not declare the arguments {left_out}"
    if base is not None:
        t0 = time.monotonic()
        bs, bb, adapted = measure_server("baseline", Path(base["binary"]), prom_url, cases, calls, rounds)
        res["phase_seconds"]["baseline"] = round(time.monotonic() - t0)
        res["baseline"] = {k: v for k, v in base.items() if k != "binary"}
        res["baseline"].update({"server": bs, "bytes": bb, "calls": adapted})
    prom.stop()

    # ---- Prometheus under callgrind, the same HTTP queries
    if not args.no_prometheus:
        t0 = time.monotonic()
        prom, prom_url = start_prometheus("prometheus", blocks, callgrind("prometheus"),
                                          {"GODEBUG": "asyncpreemptoff=1"})
        conn = Conn(prom_url)
        seen: dict[str, dict[str, Any]] = {}
        for case, _, warm, n in cases:
            path = paths[case]
            if path in seen:  # range_samples: the same HTTP query as range_summary
                res["prometheus"][case] = seen[path]
                continue
            st, _, body = conn.get(path)
            assert st == 200, (case, st, body[:300])
            res["bytes"].setdefault(case, {})["prometheus"] = len(body)
            for _ in range(warm - 1):
                conn.get(path)

            def one(path: str = path) -> None:
                st, _, body = conn.get(path)
                if st != 200:
                    raise RuntimeError(f"prometheus {path}: HTTP {st} {body[:300]!r}")

            res["prometheus"][case] = seen[path] = measure(prom, "prometheus", case, n, rounds, one, settle=0.5)
        for case in res["bytes"]:
            res["bytes"][case].setdefault("prometheus", res["bytes"].get("range_summary", {}).get("prometheus"))
        prom.stop()
        res["phase_seconds"]["prometheus"] = round(time.monotonic() - t0)
    # where the server's instructions go, by component (self cost)
    res["breakdown"] = {}
    for case, n, _, _ in cases:
        prof = res["server"]["stateless"][case]
        res["breakdown"][case] = CB.breakdown(str(REPO / prof["profile"]), n, top=25)
    res["seconds"] = time.monotonic() - t_all
    return res


# --------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------

LABELS = {
    "up": "`up` (1 series)",
    "instant": f"`bench_small` instant ({SERIES:,} series)",
    "range_summary": f"`bench_small` range, {SERIES:,} × {SAMPLES} points, `format=summary` (default)",
    "range_samples": f"`bench_small` range, {SERIES:,} × {SAMPLES} points, `format=samples`",
}


def fmt_ir(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 1e9:
        return f"{x / 1e9:.2f} G"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    return f"{x / 1e3:.0f} k"


def base_label(case: str, rev: str, call: dict[str, Any]) -> str:
    """The row's label when the baseline's call differs from ours (an
    argument it does not have)."""
    if "format" in call["left_out"] and case in ("range_summary", "range_samples"):
        pts = f"`bench_small` range, {SERIES:,} × {SAMPLES} points"
        if case == "range_summary":
            return f"{pts}, default answer: {rev} every sample (it has no `format`), now `format=summary`"
        return f"{pts}, samples: {rev} its default answer (no `format`), now `format=samples`"
    if call["left_out"]:
        return f"{LABELS[case]} ({rev} called without {', '.join(f'`{a}`' for a in call['left_out'])})"
    return LABELS[case]


def render_markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    base = res.get("baseline")
    L = [f"Instructions per tool call, run of {res['date']} (commit {res['git']}, {res['profile']} build, "
         f"{res['valgrind']} callgrind; {m['prometheus']}); {res['seconds']:.0f} s in all. Median of "
         f"{res['rounds']} rounds of N calls each (N per row), one keep-alive connection, warm-up and "
         "`initialize` not counted; Prometheus is counted the same way for the same HTTP query (in "
         "brackets the range over rounds where it exceeds 5 %: Go's garbage collector falls into some "
         "rounds and not others; the server's rounds agree within 1 %)."]
    if base:
        ps = res.get("phase_seconds", {})
        if ps.get("baseline"):
            L[0] = L[0].replace(" s in all.", f" s in all, {ps['baseline']} s of them the baseline's.")
        issue = base["full"].startswith(ISSUE_BASELINE)
        L[0] += (f" {base['rev']} ({base['subject'][:10]}{', the tree when issue 15 was filed' if issue else ''}) "
                 "is the baseline: its release binary, built with the same toolchain, runs in the same run the "
                 "same way against the same upstream and data, N calls as ours"
                 + (f"; {res['git']} ÷ {base['rev']} is the issue's measure (target ≤ 0.50)." if issue else "."))
        if any("format" in c["left_out"] for c in base["calls"].values()):
            L[0] += (f" {base['rev']} has no `format` argument (it refuses unknown arguments) and its range "
                     "answers are every sample: it is called without `format`"
                     + (", one measurement for both range rows." if any(c["same_call_as"] for c in
                                                                         base["calls"].values()) else "."))
    L.append("")
    cur = res["git"]
    if base:
        L += [f"| call | N (ours / Prometheus) | stateless {base['rev']} | stateless {cur} | ÷ | "
              f"legacy {base['rev']} | legacy {cur} | ÷ | Prometheus | stateless {cur} ÷ Prometheus | "
              f"legacy {cur} ÷ Prometheus | bytes {cur} stateless / legacy / Prometheus | "
              f"bytes {base['rev']} stateless |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    else:
        L += ["| call | N (ours / Prometheus) | stateless | legacy | Prometheus | stateless ÷ Prometheus | "
              "legacy ÷ Prometheus | bytes stateless / legacy / Prometheus |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for case, c in res["cases"].items():
        s = res["server"].get("stateless", {}).get(case, {}).get("ir_per_call")
        g = res["server"].get("legacy", {}).get(case, {}).get("ir_per_call")
        pr = res["prometheus"].get(case, {})
        p = pr.get("ir_per_call")
        spread = (f" ({fmt_ir(min(pr['rounds']))}–{fmt_ir(max(pr['rounds']))})"
                  if pr.get("rounds") and max(pr["rounds"]) > 1.05 * min(pr["rounds"]) else "")
        b = res["bytes"].get(case, {})
        ratio = (lambda x, y: f"{x / y:.2f}" if x and y else "–")
        n = f"{c['n']} / {c.get('n_prometheus', c['n'])}"
        ours = (f"{fmt_ir(p)}{spread} | {ratio(s, p)} | {ratio(g, p)} | "
                f"{b.get('stateless', '–')} / {b.get('legacy', '–')} / {b.get('prometheus', '–')} |")
        if base:
            bs = base["server"].get("stateless", {}).get(case, {}).get("ir_per_call")
            bg = base["server"].get("legacy", {}).get(case, {}).get("ir_per_call")
            L.append(f"| {base_label(case, base['rev'], base['calls'][case])} | {n} | {fmt_ir(bs)} | {fmt_ir(s)} | "
                     f"{ratio(s, bs)} | {fmt_ir(bg)} | {fmt_ir(g)} | {ratio(g, bg)} | {ours} "
                     f"{base['bytes'].get(case, {}).get('stateless', '–')} |")
        else:
            L.append(f"| {LABELS[case]} | {n} | {fmt_ir(s)} | {fmt_ir(g)} | {ours}")
    bd = res.get("breakdown")
    if bd:
        cases = list(bd)
        comps: dict[str, dict[str, float]] = {}
        for case in cases:
            t = bd[case]["total"]
            for name, ir in bd[case]["components"]:
                comps.setdefault(name, {})[case] = 100 * ir / t
        order = sorted(comps, key=lambda k: -max(comps[k].values()))
        L += ["", f"Where the server's instructions go ({cur + ', ' if base else ''}stateless; self cost by "
              "component, % of the call's "
              "instructions; `python3 bench/callgrind_breakdown.py PROFILE N` for the functions):", "",
              "| component | " + " | ".join(LABELS[c].split(",")[0].split(" (")[0] + ("" if c in ("up", "instant")
                                                                                       else " " + c.split("_")[1])
                                          for c in cases) + " |",
              "|---|" + "---:|" * len(cases)]
        for name in order:
            if max(comps[name].values()) < 1.0:
                continue
            L.append(f"| {name} | " + " | ".join(f"{comps[name].get(c, 0):.1f} %" for c in cases) + " |")
    return "\n".join(L) + "\n"


def write_readme(md: str) -> None:
    readme = REPO / "README.md"
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"README.md has no {BEGIN} … {END} block (bench/performance.md places it)")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + BEGIN + "\n" + md.rstrip("\n") + "\n" + END + tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="release", help="target/<profile>/ holds the binary")
    ap.add_argument("--binary", help="the server binary to measure (default target/<profile>/mcp-prometheus); "
                    "the figures are labelled with the repository's HEAD all the same")
    ap.add_argument("--baseline", default="none", metavar="REV",
                    help="also measure REV's release binary (built once into target/bench/baseline-<hash>/), "
                    "the same way in the same run; make bench passes c999e7d; none (default) skips it")
    ap.add_argument("--quick", action="store_true", help="fewer calls and rounds; no README update")
    ap.add_argument("--no-readme", action="store_true", help="do not touch README.md")
    ap.add_argument("--no-prometheus", action="store_true", help="skip the Prometheus side")
    ap.add_argument("--only", help="comma-separated cases (up,instant,range_summary,range_samples); "
                    "implies --no-readme")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite instructions.md and the README block from target/bench/instructions.json")
    args = ap.parse_args()
    if args.render_only:
        res = json.loads((OUT / "instructions.json").read_text())
        if "breakdown" not in res:
            res["breakdown"] = {case: CB.breakdown(str(REPO / p["profile"]), p["n"], top=25)
                                for case, p in res["server"]["stateless"].items()}
            (OUT / "instructions.json").write_text(json.dumps(res, indent=1))
    else:
        try:
            res = run(args)
        finally:
            B.stop_all()
        args.no_readme = args.no_readme or bool(args.only)
        name = "instructions-quick" if args.quick or args.only else "instructions"
        (OUT / f"{name}.json").write_text(json.dumps(res, indent=1))
    md = render_markdown(res)
    if not (args.quick or args.only):
        (OUT / "instructions.md").write_text(md)
        if not args.no_readme:
            write_readme(md)
            log("README.md block instructions updated")
    print(md)
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
