"""Cost guardrails ([layers.guardrails]) against real Prometheus.

The servers read tenant-a (static tenancy, no authn) through the tenant
router (tenant_router.py: real Prometheus per tenant, every request
recorded), so a test can tell exactly what reached the upstream: in enforce
mode nothing of a refused query may arrive; the series pre-check of
`max_series_per_selector` (count(<selector>)) must arrive with the caller's
tenant, like any request that passed the tenant layer.

Limits are set so each rule fires on the test data: max_series_per_selector
= 2 (prometheus_http_requests_total has many series), max_range = 1d,
max_points = 1000 (below the tools' own 11000 check), min_subquery_step the
default 10s.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from authstack import LayeredServer, _layered, layered_config
from httputil import HttpResponse, http_get, http_post
from promtext import metric_sum
from rawmcp import authed
from tenant_router import RoutedRequest, TenantRouter

pytestmark = pytest.mark.anyio

PREFIX = "/prometheus"
JOB = 'job="prom-tenant-a"'
GUARDRAILS = {"max_series_per_selector": 2, "max_range": "1d", "max_points": 1000, "min_subquery_step": "10s",
              "precheck_timeout": "2s", "precheck_cache_ttl": "60s"}

# (rule, tool, arguments, the fix the message names)
CASES = [
    ("max_series_per_selector", "execute_query", {"query": "sum(prometheus_http_requests_total)"},
     "add a label matcher"),
    ("unbounded_regex", "execute_query", {"query": 'group by (job) ({__name__=~".+"})'}, "add a label matcher"),
    ("unbounded_regex", "find_series", {"matches": ['{__name__=~".+"}']}, "add a label matcher"),
    ("max_range", "execute_query", {"query": f"rate(up{{{JOB}}}[2d])"}, "shorten the range to ≤1d"),
    ("max_points", "execute_range_query",
     {"query": f"up{{{JOB}}}", "start": "now-1h", "end": "now", "step": "1s"}, "raise the step to ≥4s"),
    ("min_subquery_step", "execute_query", {"query": f"max_over_time(up{{{JOB}}}[5m:1s])"},
     "coarser subquery resolution"),
]
IDS = [f"{rule}-{tool}" for rule, tool, _, _ in CASES]


def guarded(pool: Any, tenant_stack: Any, mode: str) -> LayeredServer:
    return _layered(pool, f"guardrails-{mode}", lambda: _config(tenant_stack.url, mode))


def _config(url: str, mode: str) -> Any:
    cfg = layered_config(url, tenancy="static", static_tenants=["tenant-a"],
                         layers={"guardrails": {"mode": mode, **GUARDRAILS}})
    cfg.tables["passthrough"] = {"enabled": True, "prefix": PREFIX}
    return cfg


@pytest.fixture(scope="module")
def warn_server(pool: Any, tenant_stack: Any) -> LayeredServer:
    return guarded(pool, tenant_stack, "warn")


@pytest.fixture(scope="module")
def enforce_server(pool: Any, tenant_stack: Any) -> LayeredServer:
    return guarded(pool, tenant_stack, "enforce")


def decisions(srv: LayeredServer, rule: str, action: str) -> float:
    return metric_sum(srv.metrics(), "mcp_prometheus_guardrail_decisions_total", rule=rule, action=action)


def queries(reqs: list[RoutedRequest]) -> list[str]:
    """The PromQL of each recorded request (query, or match[] joined)."""
    out = []
    for r in reqs:
        p = r.params
        out.append(" ".join(p.get("query", []) + p.get("match[]", [])))
    return out


def is_precheck(r: RoutedRequest) -> bool:
    """The guardrails' count(<selector>), sent with precheck_timeout (2 s)."""
    p = r.params
    return (r.route.endswith("/api/v1/query") and p.get("timeout") == ["2"]
            and all(q.startswith("count(") for q in p.get("query", [""])))


# --------------------------------------------------------------------------
# tools
# --------------------------------------------------------------------------

@pytest.mark.parametrize("rule,tool,args,fix", CASES, ids=IDS)
async def test_warn_answers_with_the_decision(warn_server: LayeredServer, router: TenantRouter, rule: str,
                                              tool: str, args: dict[str, Any], fix: str) -> None:
    before = decisions(warn_server, rule, "warn")
    mark = router.mark()
    async with authed(warn_server.mcp_url, {}) as c:
        r = (await c.call(tool, args)).ok()
    found = [g for g in r.structured.get("guardrails", []) if g["rule"] == rule]
    assert found and found[0]["action"] == "warn" and fix in found[0]["detail"], r.describe()
    assert f"Guardrail warning ({rule}, warn)" in r.text and fix in r.text, r.describe()
    sent = [r for r in router.since(mark) if not is_precheck(r)]
    assert len(sent) == 1 and sent[0].tenants == ["tenant-a"], queries(router.since(mark))
    assert decisions(warn_server, rule, "warn") == before + 1


@pytest.mark.parametrize("rule,tool,args,fix", CASES, ids=IDS)
async def test_enforce_refuses_before_sending(enforce_server: LayeredServer, router: TenantRouter, rule: str,
                                              tool: str, args: dict[str, Any], fix: str) -> None:
    before = decisions(enforce_server, rule, "refuse")
    mark = router.mark()
    async with authed(enforce_server.mcp_url, {}) as c:
        r = (await c.call(tool, args)).error()
    assert f"guardrail {rule}" in r.text and fix in r.text and "not sent" in r.text, r.describe()
    # At most the series pre-check went out (it may be cached); never the query.
    reqs = router.since(mark)
    assert all(is_precheck(q) for q in reqs), f"{rule}: the upstream saw {queries(reqs)}"
    assert decisions(enforce_server, rule, "refuse") == before + 1


async def test_precheck_counts_the_callers_tenant_and_is_cached(enforce_server: LayeredServer,
                                                                router: TenantRouter) -> None:
    """The pre-check passes the tenant layer (X-Scope-OrgID of the caller);
    the second call is judged from the cache: nothing is sent at all."""
    query = "sum(rate(prometheus_http_request_duration_seconds_count[5m]))"
    mark = router.mark()
    async with authed(enforce_server.mcp_url, {}) as c:
        first = (await c.call("execute_query", {"query": query})).error()
        second = (await c.call("execute_query", {"query": query})).error()
    assert "max_series_per_selector" in first.text and "max_series_per_selector" in second.text, first.describe()
    reqs = router.since(mark)
    assert queries(reqs) == ["count(prometheus_http_request_duration_seconds_count)"], queries(reqs)
    assert reqs[0].tenants == ["tenant-a"]


async def test_narrow_queries_pass_without_decisions(enforce_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(enforce_server.mcp_url, {}) as c:
        r = (await c.call("execute_query", {"query": f"sum by (job) (rate(up{{{JOB}}}[5m]))"})).ok()
        small = (await c.call("execute_query", {"query": "up"})).ok()  # 1 series: counted, then sent
    assert "guardrails" not in r.structured and "guardrails" not in small.structured, r.describe()
    assert [q for r, q in zip(router.since(mark), queries(router.since(mark))) if not is_precheck(r)] == [
        f"sum by (job) (rate(up{{{JOB}}}[5m]))", "up"]


# --------------------------------------------------------------------------
# the Prometheus API passthrough
# --------------------------------------------------------------------------

def passthrough(srv: LayeredServer, path: str, params: dict[str, str], post: bool = False) -> HttpResponse:
    url = srv.srv.base_url + PREFIX + path
    form = urllib.parse.urlencode(params)
    if post:
        return http_post(url, form.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    return http_get(f"{url}?{form}", 10)


@pytest.mark.parametrize("post", [False, True], ids=["GET", "POST"])
def test_passthrough_enforce_is_a_prometheus_400(enforce_server: LayeredServer, router: TenantRouter,
                                                 post: bool) -> None:
    mark = router.mark()
    r = passthrough(enforce_server, "/api/v1/query_range",
                    {"query": f"up{{{JOB}}}", "start": "0", "end": "86400", "step": "1"}, post)
    assert r.status == 400, r.text
    body = json.loads(r.text)
    assert body["status"] == "error" and body["errorType"] == "bad_data", body
    assert "guardrail max_points" in body["error"] and "raise the step" in body["error"], body
    assert router.since(mark) == [], queries(router.since(mark))


def test_passthrough_warn_sends_and_says_so(warn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    r = passthrough(warn_server, "/api/v1/query", {"query": 'group by (job) ({__name__=~".+"})'})
    assert r.status == 200, r.text
    assert json.loads(r.text)["status"] == "success"
    assert "unbounded_regex (warn)" in r.headers.get("mcp-prometheus-guardrail", ""), r.headers
    assert len(router.since(mark)) == 1
