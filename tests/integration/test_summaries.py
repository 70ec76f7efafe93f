"""Range answers summarized per series, checked against statistics this test
computes itself from the samples of the same query; instant vectors over many
series summarized; samples thinned with max_points keep their extremes.

Queries over a window in the past built from time() are pure functions of
the window, so the samples and the summary describe the same numbers."""

from __future__ import annotations

import math
import statistics

import pytest

from mcpclient import HTTP_AUTO_JSON, Target, connect

pytestmark = pytest.mark.anyio

T0 = 1_700_000_000
WINDOW = {"start": T0 - 600, "end": T0, "step": "15s"}
# A sawtooth, a rising line, a constant, a sine, and NaN then values
# (0/0 is NaN in PromQL), one series each.
QUERY = " or ".join([
    'label_replace(vector(time() % 120), "shape", "saw", "", "")',
    'label_replace(vector(time() - 1700000000), "shape", "line", "", "")',
    'label_replace(vector(5), "shape", "flat", "", "")',
    'label_replace(sin(vector(time() / 100)) * 10, "shape", "sine", "", "")',
    'label_replace((vector(time() % 60) > 30) * 0 / 0 or vector(2), "shape", "nan", "", "")',
])


def p95(values: list[float]) -> float:
    """numpy.percentile(values, 95) with the default linear interpolation."""
    ordered = sorted(values)
    rank = 0.95 * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def expected(samples: list[list]) -> dict:
    times = [float(t) for t, _ in samples]
    values = [float(v) for _, v in samples]
    finite = [(t, v) for t, v in zip(times, values) if math.isfinite(v)]
    fv = [v for _, v in finite]
    out = {"points": len(samples), "nan": sum(math.isnan(v) for v in values),
           "inf": sum(math.isinf(v) for v in values)}
    if fv:
        out |= {"min": min(fv), "max": max(fv), "mean": statistics.fmean(fv), "last": fv[-1],
                "p95": p95(fv), "delta": fv[-1] - fv[0]}
    if len(finite) >= 2:
        ft = [t for t, _ in finite]
        out["trend_per_hour"] = statistics.linear_regression(ft, fv).slope * 3600
    return out


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


async def test_summary_matches_statistics_of_the_samples(target: Target) -> None:
    async with connect(target, HTTP_AUTO_JSON) as c:
        raw = (await c.call("execute_range_query", {"query": QUERY, **WINDOW, "format": "samples"})).ok()
        summary = (await c.call("execute_range_query", {"query": QUERY, **WINDOW})).ok()
    by_shape = {s["metric"]["shape"]: s["values"] for s in raw.data["result"]}
    assert set(by_shape) == {"saw", "line", "flat", "sine", "nan"}, raw.describe()
    d = summary.data
    assert d["format"] == "summary" and d["resultType"] == "matrix", summary.describe()
    assert d["window"] == {"start": T0 - 600, "end": T0, "step": 15}, d["window"]
    assert summary.structured["returned"] == summary.structured["total"] == 5
    got = {s["labels"]["shape"]: s for s in d["series"]}
    for shape, samples in by_shape.items():
        want = expected(samples)
        for key, value in want.items():
            assert key in got[shape], f"{shape}: no {key} in {got[shape]}"
            assert close(got[shape][key], value), f"{shape}.{key}: {got[shape][key]} != {value}"
    # The line rises 1 per second, 3600 an hour, from -600 to 0.
    assert close(got["line"]["trend_per_hour"], 3600.0) and got["line"]["delta"] == 600
    assert got["nan"]["nan"] > 0, got["nan"]
    # No samples in the answer, and far fewer bytes than the samples.
    assert "values" not in str(d) and len(str(summary.structured)) < len(str(raw.structured)) / 2
    # The standouts: the highest mean is the flat 5 or the sawtooth (mean ~ 60).
    assert "highest_mean" in got["saw"].get("marks", []), got["saw"]
    assert "largest_increase" in got["line"].get("marks", []), got["line"]
    assert "largest_increase" not in got["flat"].get("marks", []), got["flat"]
    # The model reads a table with one row per series.
    rows = [line for line in summary.text.splitlines() if line.startswith("| {")]
    assert len(rows) == 5, summary.text
    assert any('shape="line"' in r and "largest increase" in r for r in rows), summary.text
    assert "2023-11-14T22:03:20Z..2023-11-14T22:13:20Z step 15s" in summary.text, summary.text


async def test_summary_of_real_scraped_counters(target: Target) -> None:
    """A rate over what Prometheus scraped of itself, in a window that has
    closed (so both calls read the same samples)."""
    import time

    end = int(time.time()) - 1
    args = {"query": "prometheus_http_requests_total", "start": end - 60, "end": end, "step": "1s"}
    async with connect(target, HTTP_AUTO_JSON) as c:
        raw = (await c.call("execute_range_query", {**args, "format": "samples"})).ok()
        summary = (await c.call("execute_range_query", args)).ok()
    assert raw.data["result"], raw.describe()
    samples = {tuple(sorted(s["metric"].items())): s["values"] for s in raw.data["result"]}
    got = {tuple(sorted(s["labels"].items())): s for s in summary.data["series"]}
    assert set(samples) == set(got)
    for key, values in samples.items():
        for stat, value in expected(values).items():
            assert close(got[key][stat], value), f"{key} {stat}: {got[key][stat]} != {value}"


async def test_max_points_thins_samples_and_keeps_extremes(target: Target) -> None:
    async with connect(target, HTTP_AUTO_JSON) as c:
        full = (await c.call("execute_range_query", {"query": QUERY, **WINDOW, "format": "samples"})).ok()
        thin = (await c.call("execute_range_query",
                             {"query": QUERY, **WINDOW, "format": "samples", "max_points": 8})).ok()
    for series in thin.data["result"]:
        shape = series["metric"]["shape"]
        original = next(s["values"] for s in full.data["result"] if s["metric"]["shape"] == shape)
        kept = series["values"]
        assert 1 <= len(kept) <= 8, (shape, len(kept))
        assert all(p in original for p in kept), shape
        finite = [float(v) for _, v in original if math.isfinite(float(v))]
        kept_values = [float(v) for _, v in kept if math.isfinite(float(v))]
        if finite:
            assert max(kept_values) == max(finite) and min(kept_values) == min(finite), shape
    assert any("thinned" in i for i in thin.structured.get("infos", [])), thin.describe()


@pytest.mark.parametrize("args,needle", [
    ({"format": "table"}, "format"),
    ({"max_points": 10}, 'only with format="samples"'),
    ({"format": "samples", "max_points": 1}, "at least 2"),
], ids=["unknown-format", "max-points-without-samples", "max-points-1"])
async def test_bad_format_arguments(target: Target, args: dict, needle: str) -> None:
    async with connect(target, HTTP_AUTO_JSON) as c:
        r = await c.call("execute_range_query", {"query": "up", **args})
    assert r.is_error and needle in r.text, r.describe()


async def test_many_series_instant_vector_is_summarized(target: Target) -> None:
    n = 30
    query = " or ".join(f'label_replace(vector({i}), "i", "{i:02}", "", "")' for i in range(n))
    async with connect(target, HTTP_AUTO_JSON) as c:
        r = (await c.call("execute_query", {"query": query, "time": T0})).ok()
    assert len(r.data["result"]) == n, r.describe()
    s = r.data["summary"]
    assert s["count"] == n and [t["value"] for t in s["top"]] == [29, 28, 27, 26, 25], s
    assert [b["value"] for b in s["bottom"]] == [0, 1, 2, 3, 4], s
    assert s["labels"]["i"]["distinct"] == n, s
    assert r.text.startswith(f"{n} series (vector) at 2023-11-14T22:13:20Z, summarized"), r.text
    assert 'i="15"' not in r.text and len(r.text) < 1000, r.text
