"""Calls in one legacy session (2025-11-25, `Mcp-Session-Id`) run
concurrently, end to end, and stay in their session.

The upstream is the real Prometheus behind a proxy that holds every request
for `DELAY` seconds and counts how many it holds at once. N calls posted at
once in one session, each on its own connection, must all be at the
upstream together and finish in about one call's time, not N; each answer
must reach its own request (distinct queries, distinct ids), also when two
sessions use the same JSON-RPC ids at the same time. The session rules stay:
an unknown session id is 404, a deleted session refuses calls and its GET
stream, deleting one session leaves another working, and cancelling one call
of a concurrent batch ends that call's stream only.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

from httputil import QuietHandler
from mcpserver import McpServer

LEGACY = "2025-11-25"
DELAY = 0.5
N = 16


class SlowProxy:
    """Forwards GETs and POSTs to `target` after `DELAY` seconds; `peak` is
    the most requests it held at once."""

    def __init__(self, target: str):
        self.lock = threading.Lock()
        self.inflight = 0
        self.peak = 0
        outer = self

        class Handler(QuietHandler):
            def _handle(self) -> None:
                with outer.lock:
                    outer.inflight += 1
                    outer.peak = max(outer.peak, outer.inflight)
                try:
                    time.sleep(DELAY)
                    length = int(self.headers.get("content-length") or 0)
                    body = self.rfile.read(length) if length else None
                    req = urllib.request.Request(target + self.path, data=body, method=self.command,
                                                 headers={k: v for k, v in self.headers.items()
                                                          if k.lower() in ("content-type", "accept")})
                    with urllib.request.urlopen(req, timeout=10) as r:
                        status, data, ctype = r.status, r.read(), r.headers.get("content-type", "")
                except urllib.error.HTTPError as e:
                    status, data, ctype = e.code, e.read(), e.headers.get("content-type", "")
                finally:
                    with outer.lock:
                        outer.inflight -= 1
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = _handle
            do_POST = _handle

        class Server(http.server.ThreadingHTTPServer):
            request_queue_size = 128  # a burst of new upstream connections must not wait for SYN retries
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="slow-proxy", daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.peak = self.inflight

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def proxy(stack: Any) -> Iterator[SlowProxy]:
    p = SlowProxy(stack.prom.url)
    yield p
    p.close()


@pytest.fixture(scope="module")
def server(pool: Any, proxy: SlowProxy) -> McpServer:
    from serverconfig import ServerConfig, Upstream

    return pool.get("session-concurrency", lambda: ServerConfig(
        [Upstream("slow", proxy.url, "10s")], json_response=True, stateful_sessions=True))


def messages(body: bytes, ctype: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an answer: a JSON body or SSE `data:` lines."""
    if "text/event-stream" not in ctype:
        return [json.loads(body)] if body.strip() else []
    out = []
    for line in body.decode().splitlines():
        if line.startswith("data:") and line[5:].strip():
            out.append(json.loads(line[5:]))
    return out


class Session:
    """A raw 2025-11-25 session: every request on a fresh connection."""

    def __init__(self, url: str):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port, u.path
        status, headers, msgs = self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "concurrency", "version": "0"}}},
            session=None)
        assert status == 200, (status, msgs)
        self.id = headers["mcp-session-id"]
        status, _, _ = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        assert status == 202, status

    def request(self, method: str, body: dict[str, Any] | None, session: str | None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            h = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": LEGACY,
                 **(headers or {})}
            if body is not None:
                h["Content-Type"] = "application/json"
            if session:
                h["Mcp-Session-Id"] = session
            c.request(method, self.path, json.dumps(body) if body is not None else None, h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def post(self, body: dict[str, Any], session: str | None | bool = True
             ) -> tuple[int, dict[str, str], list[dict[str, Any]]]:
        sid = self.id if session is True else session or None
        status, headers, raw = self.request("POST", body, sid)
        msgs = messages(raw, headers.get("content-type", "")) if status == 200 else [{"raw": raw.decode()}]
        return status, headers, msgs

    def call(self, rpc_id: int, query: str, session: str | None | bool = True
             ) -> tuple[int, dict[str, Any] | None]:
        """tools/call execute_query; the status and the answer carrying `rpc_id`."""
        status, _, msgs = self.post({"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
                                     "params": {"name": "execute_query", "arguments": {"query": query}}}, session)
        answers = [m for m in msgs if m.get("id") == rpc_id]
        return status, answers[0] if answers else None

    def delete(self) -> int:
        return self.request("DELETE", None, self.id)[0]


def value_of(answer: dict[str, Any] | None) -> str:
    """The text of a successful execute_query answer."""
    assert answer is not None and "result" in answer, answer
    result = answer["result"]
    assert not result.get("isError"), result
    return "".join(c.get("text", "") for c in result["content"])


def test_calls_in_one_session_run_concurrently(server: McpServer, proxy: SlowProxy) -> None:
    s = Session(server.mcp_url)
    t0 = time.monotonic()
    status, answer = s.call(1, "vector(1)")
    one = time.monotonic() - t0
    assert status == 200 and "1" in value_of(answer)
    assert one >= DELAY
    proxy.reset()
    t0 = time.monotonic()
    with ThreadPoolExecutor(N) as ex:
        results = list(ex.map(lambda i: s.call(100 + i, f"vector({1000 + i})"), range(N)))
    wall = time.monotonic() - t0
    for i, (status, answer) in enumerate(results):
        assert status == 200, (i, status, answer)
        assert str(1000 + i) in value_of(answer), (i, answer)
    # serially this takes N x `one`; concurrently about one call's time
    assert wall < 3 * one + 1.0, f"{N} calls in one session took {wall:.2f}s, one takes {one:.2f}s"
    assert proxy.peak >= N // 2, f"at most {proxy.peak} of {N} calls reached the upstream at once"
    assert s.delete() == 204


def test_sessions_with_the_same_ids_keep_their_answers(server: McpServer) -> None:
    a, b = Session(server.mcp_url), Session(server.mcp_url)
    jobs = [(s, 7 + i, f"vector({base + i})") for s, base in ((a, 2000), (b, 3000)) for i in range(4)]
    with ThreadPoolExecutor(len(jobs)) as ex:
        results = list(ex.map(lambda j: j[0].call(j[1], j[2]), jobs))
    for (s, rpc_id, query), (status, answer) in zip(jobs, results):
        assert status == 200, (query, status)
        assert answer is not None and answer["id"] == rpc_id
        assert query[len("vector("):-1] in value_of(answer), (query, answer)
    assert a.delete() == 204 and b.delete() == 204


def test_unknown_session_is_not_found(server: McpServer) -> None:
    s = Session(server.mcp_url)
    status, answer = s.call(1, "vector(1)", session="no-such-session")
    assert status == 404, (status, answer)
    status, _, _ = s.request("GET", None, "no-such-session")
    assert status == 404
    assert s.delete() == 204


def test_deleted_session_refuses_calls_and_others_go_on(server: McpServer) -> None:
    gone, kept = Session(server.mcp_url), Session(server.mcp_url)
    assert gone.call(1, "vector(1)")[0] == 200
    assert gone.delete() == 204
    status, answer = gone.call(2, "vector(2)")
    assert status == 404, (status, answer)
    assert gone.request("GET", None, gone.id)[0] == 404
    status, answer = kept.call(1, "vector(5)")
    assert status == 200 and "5" in value_of(answer)
    assert kept.delete() == 204


def test_cancelling_one_call_leaves_the_others(server: McpServer) -> None:
    s = Session(server.mcp_url)
    with ThreadPoolExecutor(4) as ex:
        futures = [ex.submit(s.call, 40 + i, f"vector({40 + i})") for i in range(4)]
        time.sleep(DELAY / 2)  # all four are at the upstream now
        status, _, _ = s.post({"jsonrpc": "2.0", "method": "notifications/cancelled",
                               "params": {"requestId": 40, "reason": "test"}})
        assert status == 202
        results = [f.result(timeout=20) for f in futures]
    status, answer = results[0]
    assert status == 200 and answer is None, answer  # its stream ended without an answer
    for i, (status, answer) in enumerate(results[1:], start=1):
        assert status == 200 and str(40 + i) in value_of(answer), (i, answer)
    assert s.delete() == 204


def test_answer_stream_opens_with_its_priming_event(server: McpServer) -> None:
    s = Session(server.mcp_url)
    status, headers, raw = s.request("POST", {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "execute_query", "arguments": {"query": "vector(9)"}}}, s.id)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = [e for e in raw.decode().split("\n\n") if e.strip()]
    assert len(events) == 2, events
    priming = dict(line.split(":", 1) for line in events[0].splitlines())
    assert priming["id"].strip().startswith("0/") and priming["retry"].strip() == "3000", events[0]
    answer = json.loads(next(line[5:] for line in events[1].splitlines() if line.startswith("data:")))
    assert answer["id"] == 9 and "9" in value_of(answer)
    assert s.delete() == 204


def test_a_broken_answer_stream_resumes_with_last_event_id(server: McpServer) -> None:
    """The client leaves after the priming event of a slow call; a GET with
    that event id gets the answer."""
    s = Session(server.mcp_url)
    c = http.client.HTTPConnection(s.host, s.port, timeout=30)
    c.request("POST", s.path, json.dumps({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {
        "name": "execute_query", "arguments": {"query": "vector(11)"}}}),
        {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "MCP-Protocol-Version": LEGACY, "Mcp-Session-Id": s.id})
    r = c.getresponse()
    assert r.status == 200
    event_id = None
    while event_id is None:
        line = r.fp.readline().decode()
        assert line, "the stream ended before its priming event"
        if line.startswith("id:"):
            event_id = line[3:].strip()
    c.close()  # before the answer (the upstream holds it DELAY seconds)
    status, headers, raw = s.request("GET", None, s.id, {"Last-Event-ID": event_id})
    assert status == 200, (status, raw[:300])
    answers = [m for m in messages(raw, headers.get("content-type", "")) if m.get("id") == 11]
    assert len(answers) == 1 and "11" in value_of(answers[0]), raw[:500]
    assert s.delete() == 204
