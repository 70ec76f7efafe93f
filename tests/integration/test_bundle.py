"""The MCP Bundle (`make bundle`) installs and runs as a host would run it:
unpacked by the official tool (`mcpb unpack`), its launch command resolved
by the official library (`getMcpConfigForManifest`: user_config defaults and
`${…}` substitution, packaging/mcpb/launch-config.mjs), then started over
stdio by the official Python SDK client.

Runs under `make test-bundle`, which builds the bundle and sets
MCP_PROMETHEUS_BUNDLE; skipped otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client

from fakes import FakeUpstream, fake_prometheus
from mcpclient import CALL_TIMEOUT, STDIO, Conn, unwrap_groups
from promstack import Prometheus

REPO = Path(__file__).resolve().parents[2]
MCPB_DIR = REPO / "packaging" / "mcpb"
BUNDLE = os.environ.get("MCP_PROMETHEUS_BUNDLE")
pytestmark = [
    pytest.mark.skipif(not BUNDLE, reason="MCP_PROMETHEUS_BUNDLE unset: `make test-bundle` builds the bundle"),
    pytest.mark.anyio,
]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert BUNDLE and Path(BUNDLE).is_file(), f"no bundle at {BUNDLE}: run `make bundle`"
    dest = tmp_path_factory.mktemp("bundle") / "installed"
    subprocess.run([str(MCPB_DIR / "node_modules" / ".bin" / "mcpb"), "unpack", BUNDLE, str(dest)],
                   check=True, capture_output=True, timeout=120)
    return dest


@pytest.fixture(scope="module")
def manifest(unpacked: Path) -> dict[str, Any]:
    return json.loads((unpacked / "manifest.json").read_text())


def launch_config(unpacked: Path, user_config: dict[str, str]) -> dict[str, Any]:
    """What the host runs for this user configuration."""
    p = subprocess.run(["node", str(MCPB_DIR / "launch-config.mjs"), str(unpacked), json.dumps(user_config)],
                       capture_output=True, text=True, timeout=60, cwd=MCPB_DIR)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@asynccontextmanager
async def installed(unpacked: Path, user_config: dict[str, str], log: Path) -> AsyncIterator[Conn]:
    """An SDK session with the bundle's server, started as the host starts it."""
    cfg = launch_config(unpacked, user_config)
    params = StdioServerParameters(command=cfg["command"], args=cfg.get("args", []), env=cfg.get("env") or None)
    async with unwrap_groups():
        with open(log, "a") as errlog:
            async with Client(stdio_client(params, errlog=errlog), mode="legacy",
                              read_timeout_seconds=CALL_TIMEOUT) as client:
                yield Conn(client, STDIO, "")


@pytest.fixture
def recorder() -> Iterator[FakeUpstream]:
    fake = fake_prometheus()
    try:
        yield fake
    finally:
        fake.close()


def test_manifest_is_a_binary_server_for_this_platform(manifest: dict[str, Any], unpacked: Path) -> None:
    assert manifest["server"]["type"] == "binary"
    entry = unpacked / manifest["server"]["entry_point"]
    assert entry.is_file() and os.access(entry, os.X_OK), "mcpb unpack must keep the binary executable"
    assert manifest["compatibility"]["platforms"] == [sys.platform]
    user_config = manifest["user_config"]
    assert user_config["prometheus_url"]["required"] is True
    assert user_config["prometheus_token"]["sensitive"] is True
    assert user_config["prometheus_token"].get("required") is False
    version = subprocess.run([str(entry), "version"], capture_output=True, text=True, check=True).stdout
    assert version.split()[1] == manifest["version"], version


async def test_manifest_tools_are_the_servers_tools(unpacked: Path, manifest: dict[str, Any], prom: Prometheus,
                                                    tmp_path: Path) -> None:
    async with installed(unpacked, {"prometheus_url": prom.url}, tmp_path / "stderr.log") as conn:
        listed = await conn.list_tools()
    assert [(t["name"], t["description"]) for t in manifest["tools"]] == \
        [(t.name, t.description) for t in listed]
    assert len(listed) >= 20


async def test_queries_prometheus_from_the_user_config(unpacked: Path, prom: Prometheus, tmp_path: Path) -> None:
    async with installed(unpacked, {"prometheus_url": prom.url}, tmp_path / "stderr.log") as conn:
        result = (await conn.call("execute_query", {"query": 'up{job="prometheus"}'})).ok()
    series = result.structured["data"]["result"]
    assert series and series[0]["metric"]["job"] == "prometheus", result.describe()


async def test_empty_optional_token_sends_no_authorization(unpacked: Path, recorder: FakeUpstream,
                                                           tmp_path: Path) -> None:
    """The host substitutes the token's empty default: no `Authorization: Bearer ` header."""
    cfg = launch_config(unpacked, {"prometheus_url": recorder.url})
    assert cfg["env"]["PROMETHEUS_TOKEN"] == "", cfg["env"]
    async with installed(unpacked, {"prometheus_url": recorder.url}, tmp_path / "stderr.log") as conn:
        (await conn.call("get_build_info", {})).ok()
    assert recorder.requests, "the upstream was never called"
    for req in recorder.requests:
        assert "authorization" not in req.headers, req
        assert "x-scope-orgid" not in req.headers, req


async def test_token_and_tenant_reach_the_upstream(unpacked: Path, recorder: FakeUpstream, tmp_path: Path) -> None:
    user_config = {"prometheus_url": recorder.url, "prometheus_token": "s3cret-token",
                   "prometheus_org_id": "team-a"}
    async with installed(unpacked, user_config, tmp_path / "stderr.log") as conn:
        (await conn.call("get_build_info", {})).ok()
    api = [r for r in recorder.requests if "/api/v1/" in r.route]
    assert api, recorder.requests
    for req in api:
        assert req.headers.get("authorization") == "Bearer s3cret-token", req.headers
        assert req.headers.get("x-scope-orgid") == "team-a", req.headers
