"""W3C trace context ([layers.trace]): an inbound `traceparent` reaches the
upstream in the same trace."""

from __future__ import annotations

import re
import secrets

import pytest

from authstack import LayeredServer
from httputil import LocalServer
from rawmcp import authed, bearer, raw_call, raw_tool_result
from tenant_router import TenantRouter

pytestmark = pytest.mark.anyio

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


async def test_traceparent_propagates_to_upstream(authn_server: LayeredServer, router: TenantRouter) -> None:
    tp, trace_id, span_id = new_traceparent()
    mark = router.mark()
    headers = {**bearer(authn_server.token(["team-b"])), "traceparent": tp}
    async with authed(authn_server.mcp_url, headers) as c:
        (await c.call("execute_query", {"query": "up"})).ok()
        (await c.call("get_rules", {})).ok()  # fan-out: every per-tenant request in the trace
    reqs = router.since(mark)
    assert len(reqs) >= 3, [(q.path, q.org_id) for q in reqs]
    for q in reqs:
        got = q.headers.get("traceparent")
        m = TRACEPARENT.match(got or "")
        assert m, f"{q.path}: traceparent {got!r}"
        assert m.group(1) == trace_id, f"{q.path}: trace id {m.group(1)} != {trace_id}"


def test_upstream_gets_a_trace_without_inbound_traceparent(authn_server: LayeredServer,
                                                           router: TenantRouter) -> None:
    mark = router.mark()
    raw_tool_result(raw_call(authn_server.mcp_url, "execute_query", {"query": "up"},
                             bearer(authn_server.token(["team-a"]))))
    reqs = router.since(mark)
    assert reqs and all(TRACEPARENT.match(q.headers.get("traceparent", "")) for q in reqs), \
        [q.headers.get("traceparent") for q in reqs]


def test_malformed_traceparent_is_not_propagated(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    bad = "00-zzzz-not-a-trace-01"
    raw_tool_result(raw_call(authn_server.mcp_url, "execute_query", {"query": "up"},
                             {**bearer(authn_server.token(["team-a"])), "traceparent": bad}))
    reqs = router.since(mark)
    assert reqs and all(q.headers.get("traceparent") != bad for q in reqs), \
        [q.headers.get("traceparent") for q in reqs]


class _Collector(LocalServer):
    """A stand-in OTLP/HTTP collector: records every POST to /v1/traces."""

    def __init__(self) -> None:
        import http.server

        bodies: list[tuple[str, bytes]] = []
        self.bodies = bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append((self.path, self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(Handler, "otlp-collector")


def test_spans_are_exported_over_otlp_in_the_callers_trace(workdir, stack) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT set: spans reach the collector (flushed at
    shutdown at the latest), carry OTEL_SERVICE_NAME and the caller's trace id."""
    from httputil import free_port
    from mcpserver import start_mcp_server
    from serverconfig import ServerConfig, Upstream

    collector = _Collector()
    try:
        cfg = ServerConfig([Upstream("local", stack.prom.url, "5s")], listen_port=free_port(), obs_port=free_port())
        server = start_mcp_server(workdir, "otlp", cfg, env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_SERVICE_NAME": "mcp-otlp-test"})
        tp, trace_id, _ = new_traceparent()
        raw_tool_result(raw_call(server.mcp_url, "execute_query", {"query": "up"}, {"traceparent": tp}))
        assert server.proc.stop() == 0
        paths = {p for p, _ in collector.bodies}
        assert paths == {"/v1/traces"}, paths
        exported = b"".join(body for _, body in collector.bodies)
        assert b"mcp-otlp-test" in exported, "service name missing from the exported resource"
        assert bytes.fromhex(trace_id) in exported, "no span in the caller's trace"
    finally:
        collector.close()
