"""Tenancy ([layers.tenancy]) end to end against the tenant router: one real
Prometheus per tenant behind a Mimir-like router that records every
X-Scope-OrgID it receives.

alice: groups [team-a]  -> tenant-a
bob:   groups [team-b]  -> tenant-b, tenant-c
Every test asserts at the router that no request carried a tenant outside
the caller's allowed set.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from authasserts import assert_no_upstream, assert_tenants_within
from authstack import LayeredServer
from constants import ALICE_TENANTS, BOB_TENANTS
from mcpclient import ToolResult
from promtext import metric_sum
from rawmcp import authed, bearer, json_body, raw_call, raw_tool_result
from tenant_router import FEDERATION_LABEL, TenantRouter

pytestmark = pytest.mark.anyio

QUERY = {"query": "up"}


def alice(srv: LayeredServer) -> dict[str, str]:
    return bearer(srv.token(["team-a"], sub="alice"))


def bob(srv: LayeredServer) -> dict[str, str]:
    return bearer(srv.token(["team-b"], sub="bob"))


def series_tenants(r: ToolResult) -> set[str]:
    return {s["metric"].get("tenant", "?") for s in r.data["result"]}


def org_ids(router: TenantRouter, mark: int) -> list[str | None]:
    return [q.org_id for q in router.since(mark)]


# --------------------------------------------------------------------------
# defaults from the group map
# --------------------------------------------------------------------------

async def test_alice_sees_only_tenant_a(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(authn_server.mcp_url, alice(authn_server)) as c:
        r = (await c.call("execute_query", QUERY)).ok()
        assert series_tenants(r) == ALICE_TENANTS, r.describe()
        lv = (await c.call("list_label_values", {"label": "tenant"})).ok()
        assert lv.data == ["tenant-a"], lv.describe()
        rng = (await c.call("execute_range_query", {"query": "up", "start": "now-1m", "end": "now",
                                                    "step": "10s"})).ok()
        assert {s["labels"]["tenant"] for s in rng.data["series"]} == ALICE_TENANTS, rng.describe()
    assert set(org_ids(router, mark)) == {"tenant-a"}, org_ids(router, mark)
    assert_tenants_within(router, mark, ALICE_TENANTS, "alice")


async def test_bob_gets_both_tenants_by_default(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(authn_server.mcp_url, bob(authn_server)) as c:
        r = (await c.call("execute_query", QUERY)).ok()
        assert series_tenants(r) == BOB_TENANTS, r.describe()
        assert {s["metric"].get(FEDERATION_LABEL) for s in r.data["result"]} == BOB_TENANTS, r.describe()
        lv = (await c.call("list_label_values", {"label": "tenant"})).ok()
        assert lv.data == ["tenant-b", "tenant-c"], lv.describe()
    assert set(org_ids(router, mark)) == {"tenant-b|tenant-c"}, org_ids(router, mark)
    assert_tenants_within(router, mark, BOB_TENANTS, "bob")


@pytest.mark.parametrize("org_id,header", [
    ("tenant-c", "tenant-c"),
    ("tenant-b", "tenant-b"),
    ("tenant-c|tenant-b", "tenant-b|tenant-c"),
    (" tenant-b | tenant-b ", "tenant-b"),
    ("tenant-c | tenant-b|tenant-c", "tenant-b|tenant-c"),
], ids=["c", "b", "c|b-sorted", "spaces-duplicate", "three-dedup"])
async def test_bob_narrows_with_org_id(authn_server: LayeredServer, router: TenantRouter, org_id: str,
                                       header: str) -> None:
    mark = router.mark()
    async with authed(authn_server.mcp_url, bob(authn_server)) as c:
        r = (await c.call("execute_query", {**QUERY, "org_id": org_id})).ok()
        assert series_tenants(r) == set(header.split("|")), r.describe()
    assert set(org_ids(router, mark)) == {header}, org_ids(router, mark)
    assert_tenants_within(router, mark, BOB_TENANTS, "bob narrowed")


# --------------------------------------------------------------------------
# org_id refused: isError, nothing upstream
# --------------------------------------------------------------------------

BAD_ORG_IDS = {
    "not-allowed": "tenant-b|tenant-a",
    "only-foreign": "tenant-a",
    "unknown": "tenant-zzz",
    "crlf-injection": "tenant-b\r\nX-Scope-OrgID: tenant-a",
    "lf": "tenant-b\ntenant-a",
    "space-inside": "tenant b",
    "unicode": "ténant-b",
    "empty": "",
    "blank": "   ",
    "151-bytes": "t" * 151,
    "comma-list": "tenant-b,tenant-a",
}


@pytest.mark.parametrize("case", sorted(BAD_ORG_IDS))
async def test_bad_org_id_is_an_error(authn_server: LayeredServer, router: TenantRouter, case: str) -> None:
    org_id = BAD_ORG_IDS[case]
    mark = router.mark()
    async with authed(authn_server.mcp_url, bob(authn_server)) as c:
        r = (await c.call("execute_query", {**QUERY, "org_id": org_id})).error()
    if case in ("not-allowed", "only-foreign", "unknown"):
        # the message lists what bob may use
        assert "tenant-b" in r.text and "tenant-c" in r.text, r.describe()
    assert_no_upstream(router, mark, f"org_id {org_id!r}")


async def test_org_id_150_bytes_is_valid_syntax(authn_server: LayeredServer, router: TenantRouter) -> None:
    """150 bytes is Mimir's limit: syntactically fine, refused only because
    bob has no such tenant (and the message says which he has)."""
    mark = router.mark()
    async with authed(authn_server.mcp_url, bob(authn_server)) as c:
        r = (await c.call("execute_query", {**QUERY, "org_id": "t" * 150})).error()
        assert "tenant-b" in r.text and "tenant-c" in r.text, r.describe()
    assert_no_upstream(router, mark, "150-byte org_id")


async def test_every_tool_takes_org_id(authn_server: LayeredServer) -> None:
    async with authed(authn_server.mcp_url, alice(authn_server)) as c:
        tools = await c.list_tools()
    missing = [t.name for t in tools
               if (t.input_schema.get("properties", {}).get("org_id") or {}).get("type") != "string"]
    assert not missing, f"tools without a string org_id argument: {missing}"
    required = [t.name for t in tools if "org_id" in t.input_schema.get("required", [])]
    assert not required, f"org_id must be optional: {required}"


# --------------------------------------------------------------------------
# principals without tenants
# --------------------------------------------------------------------------

@pytest.mark.parametrize("groups", [["team-unmapped"], [], None], ids=["unmapped", "empty", "no-claim"])
def test_principal_without_tenants_is_forbidden(authn_server: LayeredServer, router: TenantRouter,
                                                groups: list[str] | None) -> None:
    mark = router.mark()
    r = raw_call(authn_server.mcp_url, "execute_query", QUERY, bearer(authn_server.token(groups, sub="carol")))
    assert r.status == 403, f"HTTP {r.status}: {r.text[:300]}"
    body = json_body(r)
    assert body.get("error") == "forbidden", body
    assert "no access to any tenant" in body.get("error_description", ""), body
    assert_no_upstream(router, mark, "principal without tenants")


# --------------------------------------------------------------------------
# rules and alerts: one request per tenant, results tagged
# --------------------------------------------------------------------------

async def test_rules_fan_out_per_tenant(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(authn_server.mcp_url, bob(authn_server)) as c:
        r = (await c.call("get_rules", {})).ok()
    groups = r.data["groups"]
    got = {(g["name"], g.get("tenant")) for g in groups}
    assert got == {("tenant-b-rules", "tenant-b"), ("tenant-c-rules", "tenant-c")}, r.describe()
    reqs = [q for q in router.since(mark) if q.route.endswith("/api/v1/rules")]
    assert sorted(q.org_id for q in reqs) == ["tenant-b", "tenant-c"], [q.org_id for q in reqs]
    assert all(q.status == 200 for q in reqs), [(q.org_id, q.status) for q in reqs]
    assert_tenants_within(router, mark, BOB_TENANTS, "bob rules")


async def test_alerts_fan_out_per_tenant(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(authn_server.mcp_url, bob(authn_server)) as c:
        r = (await c.call("get_alerts", {})).ok()
    alerts = r.data["alerts"]
    assert alerts, r.describe()
    assert all(a.get("tenant") == a["labels"]["tenant"] for a in alerts), r.describe()
    assert {a["tenant"] for a in alerts} == BOB_TENANTS, r.describe()
    reqs = [q for q in router.since(mark) if q.route.endswith("/api/v1/alerts")]
    assert sorted(q.org_id for q in reqs) == ["tenant-b", "tenant-c"], [q.org_id for q in reqs]
    assert_tenants_within(router, mark, BOB_TENANTS, "bob alerts")


async def test_rules_narrowed_and_single_tenant(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(authn_server.mcp_url, bob(authn_server)) as c:
        r = (await c.call("get_rules", {"org_id": "tenant-c"})).ok()
        assert [(g["name"], g.get("tenant")) for g in r.data["groups"]] == [("tenant-c-rules", "tenant-c")], \
            r.describe()
    async with authed(authn_server.mcp_url, alice(authn_server)) as c:
        r = (await c.call("get_alerts", {})).ok()
        assert {a.get("tenant") for a in r.data["alerts"]} == {"tenant-a"}, r.describe()
    assert "|" not in "".join(q.org_id or "" for q in router.since(mark)
                              if q.route.endswith(("/api/v1/rules", "/api/v1/alerts")))
    assert_tenants_within(router, mark, ALICE_TENANTS | BOB_TENANTS, "rules/alerts")


# --------------------------------------------------------------------------
# static mode, tenancy off, cache metrics
# --------------------------------------------------------------------------

async def test_static_mode_without_authn(static_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(static_server.mcp_url, {}) as c:
        r = (await c.call("execute_query", QUERY)).ok()
        assert series_tenants(r) == {"tenant-a"}, r.describe()
        e = (await c.call("execute_query", {**QUERY, "org_id": "tenant-b"})).error()
        assert "tenant-a" in e.text, e.describe()
    assert set(org_ids(router, mark)) == {"tenant-a"}, org_ids(router, mark)


async def test_tenancy_off_sends_no_org_id(plain_router_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(plain_router_server.mcp_url, {}) as c:
        # the router answers 401 `no org id`, as Mimir would
        r = (await c.call("execute_query", QUERY)).error()
        assert "org id" in r.text or "401" in r.text, r.describe()
    reqs = router.since(mark)
    assert reqs and all(q.org_id is None for q in reqs), [(q.path, q.org_id) for q in reqs]


async def test_static_upstream_org_id_without_tenancy(static_org_server: LayeredServer,
                                                      router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(static_org_server.mcp_url, {}) as c:
        r = (await c.call("execute_query", QUERY)).ok()
        assert series_tenants(r) == {"tenant-c"}, r.describe()
    assert set(org_ids(router, mark)) == {"tenant-c"}, org_ids(router, mark)


@pytest.mark.parametrize("org_id", ["tenant-b", "tenant-a|tenant-b", "tenant-c"])
async def test_a_fixed_org_id_stays_fixed(static_org_server: LayeredServer, router: TenantRouter,
                                          org_id: str) -> None:
    """Tenancy off, upstream org_id = tenant-c: a caller's org_id is refused
    before anything is sent (it used to replace the fixed tenant)."""
    mark = router.mark()
    async with authed(static_org_server.mcp_url, {}) as c:
        e = (await c.call("execute_query", {**QUERY, "org_id": org_id})).error()
    assert "allow_org_id_override" in e.text and "its own X-Scope-OrgID" in e.text, e.describe()
    assert "tenant-c" not in e.text, "the fixed tenant is not told to callers"
    assert router.since(mark) == [], [(q.path, q.org_id) for q in router.since(mark)]


async def test_a_caller_may_choose_only_where_the_operator_allows(
        override_org_server: LayeredServer, plain_router_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(override_org_server.mcp_url, {}) as c:
        r = (await c.call("execute_query", {**QUERY, "org_id": "tenant-b"})).ok()
        assert series_tenants(r) == {"tenant-b"}, r.describe()
        r = (await c.call("execute_query", QUERY)).ok()
        assert series_tenants(r) == {"tenant-c"}, r.describe()
    assert org_ids(router, mark) == ["tenant-b", "tenant-c"], org_ids(router, mark)
    mark = router.mark()
    async with authed(plain_router_server.mcp_url, {}) as c:
        e = (await c.call("execute_query", {**QUERY, "org_id": "tenant-a"})).error()
    assert "sends no X-Scope-OrgID" in e.text, e.describe()
    assert router.since(mark) == [], "nothing may reach the upstream"


def test_tenancy_cache_metrics(authn_server: LayeredServer) -> None:
    name = "mcp_prometheus_tenancy_cache_requests_total"
    before = authn_server.metrics()
    # a group set never seen before (the cache may be keyed by groups, not by subject)
    token = bearer(authn_server.token(["team-b", f"cache-{secrets.token_hex(4)}"], sub="cache-user"))
    for _ in range(3):
        res = raw_tool_result(raw_call(authn_server.mcp_url, "execute_query", QUERY, token))
        assert not res.get("isError"), res
    after = authn_server.metrics()
    hits = metric_sum(after, name, result="hit") - metric_sum(before, name, result="hit")
    misses = metric_sum(after, name, result="miss") - metric_sum(before, name, result="miss")
    assert hits >= 2 and misses >= 1, f"{name}: +{hits} hits, +{misses} misses\n" + "\n".join(
        line for line in after.splitlines() if name in line)


def test_federated_answer_is_valid_json(authn_server: LayeredServer) -> None:
    """The raw tool result for bob's federated query parses and names both
    tenants in __tenant_id__ (what Mimir adds)."""
    res = raw_tool_result(raw_call(authn_server.mcp_url, "execute_query", QUERY, bob(authn_server)))
    data: Any = res["structuredContent"]["data"]
    json.dumps(data)
    assert {s["metric"][FEDERATION_LABEL] for s in data["result"]} == BOB_TENANTS, data
