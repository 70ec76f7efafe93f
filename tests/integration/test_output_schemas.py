"""Every tool's real answer validates against the output schema it declares
(JSON Schema 2020-12), the schemas are not vacuous (a wrong answer fails),
`tools/list` fits in 16 KiB, and the standard questions are answered in few
bytes (text and structured content together, measured and asserted)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

from authstack import raw_rpc
from conftest import Stack
from mcpclient import HTTP_AUTO_JSON, Target, connect
from rawmcp import raw_call, raw_tool_result, rpc_message
from serverconfig import ServerConfig, Upstream
from test_tools import CASES

pytestmark = pytest.mark.anyio

TOOLS_LIST_BUDGET = 16 * 1024
MANY = " or ".join(f'label_replace(vector({i}), "i", "{i:02}", "", "")' for i in range(25))
EXTRA_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "range-summary": ("execute_range_query", {"query": "up", "start": "now-1m", "end": "now", "step": "5s"}),
    "range-samples-thinned": ("execute_range_query", {"query": "up", "start": "now-1m", "end": "now",
                                                      "step": "1s", "format": "samples", "max_points": 6}),
    "instant-many-series": ("execute_query", {"query": MANY}),
    "instant-scalar": ("execute_query", {"query": "scalar(vector(1))"}),
    "validate-invalid": ("validate_query", {"query": "sum(rate(x[5m])"}),
    "list-truncated": ("list_metrics", {"limit": 1}),
}


def all_cases() -> dict[str, tuple[str, dict[str, Any]]]:
    return {**{k: (tool, args) for k, (tool, args, _check) in CASES.items()}, **EXTRA_CASES}


async def test_every_answer_matches_its_declared_schema(target: Target, stack: Stack) -> None:
    async with connect(target, HTTP_AUTO_JSON) as c:
        schemas = {t.name: t.output_schema for t in await c.list_tools()}
        answers = {key: (tool, await c.call(tool, args)) for key, (tool, args) in all_cases().items()}
    assert set(schemas) >= {tool for tool, _ in all_cases().values()}
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object" and "data" in schema["properties"], name
    failures = []
    for key, (tool, r) in answers.items():
        assert not r.is_error, r.describe()
        validator = Draft202012Validator(schemas[tool])
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(r.structured)]
        if errors:
            failures.append(f"{key} ({tool}): {errors[:3]}")
        # Not vacuous: an answer of the wrong shape is refused.
        with pytest.raises(ValidationError):
            validator.validate({**r.structured, "data": "not the data"})
        with pytest.raises(ValidationError):
            validator.validate({k: v for k, v in r.structured.items() if k != "truncated"})
    assert not failures, "\n".join(failures)
    assert {tool for tool, _ in answers.values()} == set(schemas), "every tool was called"


def test_range_summary_schema_refuses_samples_in_place_of_statistics(target: Target) -> None:
    """Where the schema is precise, a plausible wrong shape fails too."""
    listed = rpc_message(raw_rpc(target.http_json_url, "tools/list", {}))["result"]["tools"]
    schema = next(t["outputSchema"] for t in listed if t["name"] == "execute_range_query")
    bad = {"upstream": "local", "truncated": False,
           "data": {"resultType": "matrix", "series": [{"labels": {"job": "x"}, "min": "1"}]}}
    with pytest.raises(ValidationError):
        Draft202012Validator(schema).validate(bad)


@pytest.fixture(scope="module")
def one_upstream_url(pool: Any, stack: Stack) -> str:
    """The default deployment: one upstream, no prefix, no layers."""
    return pool.get("one-upstream", lambda: ServerConfig([Upstream("local", stack.prom.url, "5s")])).mcp_url


def test_tools_list_fits_the_budget(one_upstream_url: str, target: Target) -> None:
    r = raw_rpc(one_upstream_url, "tools/list", {})
    tools = rpc_message(r)["result"]["tools"]
    size = len(r.body)
    assert size <= TOOLS_LIST_BUDGET, f"tools/list is {size} bytes"
    assert all("upstream" not in t["inputSchema"]["properties"] for t in tools), "one upstream: nothing to name"
    # With several upstreams the argument is offered, and costs a little more.
    several = raw_rpc(target.http_json_url, "tools/list", {})
    assert all("upstream" in t["inputSchema"]["properties"] for t in rpc_message(several)["result"]["tools"])
    report("tools_list", {"one_upstream": size, "several_upstreams": len(several.body)})


STANDARD = {
    "up": ("execute_query", {"query": "up"}),
    "prometheus_http_requests_total": ("execute_query", {"query": "prometheus_http_requests_total"}),
    "rate_range_10m_15s": ("execute_range_query", {"query": "rate(prometheus_http_requests_total[1m])",
                                                   "start": "now-10m", "end": "now", "step": "15s"}),
}
# What each standard answer may weigh (text + structured content, bytes).
ANSWER_BUDGETS = {"up": 2_000, "prometheus_http_requests_total": 12_000, "rate_range_10m_15s": 12_000}


def answer_bytes(url: str, tool: str, args: dict[str, Any]) -> dict[str, int]:
    result = raw_tool_result(raw_call(url, tool, args))
    text = sum(len(c.get("text", "").encode()) for c in result["content"])
    structured = len(json.dumps(result.get("structuredContent"), separators=(",", ":")).encode())
    return {"text": text, "structured": structured, "total": text + structured}


def report(key: str, value: Any) -> None:
    """Figures for the README (target/answer-bytes.json)."""
    path = Path(os.environ.get("ANSWER_BYTES_REPORT", Path(__file__).resolve().parents[2] / "target"
                               / "answer-bytes.json"))
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=1))


def test_standard_answers_are_small(one_upstream_url: str) -> None:
    sizes = {name: answer_bytes(one_upstream_url, tool, args) for name, (tool, args) in STANDARD.items()}
    samples = answer_bytes(one_upstream_url, "execute_range_query",
                           {**STANDARD["rate_range_10m_15s"][1], "format": "samples"})
    report("answers", {**sizes, "rate_range_10m_15s_samples": samples})
    for name, budget in ANSWER_BUDGETS.items():
        assert sizes[name]["total"] <= budget, f"{name}: {sizes[name]} over {budget}"



def test_a_summary_weighs_a_fraction_of_its_samples(one_upstream_url: str) -> None:
    """Ten series of 121 points (a closed window in the past, so the same
    numbers either way): the summary replaces the samples at a fraction of
    their bytes."""
    query = " or ".join(f'label_replace(vector(time() % {60 + i}), "i", "{i}", "", "")' for i in range(10))
    args = {"query": query, "start": 1_700_000_000 - 1800, "end": 1_700_000_000, "step": "15s"}
    summary = answer_bytes(one_upstream_url, "execute_range_query", args)
    samples = answer_bytes(one_upstream_url, "execute_range_query", {**args, "format": "samples"})
    report("synthetic_10x121", {"summary": summary, "samples": samples})
    assert summary["total"] * 3 < samples["total"], (summary, samples)
