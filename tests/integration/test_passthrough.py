"""The authenticated Prometheus API passthrough ([passthrough]) end to end.

A real client library (PyPI prometheus-api-client, which sends a bearer
token) reads through mcp-prometheus from real Prometheus processes behind
the tenant router (tenant_router.py, a stand-in for Mimir that records
every request):

alice: groups [team-a]  -> tenant-a
bob:   groups [team-b]  -> tenant-b, tenant-c

Every refusal is also checked at the upstream: a refused request must not
reach it at all. Upstream credentials (bearer, forward) are checked at a
recording fake Prometheus (fakes.fake_prometheus), the untruncated stream at
a fake that answers tens of MB (big_upstream.py).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

from authasserts import assert_no_upstream, assert_tenants_within
from authstack import LayeredServer, _layered, issuer_entry, issuer_fixture, layered_config
from big_upstream import BigUpstream
from constants import ALICE_TENANTS, BOB_TENANTS
from fakes import FakeUpstream, fake_prometheus
from httputil import HttpResponse, http_get
from jwt_issuer import JwtIssuer
from mcpserver import run_cli
from procs import peak_rss_kib
from promtext import metric_sum
from rawmcp import authed, bearer
from serverconfig import ServerConfig
from tenant_router import TenantRouter

PREFIX = "/prometheus"
OPERATOR_TOKEN = "operator-upstream-token"
BIG_BYTES = 48 * 1024 * 1024

pt_issuer = issuer_fixture("passthrough")


def with_passthrough(cfg: ServerConfig, **keys: Any) -> ServerConfig:
    cfg.tables["passthrough"] = {"enabled": True, "prefix": PREFIX, **keys}
    return cfg


# --------------------------------------------------------------------------
# servers and helpers
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pt_server(pool: Any, tenant_stack: Any, pt_issuer: JwtIssuer) -> LayeredServer:
    """authn, group-map tenancy, the common layers, the passthrough on."""
    return _layered(pool, "passthrough-authn", lambda: with_passthrough(
        layered_config(tenant_stack.url, issuers=[issuer_entry(pt_issuer)])), pt_issuer)


@pytest.fixture(scope="module")
def recorder() -> Iterator[FakeUpstream]:
    f = fake_prometheus()
    yield f
    f.close()


@pytest.fixture(scope="module")
def bearer_server(pool: Any, recorder: FakeUpstream, pt_issuer: JwtIssuer) -> LayeredServer:
    """The passthrough to an upstream with the operator's bearer token."""
    return _layered(pool, "passthrough-upstream-bearer", lambda: with_passthrough(layered_config(
        recorder.url + "/bearer", issuers=[issuer_entry(pt_issuer)],
        upstream_extra={"auth": {"kind": "bearer", "token": OPERATOR_TOKEN}})), pt_issuer)


@pytest.fixture(scope="module")
def forward_server(pool: Any, recorder: FakeUpstream, pt_issuer: JwtIssuer) -> LayeredServer:
    """The passthrough to an upstream that gets the caller's verified token,
    as configured: in X-Upstream-Token."""
    return _layered(pool, "passthrough-upstream-forward", lambda: with_passthrough(layered_config(
        recorder.url + "/forward", issuers=[issuer_entry(pt_issuer)],
        upstream_extra={"auth": {"kind": "forward", "header": "Authorization", "to": "X-Upstream-Token"}})),
        pt_issuer)


@pytest.fixture(scope="module")
def big() -> Iterator[BigUpstream]:
    b = BigUpstream(total_bytes=BIG_BYTES)
    yield b
    b.close()


@pytest.fixture(scope="module")
def big_server(pool: Any, big: BigUpstream) -> LayeredServer:
    """No authn, no tenancy; truncate on (50 kB for tools); the passthrough on."""
    return _layered(pool, "passthrough-big", lambda: with_passthrough(
        layered_config(big.url, tenancy=None, upstream_timeout="100s")))


def token(srv: LayeredServer, who: str) -> str:
    groups = {"alice": ["team-a"], "bob": ["team-b"]}[who]
    return srv.token(groups, sub=who)


def client(srv: LayeredServer, who: str, method: str = "GET") -> PrometheusConnect:
    """prometheus-api-client against the passthrough, with `who`'s bearer token."""
    return PrometheusConnect(url=srv.srv.base_url + PREFIX, headers=bearer(token(srv, who)), disable_ssl=True,
                             method=method)


def raw(srv: LayeredServer, method: str, path: str, headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None) -> HttpResponse:
    """One request with exactly this method, path (not normalised: `..` and
    `%2F` stay as written) and headers."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.srv.config.listen_port, timeout=30)
    try:
        names = {name.lower() for name, _ in headers or []}
        conn.putrequest(method, path, skip_host="host" in names, skip_accept_encoding=True)
        for name, value in headers or []:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        r = conn.getresponse()
        return HttpResponse(r.status, r.read(), {k.lower(): v for k, v in r.getheaders()})
    finally:
        conn.close()


def auth(srv: LayeredServer, who: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token(srv, who)}")]


def result_tenants(result: list[dict[str, Any]]) -> set[str]:
    return {s["metric"].get("tenant", "?") for s in result}


def assert_prometheus_error(r: HttpResponse, status: int, error_type: str | None = None) -> dict[str, Any]:
    assert r.status == status, f"HTTP {r.status} (want {status}): {r.text[:400]}"
    body = r.json()
    assert body.get("status") == "error" and isinstance(body.get("error"), str), body
    if error_type:
        assert body.get("errorType") == error_type, body
    return body


# --------------------------------------------------------------------------
# a real client library, real Prometheus, the caller's tenants
# --------------------------------------------------------------------------

def test_client_library_reads_alices_tenant(pt_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    prom = client(pt_server, "alice")
    up = prom.custom_query("up")
    assert up and result_tenants(up) == ALICE_TENANTS, up
    now = datetime.now()
    rng = prom.custom_query_range("up", start_time=now - timedelta(minutes=1), end_time=now, step="10s")
    assert rng and result_tenants(rng) == ALICE_TENANTS, rng
    assert prom.get_label_values("tenant") == ["tenant-a"]
    assert "tenant" in prom.get_label_names()
    assert "up" in prom.all_metrics()
    assert prom.get_metric_metadata("prometheus_http_requests_total")
    reqs = router.since(mark)
    assert len(reqs) >= 6 and {r.org_id for r in reqs} == {"tenant-a"}, [(r.path, r.org_id) for r in reqs]
    for r in reqs:
        assert "authorization" not in r.headers and "cookie" not in r.headers, r.headers
        assert r.headers.get("user-agent", "").startswith("mcp-prometheus/"), r.headers


def test_another_groups_token_reads_only_its_tenants(pt_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    prom = client(pt_server, "bob")
    up = prom.custom_query("up")
    assert result_tenants(up) == BOB_TENANTS, up
    assert prom.get_label_values("tenant") == ["tenant-b", "tenant-c"]
    assert {r.org_id for r in router.since(mark)} == {"tenant-b|tenant-c"}
    assert_tenants_within(router, mark, BOB_TENANTS, "bob")


def test_post_queries(pt_server: LayeredServer, router: TenantRouter) -> None:
    """The client library's POST mode (parameters in the URL), and a form body."""
    mark = router.mark()
    prom = client(pt_server, "alice", method="POST")
    assert result_tenants(prom.custom_query("up")) == ALICE_TENANTS
    form = urllib.parse.urlencode({"query": 'up{tenant="tenant-a"}', "time": str(time.time())}).encode()
    r = raw(pt_server, "POST", PREFIX + "/api/v1/query",
            auth(pt_server, "alice") + [("Content-Type", "application/x-www-form-urlencoded")], form)
    assert r.status == 200, r.text
    assert result_tenants(r.json()["data"]["result"]) == ALICE_TENANTS, r.text
    posts = [q for q in router.since(mark) if q.method == "POST"]
    assert len(posts) >= 2 and all(q.org_id == "tenant-a" for q in posts), posts
    assert any(q.params.get("query") == ['up{tenant="tenant-a"}'] for q in posts), posts


def test_callers_org_id_narrows(pt_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    r = raw(pt_server, "GET", PREFIX + "/api/v1/query?query=up",
            auth(pt_server, "bob") + [("X-Scope-OrgID", "tenant-c")])
    assert r.status == 200, r.text
    assert result_tenants(r.json()["data"]["result"]) == {"tenant-c"}, r.text
    assert [q.org_id for q in router.since(mark)] == ["tenant-c"]


def test_rules_need_one_tenant_and_upstream_errors_pass_through(pt_server: LayeredServer,
                                                                 router: TenantRouter) -> None:
    """Mimir's ruler refuses several tenants: its 400 reaches the caller
    as it is; narrowing to one tenant reads that tenant's rules."""
    r = raw(pt_server, "GET", PREFIX + "/api/v1/rules", auth(pt_server, "bob"))
    assert_prometheus_error(r, 400, "bad_data")
    r = raw(pt_server, "GET", PREFIX + "/api/v1/rules", auth(pt_server, "bob") + [("X-Scope-OrgID", "tenant-b")])
    assert r.status == 200, r.text
    assert [g["name"] for g in r.json()["data"]["groups"]] == ["tenant-b-rules"], r.text


# --------------------------------------------------------------------------
# refused before the upstream
# --------------------------------------------------------------------------

@pytest.mark.parametrize("org_id", ["tenant-b", "tenant-a|tenant-b", "tenant-zzz", "ténant-a", "", "a,b"])
def test_callers_org_id_for_another_tenant_is_refused(pt_server: LayeredServer, router: TenantRouter,
                                                      org_id: str) -> None:
    mark = router.mark()
    r = raw(pt_server, "GET", PREFIX + "/api/v1/query?query=up",
            auth(pt_server, "alice") + [("X-Scope-OrgID", org_id)])
    body = assert_prometheus_error(r, 403 if org_id in ("tenant-b", "tenant-a|tenant-b", "tenant-zzz") else 400)
    assert body["error"].startswith("X-Scope-OrgID"), body
    assert_no_upstream(router, mark, f"X-Scope-OrgID {org_id!r}")


@pytest.mark.parametrize("headers", [[], [("Authorization", "Bearer not-a-jwt")], [("Cookie", "session=x")]],
                         ids=["no-token", "bad-token", "cookie-only"])
def test_without_a_valid_token_is_401_and_nothing_is_sent(pt_server: LayeredServer, router: TenantRouter,
                                                          headers: list[tuple[str, str]]) -> None:
    mark = router.mark()
    for path in ("/api/v1/query?query=up", "/api/v1/admin/tsdb/snapshot", "/api/v1/status/buildinfo"):
        r = raw(pt_server, "GET", PREFIX + path, headers)
        assert r.status == 401, f"{path}: HTTP {r.status} {r.text[:200]}"
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), r.headers
    with pytest.raises(PrometheusApiClientException, match="401"):
        PrometheusConnect(url=pt_server.srv.base_url + PREFIX, disable_ssl=True).custom_query("up")
    assert_no_upstream(router, mark, "unauthenticated")


REFUSED = [
    ("POST", "/api/v1/admin/tsdb/snapshot", 404),
    ("POST", "/api/v1/admin/tsdb/delete_series?match[]=up", 404),
    ("PUT", "/api/v1/admin/tsdb/delete_series?match[]=up", 404),
    ("POST", "/api/v1/admin/tsdb/clean_tombstones", 404),
    ("POST", "/api/v1/write", 404),
    ("POST", "/api/v1/otlp/v1/metrics", 404),
    ("POST", "/api/v1/import/prometheus", 404),
    ("GET", "/api/v1/status/config", 404),
    ("GET", "/api/v1/targets", 404),
    ("GET", "/api/v1/label/../values", 404),
    ("GET", "/api/v1/label/..%2F..%2Fadmin/values", 404),
    ("GET", "/api/v1/label/a%2Fb/values", 404),
    ("GET", "/api/v1/query%2F..%2Fstatus%2Fconfig", 404),
    ("GET", "/api/v1/../v1/status/config", 404),
    ("GET", "/federate?match[]=up", 404),
    ("GET", "", 404),
    ("PUT", "/api/v1/query?query=up", 405),
    ("DELETE", "/api/v1/series?match[]=up", 405),
    ("PATCH", "/api/v1/labels", 405),
    ("POST", "/api/v1/rules", 405),
    ("GET", "/api/v1/query?query=" + "x" * 17000, 414),
]


@pytest.mark.parametrize("method,path,status", REFUSED, ids=[f"{m} {p[:40]}" for m, p, _ in REFUSED])
def test_write_admin_and_unlisted_requests_are_refused(pt_server: LayeredServer, router: TenantRouter,
                                                       method: str, path: str, status: int) -> None:
    mark = router.mark()
    r = raw(pt_server, method, PREFIX + path, auth(pt_server, "bob"), b"" if method != "GET" else None)
    body = assert_prometheus_error(r, status)
    if status == 404:
        assert body["errorType"] == "not_found", body
        assert "only these read APIs are served: /api/v1/query" in body["error"], body
    if status == 405:
        assert "GET" in r.headers.get("allow", ""), r.headers
    assert_no_upstream(router, mark, f"{method} {path}")


def test_a_rebound_host_is_refused(pt_server: LayeredServer, router: TenantRouter) -> None:
    """server.allowed_hosts guards the passthrough as it guards /mcp (DNS rebinding)."""
    mark = router.mark()
    r = raw(pt_server, "GET", PREFIX + "/api/v1/query?query=up",
            auth(pt_server, "alice") + [("Host", f"rebound.evil.example:{pt_server.srv.config.listen_port}")])
    assert_prometheus_error(r, 403, "forbidden")
    assert_no_upstream(router, mark, "foreign Host")


def test_disabled_by_default(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    r = raw(authn_server, "GET", PREFIX + "/api/v1/query?query=up",
            [("Authorization", f"Bearer {authn_server.token(['team-a'], sub='alice')}")])
    assert r.status == 404, r.text
    assert_no_upstream(router, mark, "passthrough off")


def test_check_config_refuses_a_colliding_prefix(workdir: Path, tenant_stack: Any) -> None:
    cfg = layered_config(tenant_stack.url, tenancy=None)
    cfg.tables["passthrough"] = {"enabled": True, "prefix": "/mcp/prometheus"}
    p = run_cli(["check-config", "--config", cfg.write(workdir / "cli" / "passthrough-collides.toml")])
    assert p.returncode == 2 and "passthrough.prefix" in p.stderr and "MCP endpoint" in p.stderr, p.stderr
    cfg.tables["passthrough"] = {"enabled": True, "upstream": "nope"}
    p = run_cli(["check-config", "--config", cfg.write(workdir / "cli" / "passthrough-unknown.toml")])
    assert p.returncode == 2 and "passthrough.upstream" in p.stderr and '"nope"' in p.stderr, p.stderr


# --------------------------------------------------------------------------
# credentials towards the upstream
# --------------------------------------------------------------------------

def test_upstream_gets_the_operators_bearer_token(bearer_server: LayeredServer, recorder: FakeUpstream) -> None:
    recorder.requests.clear()
    caller = token(bearer_server, "alice")
    prom = client(bearer_server, "alice")
    assert prom.custom_query("up") == []
    r = raw(bearer_server, "GET", PREFIX + "/api/v1/status/buildinfo", auth(bearer_server, "alice"))
    assert r.status == 200 and r.json()["data"]["version"] == "2.99.0", r.text
    reqs = [q for q in recorder.requests if q.route.startswith("/bearer/api/v1/")]
    assert [q.route for q in reqs] == ["/bearer/api/v1/query", "/bearer/api/v1/status/buildinfo"], reqs
    for q in reqs:
        assert q.headers.get("authorization") == f"Bearer {OPERATOR_TOKEN}", q.headers
        assert q.headers.get("x-scope-orgid") == "tenant-a", q.headers
        assert caller not in json.dumps(q.headers), q.headers


def test_upstream_gets_the_callers_token_only_as_configured(forward_server: LayeredServer,
                                                            recorder: FakeUpstream) -> None:
    recorder.requests.clear()
    caller = token(forward_server, "bob")
    r = raw(forward_server, "GET", PREFIX + "/api/v1/query?query=up",
            [("Authorization", f"Bearer {caller}"), ("Cookie", "session=secret")])
    assert r.status == 200, r.text
    reqs = [q for q in recorder.requests if q.route.startswith("/forward/api/v1/")]
    assert len(reqs) == 1, reqs
    assert reqs[0].headers.get("x-upstream-token") == f"Bearer {caller}", reqs[0].headers
    assert "authorization" not in reqs[0].headers and "cookie" not in reqs[0].headers, reqs[0].headers
    assert reqs[0].headers.get("x-scope-orgid") == "tenant-b|tenant-c", reqs[0].headers


# --------------------------------------------------------------------------
# the whole answer, streamed; metrics
# --------------------------------------------------------------------------

@pytest.mark.anyio
@pytest.mark.timeout(150)
async def test_a_big_answer_is_streamed_whole(big_server: LayeredServer, big: BigUpstream) -> None:
    pid = big_server.proc.pid
    hwm_before = peak_rss_kib(pid)
    received = bytearray()
    with requests.get(big_server.srv.base_url + PREFIX + "/api/v1/query", params={"query": "big_metric"},
                      stream=True, timeout=120) as r:
        assert r.status_code == 200, r.text[:300]
        assert r.headers["content-type"] == "application/json", r.headers
        assert "set-cookie" not in r.headers, r.headers
        for chunk in r.iter_content(1 << 20):
            received += chunk
    hwm_after = peak_rss_kib(pid)
    assert len(received) > BIG_BYTES, len(received)
    answer = json.loads(received)
    assert set(answer) == {"status", "data"} and answer["status"] == "success", list(answer)
    series = answer["data"]["result"]
    assert len(series) == len({(s["metric"]["chunk"], s["metric"]["n"]) for s in series}) > 40000, len(series)
    grown = (hwm_after - hwm_before) / 1024
    print(f"passthrough: {len(received) / 2**20:.0f} MiB answer, {len(series)} series, "
          f"server peak RSS {hwm_before / 1024:.1f} -> {hwm_after / 1024:.1f} MiB")
    assert grown < 24, f"peak RSS grew {grown:.1f} MiB for a {len(received) / 2**20:.0f} MiB answer: buffered?"
    # the same query as a tool is cut to the tools' budget
    async with authed(big_server.mcp_url, {}) as c:
        tool = (await c.call("execute_query", {"query": "big_metric"}, timeout=120)).ok()
    assert tool.structured["truncated"] is True, tool.describe()


def test_metrics_label_the_passthrough_route(pt_server: LayeredServer) -> None:
    before = pt_server.metrics()
    r = raw(pt_server, "GET", PREFIX + "/api/v1/labels", auth(pt_server, "alice"))
    assert r.status == 200, r.text
    after = http_get(pt_server.obs_url + "/metrics", 5).text
    name = "mcp_prometheus_http_requests_total"
    grew = metric_sum(after, name, route=PREFIX, status="200") - metric_sum(before, name, route=PREFIX, status="200")
    assert grew == 1, f"{name}{{route={PREFIX!r}}} grew by {grew}"
    up = "mcp_prometheus_upstream_requests_total"
    assert metric_sum(after, up, endpoint="/api/v1/labels") > metric_sum(before, up, endpoint="/api/v1/labels")
