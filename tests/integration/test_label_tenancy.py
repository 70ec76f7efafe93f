"""Label tenancy (`[layers.tenancy] enforce = "label"`) end to end against ONE
real Prometheus holding tenants a, b and c (labelstack.py), through a
recording proxy.

alice: groups [team-a]   -> a
abby:  groups [team-ab]  -> a, b
nina:  groups [team-none] -> no tenant (refused by the tenancy layer)

Every case asserts that no value, secret label or series of another tenant
reached the answer, that the caller's own data does come back where it
should (so the test can fail), and that every query and series selector
that reached Prometheus carried the caller's tenant matcher.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from authstack import LayeredServer, _layered, issuer_entry, issuer_fixture, layered_config
from httputil import http_get, http_post
from jwt_issuer import JwtIssuer
from labelstack import VALUES, LabelStack, leaks, owner, start_label_stack
from mcpclient import ToolResult
from rawmcp import authed, bearer, json_body, raw_call

pytestmark = pytest.mark.anyio

GROUPS = {"team-a": ["a"], "team-ab": ["a", "b"]}
WHO = {"alice": (["team-a"], {"a"}), "abby": (["team-ab"], {"a", "b"}), "nina": (["team-none"], set())}
MATCHER = {"alice": 'tenant="a"', "abby": 'tenant=~"^(?:a|b)$"'}
PREFIX = "/prometheus"
UNSCOPED = ["get_targets", "get_metric_metadata", "get_targets_metadata", "get_tsdb_stats", "get_config",
            "get_flags", "get_runtime_info", "get_alertmanagers"]

label_issuer = issuer_fixture("label")


@pytest.fixture(scope="module")
def stack(workdir: Path) -> Iterator[LabelStack]:
    s = start_label_stack(workdir)
    yield s
    s.close()


def config(stack: LabelStack, iss: JwtIssuer, **tenancy: Any) -> Any:
    cfg = layered_config(stack.proxy.url, issuers=[issuer_entry(iss)], groups=GROUPS,
                         layers={"tenancy": {"enforce": "label", **tenancy}})
    cfg.tables["passthrough"] = {"enabled": True, "prefix": PREFIX}
    return cfg


@pytest.fixture(scope="module")
def server(pool: Any, stack: LabelStack, label_issuer: JwtIssuer) -> LayeredServer:
    return _layered(pool, "label-tenancy", lambda: config(stack, label_issuer), label_issuer)


@pytest.fixture(scope="module")
def opted_in(pool: Any, stack: LabelStack, label_issuer: JwtIssuer) -> LayeredServer:
    return _layered(pool, "label-tenancy-opted-in", lambda: config(
        stack, label_issuer, label_unscoped_tools=["get_targets", "get_tsdb_stats"]), label_issuer)


def headers(srv: LayeredServer, who: str) -> dict[str, str]:
    return bearer(srv.token(WHO[who][0], sub=who))


async def call(srv: LayeredServer, who: str, tool: str, args: dict[str, Any]) -> ToolResult:
    async with authed(srv.mcp_url, headers(srv, who)) as c:
        return await c.call(tool, args)


def assert_scoped_upstream(stack: LabelStack, mark: int, matcher: str) -> int:
    """Every query and series selector Prometheus received since `mark`
    carried `matcher`; returns how many requests it got."""
    reqs = stack.proxy.since(mark)
    for r in reqs:
        for name in ("query", "match[]"):
            for value in r.params.get(name, []):
                assert matcher in value, f"{r.path}: {name}={value!r} lacks {matcher}"
        if r.route.endswith(("/api/v1/series", "/api/v1/labels", "/values")):
            assert r.params.get("match[]"), f"{r.path}: no match[] reached Prometheus"
    return len(reqs)


def result_list(r: ToolResult) -> list[Any]:
    data = r.data
    return data["result"] if isinstance(data, dict) and "result" in data else data


# --------------------------------------------------------------------------
# the attack matrix
# --------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    tool: str
    args: dict[str, Any]
    expect: str  # "own": must see `must`; "empty": nothing; "refused": isError or empty
    must: tuple[str, ...] = ()
    relabelled: bool = False  # the query itself writes `tenant` (label_replace, count_values…)
    who: str = "alice"


A, B = VALUES["a"], VALUES["b"]
RANGE = {"start": "now-30s", "end": "now", "step": "5s"}


def text(v: Any) -> str:
    """A value as Prometheus writes it (23, not 23.0)."""
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def q(query: str, expect: str = "own", *must: Any, relabelled: bool = False, who: str = "alice",
      tool: str = "execute_query", **args: Any) -> Case:
    return Case(query, tool, {"query": query, **args}, expect, tuple(text(m) for m in must), relabelled, who)


CASES = [
    q("demo_requests_total", "own", A["counter"], owner("a")),
    q('{__name__=~".+"}', "own", A["counter"], A["gauge"], A["sum"]),
    q('{__name__=~"demo.*", tenant="b"}', "empty"),
    q('demo_requests_total{tenant!="a"}', "empty"),
    q('demo_requests_total{tenant=~".*"}', "own", A["counter"]),
    q('demo_requests_total{tenant=~"b|c"}', "empty"),
    q('{tenant="b"} or {tenant="c"}', "empty"),
    q("demo_requests_total or vector(1)", "own", A["counter"]),
    q('label_replace(demo_requests_total, "tenant", "b", "", "")', "own", A["counter"], relabelled=True),
    q('label_join(demo_gauge, "tenant", ",", "owner")', "own", A["gauge"], relabelled=True),
    q("demo_requests_total offset 2s", "own", A["counter"]),
    q("demo_gauge @ end()", "own", A["gauge"]),
    q("max_over_time(demo_gauge[20s:1s])", "own", A["gauge"]),
    q("max_over_time((demo_gauge @ end())[20s:1s] offset 1s)", "own", A["gauge"]),
    q('absent(demo_requests_total{tenant="b"})', "own", relabelled=True),
    q('count_values("tenant", demo_requests_total)', "own", A["counter"], relabelled=True),
    q("sum(demo_requests_total)", "own", A["counter"]),
    q("sum without (tenant) (demo_gauge)", "own", A["gauge"]),
    q("avg(demo_gauge)", "own", A["gauge"]),
    q("demo_requests_total * on () group_left () demo_gauge", "own", A["counter"] * A["gauge"]),
    q("demo_requests_total - on (job) group_left demo_gauge", "own", A["counter"] - A["gauge"]),
    q("demo_gauge + ignoring (owner) group_right demo_gauge", "own", 2 * A["gauge"]),
    q('demo_requests_total unless on (tenant) demo_gauge{tenant="b"}', "own", A["counter"]),
    q('demo_gauge and on () demo_gauge{tenant="c"}', "empty"),
    q("topk(5, demo_requests_total)", "own", A["counter"]),
    q("sum by (tenant) (rate(demo_requests_total[10s]))", "own", '"tenant": "a"'),
    q("histogram_quantile(0.5, sum by (le) (demo_latency_seconds_bucket))", "own", '"resultType": "vector"'),
    q("demo_latency_seconds_sum", "own", A["sum"]),
    q("sort_desc(demo:gauge:max)", "own", A["gauge"]),
    q('{__name__=~".+", tenant="b"} or {__name__=~"demo_gauge"}', "own", A["gauge"]),
    q('{a="1" or tenant="b"}', "refused"),
    q("demo_gauge", "own", A["gauge"], tool="execute_range_query", **RANGE),
    q("sum(demo_requests_total)", "own", A["counter"], tool="execute_range_query", **RANGE),
    q('label_replace(demo_gauge, "tenant", "c", "", "")', "own", A["gauge"], relabelled=True,
      tool="execute_range_query", **RANGE),
    q("demo_requests_total", "empty", tool="query_exemplars"),
    Case("series-all", "find_series", {"matches": ['{__name__=~".+"}']}, "own", ("demo_gauge", owner("a"))),
    Case("series-b", "find_series", {"matches": ['demo_gauge{tenant="b"}']}, "empty"),
    Case("series-tenant", "find_series", {"matches": ['{tenant=~".+"}', "up"]}, "own", (owner("a"),)),
    Case("names", "list_label_names", {}, "own", ("tenant", "owner")),
    Case("names-c", "list_label_names", {"matches": ['{tenant="c"}']}, "empty"),
    Case("values-tenant", "list_label_values", {"label": "tenant"}, "own", ('"a"',)),
    Case("values-owner", "list_label_values", {"label": "owner"}, "own", (owner("a"),)),
    Case("values-owner-b", "list_label_values", {"label": "owner", "matches": ['{tenant="b"}']}, "empty"),
    Case("values-name", "list_label_values", {"label": "__name__"}, "own", ("demo_gauge", "ALERTS")),
    Case("metrics", "list_metrics", {}, "own", ("demo_requests_total",)),
    Case("alerts", "get_alerts", {}, "own", ("DemoTenantA", "DemoShared", str(A["gauge"]))),
    Case("rules", "get_rules", {}, "own", ("DemoTenantA", "DemoShared")),
    q("demo_requests_total", "own", A["counter"], B["counter"], who="abby"),
    Case("ab-values", "list_label_values", {"label": "tenant"}, "own", ('"a"', '"b"'), who="abby"),
    Case("ab-alerts", "get_alerts", {}, "own", ("DemoTenantA", "DemoTenantB"), who="abby"),
    q("demo_gauge", "own", B["gauge"], who="abby", org_id="b"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.who}-{c.tool}-{c.id}" for c in CASES])
async def test_attack_matrix(server: LayeredServer, stack: LabelStack, case: Case) -> None:
    mark = stack.proxy.mark()
    r = await call(server, case.who, case.tool, case.args)
    allowed = {"b"} if case.args.get("org_id") == "b" else WHO[case.who][1]
    found = leaks(r.raw.structured_content, allowed, case.relabelled) + leaks(r.text, allowed, True)
    assert not found, f"another tenant's data reached {case.who}: {found}\n{r.describe()}"
    if case.expect == "refused":
        assert r.is_error or not result_list(r), r.describe()
        return
    r.ok()
    if case.expect == "empty":
        assert not result_list(r), r.describe()
    dumped = str(r.raw.structured_content).replace("'", '"')
    sent = [(q.path, q.body) for q in stack.proxy.since(mark)]
    for must in case.must:
        assert must in dumped, f"{must} missing: the caller's own data must come back\n{r.describe()}\n{sent}"
    matcher = 'tenant="b"' if case.args.get("org_id") == "b" else MATCHER[case.who]
    assert assert_scoped_upstream(stack, mark, matcher) >= 1


def test_the_matrix_is_large_enough() -> None:
    assert len(CASES) >= 30, len(CASES)


async def test_absent_is_no_oracle(server: LayeredServer) -> None:
    """absent() answers the same for another tenant's metric and for none."""
    there = await call(server, "alice", "execute_query", {"query": 'absent(demo_gauge{tenant="b"})'})
    nowhere = await call(server, "alice", "execute_query", {"query": 'absent(no_such_metric{tenant="b"})'})
    assert [s["value"][1] for s in result_list(there.ok())] == ["1"], there.describe()
    assert [s["value"][1] for s in result_list(nowhere.ok())] == ["1"], nowhere.describe()


async def test_alerts_and_rules_keep_only_the_callers(server: LayeredServer) -> None:
    alerts = (await call(server, "alice", "get_alerts", {})).ok().data["alerts"]
    assert {(a["labels"]["alertname"], a["labels"]["tenant"]) for a in alerts} == \
        {("DemoTenantA", "a"), ("DemoShared", "a")}, alerts
    groups = (await call(server, "alice", "get_rules", {})).ok().data["groups"]
    kept = {g["name"]: [r["name"] for r in g["rules"]] for g in groups}
    assert kept == {"tenant-a-alerts": ["DemoTenantA"], "shared": ["DemoShared"]}, kept
    shared = next(r for g in groups for r in g["rules"] if r["name"] == "DemoShared")
    assert [a["labels"]["tenant"] for a in shared["alerts"]] == ["a"], shared


async def test_unscoped_tools_are_refused(server: LayeredServer, stack: LabelStack) -> None:
    mark = stack.proxy.mark()
    for tool in UNSCOPED:
        args = {"metric": "demo_gauge"} if tool == "get_metric_metadata" else {}
        r = (await call(server, "alice", tool, args)).error()
        assert tool in r.text and f'label_unscoped_tools = ["{tool}"]' in r.text, r.describe()
    assert not stack.proxy.since(mark), [q.path for q in stack.proxy.since(mark)]
    for tool in ("get_build_info", "check_ready"):
        (await call(server, "alice", tool, {})).ok()


async def test_opted_in_tools_are_served(opted_in: LayeredServer) -> None:
    (await call(opted_in, "alice", "get_targets", {})).ok()
    (await call(opted_in, "alice", "get_tsdb_stats", {})).ok()
    assert "label_unscoped_tools" in (await call(opted_in, "alice", "get_config", {})).error().text


def test_a_caller_without_tenants_is_forbidden(server: LayeredServer, stack: LabelStack) -> None:
    mark = stack.proxy.mark()
    r = raw_call(server.mcp_url, "execute_query", {"query": "up"}, headers(server, "nina"))
    assert r.status == 403 and json_body(r)["error"] == "forbidden", r.text
    assert not stack.proxy.since(mark)


def passthrough(server: LayeredServer, who: str, path: str, params: dict[str, str], post: bool = False) -> Any:
    url = server.srv.base_url + PREFIX + path
    form = urllib.parse.urlencode(params)
    if post:
        r = http_post(url, form.encode(), {**headers(server, who), "Content-Type": "application/x-www-form-urlencoded"})
    else:
        r = http_get(f"{url}?{form}", 10, headers(server, who))
    return r.status, json_body(r)


def test_the_passthrough_is_scoped(server: LayeredServer, stack: LabelStack) -> None:
    mark = stack.proxy.mark()
    status, body = passthrough(server, "alice", "/api/v1/query", {"query": '{__name__=~"demo.*"}'})
    assert status == 200 and body["data"]["result"], body
    assert not leaks(body, {"a"}) and str(A["counter"]) in str(body), body
    status, body = passthrough(server, "alice", "/api/v1/query", {"query": 'demo_gauge{tenant="b"}'}, post=True)
    assert status == 200 and body["data"]["result"] == [], body
    status, body = passthrough(server, "alice", "/api/v1/series", {})
    assert status == 200 and body["data"] and not leaks(body, {"a"}), body
    status, body = passthrough(server, "alice", "/api/v1/alerts", {})
    assert status == 200 and {a["labels"]["tenant"] for a in body["data"]["alerts"]} == {"a"}, body
    assert_scoped_upstream(stack, mark, MATCHER["alice"])
    mark = stack.proxy.mark()
    status, body = passthrough(server, "alice", "/api/v1/metadata", {})
    assert status == 403 and "label_unscoped_tools" in body["error"], body
    assert not stack.proxy.since(mark)
