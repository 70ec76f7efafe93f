"""The Prometheus text exposition format of a /metrics page, parsed (enough
for the tests: name, labels, value of each sample; comments skipped)."""

from __future__ import annotations

import re

Sample = tuple[str, dict[str, str], float]

_METRIC_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[Sample]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _METRIC_LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        out.append((m.group("name"), dict(_LABEL.findall(m.group("labels") or "")), value))
    return out


def metric_value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    return sum(v for n, ls, v in samples if n == name and all(ls.get(k) == x for k, x in labels.items()))


def metric_sum(text: str, name: str, **labels: str) -> float:
    """metric_value of a whole /metrics page."""
    return metric_value(parse_metrics(text), name, **labels)


def metric_names(text: str) -> set[str]:
    return {n for n, _, _ in parse_metrics(text)}
