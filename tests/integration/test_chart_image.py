"""render_range_query (issue 14, a chart as an image): the PNG is decoded
(Pillow) and its pixels compared with the samples the upstream sent; hostile
answers still draw; refusals happen before any request; a tenant's chart
reads only that tenant; and a real Prometheus query charts with its unit.

Exact shapes come from chartfake.py (a fake upstream answering crafted
matrices on the request's own window); the rest runs against the session's
real Prometheus and the tenant router."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, Iterator

import pytest
from PIL import Image

from authstack import LayeredServer
from chartfake import MANY, fake_chart_upstream, range_requests, step_values
from conftest import ServerPool, Stack
from fakes import FakeUpstream
from mcpclient import HTTP_AUTO_JSON, Target, ToolResult, connect
from mcpserver import McpServer, run_cli
from rawmcp import authed, bearer
from serverconfig import ServerConfig, Upstream
from tenant_router import TenantRouter

pytestmark = pytest.mark.anyio

TOOL = "render_range_query"
START, END, STEP = 1767362645, 1767366245, 60  # 2026-01-02 14:04:05Z .. 15:04:05Z
WINDOW = {"start": START, "end": END, "step": STEP}
BLUE = (31, 119, 180)  # the first line's colour (Tableau 10)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    f = fake_chart_upstream()
    yield f
    f.close()


@pytest.fixture(scope="module")
def chart_server(pool: ServerPool, fake: FakeUpstream) -> McpServer:
    return pool.get("chart-fake", lambda: ServerConfig([Upstream("chart", fake.url, "5s")]))


@pytest.fixture(scope="module")
def small_server(pool: ServerPool, fake: FakeUpstream) -> McpServer:
    """Caps below the defaults: 640×320 at most, 3 series."""
    tools = {"chart_max_width": 640, "chart_max_height": 320, "chart_max_series": 3}
    return pool.get("chart-small", lambda: ServerConfig([Upstream("chart", fake.url, "5s")], tables={"tools": tools}))


async def chart(url: str, arguments: dict[str, Any], headers: dict[str, str] | None = None) -> ToolResult:
    async with authed(url, headers or {}) as c:
        return await c.call(TOOL, arguments)


def image(r: ToolResult) -> Image.Image:
    """The one PNG image block, decoded, after the text."""
    kinds = [getattr(c, "type", None) for c in r.raw.content]
    assert kinds == ["text", "image"], r.describe()
    block = r.raw.content[1]
    assert block.mime_type == "image/png", block.mime_type
    img = Image.open(io.BytesIO(base64.b64decode(block.data)))
    assert img.format == "PNG"
    return img.convert("RGB")


def blue_rows(img: Image.Image, x: int, top: int, bottom: int) -> list[int]:
    """The rows of column x (inside the plot) where the first line is drawn."""
    return [y for y in range(top, bottom) if img.getpixel((x, y)) == BLUE]


# --------------------------------------------------------------------------
# the pixels follow the data
# --------------------------------------------------------------------------

async def test_the_plotted_pixels_follow_a_step_function(chart_server: McpServer, fake: FakeUpstream) -> None:
    r = (await chart(chart_server.mcp_url, {"query": "step_function", **WINDOW})).ok()
    img = image(r)
    assert img.size == (800, 400)
    d = r.data
    assert (d["width"], d["height"], d["series"], d["plotted"]) == (800, 400, 1, 1), r.describe()
    assert (d["start"], d["end"], d["step"]) == (START, END, STEP)
    plot = d["plot"]
    left, top, right, bottom = plot["left"], plot["top"], plot["right"], plot["bottom"]
    assert 0 < left < right <= 800 and 0 < top < bottom <= 400, plot
    assert plot["y_min"] <= 0 and 10 < plot["y_max"] < 12, plot

    def y_of(v: float) -> float:
        return bottom - 1 - (v - plot["y_min"]) / (plot["y_max"] - plot["y_min"]) * (bottom - top - 1)

    middle = (START + END) / 2
    checked = 0
    for x in range(left + 2, right - 2):
        t = START + (x - left) / (right - left - 1) * (END - START)
        if abs(t - middle) < 2 * STEP:
            continue  # the jump itself
        rows = blue_rows(img, x, top, bottom)
        want = y_of(0 if t < middle else 10)
        assert rows, f"nothing drawn in column {x} (t={t:.0f})"
        assert all(abs(y - want) <= 2 for y in rows), f"column {x}: line at rows {rows}, data says {want:.0f}"
        checked += 1
    assert checked > 600
    # the jump is drawn: the columns around the middle cover every row between the levels
    x_mid = round(left + (middle - START) / (END - START) * (right - left - 1))
    covered = {y for x in range(x_mid - 2 * 14, x_mid + 2 * 14) for y in blue_rows(img, x, top, bottom)}
    gaps = [y for y in range(round(y_of(10)), round(y_of(0))) if y not in covered]
    assert not gaps, f"the jump misses rows {gaps}"
    # what was asked of the upstream: the window as given
    sent = range_requests(fake)[-1]
    assert (float(sent["start"]), float(sent["end"]), float(sent["step"])) == (START, END, STEP), sent
    assert len(step_values(START, END, STEP)) == 61
    assert "1 series, all drawn" in r.text and "min 0, max 10, last 10" in r.text, r.text
    assert "\n" not in r.texts[0], "one paragraph"


async def test_hostile_samples_draw_with_gaps(chart_server: McpServer) -> None:
    r = (await chart(chart_server.mcp_url, {"query": "hostile", **WINDOW})).ok()
    img = image(r)
    assert img.size == (800, 400)
    assert r.data["plotted"] == 3, r.describe()
    text = r.text
    assert 'Shared labels: job="chart".' in text, text
    assert "min 1, max 3, last 3" in text, "gaps series: last by time, not by arrival"
    assert "min 5, max 5, last 5" in text, "a flat series"
    assert "samples were not drawn" in text, text
    assert "x" * 200 not in text, "label values are cut"
    assert "\n" not in r.texts[0], "a newline in a label stays out of the paragraph"


async def test_thousands_of_series_draw_only_the_cap(chart_server: McpServer, fake: FakeUpstream) -> None:
    r = (await chart(chart_server.mcp_url, {"query": "many_series", **WINDOW})).ok()
    image(r)
    d = r.structured
    assert d["truncated"] is True and d["data"]["plotted"] == 10, r.describe()
    assert d["data"]["series"] >= 10 and d["data"]["series"] <= MANY, r.describe()
    assert "the first 10 drawn" in r.text and "[truncated: 10 of" in r.text, r.text
    assert range_requests(fake)[-1]["query"] == "many_series"


async def test_an_empty_answer_says_no_data(chart_server: McpServer) -> None:
    r = (await chart(chart_server.mcp_url, {"query": "nothing_here", **WINDOW})).ok()
    img = image(r)
    assert r.data["series"] == 0 and r.data["plotted"] == 0, r.describe()
    assert "no series" in r.text, r.text
    plot = r.data["plot"]
    assert not any(img.getpixel((x, y)) == BLUE for x in range(plot["left"], plot["right"], 3)
                   for y in range(plot["top"], plot["bottom"], 3)), "no line drawn"


# --------------------------------------------------------------------------
# caps and refusals (nothing reaches the upstream)
# --------------------------------------------------------------------------

async def test_configured_caps_apply(small_server: McpServer) -> None:
    r = (await chart(small_server.mcp_url, {"query": "many_series", **WINDOW})).ok()
    assert image(r).size == (640, 320), "the default size is cut to the configured maximum"
    assert r.data["plotted"] == 3, r.describe()
    r = (await chart(small_server.mcp_url, {"query": "step_function", "width": 400, "height": 250, **WINDOW})).ok()
    assert image(r).size == (400, 250)


@pytest.mark.parametrize("arguments,message", [
    ({"query": "sum(", **WINDOW}, "query"),
    ({"query": "step_function", "width": 5000, **WINDOW}, "width: 5000 pixels is outside this server's range of 320 to 640"),
    ({"query": "step_function", "height": 10, **WINDOW}, "height: 10 pixels is outside"),
    ({"query": "step_function", "limit": 4, **WINDOW}, "limit: 4 is above this server's chart cap of 3 series"),
    ({"query": "step_function", "width": "wide", **WINDOW}, "width"),
    ({"query": "step_function", "colour": "red", **WINDOW}, "colour"),
], ids=["bad-promql", "too-wide", "too-short", "too-many-series", "not-a-number", "unknown-argument"])
async def test_bad_arguments_are_refused_before_any_request(small_server: McpServer, fake: FakeUpstream,
                                                            arguments: dict[str, Any], message: str) -> None:
    before = len(fake.requests)
    r = (await chart(small_server.mcp_url, arguments)).error()
    assert message in r.text, r.text
    assert len(fake.requests) == before, "the upstream saw a request"


def test_check_config_refuses_absurd_caps(workdir: Path) -> None:
    cfg = ServerConfig([Upstream("x", "http://127.0.0.1:9")], tables={"tools": {"chart_max_width": 100000}})
    p = run_cli(["check-config", "--config", cfg.write(workdir / "servers" / "chart-absurd.toml")])
    assert p.returncode != 0, p.stdout
    assert "tools.chart_max_width" in p.stderr + p.stdout and "between 320 and 4096" in p.stderr + p.stdout


# --------------------------------------------------------------------------
# a real Prometheus, and a tenant's chart
# --------------------------------------------------------------------------

async def test_a_real_query_charts_with_its_unit(target: Target) -> None:
    async with connect(target, HTTP_AUTO_JSON) as c:
        # the session's Prometheus may have only seconds of data: a short window, 1 s steps
        r = (await c.call(TOOL, {"query": 'process_resident_memory_bytes{job="prometheus"}',
                                 "start": "now-1m", "end": "now", "step": "1s"})).ok()
    img = image(r)
    assert img.size == (800, 400)
    assert r.data["unit"] == "bytes" and r.data["plotted"] == 1, r.describe()
    assert "Values in bytes." in r.text and "MiB" in r.text, r.text
    plot = r.data["plot"]
    drawn = sum(1 for x in range(plot["left"], plot["right"]) for y in range(plot["top"], plot["bottom"])
                if img.getpixel((x, y)) == BLUE)
    assert drawn > 20, "the line is drawn"


async def test_a_tenant_charts_only_its_own_data(authn_server: LayeredServer, router: TenantRouter) -> None:
    mark = router.mark()
    headers = bearer(authn_server.token(["team-a"], sub="alice"))
    r = (await chart(authn_server.mcp_url, {"query": "up", "start": "now-1m", "end": "now", "step": "10s"},
                     headers)).ok()
    image(r)
    assert "tenant-a" in r.text and "tenant-b" not in r.text and "tenant-c" not in r.text, r.text
    sent = [q.org_id for q in router.since(mark)]
    assert sent and set(sent) == {"tenant-a"}, sent
