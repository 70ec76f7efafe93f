"""mcp-prometheus config files: TOML rendering and `ServerConfig`.

Standard library only and imports nothing of ours: bench/bench.py renders
its server configs with `toml_value` too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # TOML basic strings use JSON-compatible escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot render {v!r} as TOML")


def toml_key(k: str) -> str:
    """A bare key when TOML allows one, else a quoted key."""
    return k if k and all(c.isascii() and (c.isalnum() or c in "-_") for c in k) else json.dumps(k)


def toml_table(name: str, table: dict[str, Any], out: list[str]) -> None:
    """Append `[name]` to `out`: its plain keys, then each dict value as a
    sub-table `[name.key]`."""
    out += ["", f"[{name}]"]
    out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict):
            toml_table(f"{name}.{toml_key(k)}", v, out)


@dataclass
class Upstream:
    name: str
    url: str
    timeout: str | None = "5s"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServerConfig:
    upstreams: list[Upstream]
    listen_port: int = 0
    obs_port: int = 0
    json_response: bool = True
    stateful_sessions: bool = True
    tool_prefix: str = ""
    log_level: str = "info"
    server_extra: dict[str, Any] = field(default_factory=dict)
    # [layers.<name>] tables (authn, audience, tenancy, truncate, ...): each a
    # dict of keys; nested dicts and lists of dicts are rendered inline.
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # other top-level tables ([passthrough], ...): name -> keys
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def render(self) -> str:
        lines = [
            "[server]",
            f'listen = "127.0.0.1:{self.listen_port}"',
            'mcp_path = "/mcp"',
            f"json_response = {toml_value(self.json_response)}",
            f"stateful_sessions = {toml_value(self.stateful_sessions)}",
            f"tool_prefix = {toml_value(self.tool_prefix)}",
            'allowed_hosts = ["127.0.0.1", "localhost"]',
        ]
        lines += [f"{k} = {toml_value(v)}" for k, v in self.server_extra.items()]
        lines += [
            "",
            "[observability]",
            f'listen = "127.0.0.1:{self.obs_port}"',
            'log_format = "text"',
            f"log_level = {toml_value(self.log_level)}",
        ]
        for u in self.upstreams:
            lines += ["", "[[upstreams]]", f"name = {toml_value(u.name)}", f"url = {toml_value(u.url)}"]
            if u.timeout is not None:
                lines.append(f"timeout = {toml_value(u.timeout)}")
            lines += [f"{k} = {toml_value(v)}" for k, v in u.extra.items()]
        for layer, keys in self.layers.items():
            lines += ["", f"[layers.{toml_key(layer)}]"]
            lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in keys.items()]
        for name, keys in self.tables.items():
            toml_table(name, keys, lines)
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render())
        return path
