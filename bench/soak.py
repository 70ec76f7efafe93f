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

# The run is split by concern: soak_common (paths, limits, log), soak_load
# (the MCP clients and their mixes), soak_server (Prometheus, the server),
# soak_phases (the soak, faults a and b), soak_oauth (faults c and d) and
# soak_report (criteria, results.md, README).

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from soak_common import (B, BENCH, FAULT_MODES, FAULT_TIMEOUT_S, LOCAL_TIMEOUT_S, OUT, REPO, SLOW_S,
                         log)
from soak_load import OK, OUTCOME, Loop, call_once, load_mix
from soak_oauth import oauth_faults
from soak_phases import fault_prometheus, fault_upstreams, soak_phase
from soak_report import criteria, render_markdown, write_readme
from soak_server import Prometheus, start_server


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
