"""The soak itself and the faults on the data path (a, b) of bench/soak.py."""

from __future__ import annotations

import argparse
import time
from typing import Any

from soak_common import (B, FAULT_EXPECT, FAULT_MODES, FAULT_TIMEOUT_S, LOCAL_TIMEOUT_S, OUTAGE_EXPECT,
                         log)
from soak_load import OK, OUTCOME, Call, Load, Loop, call_once
from soak_server import Prometheus, RssSampler, readyz_text


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
