"""Tool policy ([layers.policy]) end to end: who sees which tools in
tools/list, and a call to a tool the caller may not use is an isError result
that never reaches the upstream (the tenant router records every request).

Rules are the issue's example: team-dev gets the query tools, list_* and
find_series; sre gets everything but get_config and get_flags; anyone else
nothing (default deny).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authasserts import assert_no_upstream
from authstack import LayeredServer, TenantStack, _layered, issuer_entry, issuer_fixture, layered_config, raw_rpc
from jwt_issuer import JwtIssuer
from mcpclient import STDIO, Target, connect
from mcpserver import run_cli
from promtext import metric_sum
from rawmcp import authed, bearer, raw_call, raw_tool_result, rpc_message
from tenant_router import TenantRouter
from test_tools import EXPECTED_TOOLS as ALL_TOOLS

pytestmark = pytest.mark.anyio

QUERY = {"query": "up"}
PREFIX = "mcp_prometheus_"
GROUPS = {g: ["tenant-a"] for g in ("team-dev", "sre", "sales", "fam", "rx", "glob", "qual", "nobody")}
ISSUE_RULES: list[dict[str, Any]] = [
    {"groups": ["team-dev"], "allow": ["execute_query", "execute_range_query", "list_*", "find_series"]},
    {"groups": ["sre"], "allow": ["*"], "deny": ["get_config", "get_flags"]},
    {"subjects": ["carol"], "allow": ["get_config"]},
]
DEV_TOOLS = {"execute_query", "execute_range_query", "list_metrics", "list_label_names", "list_label_values",
             "find_series"}
SRE_TOOLS = ALL_TOOLS - {"get_config", "get_flags"}
DISCOVERY = {"list_metrics", "get_metric_metadata", "list_label_names", "list_label_values", "find_series",
             "get_targets_metadata"}
ALERTING = {"get_alerts", "get_alertmanagers", "get_rules"}


def denied_text(tool: str) -> str:
    return f'tool "{tool}" is not allowed for you; call tools/list for the tools you may use'


pol_issuer = issuer_fixture("policy")


def policy_config(url: str, iss: JwtIssuer, rules: list[dict[str, Any]], default: str | None) -> Any:
    policy: dict[str, Any] = {"enabled": True, "rules": rules}
    if default is not None:
        policy["default"] = default
    return layered_config(url, issuers=[issuer_entry(iss)], groups=GROUPS, layers={"policy": policy})


@pytest.fixture(scope="module")
def policy_server(pool: Any, tenant_stack: TenantStack, pol_issuer: JwtIssuer) -> LayeredServer:
    return _layered(pool, "policy-issue", lambda: policy_config(tenant_stack.url, pol_issuer, ISSUE_RULES, "deny"),
                    pol_issuer)


@pytest.fixture(scope="module")
def pattern_server(pool: Any, tenant_stack: TenantStack, pol_issuer: JwtIssuer) -> LayeredServer:
    """default allow; families, an anchored regex, globs, a qualified group,
    an issuer-bound rule and a subject rule."""
    rules = [
        {"groups": ["fam"], "allow": ["alerting", "discovery"]},
        {"groups": ["rx"], "allow": ["^(get|list)_.*$"]},
        {"groups": ["glob"], "allow": ["*_query", "get_?ules"], "deny": ["execute_range_query"]},
        {"groups": [f"{pol_issuer.issuer}#qual"], "allow": ["check_ready"]},
        # every listed kind must match: fam's user-1 is not this subject
        {"groups": ["fam"], "subjects": ["someone-else"], "issuers": [pol_issuer.issuer], "allow": ["get_config"]},
        {"subjects": ["erin"], "allow": ["query"], "deny": ["query_exemplars"]},
    ]
    return _layered(pool, "policy-patterns", lambda: policy_config(tenant_stack.url, pol_issuer, rules, "allow"),
                    pol_issuer)


@pytest.fixture(scope="module")
def prefix_server(pool: Any, tenant_stack: TenantStack, pol_issuer: JwtIssuer) -> LayeredServer:
    """The issue's rules with a tool prefix and `default` unset (deny, as rules exist)."""
    def make() -> Any:
        cfg = policy_config(tenant_stack.url, pol_issuer, ISSUE_RULES[:2], None)
        cfg.tool_prefix = PREFIX
        return cfg
    return _layered(pool, "policy-prefix", make, pol_issuer)


def who(srv: LayeredServer, groups: list[str], sub: str = "user-1") -> dict[str, str]:
    return bearer(srv.token(groups, sub=sub))


async def listed(srv: LayeredServer, headers: dict[str, str], mode: str = "auto") -> set[str]:
    async with authed(srv.mcp_url, headers, mode) as c:
        return {t.name for t in await c.list_tools()}


def assert_denied(srv: LayeredServer, router: TenantRouter, headers: dict[str, str], tool: str,
                  called_as: str | None = None, arguments: dict[str, Any] | None = None) -> None:
    mark = router.mark()
    res = raw_tool_result(raw_call(srv.mcp_url, called_as or tool, arguments or {}, headers))
    assert res.get("isError") is True, res
    assert [c.get("text") for c in res["content"]] == [denied_text(called_as or tool)], res
    assert "structuredContent" not in res or not res["structuredContent"], res
    assert_no_upstream(router, mark, f"denied {called_as or tool}")


# --------------------------------------------------------------------------
# the issue's example
# --------------------------------------------------------------------------

@pytest.mark.parametrize("groups,expected", [
    (["team-dev"], DEV_TOOLS), (["sre"], SRE_TOOLS), (["sales"], set()), (["team-dev", "sre"], SRE_TOOLS),
], ids=["team-dev", "sre", "sales", "dev+sre"])
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_list_per_group(policy_server: LayeredServer, groups: list[str], expected: set[str],
                                    mode: str) -> None:
    assert len(ALL_TOOLS) == 21 and len(SRE_TOOLS) == 19
    assert await listed(policy_server, who(policy_server, groups), mode) == expected


async def test_tools_list_result_is_private(policy_server: LayeredServer) -> None:
    """The list depends on who asks: cacheScope private, raw and via the SDK (legacy session)."""
    msg = rpc_message(raw_rpc(policy_server.mcp_url, "tools/list", {}, who(policy_server, ["team-dev"])))
    assert msg["result"].get("cacheScope") == "private", msg["result"].get("cacheScope")
    assert msg["result"].get("ttlMs") == 300000, "fresh until the config changes (a restart)"
    assert {t["name"] for t in msg["result"]["tools"]} == DEV_TOOLS
    async with authed(policy_server.mcp_url, who(policy_server, ["sre"]), "legacy") as c:
        page = await c.client.list_tools(cache_mode="bypass")
    assert page.cache_scope == "private", page
    assert {t.name for t in page.tools} == SRE_TOOLS


@pytest.mark.parametrize("groups,tool", [(["team-dev"], "get_config"), (["team-dev"], "get_rules"),
                                         (["sre"], "get_config"), (["sre"], "get_flags")])
def test_denied_call_never_reaches_the_upstream(policy_server: LayeredServer, router: TenantRouter,
                                                groups: list[str], tool: str) -> None:
    before = policy_server.metrics()
    assert_denied(policy_server, router, who(policy_server, groups), tool)
    grew = (metric_sum(policy_server.metrics(), "mcp_prometheus_policy_denials_total", tool=tool)
            - metric_sum(before, "mcp_prometheus_policy_denials_total", tool=tool))
    assert grew == 1, f"mcp_prometheus_policy_denials_total{{tool={tool!r}}} grew by {grew}"


@pytest.mark.parametrize("groups,tool,arguments", [
    (["team-dev"], "execute_query", QUERY), (["team-dev"], "list_label_values", {"label": "job"}),
    (["sre"], "get_rules", {}), (["sre"], "get_targets", {}),
])
def test_allowed_call_reaches_the_upstream(policy_server: LayeredServer, router: TenantRouter, groups: list[str],
                                           tool: str, arguments: dict[str, Any]) -> None:
    mark = router.mark()
    res = raw_tool_result(raw_call(policy_server.mcp_url, tool, arguments, who(policy_server, groups)))
    assert not res.get("isError"), res
    reqs = router.since(mark)
    assert reqs and {q.org_id for q in reqs} == {"tenant-a"}, [(q.path, q.org_id) for q in reqs]


def test_sales_may_call_nothing(policy_server: LayeredServer, router: TenantRouter) -> None:
    headers = who(policy_server, ["sales"], sub="sam")
    for tool in sorted(ALL_TOOLS):
        assert_denied(policy_server, router, headers, tool, arguments=QUERY if "query" in tool else {})


async def test_deny_beats_allow(policy_server: LayeredServer, router: TenantRouter) -> None:
    """carol's own rule allows get_config; as a member of sre, sre's deny wins."""
    assert await listed(policy_server, who(policy_server, ["nobody"], sub="carol")) == {"get_config"}
    carol_sre = who(policy_server, ["sre"], sub="carol")
    assert await listed(policy_server, carol_sre) == SRE_TOOLS
    assert_denied(policy_server, router, carol_sre, "get_config")
    mark = router.mark()
    carol = who(policy_server, ["nobody"], sub="carol")
    res = raw_tool_result(raw_call(policy_server.mcp_url, "get_config", {}, carol))
    assert not res.get("isError"), res
    assert router.since(mark), "carol alone may read the config"


# --------------------------------------------------------------------------
# families, globs, regexes, qualified groups, default allow
# --------------------------------------------------------------------------

@pytest.mark.parametrize("groups,sub,expected", [
    (["fam"], "user-1", DISCOVERY | ALERTING),
    (["rx"], "user-1", {t for t in ALL_TOOLS if t.startswith(("get_", "list_"))}),
    (["glob"], "user-1", {"execute_query", "validate_query", "get_rules", "render_range_query"}),
    (["qual"], "user-1", {"check_ready"}),
    (["nobody"], "user-1", ALL_TOOLS),
    (["glob"], "erin", {"execute_query", "validate_query", "get_rules", "render_range_query"}),
    (["nobody"], "erin", {"execute_query", "execute_range_query", "validate_query", "render_range_query"}),
], ids=["family", "regex", "glob-minus-deny", "issuer#group", "default-allow", "deny-across-rules", "subject"])
async def test_pattern_rules(pattern_server: LayeredServer, groups: list[str], sub: str, expected: set[str]) -> None:
    assert len({t for t in ALL_TOOLS if t.startswith(("get_", "list_"))}) == 14
    assert await listed(pattern_server, who(pattern_server, groups, sub)) == expected


def test_pattern_calls(pattern_server: LayeredServer, router: TenantRouter) -> None:
    glob = who(pattern_server, ["glob"])
    assert_denied(pattern_server, router, glob, "execute_range_query", arguments=QUERY)
    assert_denied(pattern_server, router, who(pattern_server, ["fam"]), "get_config")
    mark = router.mark()
    res = raw_tool_result(raw_call(pattern_server.mcp_url, "get_rules", {}, glob))
    assert not res.get("isError"), res
    assert any(q.route.endswith("/api/v1/rules") for q in router.since(mark))


# --------------------------------------------------------------------------
# tool prefix, stdio, check-config
# --------------------------------------------------------------------------

async def test_prefix_in_list_and_message(prefix_server: LayeredServer, router: TenantRouter) -> None:
    assert await listed(prefix_server, who(prefix_server, ["team-dev"])) == {PREFIX + t for t in DEV_TOOLS}
    assert await listed(prefix_server, who(prefix_server, ["sales"])) == set(), "default unset: deny"
    assert_denied(prefix_server, router, who(prefix_server, ["team-dev"]), "get_config", PREFIX + "get_config")
    res = raw_tool_result(raw_call(prefix_server.mcp_url, PREFIX + "execute_query", QUERY,
                                   who(prefix_server, ["team-dev"])))
    assert not res.get("isError"), res


async def test_stdio_local_principal(workdir: Path, binary: Path, tenant_stack: TenantStack,
                                     router: TenantRouter) -> None:
    cfg = layered_config(tenant_stack.url, tenancy="static", static_tenants=["tenant-a"],
                         layers={"policy": {"enabled": True, "default": "deny", "rules": ISSUE_RULES[:2]}})
    cfg.server_extra["local_principal"] = {"subject": "me", "groups": ["team-dev"]}
    path = cfg.write(workdir / "servers" / "policy-stdio.toml")
    target = Target(binary, path, None, None, workdir / "logs" / "mcp-prometheus-policy-stdio.log")
    async with connect(target, STDIO) as c:
        assert {t.name for t in await c.list_tools()} == DEV_TOOLS
        mark = router.mark()
        r = (await c.call("get_config", {})).error()
        assert r.text == denied_text("get_config"), r.describe()
        assert_no_upstream(router, mark, "stdio get_config")
        (await c.call("execute_query", QUERY)).ok()
        assert {q.org_id for q in router.since(mark)} == {"tenant-a"}


def check_config(workdir: Path, name: str, cfg: Any) -> str:
    p = run_cli(["check-config", "--config", cfg.write(workdir / "servers" / f"{name}.toml")])
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"{name}: accepted\n{out}"
    return out


def test_check_config_refuses_typo(workdir: Path, pol_issuer: JwtIssuer) -> None:
    rules = [{"groups": ["team-dev"], "allow": ["execute_query", "get_confg"]}]
    out = check_config(workdir, "policy-typo", policy_config("http://127.0.0.1:1", pol_issuer, rules, None))
    assert "layers.policy.rules[0].allow" in out and "get_confg" in out, out
    assert "matches no tool" in out, out


def test_check_config_refuses_an_issuer_nobody_configured(workdir: Path, pol_issuer: JwtIssuer) -> None:
    rules = [{"groups": ["fam"], "issuers": ["https://elsewhere.example"], "allow": ["get_config"]}]
    out = check_config(workdir, "policy-issuer", policy_config("http://127.0.0.1:1", pol_issuer, rules, None))
    assert "layers.policy.rules[0]" in out and "https://elsewhere.example" in out, out
    assert "not a configured issuer" in out, out


def test_check_config_refuses_rules_without_authn(workdir: Path) -> None:
    cfg = layered_config("http://127.0.0.1:1", tenancy=None,
                         layers={"policy": {"enabled": True, "rules": ISSUE_RULES[:1]}})
    out = check_config(workdir, "policy-no-authn", cfg)
    assert "layers.policy" in out and "[layers.authn]" in out, out
