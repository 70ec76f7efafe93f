"""The OAuth store and provider faults (c, d) of bench/soak.py."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from soak_common import B, log
from soak_load import OK, OUTCOME, Load, Loop, call_once, tenant_mix


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
