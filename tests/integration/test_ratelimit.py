"""Rate limits ([layers.ratelimit]) end to end: a token bucket per caller
for tool calls (the first matching rule decides), per tenant set when a rule
says `per = "tenant"`, and per client address for requests without a token,
before authn. Over the limit: HTTP 429 with Retry-After and a JSON-RPC error;
the upstream (the recording tenant router) never sees the refused call.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from authasserts import assert_no_upstream
from authstack import LayeredServer, TenantStack, _layered, issuer_entry, issuer_fixture, layered_config, raw_rpc
from httputil import HttpResponse
from jwt_issuer import JwtIssuer
from mcpclient import STDIO, Target, connect
from mcpserver import run_cli
from promtext import metric_sum
from rawmcp import authed, bearer, json_body, raw_call, raw_tool_result, rpc_message
from tenant_router import TenantRouter

pytestmark = pytest.mark.anyio

QUERY = {"query": "up"}
LIMITED = "mcp_prometheus_ratelimit_limited_total"
GROUPS = {"team-dev": ["tenant-a"], "team-slow": ["tenant-a"], "team-shared": ["tenant-b"], "other": ["tenant-a"]}
RULES: list[dict[str, Any]] = [
    {"name": "vip", "subjects": ["vip"], "per_second": 1000, "burst": 1000},
    {"name": "team-dev", "groups": ["team-dev"], "per_second": 0.5, "burst": 3},
    {"groups": ["team-shared"], "per_second": 0.05, "burst": 2, "per": "tenant"},
    {"name": "slow", "groups": ["team-slow"], "per_second": 0.02, "burst": 3},
]

rl_issuer = issuer_fixture("ratelimit")


@pytest.fixture(scope="module")
def rl_server(pool: Any, tenant_stack: TenantStack, rl_issuer: JwtIssuer) -> LayeredServer:
    layers = {"ratelimit": {"enabled": True, "unauthenticated": {"per_second": 0.05, "burst": 3}, "rules": RULES}}
    return _layered(pool, "ratelimit", lambda: layered_config(tenant_stack.url, issuers=[issuer_entry(rl_issuer)],
                                                               groups=GROUPS, layers=layers), rl_issuer)


def caller(srv: LayeredServer, groups: list[str], sub: str | None = None) -> dict[str, str]:
    return bearer(srv.token(groups, sub=sub or f"u-{secrets.token_hex(4)}"))


def call_ok(srv: LayeredServer, headers: dict[str, str]) -> None:
    res = raw_tool_result(raw_call(srv.mcp_url, "execute_query", QUERY, headers))
    assert not res.get("isError"), res


def queries(router: TenantRouter, mark: int) -> int:
    return sum(1 for q in router.since(mark) if q.route.endswith("/api/v1/query"))


def assert_429(r: HttpResponse, rule: str) -> int:
    """The per-caller refusal: 429, Retry-After, a JSON-RPC error naming the
    rule; returns Retry-After."""
    assert r.status == 429, f"HTTP {r.status}: {r.text[:500]}"
    retry = int(r.headers.get("retry-after", "0"))
    assert retry >= 1, r.headers
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    body = json_body(r)
    assert body.get("jsonrpc") == "2.0" and body.get("id") == 1 and "result" not in body, body
    err = body["error"]
    assert err["code"] == -32000, err
    assert f'rate limit "{rule}" reached' in err["message"] and f"retry after {retry} s" in err["message"], err
    assert err["data"] == {"rule": rule, "retry_after_seconds": retry}, err
    return retry


# --------------------------------------------------------------------------
# per caller
# --------------------------------------------------------------------------

def test_burst_then_429_then_retry(rl_server: LayeredServer, router: TenantRouter) -> None:
    before = rl_server.metrics()
    dev = caller(rl_server, ["team-dev"])
    mark = router.mark()
    for _ in range(3):
        call_ok(rl_server, dev)
    retry = assert_429(raw_call(rl_server.mcp_url, "execute_query", QUERY, dev), "team-dev")
    assert retry <= 2, f"0.5/s: one token within 2 s, Retry-After {retry}"
    assert queries(router, mark) == 3, [(q.path, q.org_id) for q in router.since(mark)]
    grew = metric_sum(rl_server.metrics(), LIMITED, rule="team-dev") - metric_sum(before, LIMITED, rule="team-dev")
    assert grew == 1, f'{LIMITED}{{rule="team-dev"}} grew by {grew}'
    # the same group, another subject: its own bucket
    call_ok(rl_server, caller(rl_server, ["team-dev"]))
    # no rule matches, no default: unlimited
    other = caller(rl_server, ["other"])
    for _ in range(6):
        call_ok(rl_server, other)
    # allowed again after Retry-After
    time.sleep(retry)
    call_ok(rl_server, dev)


@pytest.mark.filterwarnings("ignore:ping is removed")
async def test_only_tool_calls_count_and_the_sdk_sees_an_error(rl_server: LayeredServer,
                                                               router: TenantRouter) -> None:
    """(team-slow: one token per 50 s, so the SDK session's time cannot refill it.)"""
    dev = caller(rl_server, ["team-slow"])
    mark = router.mark()
    async with authed(rl_server.mcp_url, dev, "legacy") as c:
        for _ in range(3):
            (await c.call("execute_query", QUERY)).ok()
        for _ in range(5):  # tools/list and ping are not counted
            assert len(await c.list_tools()) == 21
            await c.client.send_ping()
        with pytest.raises(MCPError, match='rate limit "slow" reached') as e:
            await c.client.call_tool("execute_query", QUERY)
        assert e.value.code == -32000, e.value
    for _ in range(3):
        msg = rpc_message(raw_rpc(rl_server.mcp_url, "tools/list", {}, dev))
        assert len(msg["result"]["tools"]) == 21, msg
    assert queries(router, mark) == 3
    assert_429(raw_call(rl_server.mcp_url, "execute_query", QUERY, dev), "slow")


def test_first_matching_rule_applies(rl_server: LayeredServer) -> None:
    """vip is in team-dev too, but the vip rule comes first."""
    vip = caller(rl_server, ["team-dev"], sub="vip")
    for _ in range(6):
        call_ok(rl_server, vip)


def test_per_tenant_bucket_is_shared(rl_server: LayeredServer, router: TenantRouter) -> None:
    """An unnamed rule with per = "tenant": two subjects reading tenant-b
    share one bucket; the refusal names the rule rules[2]."""
    one, two = caller(rl_server, ["team-shared"]), caller(rl_server, ["team-shared"])
    call_ok(rl_server, one)
    call_ok(rl_server, two)
    mark = router.mark()
    assert_429(raw_call(rl_server.mcp_url, "execute_query", QUERY, two), "rules[2]")
    assert_429(raw_call(rl_server.mcp_url, "execute_query", QUERY, one), "rules[2]")
    assert_no_upstream(router, mark, "tenant bucket empty")


# --------------------------------------------------------------------------
# per address, before authn
# --------------------------------------------------------------------------

def test_anonymous_requests_limited_per_address(rl_server: LayeredServer, router: TenantRouter) -> None:
    before = rl_server.metrics()
    mark = router.mark()
    statuses = [raw_call(rl_server.mcp_url, "execute_query", QUERY).status for _ in range(3)]
    assert statuses == [401] * 3, statuses
    r = raw_call(rl_server.mcp_url, "execute_query", QUERY)
    assert r.status == 429, f"HTTP {r.status}: {r.text[:300]}"
    assert int(r.headers.get("retry-after", "0")) >= 1, r.headers
    body = json_body(r)
    assert body.get("error") == "too_many_requests", body
    assert 'rate limit "unauthenticated" reached' in body.get("error_description", ""), body
    assert "send a valid bearer token" in body["error_description"], body
    assert "www-authenticate" not in r.headers, "refused before authn: no challenge"
    assert raw_rpc(rl_server.mcp_url, "tools/list").status == 429, "every anonymous request counts"
    assert_no_upstream(router, mark, "anonymous")
    call_ok(rl_server, caller(rl_server, ["other"]))  # a token is not held up by the address limit
    grew = (metric_sum(rl_server.metrics(), LIMITED, rule="unauthenticated")
            - metric_sum(before, LIMITED, rule="unauthenticated"))
    assert grew == 2, f'{LIMITED}{{rule="unauthenticated"}} grew by {grew}'


@pytest.fixture(scope="module")
def rl_guess_server(pool: Any, tenant_stack: TenantStack, rl_issuer: JwtIssuer) -> LayeredServer:
    """Its own process: the address buckets it blocks are its own."""
    layers = {"ratelimit": {"enabled": True, "unauthenticated": {"per_second": 0.05, "burst": 3}}}
    return _layered(pool, "ratelimit-guess", lambda: layered_config(tenant_stack.url, issuers=[issuer_entry(rl_issuer)],
                                                                     groups=GROUPS, layers=layers), rl_issuer)


def test_garbage_tokens_are_charged_and_then_refused_before_authn(rl_guess_server: LayeredServer,
                                                                 router: TenantRouter) -> None:
    """A refused token draws from its address's bucket after the 401; once
    it is empty, every request from there is refused at the door, token or
    not (guessing tokens is what this slows), until it refills."""
    garbage = {"Authorization": "Bearer not.a.token"}
    mark = router.mark()
    statuses = [raw_call(rl_guess_server.mcp_url, "execute_query", QUERY, garbage).status for _ in range(6)]
    assert statuses == [401] * 4 + [429] * 2, "burst 3, the 4th refusal empties it: " + str(statuses)
    r = raw_call(rl_guess_server.mcp_url, "execute_query", QUERY, caller(rl_guess_server, ["other"]))
    assert r.status == 429, "the address is blocked after refused tokens, valid token or not"
    assert "www-authenticate" not in r.headers, "refused before authn"
    assert_no_upstream(router, mark, "garbage tokens")


# --------------------------------------------------------------------------
# stdio, check-config
# --------------------------------------------------------------------------

async def test_stdio_limit_is_an_error_result(workdir: Path, binary: Path, tenant_stack: TenantStack,
                                              router: TenantRouter) -> None:
    cfg = layered_config(tenant_stack.url, tenancy="static", static_tenants=["tenant-a"], layers={"ratelimit": {
        "enabled": True, "rules": [{"name": "team-dev", "groups": ["team-dev"], "per_second": 0.01, "burst": 3}]}})
    cfg.server_extra["local_principal"] = {"subject": "me", "groups": ["team-dev"]}
    path = cfg.write(workdir / "servers" / "ratelimit-stdio.toml")
    target = Target(binary, path, None, None, workdir / "logs" / "mcp-prometheus-ratelimit-stdio.log")
    mark = router.mark()
    async with connect(target, STDIO) as c:
        for _ in range(3):
            (await c.call("execute_query", QUERY)).ok()
        r = (await c.call("execute_query", QUERY)).error()
        assert 'rate limit "team-dev" reached' in r.text and "retry after" in r.text, r.describe()
    assert queries(router, mark) == 3


@pytest.mark.parametrize("rule,words", [
    ({"groups": ["team-dev"], "per_second": 0, "burst": 3}, "layers.ratelimit.rules[0]: per_second"),
    ({"groups": ["team-dev"], "per_second": 1, "burst": 0}, "layers.ratelimit.rules[0]: per_second"),
    ({"name": "bad name!", "groups": ["team-dev"], "per_second": 1, "burst": 1}, "layers.ratelimit.rules[0].name"),
    ({"per_second": 1, "burst": 1}, "layers.ratelimit.rules[0] names no callers"),
], ids=["zero-rate", "zero-burst", "bad-name", "no-selector"])
def test_check_config_refuses(workdir: Path, rl_issuer: JwtIssuer, rule: dict[str, Any], words: str) -> None:
    cfg = layered_config("http://127.0.0.1:1", issuers=[issuer_entry(rl_issuer)], tenancy=None,
                         layers={"ratelimit": {"enabled": True, "rules": [rule]}})
    p = run_cli(["check-config", "--config", cfg.write(workdir / "servers" / "ratelimit-bad.toml")])
    out = p.stdout + p.stderr
    assert p.returncode != 0 and words in out, out
