#!/usr/bin/env python3
"""`make chart-example`: docs/chart-example.png, drawn by the server's own
render_range_query tool from the local Prometheus that `make run` starts.

It runs `mcp-prometheus serve --transport stdio` on a throw-away config whose
upstream is PROMETHEUS_URL (default http://127.0.0.1:9090), speaks MCP over
stdin/stdout (initialize, then one tools/call; Python's standard library
only), writes the image block to the output file and prints the text
summary. Give the local Prometheus a few minutes of data first.

  scripts/chart-example.py [--query Q] [--start now-10m] [--out docs/chart-example.png]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUERY = '{__name__=~"go_memstats_(heap_alloc|heap_inuse|next_gc)_bytes", job="prometheus"}'


def config(url: str) -> str:
    return (
        '[server]\ntransport = "stdio"\n\n'
        '[observability]\nlisten = "127.0.0.1:0"\nlog_level = "warn"\n\n'
        f'[[upstreams]]\nname = "local"\nurl = {json.dumps(url)}\ntimeout = "30s"\n'
    )


def call(binary: str, config_path: str, arguments: dict) -> dict:
    """One tools/call of render_range_query over a fresh stdio session."""
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": {"name": "chart-example", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "render_range_query", "arguments": arguments}},
    ]
    with subprocess.Popen([binary, "serve", "--transport", "stdio", "--config", config_path],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdin and proc.stdout
        proc.stdin.write(json.dumps(messages[0]) + "\n")
        proc.stdin.flush()
        answers = {}
        for line in proc.stdout:
            message = json.loads(line)
            answers[message.get("id")] = message
            if message.get("id") == 1:
                for m in messages[1:]:
                    proc.stdin.write(json.dumps(m) + "\n")
                proc.stdin.flush()
            if message.get("id") == 2:
                break
        proc.stdin.close()
        proc.wait(timeout=10)
    if 2 not in answers:
        sys.exit("the server ended without answering the tools/call")
    if "error" in answers[2]:
        sys.exit(f"protocol error: {answers[2]['error']}")
    return answers[2]["result"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--query", default=QUERY)
    parser.add_argument("--start", default="now-10m")
    parser.add_argument("--out", default=str(REPO / "docs" / "chart-example.png"))
    parser.add_argument("--width", type=int, default=800)
    parser.add_argument("--height", type=int, default=400)
    args = parser.parse_args()
    binary = os.environ.get("MCP_PROMETHEUS_BIN", str(REPO / "target" / "debug" / "mcp-prometheus"))
    url = os.environ.get("PROMETHEUS_URL", "http://127.0.0.1:9090")
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as cfg:
        cfg.write(config(url))
        cfg.flush()
        result = call(binary, cfg.name, {"query": args.query, "start": args.start, "end": "now",
                                         "width": args.width, "height": args.height})
    texts = [c["text"] for c in result.get("content", []) if c.get("type") == "text"]
    print("\n".join(texts))
    if result.get("isError"):
        sys.exit(1)
    images = [c for c in result["content"] if c.get("type") == "image"]
    if not images:
        sys.exit("no image in the answer")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(images[0]["data"]))
    print(f"wrote {out} ({out.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
