#!/usr/bin/env python3
"""Synthetic OpenMetrics for `promtool tsdb create-blocks-from openmetrics`.

Two gauges, `samples` samples each, `step` seconds apart, the last at `end`:

* bench_big   - `big` series (200k for make bench): the large-result query;
* bench_small - `small` series (1,000): the "about 1,000 series" query of the
  tool-call benchmark.

Each bench_big series renders as about 150 bytes of Prometheus JSON, so an
instant query over all 200k returns about 30 MB.

usage: gen_openmetrics.py OUT_FILE BIG SMALL END_UNIX [SAMPLES] [STEP]
"""

from __future__ import annotations

import sys


def main() -> None:
    out, big, small, end = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    samples = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    step = int(sys.argv[6]) if len(sys.argv) > 6 else 15
    times = [end - step * (samples - 1 - k) for k in range(samples)]
    with open(out, "w", buffering=1 << 20) as f:
        for name, count in (("bench_big", big), ("bench_small", small)):
            f.write(f"# HELP {name} Synthetic series for make bench.\n# TYPE {name} gauge\n")
            for i in range(count):
                labels = (f'{name}{{job="bench",instance="host-{i // 100:05d}:9100",'
                          f'zone="zone-{i % 7}",shard="{i % 128:03d}",id="{i:06d}"}}')
                f.write("".join(f"{labels} {(i + k) % 1000} {t}\n" for k, t in enumerate(times)))
        f.write("# EOF\n")


if __name__ == "__main__":
    main()
