#!/usr/bin/env python3
"""Bytes a model pays per answer: the standard questions asked over stdio of
one or two builds against the same Prometheus, text content and structured
content measured apart (README "Answer sizes").

  bench/answer_bytes.py --binary target/debug/mcp-prometheus \
      [--baseline OLD_BINARY] [--prometheus http://127.0.0.1:9090] [--readme README.md]

Give Prometheus 10 minutes of data first (`make run` starts one). With
--readme the section between the answer-size markers is rewritten."""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

QUESTIONS = {
    "`up`": ("execute_query", {"query": "up"}),
    "`prometheus_http_requests_total`": ("execute_query", {"query": "prometheus_http_requests_total"}),
    "`rate(prometheus_http_requests_total[1m])`, 10 min at 15 s": (
        "execute_range_query",
        {"query": "rate(prometheus_http_requests_total[1m])", "start": "now-10m", "end": "now", "step": "15s"}),
}
BEGIN, END = "<!-- answer-bytes:begin -->", "<!-- answer-bytes:end -->"


def session(binary: str, prometheus: str, requests: list[dict]) -> dict[int, dict]:
    """Runs `requests` (after initialize) over one stdio session; answers by id."""
    config = (f'[server]\ntransport = "stdio"\n\n[observability]\nlisten = "127.0.0.1:0"\nlog_level = "warn"\n\n'
              f'[[upstreams]]\nname = "local"\nurl = {json.dumps(prometheus)}\ntimeout = "30s"\n')
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(config)
        f.flush()
        init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                           "clientInfo": {"name": "answer-bytes", "version": "0"}}}
        lines = [init, {"jsonrpc": "2.0", "method": "notifications/initialized"}, *requests]
        proc = subprocess.run([binary, "serve", "--transport", "stdio", "--config", f.name],
                              input="".join(json.dumps(m) + "\n" for m in lines),
                              capture_output=True, text=True, timeout=120)
    answers = {}
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        if "id" in message:
            answers[message["id"]] = message
    return answers


def measure(binary: str, prometheus: str) -> dict[str, dict[str, int]]:
    requests = [{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}]
    for i, (tool, args) in enumerate(QUESTIONS.values(), start=2):
        requests.append({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                         "params": {"name": tool, "arguments": args}})
    answers = session(binary, prometheus, requests)
    out = {"tools/list": {"total": len(json.dumps(answers[1]["result"], separators=(",", ":")).encode())}}
    for i, name in enumerate(QUESTIONS, start=2):
        result = answers[i]["result"]
        text = sum(len(c.get("text", "").encode()) for c in result["content"])
        structured = len(json.dumps(result.get("structuredContent"), separators=(",", ":")).encode())
        out[name] = {"text": text, "structured": structured, "total": text + structured}
    return out


def table(new: dict, old: dict | None) -> str:
    head = "| answer | text | structured | total |" + (" before (total) | ratio |" if old else "")
    rows = [head, "|---" * (head.count("|") - 1) + "|"]
    for name, sizes in new.items():
        cells = [name, str(sizes.get("text", "")), str(sizes.get("structured", "")), str(sizes["total"])]
        if old:
            cells += [str(old[name]["total"]), f"{sizes['total'] / old[name]['total']:.2f}"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--baseline")
    parser.add_argument("--prometheus", default="http://127.0.0.1:9090")
    parser.add_argument("--readme")
    args = parser.parse_args()
    new = measure(args.binary, args.prometheus)
    old = measure(args.baseline, args.prometheus) if args.baseline else None
    text = table(new, old)
    print(text)
    if args.readme:
        readme = Path(args.readme)
        body = readme.read_text()
        start, end = body.index(BEGIN) + len(BEGIN), body.index(END)
        readme.write_text(body[:start] + "\n" + text + "\n" + body[end:])


if __name__ == "__main__":
    main()
