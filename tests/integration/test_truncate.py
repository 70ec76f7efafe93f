"""Outbound truncation ([layers.truncate]) against an upstream that streams
a 300 MB instant-query answer (big_upstream.py): the tool result must be a
valid, truncated answer and the server's peak RSS must stay bounded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from authstack import LayeredServer, _layered, layered_config
from big_upstream import BigUpstream
from procs import current_rss_kib, peak_rss_kib
from rawmcp import authed

pytestmark = pytest.mark.anyio

BIG_BYTES = 300 * 1024 * 1024
MAX_BYTES = 50000
MAX_SERIES = 500
RSS_LIMIT_MB = 100


@pytest.fixture(scope="module")
def big() -> Iterator[BigUpstream]:
    b = BigUpstream(total_bytes=BIG_BYTES)
    yield b
    b.close()


@pytest.fixture(scope="module")
def big_server(pool: Any, big: BigUpstream) -> LayeredServer:
    # no authn, no tenancy: only the common layers (truncate max_bytes 50000,
    # max_series 500); a dedicated process so VmHWM is this test's alone
    return _layered(pool, "truncate-big", lambda: layered_config(big.url, tenancy=None, upstream_timeout="110s"))


@pytest.mark.timeout(180)
async def test_300mb_answer_is_truncated_with_bounded_memory(big_server: LayeredServer, big: BigUpstream,
                                                             workdir: Path) -> None:
    pid = big_server.proc.pid
    rss_before = current_rss_kib(pid)
    hwm_before = peak_rss_kib(pid)
    t0 = time.monotonic()
    async with authed(big_server.mcp_url, {}) as c:
        r = await c.call("execute_query", {"query": "big_metric"}, timeout=170)
    elapsed = time.monotonic() - t0
    hwm = peak_rss_kib(pid)
    report = (f"300 MB answer: upstream wrote {big.sent_bytes / 2**20:.0f} MiB "
              f"(completed={big.completed}, aborted={big.aborted}) in {elapsed:.1f}s; "
              f"server RSS before {rss_before / 1024:.1f} MiB, VmHWM before {hwm_before / 1024:.1f} MiB, "
              f"VmHWM after {hwm / 1024:.1f} MiB")
    print(report)
    (workdir / "truncate-report.txt").write_text(report + "\n")
    r.ok()
    sc = r.structured
    assert sc["truncated"] is True, f"{report}\n{r.describe()}"
    assert sc.get("has_more") is True, f"{report}\n{r.describe()}"
    result = r.data["result"]
    assert r.data["resultType"] == "vector" and 0 < len(result) <= MAX_SERIES, f"{len(result)} series\n{report}"
    assert all(s["metric"]["__name__"] == "big_metric" and s["value"][1] == "1" for s in result), report
    size = len(json.dumps(r.data))
    assert size <= MAX_BYTES * 2, f"data is {size} bytes for max_bytes {MAX_BYTES}\n{report}"
    assert big.sent_bytes >= 0.9 * BIG_BYTES or big.aborted, report
    assert hwm < RSS_LIMIT_MB * 1024, f"peak RSS {hwm / 1024:.1f} MiB >= {RSS_LIMIT_MB} MiB\n{report}"


async def test_result_flags_on_small_answers(authn_server: LayeredServer) -> None:
    """Every tool result carries boolean `truncated` and `has_more`."""
    async with authed(authn_server.mcp_url, {"Authorization": f"Bearer {authn_server.token(['team-a'])}"}) as c:
        for tool, args in (("execute_query", {"query": "up"}), ("list_label_names", {}), ("get_rules", {}),
                           ("get_alerts", {})):
            r = (await c.call(tool, args)).ok()
            sc = r.structured
            assert isinstance(sc.get("truncated"), bool) and isinstance(sc.get("has_more"), bool), r.describe()
            assert sc["truncated"] is False and sc["has_more"] is False, r.describe()
