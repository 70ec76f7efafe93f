"""What mcp-prometheus sends upstream: paths under a URL prefix, parameters,
credentials (basic, bearer), tenant header (org_id) and static headers; and
that credentials never show up in check-config output or tool results.

Uses a recording fake Prometheus (fakes.fake_prometheus) over stdio.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Iterator

import pytest

from fakes import FakeUpstream, fake_prometheus
from httputil import RecordedRequest
from mcpclient import STDIO, Target, connect
from mcpserver import run_cli
from serverconfig import ServerConfig, Upstream

pytestmark = pytest.mark.anyio

PASSWORD = "s3cret-pw"
TOKEN = "t0ken-secret"
HEADER_SECRET = "hdr-secret-value"


@pytest.fixture(scope="module")
def recorder() -> Iterator[FakeUpstream]:
    f = fake_prometheus()
    yield f
    f.close()


def recorder_config(recorder: FakeUpstream) -> ServerConfig:
    return ServerConfig([
        Upstream("plain", recorder.url + "/plain", "5s"),
        Upstream("basic", recorder.url + "/basic", "5s",
                 {"auth": {"kind": "basic", "username": "u", "password": PASSWORD}}),
        Upstream("bearer", recorder.url + "/bearer", "5s", {"auth": {"kind": "bearer", "token": TOKEN}}),
        Upstream("tenant", recorder.url + "/mimir/prometheus", "5s",
                 {"org_id": "tenant-1", "headers": {"X-Custom": HEADER_SECRET}}),
    ])


@pytest.fixture(scope="module")
def recorder_target(recorder: FakeUpstream, binary: Path, workdir: Path) -> Target:
    cfg = recorder_config(recorder).write(workdir / "servers" / "recorder-stdio.toml")
    return Target(binary, cfg, None, None, workdir / "logs" / "mcp-prometheus-stdio.log")


def requests_under(recorder: FakeUpstream, prefix: str) -> list[RecordedRequest]:
    return [r for r in recorder.requests if r.route.startswith(prefix + "/")]


async def test_paths_and_parameters(recorder: FakeUpstream, recorder_target: Target) -> None:
    recorder.requests.clear()
    async with connect(recorder_target, STDIO) as c:
        r = (await c.call("execute_query", {"query": "up", "time": 1700000000, "upstream": "plain"})).ok()
        assert r.data == {"resultType": "vector", "result": []}, r.describe()
        (await c.call("check_ready", {"upstream": "plain"})).ok()
    reqs = requests_under(recorder, "/plain")
    routes = [r.route for r in reqs]
    assert "/plain/api/v1/query" in routes and "/plain/-/ready" in routes, routes
    q = next(r for r in reqs if r.route == "/plain/api/v1/query")
    assert q.params.get("query") == ["up"], q
    assert q.params.get("time") and float(q.params["time"][0]) == 1700000000, q
    assert "authorization" not in q.headers and "x-scope-orgid" not in q.headers, q.headers


@pytest.mark.parametrize("upstream,header,expected", [
    ("basic", "authorization", "Basic " + base64.b64encode(f"u:{PASSWORD}".encode()).decode()),
    ("bearer", "authorization", f"Bearer {TOKEN}"),
    ("tenant", "x-scope-orgid", "tenant-1"),
    ("tenant", "x-custom", HEADER_SECRET),
])
async def test_credentials_and_headers_sent(recorder: FakeUpstream, recorder_target: Target, upstream: str,
                                            header: str, expected: str) -> None:
    recorder.requests.clear()
    async with connect(recorder_target, STDIO) as c:
        r = (await c.call("get_build_info", {"upstream": upstream})).ok()
        assert r.data["version"] == "2.99.0", r.describe()
        for secret in (PASSWORD, TOKEN, HEADER_SECRET):
            assert secret not in r.text and secret not in str(r.raw.structured_content), r.describe()
    prefix = "/mimir/prometheus" if upstream == "tenant" else f"/{upstream}"
    reqs = requests_under(recorder, prefix)
    assert reqs, [r.path for r in recorder.requests]
    assert all(r.headers.get(header) == expected for r in reqs), [(r.path, r.headers) for r in reqs]


def test_check_config_redacts_all_secrets(recorder: FakeUpstream, binary: Path, workdir: Path) -> None:
    cfg = recorder_config(recorder).write(workdir / "cli" / "recorder.toml")
    p = run_cli(["check-config", "--config", cfg])
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    for secret in (PASSWORD, TOKEN, HEADER_SECRET):
        assert secret not in out, f"{secret} printed by check-config:\n{out}"
    assert "tenant-1" in out and "X-Custom" in out, out


def test_env_token_redacted(binary: Path, workdir: Path, recorder: FakeUpstream) -> None:
    cfg = recorder_config(recorder).write(workdir / "cli" / "recorder-env.toml")
    p = run_cli(["check-config", "--config", cfg], env={"PROMETHEUS_TOKEN": "env-t0ken-secret"})
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "env-t0ken-secret" not in out, out
