#!/usr/bin/env python3
"""Where a callgrind profile's instructions go, by component.

usage: bench/callgrind_breakdown.py PROFILE [CALLS] [--top N]

Reads `callgrind_annotate` (exclusive costs, every function) and sums the
self cost of each function into a component by its symbol (first match of
COMPONENTS wins), then prints the components and the top functions, per
call when CALLS is given. Exclusive costs add up to the total, so the
shares are a partition; what a component *causes* (its callees' malloc,
memcpy) shows up under malloc/memcpy instead: see `callgrind_annotate
--inclusive=yes` for that. Used by bench/instructions.py on its profiles.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

# (component, regex on "file:function [object]"), first match wins
COMPONENTS = [
    ("malloc/free (mimalloc; glibc before)", r"malloc\.c:|arena\.c:|__rust_alloc|__rust_dealloc|__rust_realloc|__rdl_|__rg_|"
     r"\bmi_|_mi_|mimalloc"),
    ("memcpy/memmove/memset", r"memmove|memcpy|memset|memcmp|strlen|memchr"),
    ("kernel entry (syscalls)", r"sysdeps/unix/sysv/linux"),
    ("serde_json", r"serde_json::"),
    ("serde (derive, Content buffering)", r"serde::|serde_core::|_::<impl serde"),
    ("rmcp", r"rmcp::"),
    ("hyper / http / h1", r"hyper::|hyper_util::|http::|httparse::|h2::"),
    ("tokio (scheduler, tasks, channels)", r"tokio::|tokio_util::|mio::|futures_util::|futures_core::|futures_channel::"),
    ("tower / axum / tower-http", r"tower::|tower_http::|axum::|axum_core::"),
    ("tracing / metrics", r"tracing::|tracing_core::|tracing_subscriber::|opentelemetry|metrics::|prometheus_client::"),
    ("our layers (mcp_prometheus_layers)", r"mcp_prometheus_layers::"),
    ("our tools (mcp_prometheus)", r"mcp_prometheus::"),
    ("promql-parser", r"promql_parser::|lrpar::|lrlex::|sparsevec::|cfgrammar::"),
    ("hashing (SipHash, hashbrown)", r"core::hash|std::hash|hashbrown::|DefaultHasher"),
    ("crypto / random (aws-lc)", r"aws_lc|ctr_drbg|ring::|rand::|getrandom"),
    ("fmt / String / Vec / btree (std)", r"core::fmt|alloc::fmt|alloc::string|alloc::vec|alloc::collections|"
                                         r"alloc::str|core::str|core::slice|alloc::raw_vec|<alloc::|<core::"),
    ("float/int formatting and parsing", r"ryu::|itoa::|dec2flt|lexical|core::num"),
    ("drop_in_place / clone (generic)", r"drop_in_place|::clone"),
    ("libc / ld.so other", r"libc\.so|ld-linux"),
]


def annotate(path: str) -> tuple[int, list[tuple[int, str]]]:
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", path],
                         capture_output=True, text=True, check=True).stdout
    total, rows, body = 0, [], False
    for line in out.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(.*)$", line)
        if "PROGRAM TOTALS" in line and m:
            total = int(m.group(1).replace(",", ""))
            continue
        if line.strip().startswith("Ir") and "file:function" in line:
            body = True
            continue
        if body and m:
            rows.append((int(m.group(1).replace(",", "")), m.group(2).strip()))
        elif body and line.startswith("----") and rows:
            break
    # callgrind_annotate 3.19 lists the thread roots (clone, start_thread,
    # thread_start, the tokio worker loop) at 100 % even in exclusive mode:
    # keep only rows whose costs add up to the total.
    rows = [r for r in rows if r[0] < total or total == 0]
    return total, rows


def component(fn: str) -> str:
    for name, rx in COMPONENTS:
        if re.search(rx, fn):
            return name
    return "other"


def breakdown(path: str, calls: int = 1, top: int = 15) -> dict[str, Any]:
    total, rows = annotate(path)
    comp: dict[str, int] = {}
    for ir, fn in rows:
        comp[component(fn)] = comp.get(component(fn), 0) + ir
    accounted = sum(comp.values())
    if total > accounted:
        comp["(unattributed: thread roots)"] = total - accounted
    short = [(ir, re.sub(r"\s*\[[^]]*\]$", "", fn).split(":", 1)[-1] if fn.startswith("???") else
              re.sub(r"\s*\[[^]]*\]$", "", fn)) for ir, fn in rows[:top]]
    return {"total": total, "calls": calls,
            "components": sorted(([k, v] for k, v in comp.items()), key=lambda kv: -kv[1]),
            "top_self": [[ir, fn] for ir, fn in short]}


def render(b: dict[str, Any]) -> str:
    t, n = b["total"], b["calls"]
    L = [f"total {t:,} Ir, {n} calls: {t / n:,.0f} Ir per call", "", "component (self cost) | Ir/call | share",
         "---|---:|---:"]
    L += [f"{k} | {v / n:,.0f} | {100 * v / t:.1f} %" for k, v in b["components"]]
    L += ["", "function (self cost) | Ir/call | share", "---|---:|---:"]
    L += [f"`{fn[:110]}` | {ir / n:,.0f} | {100 * ir / t:.1f} %" for ir, fn in b["top_self"]]
    return "\n".join(L)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    top = int(sys.argv[sys.argv.index("--top") + 1]) if "--top" in sys.argv else 15
    if "--top" in sys.argv:
        args.remove(str(top))
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    print(render(breakdown(args[0], int(args[1]) if len(args) > 1 else 1, top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
