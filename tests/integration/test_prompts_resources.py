"""Prompts and resources through the official Python SDK client (every
transport), raw JSON-RPC for each protocol version we serve, the paged
metric catalog against an upstream with more names than a page, tenancy
(what the upstream saw) and the policy (what a caller is offered).
"""

from __future__ import annotations

import base64
import http.server
import json
import urllib.parse
from typing import Any

import pytest
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from authstack import LayeredServer, TenantStack, _layered, issuer_entry, layered_config, raw_rpc
from constants import ALICE_TENANTS
from fakes import FakeUpstream
from httputil import http_post, reply
from jwt_issuer import JwtIssuer
from mcpclient import Target, TransportSpec, connect, http_session
from rawmcp import BASE_HEADERS, authed, bearer, rpc_message
from serverconfig import ServerConfig, Upstream
from tenant_router import TenantRouter

pytestmark = pytest.mark.anyio

PROMPT_ARGS = {
    "investigate_alert": {"alertname": "AlwaysFiring"},
    "cardinality_audit": {"metric": "prometheus_http_requests_total"},
    "slo_burn_rate": {"error_metric": "prometheus_http_requests_total", "total_metric": "up",
                      "objective": "99.9", "window": "30d"},
}
CHEATSHEET = "prometheus://docs/promql-cheatsheet"
UPSTREAMS = "prometheus://upstreams"
NAMES = [f"fake_metric_{i:04d}_total" for i in range(1203)]


def _catalog_upstream() -> FakeUpstream:
    """1203 metric names (three pages of 500), metadata for every tenth."""
    names = json.dumps({"status": "success", "data": NAMES}).encode()
    meta = {n: [{"type": "counter", "help": f"help of {n}", "unit": ""}] for n in NAMES[::10]}
    metadata = json.dumps({"status": "success", "data": meta}).encode()

    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        route = urllib.parse.urlsplit(h.path).path
        if route.endswith("/-/ready"):
            reply(h, 200, b"ready\n", "text/plain")
        elif route.endswith("/api/v1/label/__name__/values"):
            reply(h, 200, names, "application/json")
        elif route.endswith("/api/v1/metadata"):
            reply(h, 200, metadata, "application/json")
        else:
            reply(h, 404, b"404 page not found\n", "text/plain")

    return FakeUpstream("catalog", handler)


@pytest.fixture(scope="module")
def catalog_upstream() -> Any:
    fake = _catalog_upstream()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def catalog_server(pool: Any, catalog_upstream: FakeUpstream) -> Any:
    return pool.get("catalog", lambda: ServerConfig([Upstream("big", catalog_upstream.url, "5s")]))


async def _read_json(conn: Any, uri: str) -> dict[str, Any]:
    result = await conn.client.read_resource(uri)
    [contents] = result.contents
    assert contents.mime_type == "application/json", contents
    return json.loads(contents.text)


# --------------------------------------------------------------------------
# the SDK client over every transport
# --------------------------------------------------------------------------

async def test_every_prompt_listed_and_got(target: Target, transport: TransportSpec) -> None:
    async with connect(target, transport) as c:
        listed = await c.client.list_prompts()
        assert [p.name for p in listed.prompts] == list(PROMPT_ARGS)
        for prompt in listed.prompts:
            assert prompt.description and prompt.arguments, prompt
        for name, args in PROMPT_ARGS.items():
            got = await c.client.get_prompt(name, {**args, "upstream": "local"})
            [message] = got.messages
            text = message.content.text
            assert message.role == "user" and '"upstream":"local"' in text, text
        got = await c.client.get_prompt("investigate_alert", {"alertname": "AlwaysFiring"})
        text = got.messages[0].content.text
        for tool in ("get_alerts", "get_rules", "execute_range_query"):
            assert f"`{tool}`" in text, text
        # The query the prompt writes runs as written, through the tools.
        query = 'ALERTS{alertname=\\"AlwaysFiring\\"}'
        assert query in text, text
        r = (await c.call("execute_query", {"query": 'ALERTS{alertname="AlwaysFiring"}'})).ok()
        assert r.data["result"], r.describe()


async def test_every_resource_listed_and_read(target: Target, transport: TransportSpec) -> None:
    async with connect(target, transport) as c:
        listed = await c.client.list_resources()
        uris = [r.uri for r in listed.resources]
        assert uris[:2] == [CHEATSHEET, UPSTREAMS], uris
        assert "prometheus://upstreams/local/metrics" in uris
        templates = await c.client.list_resource_templates()
        assert [t.uri_template for t in templates.resource_templates] == [
            "prometheus://upstreams/{name}/metrics{?cursor}"]
        sheet = (await c.client.read_resource(CHEATSHEET)).contents[0]
        assert sheet.mime_type == "text/markdown" and "histogram_quantile" in sheet.text
        facts = await _read_json(c, UPSTREAMS)
        names = [u["name"] for u in facts["upstreams"]]
        assert names == ["local", "prefixed", "down", "http500", "garbage", "slow"]
        assert "127.0.0.1" not in json.dumps(facts) and "http://" not in json.dumps(facts), facts
        page = await _read_json(c, "prometheus://upstreams/local/metrics")
        by_name = {m["name"]: m for m in page["metrics"]}
        assert by_name["prometheus_http_requests_total"]["type"] == "counter", page
        assert by_name["prometheus_http_requests_total"]["help"], page


async def test_a_long_tool_prefix_names_prefixed_tools(prefix_target: Target) -> None:
    from mcpclient import HTTP_AUTO_JSON
    async with connect(prefix_target, HTTP_AUTO_JSON) as c:
        got = await c.client.get_prompt("cardinality_audit", {})
        assert "`mcp_prometheus_get_tsdb_stats`" in got.messages[0].content.text
        sheet = (await c.client.read_resource(CHEATSHEET)).contents[0].text
        assert "`mcp_prometheus_execute_query`" in sheet


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_catalog_pages_to_its_end(catalog_server: Any, catalog_upstream: FakeUpstream, mode: str) -> None:
    seen: list[str] = []
    async with http_session(catalog_server.mcp_url, create_mcp_http_client(), mode) as c:
        uri: str | None = "prometheus://upstreams/big/metrics"
        pages = 0
        before = len(catalog_upstream.requests)
        while uri:
            page = await _read_json(c, uri)
            pages += 1
            assert page["names_total"] == len(NAMES) and page["complete"], page.keys()
            seen += [m["name"] for m in page["metrics"]]
            if pages == 1:
                # The cursor: the page's last name, base64url without padding.
                assert base64.urlsafe_b64decode(page["next_cursor"] + "==").decode() == NAMES[499]
            uri = page.get("next_uri")
            assert pages <= 3
        assert pages == 3 and seen == NAMES, (pages, len(seen))
        assert "next_uri" not in page and "next_cursor" not in page, "the last page ends"
        first = await _read_json(c, "prometheus://upstreams/big/metrics")
        assert first["metrics"][0] == {"name": NAMES[0], "type": "counter", "help": f"help of {NAMES[0]}"}
        assert first["metrics"][1] == {"name": NAMES[1]}
        routes = [urllib.parse.urlsplit(r.path).path for r in catalog_upstream.requests[before:]]
        # Each read asks the upstream once, except that under 2026-07-28 the
        # SDK serves the repeated first page from its cache (ttlMs, private).
        reads = 4 if mode == "legacy" else 3
        assert routes.count("/api/v1/label/__name__/values") == reads, routes
        assert routes.count("/api/v1/metadata") == reads, routes


@pytest.mark.parametrize("uri, expected", [
    ("prometheus://upstreams/big/metrics?cursor=!!!", "read prometheus://upstreams/big/metrics"),
    ("prometheus://upstreams/big/metrics?page=2", "takes one `cursor`"),
    ("prometheus://upstreams/nope/metrics", "configured upstreams are \"big\""),
    ("prometheus://nowhere", "resources/list lists them"),
    ("prometheus://upstreams/" + "a" * 2000 + "/metrics", "1024"),
], ids=["bad-cursor", "bad-parameter", "unknown-upstream", "unknown-uri", "oversized-uri"])
async def test_bad_resource_reads_say_what_to_send(catalog_server: Any, catalog_upstream: FakeUpstream,
                                                   uri: str, expected: str) -> None:
    before = len(catalog_upstream.requests)
    async with http_session(catalog_server.mcp_url, create_mcp_http_client(), "auto") as c:
        with pytest.raises(MCPError) as raised:
            await c.client.read_resource(uri)
    assert expected in str(raised.value), str(raised.value)
    assert len(catalog_upstream.requests) == before, "nothing reached the upstream"


@pytest.mark.parametrize("name, args, expected", [
    ("nope", {}, "the prompts are investigate_alert, cardinality_audit, slo_burn_rate"),
    ("investigate_alert", {}, 'needs the argument "alertname"'),
    ("investigate_alert", {"alertname": "x" * 300}, "longer than the 256 bytes"),
    ("cardinality_audit", {"metric": 'up{job="x"}'}, "is not a metric name"),
    ("slo_burn_rate", {"error_metric": "e", "total_metric": "t", "objective": "100"}, "strictly between 0 and 100"),
    ("slo_burn_rate", {"error_metric": "e", "total_metric": "t", "objective": "99", "window": "1h"}, "7d..366d"),
    ("investigate_alert", {"alertname": "A", "upstream": "elsewhere"}, "send one of big"),
], ids=["unknown", "missing", "oversized", "metric-with-brace", "objective", "window", "upstream"])
async def test_bad_prompt_arguments_say_what_to_send(catalog_server: Any, name: str, args: dict[str, str],
                                                     expected: str) -> None:
    async with http_session(catalog_server.mcp_url, create_mcp_http_client(), "auto") as c:
        with pytest.raises(MCPError) as raised:
            await c.client.get_prompt(name, args)
    assert expected in str(raised.value), str(raised.value)


async def test_an_alert_name_with_quotes_is_escaped(catalog_server: Any) -> None:
    hostile = 'X"} or vector(1) or ALERTS{a="'
    async with http_session(catalog_server.mcp_url, create_mcp_http_client(), "auto") as c:
        got = await c.client.get_prompt("investigate_alert", {"alertname": hostile})
    text = got.messages[0].content.text
    # The JSON of the query argument, whose PromQL has the name as one escaped literal.
    assert '"query":' + json.dumps('ALERTS{alertname="X\\"} or vector(1) or ALERTS{a=\\""}') in text, text


# --------------------------------------------------------------------------
# protocol versions, raw
# --------------------------------------------------------------------------

LEGACY_VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"]


def _session(url: str, version: str) -> dict[str, str]:
    body = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": version, "capabilities": {},
                       "clientInfo": {"name": "prompts-test", "version": "0"}}}
    r = http_post(url, json.dumps(body).encode(), BASE_HEADERS)
    init = rpc_message(r)["result"]
    assert init["protocolVersion"] == version, init
    assert "prompts" in init["capabilities"] and "resources" in init["capabilities"], init
    assert "execute_query" in init["instructions"] and len(init["instructions"]) < 1024, init
    headers = {**BASE_HEADERS, "Mcp-Session-Id": r.headers["mcp-session-id"], "MCP-Protocol-Version": version}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert http_post(url, json.dumps(note).encode(), headers).status == 202
    return headers


def _rpc(url: str, headers: dict[str, str], method: str, params: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    return rpc_message(http_post(url, json.dumps(body).encode(), headers))


@pytest.mark.parametrize("version", LEGACY_VERSIONS + ["2026-07-28"])
def test_every_protocol_version_lists_gets_and_reads(http_json_server: Any, version: str) -> None:
    url = http_json_server.mcp_url
    if version == "2026-07-28":
        def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
            # SEP-2243: the name (or URI) travels as a header too.
            name = params.get("name", params.get("uri"))
            return rpc_message(raw_rpc(url, method, params, {"Mcp-Name": name} if name else None))
    else:
        headers = _session(url, version)

        def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
            return _rpc(url, headers, method, params)
    listed = call("prompts/list", {})["result"]
    assert [p["name"] for p in listed["prompts"]] == list(PROMPT_ARGS)
    resources = call("resources/list", {})["result"]
    templates = call("resources/templates/list", {})["result"]
    tools = call("tools/list", {})["result"]
    if version == "2026-07-28":
        for result in (listed, resources, templates, tools):
            assert (result["ttlMs"], result["cacheScope"]) == (300000, "public"), result
    got = call("prompts/get", {"name": "slo_burn_rate", "arguments": PROMPT_ARGS["slo_burn_rate"]})["result"]
    assert "(burn rate 14.4)" in got["messages"][0]["content"]["text"]
    read = call("resources/read", {"uri": "prometheus://upstreams/local/metrics"})["result"]
    page = json.loads(read["contents"][0]["text"])
    assert page["upstream"] == "local" and page["metrics"], page
    if version == "2026-07-28":
        assert read["cacheScope"] == "private", "a catalog depends on the caller's tenants"
    missing = call("resources/read", {"uri": "prometheus://nowhere"})
    assert "resources/list lists them" in missing["error"]["message"], missing


# --------------------------------------------------------------------------
# tenancy and policy
# --------------------------------------------------------------------------

async def test_a_tenant_reads_only_its_own_catalog(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    async with authed(authn_server.mcp_url, bearer(authn_server.token(["team-a"], sub="alice"))) as c:
        page = await _read_json(c, "prometheus://upstreams/mimir/metrics")
    assert "prometheus_http_requests_total" in [m["name"] for m in page["metrics"]], page
    seen = router.since(mark)
    assert {urllib.parse.urlsplit(r.path).path.rsplit("/api", 1)[-1] for r in seen} == {
        "/v1/label/__name__/values", "/v1/metadata"}, [r.path for r in seen]
    assert all(set(r.tenants) == ALICE_TENANTS for r in seen), [r.org_id for r in seen]


@pytest.fixture(scope="module")
def policy_server(pool: Any, tenant_stack: TenantStack, issuer: JwtIssuer) -> LayeredServer:
    rules = [{"groups": ["team-a"], "allow": ["execute_query", "execute_range_query", "validate_query"]},
             {"groups": ["team-b"], "allow": ["*"], "deny": ["get_metric_metadata"]}]
    return _layered(pool, "prompts-policy",
                    lambda: layered_config(tenant_stack.url, issuers=[issuer_entry(issuer)],
                                           layers={"policy": {"enabled": True, "default": "deny", "rules": rules}}),
                    issuer)


async def test_the_policy_decides_what_is_offered(policy_server: LayeredServer, router: TenantRouter) -> None:
    team_a = bearer(policy_server.token(["team-a"], sub="alice"))
    async with authed(policy_server.mcp_url, team_a) as c:
        assert [p.name for p in (await c.client.list_prompts()).prompts] == ["slo_burn_rate"]
        with pytest.raises(MCPError) as raised:
            await c.client.get_prompt("investigate_alert", {"alertname": "A"})
        assert "uses tools you may not call (get_alerts, get_rules, find_series)" in str(raised.value)
        uris = [r.uri for r in (await c.client.list_resources()).resources]
        assert uris == [CHEATSHEET, UPSTREAMS], uris
        mark = router.mark()
        with pytest.raises(MCPError) as raised:
            await c.client.read_resource("prometheus://upstreams/mimir/metrics")
        assert "needs the tool list_metrics" in str(raised.value)
        assert router.since(mark) == [], "nothing reached the upstream"
    r = rpc_message(raw_rpc(policy_server.mcp_url, "prompts/list", {}, team_a))["result"]
    assert r["cacheScope"] == "private" and r["ttlMs"] == 300000, r
    async with authed(policy_server.mcp_url, bearer(policy_server.token(["team-b"], sub="bob"))) as c:
        assert len((await c.client.list_prompts()).prompts) == 3
        mark = router.mark()
        page = await _read_json(c, "prometheus://upstreams/mimir/metrics")
        assert "get_metric_metadata" in page["metadata"], page
        assert all("type" not in m for m in page["metrics"])
        paths = [r.path for r in router.since(mark)]
        assert not any("/metadata" in p for p in paths), paths
