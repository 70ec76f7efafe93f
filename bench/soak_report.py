"""The verdict and the write-up of a soak run (bench/soak.py): criteria,
target/soak/results.md and the README section "Reliability"."""

from __future__ import annotations

import json
import re
from typing import Any

from soak_common import BENCH, FAULT_TIMEOUT_S, REPO, RSS_GROWTH_MAX, SLOW_S


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
