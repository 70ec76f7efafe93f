"""What the modules of the soak run (bench/soak.py) share: paths, limits, the log."""

from __future__ import annotations

import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
import bench as B  # noqa: E402  (also puts tests/integration on sys.path)

OUT = REPO / "target" / "soak"
MODERN = B.MODERN
META = B.META

RSS_GROWTH_MAX = 0.05  # end RSS may exceed the post-warm-up RSS by at most 5 %
LOCAL_TIMEOUT_S = 10.0  # upstream timeout of the real Prometheus
FAULT_TIMEOUT_S = 3.0  # upstream timeout of the misbehaving upstreams
SLOW_S = 10.0  # the slow upstream answers after this long
FAULT_MODES = ["slow", "slowbody", "garbage", "cut", "chunkcut", "reset"]
# What a caller must read for each misbehaviour (case-insensitive).
FAULT_EXPECT = {
    "slow": r"timed out",
    "slowbody": r"timed out",
    "garbage": r"not valid Prometheus API JSON",
    "cut": r"unreachable|closed|incomplete|not valid Prometheus API JSON",
    "chunkcut": r"unreachable|closed|incomplete|not valid Prometheus API JSON",
    "reset": r"unreachable",
}
OUTAGE_EXPECT = r"unreachable|timed out|answered HTTP 503"


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
