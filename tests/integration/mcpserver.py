"""The server under test: the mcp-prometheus binary, its processes
(`serve --transport streamable-http`, waited for on /readyz and the MCP
listener) and one-shot CLI runs.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from httputil import free_port, http_get, local_url, port_open
from procs import REPO, ManagedProcess, await_start
from serverconfig import ServerConfig


def server_binary() -> Path:
    """The mcp-prometheus binary under test (MCP_PROMETHEUS_BIN overrides)."""
    env = os.environ.get("MCP_PROMETHEUS_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "mcp-prometheus"


def require_binary() -> Path:
    b = server_binary()
    if not b.exists():
        raise FileNotFoundError(
            f"server binary {b} does not exist: build it first (cargo build / make) "
            "or point MCP_PROMETHEUS_BIN at it"
        )
    return b


@dataclass
class McpServer:
    name: str
    config: ServerConfig
    config_path: Path
    proc: ManagedProcess

    @property
    def base_url(self) -> str:
        """Where it listens."""
        return local_url(self.config.listen_port)

    @property
    def mcp_url(self) -> str:
        return self.base_url + "/mcp"

    @property
    def obs_url(self) -> str:
        return local_url(self.config.obs_port)


def launch(workdir: Path, name: str, config: ServerConfig, config_path: Path, args: list[Any],
           env: dict[str, str] | None = None, wait_ready: bool = True) -> McpServer:
    """`mcp-prometheus <args>` as server `name` (listening where `config`
    says); waits for /readyz (/healthz unless `wait_ready`) and the MCP
    listener, or stops it."""
    proc = ManagedProcess(f"mcp-prometheus[{name}]", [require_binary(), *args],
                          workdir / "logs" / f"mcp-prometheus-{name}.log", env=env)
    srv = McpServer(name, config, config_path, proc)
    endpoint = "/readyz" if wait_ready else "/healthz"
    await_start(proc,
                (f"{proc.name} {endpoint}", lambda: http_get(srv.obs_url + endpoint, 1).status == 200, 30),
                # the MCP listener may be a separate socket: wait until it accepts connections
                (f"{proc.name} MCP listener", lambda: port_open(config.listen_port), 15))
    return srv


def start_mcp_server(workdir: Path, name: str, config: ServerConfig, wait_ready: bool = True,
                     env: dict[str, str] | None = None, extra_args: list[str] | None = None) -> McpServer:
    """Start `mcp-prometheus serve --config F --transport streamable-http
    [extra_args]` and wait for it."""
    config.listen_port = config.listen_port or free_port()
    config.obs_port = config.obs_port or free_port()
    cfg_path = config.write(workdir / "servers" / f"{name}.toml")
    args = ["serve", "--config", cfg_path, "--transport", "streamable-http", *(extra_args or [])]
    return launch(workdir, name, config, cfg_path, args, env=env, wait_ready=wait_ready)


def run_cli(args: list[Any], env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    binary = require_binary()
    full_env = dict(os.environ)
    full_env.pop("PROMETHEUS_URL", None)
    if env:
        full_env.update(env)
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, env=full_env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@dataclass
class ServerView:
    """A running server as the authn and OAuth tests see it."""

    srv: McpServer

    @property
    def mcp_url(self) -> str:
        return self.srv.mcp_url

    @property
    def obs_url(self) -> str:
        return self.srv.obs_url

    @property
    def proc(self) -> ManagedProcess:
        return self.srv.proc

    @property
    def public_url(self) -> str:
        return self.srv.config.server_extra["public_url"]

    @property
    def resource(self) -> str:
        """The default audience: public_url + mcp_path."""
        return self.public_url + "/mcp"
