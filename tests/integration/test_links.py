"""Query answers link back to the same query and time range in the UI the
operator names (`external_url`): Prometheus's own, or Grafana Explore. The
expression is the caller's text: it must arrive in the link intact, encoded,
never able to add parameters of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import Stack
from mcpclient import Target
from mcpserver import run_cli
from rawmcp import raw_call, raw_tool_result
from serverconfig import ServerConfig, Upstream

PROM_UI = "https://prom.example.com/sub"
GRAFANA = "https://grafana.example.com"
HOSTILE = 'sum(rate(prometheus_http_requests_total{handler=~"/a&g0.tab=1#x"}[1m])) or vector(1)'


@pytest.fixture(scope="module")
def linked_url(pool: Any, stack: Stack) -> str:
    return pool.get("linked", lambda: ServerConfig([
        Upstream("local", stack.prom.url, "5s", extra={"external_url": PROM_UI}),
        Upstream("grafana", stack.prom.url, "5s", extra={"external_url": GRAFANA, "external_ui": "grafana",
                                                        "grafana_datasource": "prom-uid_1"}),
        Upstream("plain", stack.prom.url, "5s"),
    ])).mcp_url


def call(url: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = raw_tool_result(raw_call(url, tool, args))
    assert not result.get("isError"), result
    return result


def test_instant_query_links_to_the_prometheus_table(linked_url: str) -> None:
    result = call(linked_url, "execute_query", {"query": HOSTILE, "time": 1_767_366_245})
    link = result["structuredContent"]["link"]
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{PROM_UI}/graph", link
    params = parse_qs(parts.query, keep_blank_values=True)
    assert params == {"g0.expr": [HOSTILE], "g0.tab": ["1"], "g0.moment_input": ["2026-01-02 15:04:05"]}, params
    assert not parts.fragment, "a # in the query must not end the URL"
    assert f"Open in Prometheus: {link}" in result["content"][0]["text"]


def test_range_query_links_to_the_graph_of_the_same_window(linked_url: str) -> None:
    result = call(linked_url, "execute_range_query",
                  {"query": "up", "start": 1_767_362_645, "end": 1_767_366_245, "step": "30s"})
    params = parse_qs(urlsplit(result["structuredContent"]["link"]).query)
    assert params == {"g0.expr": ["up"], "g0.tab": ["0"], "g0.range_input": ["3600s"],
                      "g0.end_input": ["2026-01-02 15:04:05"], "g0.step_input": ["30"]}, params


def test_grafana_explore_link(linked_url: str) -> None:
    result = call(linked_url, "execute_range_query",
                  {"query": HOSTILE, "start": 1_767_362_645, "end": 1_767_366_245, "upstream": "grafana"})
    parts = urlsplit(result["structuredContent"]["link"])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{GRAFANA}/explore"
    params = parse_qs(parts.query)
    panes = json.loads(params["panes"][0])
    assert panes["mcp"]["queries"][0]["expr"] == HOSTILE
    assert panes["mcp"]["datasource"] == "prom-uid_1"
    assert panes["mcp"]["range"] == {"from": "1767362645000", "to": "1767366245000"}
    assert "Open in Grafana:" in result["content"][0]["text"]


def test_no_external_url_no_link(linked_url: str) -> None:
    result = call(linked_url, "execute_query", {"query": "up", "upstream": "plain"})
    assert "link" not in result["structuredContent"] and "Open in" not in result["content"][0]["text"]


@pytest.mark.parametrize("extra,words", [
    ({"external_url": "javascript:alert(1)"}, "upstreams[0].external_url"),
    ({"external_url": "https://user:secret@prom.example.com"}, "without credentials"),
    ({"external_url": GRAFANA, "external_ui": "grafana"}, "grafana_datasource: required"),
    ({"external_url": GRAFANA, "external_ui": "grafana", "grafana_datasource": "a/../b"}, "grafana_datasource"),
    ({"external_ui": "grafana", "grafana_datasource": "uid"}, "set external_url too"),
    ({"external_url": PROM_UI, "external_ui": "kibana"}, "external_ui"),
], ids=["script-scheme", "credentials", "no-datasource", "bad-datasource", "no-url", "unknown-ui"])
def test_check_config_refuses_bad_link_settings(workdir: Path, stack: Stack, extra: dict, words: str) -> None:
    cfg = ServerConfig([Upstream("local", stack.prom.url, "5s", extra=extra)])
    p = run_cli(["check-config", "--config", str(cfg.write(workdir / "servers" / "links-bad.toml"))])
    out = p.stdout + p.stderr
    assert p.returncode != 0 and words in out, out
    assert "secret" not in out
