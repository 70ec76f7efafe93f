"""Who may do what on the Prometheus API passthrough: the tool policy
decides on the tool each API stands for, the rate limit counts every
request as one call, and every request leaves an audit line (event
`passthrough`, the PromQL from the query string or form verbatim, the
tenants sent). Each refusal is checked at the upstream too: nothing sent.

alice: groups [team-a] -> tenant-a, may use the `query` family only
bob:   groups [team-b] -> tenant-b, tenant-c, may use everything
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from authasserts import assert_no_upstream, assert_tenants_within
from authstack import LayeredServer, TenantStack, _layered, issuer_entry, issuer_fixture, layered_config
from constants import ALICE_TENANTS
from jwt_issuer import JwtIssuer
from rawmcp import bearer
from tenant_router import TenantRouter
from test_audit import audit_line, audited, traced
from test_passthrough import PREFIX, with_passthrough

guard_issuer = issuer_fixture("passthrough-guard")


@pytest.fixture(scope="module")
def guard_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pt-audit")


@pytest.fixture(scope="module")
def guard_server(pool: Any, tenant_stack: TenantStack, guard_issuer: JwtIssuer, guard_dir: Path) -> LayeredServer:
    layers = {
        "policy": {"enabled": True, "rules": [{"groups": ["team-a"], "allow": ["query"]},
                                              {"groups": ["team-b"], "allow": ["*"]}]},
        "ratelimit": {"enabled": True,
                      "rules": [{"name": "pt-burst", "subjects": ["pt-limited"], "per_second": 0.01, "burst": 2}]},
    }
    return _layered(pool, "passthrough-guard", lambda: audited(with_passthrough(
        layered_config(tenant_stack.url, issuers=[issuer_entry(guard_issuer)], layers=layers)),
        sink="file", path=str(guard_dir / "audit.jsonl")), guard_issuer)


def get(srv: LayeredServer, api: str, who: str, groups: list[str], params: dict[str, str] | None = None,
        trace: dict[str, str] | None = None) -> requests.Response:
    headers = {**bearer(srv.token(groups, sub=who)), **(trace or {})}
    return requests.get(f"{srv.srv.base_url}{PREFIX}/api/v1/{api}", params=params, headers=headers, timeout=30)


def test_the_policy_decides_on_the_apis_tool(guard_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    ok = get(guard_server, "query", "alice", ["team-a"], {"query": "up"})
    assert ok.status_code == 200 and ok.json()["status"] == "success", ok.text[:300]
    assert assert_tenants_within(router, mark, ALICE_TENANTS, "alice's query") == ALICE_TENANTS
    mark = router.mark()
    for api in ("status/buildinfo", "rules", "alerts", "labels"):
        denied = get(guard_server, api, "alice", ["team-a"])
        assert denied.status_code == 403, (api, denied.status_code, denied.text[:300])
        body = denied.json()
        assert body["status"] == "error" and body["errorType"] == "forbidden", body
        assert "not allowed for you" in body["error"], body
    assert_no_upstream(router, mark, "APIs of tools alice may not use")
    assert get(guard_server, "status/buildinfo", "bob", ["team-b"]).status_code == 200


def test_every_request_is_one_call_for_the_rate_limit(guard_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    for _ in range(2):
        assert get(guard_server, "query", "pt-limited", ["team-b"], {"query": "up"}).status_code == 200
    over = get(guard_server, "query", "pt-limited", ["team-b"], {"query": "up"})
    assert over.status_code == 429, over.text[:300]
    assert int(over.headers["retry-after"]) >= 1, over.headers
    body = over.json()
    assert body["status"] == "error" and 'rate limit "pt-burst" reached' in body["error"], body
    sent = router.since(mark)
    assert len(sent) == 2 and all("/api/v1/query" in r.path for r in sent), [(r.method, r.path) for r in sent]
    assert get(guard_server, "query", "bob", ["team-b"], {"query": "up"}).status_code == 200, "bob is unaffected"


def test_each_request_leaves_an_audit_line(guard_server: LayeredServer, guard_dir: Path) -> None:
    path = guard_dir / "audit.jsonl"
    promql = 'sum by (job) (rate(prometheus_http_requests_total{handler="/api/v1/query"}[5m]))'
    headers, trace_id = traced(bearer(guard_server.token(["team-a"], sub="alice")))
    form = requests.post(f"{guard_server.srv.base_url}{PREFIX}/api/v1/query", data={"query": promql},
                         headers=headers, timeout=30)
    assert form.status_code == 200, form.text[:300]
    line = audit_line(path, trace_id)
    assert line["event"] == "passthrough" and line["outcome"] == "ok", line
    assert line["tool"] == "execute_query" and line["arguments"] == {"query": promql}, line
    assert line["subject"] == "alice" and line["tenants"] == sorted(ALICE_TENANTS), line
    assert line["upstream"] and line["duration_ms"] is not None, line

    headers, trace_id = traced()
    denied = get(guard_server, "status/buildinfo", "alice", ["team-a"], trace=headers)
    assert denied.status_code == 403, denied.text[:300]
    line = audit_line(path, trace_id)
    assert line["event"] == "passthrough" and line["outcome"] == "denied", line
    assert line["tool"] == "get_build_info" and "not allowed" in line["reason"], line
