#!/usr/bin/env python3
"""Where the server's CPU goes on the tool-call benchmark (bench/profile.sh).

Starts Prometheus (no synthetic data needed) and the release server (the
overhead config of bench.py; `auth` adds JWT authn + group-map tenancy),
drives stateless `execute_query up` at 32 clients with loadgen, and samples
the server with `perf record` (flat profile: the release build has symbols
but no debug info) while the load runs. Also counts syscalls with
`strace -c` on a second pass when strace exists.

Output: target/bench/profile/report-<mode>.txt (perf report by DSO and
symbol, top entries), and the perf.data.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402


def main() -> int:
    mode = "auth" if "auth" in sys.argv[1:] else "plain"
    seconds = 8
    out = bench.OUT / "profile"
    work = out / "run"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    binary, lg = bench.REPO / "target/release/mcp-prometheus", bench.REPO / "target/release/loadgen"
    empty = work / "no-blocks"
    empty.mkdir()
    try:
        prom, prom_url = bench.start_prometheus(work, empty)
        bench.wait_until("up has a sample", lambda: bench.prom_query(prom_url, "up"), timeout=30, interval=0.2)
        layers: dict = {"truncate": {"enabled": True, "max_bytes": 4_000_000, "max_series": 5000,
                                     "hard_ceiling_bytes": 5_000_000}}
        headers = {}
        port = bench.free_port()
        holder: dict[str, bytes] = {}
        if mode == "auth":
            _, jwks_url = bench.serve_jwks(holder)
            subprocess.run([lg, "mint", work / "jwt", jwks_url, f"http://127.0.0.1:{port}/mcp", "bench", "3600"],
                           check=True)
            holder["jwks"] = (work / "jwt" / "jwks.json").read_bytes()
            headers = {"Authorization": "Bearer " + (work / "jwt" / "token").read_text()}
            layers["authn"] = {"enabled": True, "issuers": [{"issuer": jwks_url, "jwks_url": jwks_url + "/jwks",
                                                             "algorithms": ["ES256"], "groups_claim": "groups",
                                                             "allow_private_urls": True}]}
            layers["tenancy"] = {"enabled": True, "mode": "group-map", "groups": {"bench": ["tenant-a"]}}
        srv = bench.start_server(binary, work, mode, prom_url, layers, port=port)
        spec = work / "spec.json"
        spec.write_text(json.dumps({"scenarios": [{
            "name": "profile", "rounds": 1, "concurrency": 32, "requests": 10_000_000, "warmup": 320,
            "max_seconds": seconds + 4, "targets": [{"name": "stateless", "kind": "mcp-stateless", "url": srv.mcp,
                                                     "tool": "execute_query", "arguments": {"query": "up"},
                                                     "headers": headers}]}]}))
        load = subprocess.Popen([lg, "run", spec], stdout=subprocess.DEVNULL, stderr=open(work / "logs/lg.log", "wb"))
        time.sleep(2)
        data = out / f"perf-{mode}.data"
        subprocess.run(["perf", "record", "-F", "999", "-o", data, "-p", str(srv.proc.pid), "--", "sleep",
                        str(seconds)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        load.wait()
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio",
                              "--percent-limit", "0.7"], capture_output=True, text=True).stdout
        dso = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso", "--stdio"],
                             capture_output=True, text=True).stdout
        report = out / f"report-{mode}.txt"
        clean = "\n".join(re.sub(r"\s+-\s+-\s*$", "", ln).rstrip() for ln in (dso + "\n\n" + rep).splitlines())
        report.write_text(clean + "\n")
        print((work / "logs/lg.log").read_text())
        print(f"wrote {report}")
        return 0
    finally:
        bench.stop_all()


if __name__ == "__main__":
    sys.exit(main())
