"""Observability endpoints, CLI subcommands, HTTP session details, shutdown."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.error
from pathlib import Path

import pytest

from conftest import ServerPool, Stack
from httputil import HttpResponse, closed_port, free_port, http_get, http_post, port_open
from mcpclient import HTTP_AUTO_JSON, HTTP_LEGACY_JSON, Target, connect
from mcpserver import McpServer, run_cli, start_mcp_server
from procs import REPO, ManagedProcess, wait_until
from promtext import metric_value, parse_metrics
from serverconfig import ServerConfig, Upstream

# --------------------------------------------------------------------------
# observability
# --------------------------------------------------------------------------


def test_healthz(http_json_server: McpServer) -> None:
    r = http_get(http_json_server.obs_url + "/healthz")
    assert r.status == 200, r.text


def test_readyz_ready(http_json_server: McpServer, http_sse_server: McpServer) -> None:
    for srv in (http_json_server, http_sse_server):
        r = http_get(srv.obs_url + "/readyz")
        assert r.status == 200, f"{srv.name}: {r.status} {r.text}"


@pytest.fixture(scope="session")
def notready_server(pool: ServerPool, stack: Stack) -> McpServer:
    down = f"http://127.0.0.1:{closed_port()}"
    return pool.get(
        "notready",
        lambda: ServerConfig([Upstream("nowhere-default", down, "1s"), Upstream("local", stack.prom.url, "5s")]),
        wait_ready=False,
    )


def test_readyz_not_ready(notready_server: McpServer) -> None:
    r = http_get(notready_server.obs_url + "/readyz")
    assert r.status == 503, f"{r.status} {r.text}"
    assert "nowhere-default" in r.text, f"/readyz body should name the upstream: {r.text!r}"
    assert http_get(notready_server.obs_url + "/healthz").status == 200


@pytest.mark.anyio
async def test_not_ready_server_still_serves_other_upstreams(notready_server: McpServer, binary: Path,
                                                             stack: Stack) -> None:
    t = Target(binary, notready_server.config_path, notready_server.mcp_url, notready_server.mcp_url,
               notready_server.proc.log_path)
    async with connect(t, HTTP_LEGACY_JSON) as c:
        r = await c.call("check_ready", {})
        # default upstream is down: an isError result, or ready false
        if not r.is_error:
            assert r.data.get("ready") is False, r.describe()
        r = (await c.call("execute_query", {"query": "up", "upstream": "local"})).ok()
        assert r.data["result"], r.describe()


@pytest.mark.anyio
async def test_metrics_after_calls(http_json_server: McpServer, target: Target, stack: Stack) -> None:
    async with connect(target, HTTP_AUTO_JSON) as c:
        (await c.call("execute_query", {"query": "up"})).ok()
        (await c.call("execute_query", {"query": "sum("})).error()
        (await c.call("get_build_info", {"upstream": "http500"})).error()
    r = http_get(http_json_server.obs_url + "/metrics")
    assert r.status == 200, r.text
    assert "text/plain" in r.headers.get("content-type", "") or "openmetrics" in r.headers.get("content-type", ""), (
        r.headers)
    samples = parse_metrics(r.text)
    names = {n for n, _, _ in samples}
    ok = metric_value(samples, "mcp_prometheus_tool_calls_total", tool="execute_query", outcome="ok")
    err = metric_value(samples, "mcp_prometheus_tool_calls_total", tool="execute_query", outcome="error")
    assert ok >= 1 and err >= 1, f"tool call counters: ok={ok} error={err}\n" + "\n".join(
        line for line in r.text.splitlines() if "tool_calls" in line)
    assert metric_value(samples, "mcp_prometheus_tool_calls_total", tool="get_build_info", outcome="error") >= 1
    assert any(n.startswith("mcp_prometheus_tool_call_duration_seconds") for n in names), sorted(names)
    ups = [(ls, v) for n, ls, v in samples if n == "mcp_prometheus_upstream_requests_total"]
    assert ups, f"no mcp_prometheus_upstream_requests_total samples: {sorted(names)}"
    assert any(ls.get("upstream") == "local" and "endpoint" in ls and "status" in ls for ls, _ in ups), ups
    assert any(ls.get("upstream") == "http500" and "500" in ls.get("status", "") for ls, _ in ups), ups


# --------------------------------------------------------------------------
# HTTP transport details
# --------------------------------------------------------------------------

INIT = {
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {},
               "clientInfo": {"name": "raw-test", "version": "0"}},
}
HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def test_legacy_initialize_gets_session(http_json_server: McpServer) -> None:
    """stateful_sessions = true: an initialize over HTTP returns Mcp-Session-Id."""
    r = http_post(http_json_server.mcp_url, json.dumps(INIT).encode(), HEADERS)
    assert r.status == 200, f"{r.status} {r.text}"
    assert r.headers.get("mcp-session-id"), f"no Mcp-Session-Id header: {r.headers}"
    body = sse_or_json(r)
    assert body["result"]["protocolVersion"] == "2025-11-25", body
    assert body["result"]["capabilities"].get("tools") is not None, body


def sse_or_json(r: HttpResponse) -> dict:
    if "text/event-stream" in r.headers.get("content-type", ""):
        datas = [line[5:].strip() for line in r.text.splitlines() if line.startswith("data:")]
        msgs = [json.loads(d) for d in datas if d]
        assert len(msgs) == 1, r.text
        return msgs[0]
    return r.json()


def _initialize_and_call(url: str) -> tuple[HttpResponse, HttpResponse]:
    """Legacy flow: initialize, initialized, then tools/call check_ready."""
    init = http_post(url, json.dumps(INIT).encode(), HEADERS)
    assert init.status == 200, f"{init.status} {init.text}"
    sid = init.headers.get("mcp-session-id")
    h = {**HEADERS, "MCP-Protocol-Version": "2025-11-25", **({"Mcp-Session-Id": sid} if sid else {})}
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    http_post(url, json.dumps(initialized).encode(), h)
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "check_ready", "arguments": {}}}
    return init, http_post(url, json.dumps(call).encode(), h)


def test_json_response_applies_to_stateless_requests(http_stateless_json_server: McpServer) -> None:
    """json_response = true with stateful_sessions = false: every answer is
    application/json, legacy initialize clients included."""
    init, call = _initialize_and_call(http_stateless_json_server.mcp_url)
    assert "application/json" in init.headers.get("content-type", ""), init.headers
    assert "mcp-session-id" not in init.headers, "stateless mode must not hand out sessions"
    assert call.status == 200 and "application/json" in call.headers.get("content-type", ""), (
        f"tools/call answered {call.status} {call.headers.get('content-type')}: {call.text[:200]!r}")
    assert '"isError":false' in call.text.replace(" ", ""), call.text[:300]


def test_sessions_stream_even_with_json_response(http_json_server: McpServer) -> None:
    """stateful_sessions = true: legacy clients get a session, and session
    traffic is SSE whatever json_response says (rmcp keeps the stream open for
    server-to-client messages); json_response then governs 2026-07-28 requests."""
    init, call = _initialize_and_call(http_json_server.mcp_url)
    assert init.headers.get("mcp-session-id"), init.headers
    assert "text/event-stream" in call.headers.get("content-type", ""), call.headers
    assert '"isError":false' in call.text.replace(" ", ""), call.text[:300]


def test_sse_server_answers_with_event_stream(http_sse_server: McpServer) -> None:
    r = http_post(http_sse_server.mcp_url, json.dumps(INIT).encode(), HEADERS)
    assert r.status == 200, f"{r.status} {r.text}"
    assert "text/event-stream" in r.headers.get("content-type", ""), r.headers
    assert '"protocolVersion"' in r.text, r.text


def test_disallowed_host_rejected(http_json_server: McpServer) -> None:
    """allowed_hosts = ["127.0.0.1", "localhost"]: another Host header is refused."""
    r = http_post(http_json_server.mcp_url, json.dumps(INIT).encode(), {**HEADERS, "Host": "evil.example.com"})
    assert r.status in (400, 403, 421), f"Host evil.example.com got {r.status} {r.text[:200]}"


def test_origin_checked(http_json_server: McpServer) -> None:
    body = json.dumps(INIT).encode()
    r = http_post(http_json_server.mcp_url, body, {**HEADERS, "Origin": "http://evil.example.com"})
    assert r.status == 403, f"Origin evil.example.com got {r.status} {r.text[:200]}"
    port = http_json_server.config.listen_port
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}"):
        r = http_post(http_json_server.mcp_url, body, {**HEADERS, "Origin": origin})
        assert r.status == 200, f"Origin {origin} got {r.status} {r.text[:200]}"


def test_allowed_host_with_and_without_port(http_json_server: McpServer) -> None:
    port = http_json_server.config.listen_port
    for host in ("localhost", f"localhost:{port}", f"127.0.0.1:{port}"):
        r = http_post(http_json_server.mcp_url, json.dumps(INIT).encode(), {**HEADERS, "Host": host})
        assert r.status == 200, f"Host {host} got {r.status} {r.text[:200]}"


def test_http_request_hygiene(http_json_server: McpServer) -> None:
    url = http_json_server.mcp_url
    # An oversized body is refused from its Content-Length, unread (issue 11):
    # a client still uploading sees the 413 or the connection closing under
    # it (test_hostile checks the 413 itself).
    try:
        r = http_post(url, json.dumps({**INIT, "pad": "x" * (2 << 20)}).encode(), HEADERS)
        assert r.status == 413, f"2 MiB body: {r.status} {r.text[:200]}"
    except (urllib.error.URLError, ConnectionError) as refused:
        assert "Broken pipe" in str(refused) or "reset" in str(refused).lower(), refused
    r = http_post(url, b"this is not json", HEADERS)
    assert 400 <= r.status < 500, f"garbage body: {r.status} {r.text[:200]}"
    r = http_post(url, json.dumps(INIT).encode(), {"Content-Type": "application/json", "Accept": "text/html"})
    assert r.status == 406, f"Accept text/html: {r.status} {r.text[:200]}"
    r = http_post(url.replace("/mcp", "/not-mcp"), json.dumps(INIT).encode(), HEADERS)
    assert r.status == 404, f"other path: {r.status}"
    # and it still serves
    assert http_post(url, json.dumps(INIT).encode(), HEADERS).status == 200


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def test_serve_listen_flags_override_config(binary: Path, workdir: Path, stack: Stack) -> None:
    """--listen / --observability-listen win over the config; streamable HTTP is the default transport."""
    cfg = ServerConfig([Upstream("local", stack.prom.url, "5s")], listen_port=free_port(), obs_port=free_port())
    path = cfg.write(workdir / "servers" / "flags.toml")
    mcp_port, obs_port = free_port(), free_port()
    proc = ManagedProcess(
        "mcp-prometheus[flags]",
        [binary, "serve", "--config", path, "--listen", f"127.0.0.1:{mcp_port}",
         "--observability-listen", f"127.0.0.1:{obs_port}"],
        workdir / "logs" / "mcp-prometheus-flags.log")
    try:
        wait_until("flags server /readyz",
                   lambda: http_get(f"http://127.0.0.1:{obs_port}/readyz", 1).status == 200, 30, proc=proc)
        r = http_post(f"http://127.0.0.1:{mcp_port}/mcp", json.dumps(INIT).encode(), HEADERS)
        assert r.status == 200, r.text
        assert not port_open(cfg.listen_port) and not port_open(cfg.obs_port), (
            "config ports are bound although flags override them")
    finally:
        proc.stop()



def test_version(binary: Path) -> None:
    p = run_cli(["version"])
    assert p.returncode == 0, p.stderr
    assert re.search(r"\d+\.\d+\.\d+", p.stdout + p.stderr), f"no version in: {p.stdout!r} {p.stderr!r}"


def write_config(workdir: Path, name: str, text: str) -> Path:
    p = workdir / "cli" / f"{name}.toml"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def secret_config(url: str = "http://original.invalid:9090") -> str:
    return ServerConfig([
        Upstream("local", url, "5s", {"auth": {"kind": "basic", "username": "u", "password": "s3cret"}}),
        Upstream("other", "http://127.0.0.1:1/prometheus", "2s"),
    ], listen_port=18080, obs_port=18081).render()


def test_check_config_ok_redacts_secrets(binary: Path, workdir: Path) -> None:
    cfg = write_config(workdir, "secret", secret_config())
    p = run_cli(["check-config", "--config", cfg])
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "s3cret" not in out, f"secret printed:\n{out}"
    assert "original.invalid" in out and "other" in out, f"effective config not printed:\n{out}"


def test_check_config_unknown_key(binary: Path, workdir: Path) -> None:
    text = secret_config().replace("[server]\n", "[server]\nbogus_key = 1\n", 1)
    cfg = write_config(workdir, "unknown-key", text)
    p = run_cli(["check-config", "--config", cfg])
    out = p.stdout + p.stderr
    assert p.returncode != 0, f"unknown key accepted:\n{out}"
    assert "bogus_key" in out, f"message should name the key:\n{out}"
    assert "s3cret" not in out


def test_check_config_unknown_upstream_key(binary: Path, workdir: Path) -> None:
    text = secret_config().replace('name = "other"', 'name = "other"\nurll = "x"', 1)
    cfg = write_config(workdir, "unknown-upstream-key", text)
    p = run_cli(["check-config", "--config", cfg])
    assert p.returncode != 0 and "urll" in p.stdout + p.stderr, p.stdout + p.stderr


def test_check_config_missing_file(binary: Path, workdir: Path) -> None:
    p = run_cli(["check-config", "--config", workdir / "does-not-exist.toml"])
    assert p.returncode != 0
    assert "does-not-exist.toml" in p.stdout + p.stderr, p.stdout + p.stderr


def test_env_overrides_default_upstream_url(binary: Path, workdir: Path) -> None:
    cfg = write_config(workdir, "env", secret_config())
    p = run_cli(["check-config", "--config", cfg], env={"PROMETHEUS_URL": "http://override.invalid:9999"})
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "override.invalid:9999" in out, f"PROMETHEUS_URL not applied:\n{out}"
    assert "original.invalid" not in out, f"old default URL still shown:\n{out}"
    assert "s3cret" not in out


# --------------------------------------------------------------------------
# shutdown
# --------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown(binary: Path, workdir: Path, stack: Stack, sig: int) -> None:
    srv = start_mcp_server(workdir, f"shutdown-{sig.name}",
                           ServerConfig([Upstream("local", stack.prom.url, "5s")]))
    try:
        assert http_get(srv.obs_url + "/healthz").status == 200
        # an open legacy session must not block shutdown
        r = http_post(srv.mcp_url, json.dumps(INIT).encode(), HEADERS)
        assert r.status == 200, r.text
        t0 = time.monotonic()
        srv.proc.signal(sig)
        try:
            code = srv.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"server did not exit within 10s of {sig.name}:\n{srv.proc.tail()}")
        elapsed = time.monotonic() - t0
        assert code == 0, f"exit code {code} after {sig.name}:\n{srv.proc.tail()}"
        assert elapsed < 5, f"took {elapsed:.1f}s to shut down"
    finally:
        srv.proc.stop()


@pytest.mark.anyio
async def test_stdio_exits_when_stdin_closes(binary: Path, stdio_config: Path) -> None:
    import anyio

    with anyio.fail_after(10):
        proc = await anyio.open_process([str(binary), "serve", "--config", str(stdio_config), "--transport", "stdio"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            assert proc.stdin is not None
            await proc.stdin.send((json.dumps(INIT) + "\n").encode())
            assert proc.stdout is not None
            buf = b""
            while b"\n" not in buf:
                buf += await proc.stdout.receive()
            msg = json.loads(buf.split(b"\n")[0])
            assert msg["id"] == 1 and "result" in msg, msg
            await proc.stdin.aclose()
            code = await proc.wait()
            assert code == 0, f"exit code {code} after stdin EOF"
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _self_signed_pem() -> bytes:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("example", sorted(p.name for p in (REPO / "config").glob("*.toml")))
def test_example_configs_pass_check_config(example: str, tmp_path: Path) -> None:
    """Every shipped example config is valid. Paths of mounted secrets and CA
    files (which exist only in a real deployment) point at stand-ins."""
    text = (REPO / "config" / example).read_text()
    pem = tmp_path / "ca.pem"
    pem.write_bytes(_self_signed_pem())
    for path in set(re.findall(r'"(/(?:etc|var/run)/[^"]+)"', text)):
        stand_in = pem if path.endswith((".pem", ".crt")) else tmp_path / Path(path).name
        if stand_in != pem:
            stand_in.write_text("stand-in-secret-value\n")
        text = text.replace(f'"{path}"', f'"{stand_in}"')
    cfg = tmp_path / example
    cfg.write_text(text)
    r = run_cli(["check-config", "--config", str(cfg)])
    assert r.returncode == 0, f"{example}: {r.stderr}"
    assert "stand-in-secret-value" not in r.stdout
