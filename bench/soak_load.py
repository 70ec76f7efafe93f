"""The MCP load of the soak run (bench/soak.py): asyncio clients, their
records, and the tool-call mixes they draw from."""

from __future__ import annotations

import asyncio
import json
import random
import re
import statistics
import threading
import time
import urllib.parse
from array import array
from typing import Any

from soak_common import META, MODERN


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
