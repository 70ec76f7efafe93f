"""The audit log ([audit]) end to end: one JSON line per tool call and per
refused authn / authz / rate-limit decision, with who, which tenants (as
sent), what (the PromQL verbatim) and how it ended; never a token, password
or cookie. File sink (with rotation) and stderr sink.

Each request carries its own traceparent; its line is found by trace_id.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from authstack import LayeredServer, TenantStack, _layered, issuer_entry, issuer_fixture, layered_config
from jwt_issuer import JwtIssuer
from mcpserver import run_cli
from procs import wait_until
from rawmcp import bearer, raw_call, raw_tool_result
from serverconfig import ServerConfig
from tenant_router import TenantRouter
from test_trace import new_traceparent

PASSWORD = f"UPSTREAM-PW-{secrets.token_hex(8)}"
COOKIE = f"SECRET-COOKIE-{secrets.token_hex(8)}"
MAX_ARG = 256
FIELDS = {"log_type", "ts", "event", "trace_id", "subject", "issuer", "client_id", "groups", "tenants", "tool",
          "arguments", "upstream", "outcome", "reason", "items", "bytes", "duration_ms"}


def audited(cfg: ServerConfig, **audit: Any) -> ServerConfig:
    """`cfg` with the top-level [audit] table, switched on."""
    cfg.tables["audit"] = {"enabled": True, **audit}
    return cfg


audit_issuer = issuer_fixture("audit")


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit")


@pytest.fixture(scope="module")
def audit_server(pool: Any, tenant_stack: TenantStack, audit_issuer: JwtIssuer, audit_dir: Path) -> LayeredServer:
    layers = {
        "policy": {"enabled": True,
                   "rules": [{"groups": ["team-a", "team-b"], "allow": ["*"], "deny": ["get_config"]}]},
        "ratelimit": {"enabled": True, "unauthenticated": {"per_second": 100, "burst": 100},
                      "rules": [{"name": "audit-burst", "subjects": ["limited-user"], "per_second": 0.01, "burst": 1}]},
    }
    return _layered(pool, "audit-file", lambda: audited(
        layered_config(tenant_stack.url, issuers=[issuer_entry(audit_issuer)], layers=layers,
                       upstream_extra={"auth": {"kind": "basic", "username": "mcp", "password": PASSWORD}}),
        sink="file", path=str(audit_dir / "audit.jsonl"), max_argument_bytes=MAX_ARG), audit_issuer)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the audit file and its rotated predecessor, each a JSON object."""
    out = []
    for p in (Path(f"{path}.1"), path):
        if p.exists():
            for n, line in enumerate(p.read_text().splitlines()):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    raise AssertionError(f"{p}:{n + 1} is not JSON: {line[:300]!r}") from None
    return out


def audit_line(path: Path, trace_id: str) -> dict[str, Any]:
    """The one line of the request with `trace_id` (waited for)."""
    lines = wait_until(f"audit line {trace_id}",
                       lambda: [x for x in read_lines(path) if x.get("trace_id") == trace_id], timeout=5)
    assert len(lines) == 1, lines
    line = lines[0]
    assert set(line) == FIELDS, f"fields {sorted(set(line) ^ FIELDS)} differ: {line}"
    assert line["log_type"] == "audit", line
    ts = datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
    assert abs(datetime.now(timezone.utc) - ts) < timedelta(seconds=60), line["ts"]
    return line


def traced(headers: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    tp, trace_id, _ = new_traceparent()
    return {**(headers or {}), "traceparent": tp}, trace_id


def call(srv: LayeredServer, path: Path, tool: str, arguments: dict[str, Any],
         headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A tool call; its result and its audit line."""
    h, trace_id = traced(headers)
    res = raw_tool_result(raw_call(srv.mcp_url, tool, arguments, h))
    return res, audit_line(path, trace_id)


def text_bytes(res: dict[str, Any]) -> int:
    """What the model reads: the UTF-8 bytes of the text content."""
    return sum(len(c["text"].encode()) for c in res["content"] if c.get("type") == "text")


def user(srv: LayeredServer, groups: list[str], sub: str) -> dict[str, str]:
    return bearer(srv.token(groups, sub=sub))


# --------------------------------------------------------------------------
# tool calls
# --------------------------------------------------------------------------

def test_allowed_call(audit_server: LayeredServer, audit_dir: Path, audit_issuer: JwtIssuer) -> None:
    q = 'count by (tenant) (up{job=~"prom-.+", tenant!="none"})'
    res, line = call(audit_server, audit_dir / "audit.jsonl", "execute_query", {"query": q},
                     user(audit_server, ["team-b"], "bob"))
    assert not res.get("isError"), res
    sc = res["structuredContent"]
    assert line["event"] == "tool_call" and line["outcome"] == "ok" and line["reason"] is None, line
    assert (line["subject"], line["issuer"], line["client_id"]) == ("bob", audit_issuer.issuer, None), line
    assert line["groups"] == ["team-b"] and line["tenants"] == ["tenant-b", "tenant-c"], line
    assert line["tool"] == "execute_query" and line["arguments"] == {"query": q}, line
    assert line["upstream"] == "mimir", line
    assert line["items"] == sc["returned"] == len(sc["data"]["result"]) == 2, (line, sc)
    assert line["bytes"] == text_bytes(res) > 0, line
    assert isinstance(line["duration_ms"], int) and 0 <= line["duration_ms"] < 30000, line


def test_org_id_narrows_the_tenants(audit_server: LayeredServer, audit_dir: Path, router: TenantRouter) -> None:
    mark = router.mark()
    res, line = call(audit_server, audit_dir / "audit.jsonl", "execute_query", {"query": "up", "org_id": "tenant-c"},
                     user(audit_server, ["team-b"], "bob"))
    assert not res.get("isError"), res
    assert {q.org_id for q in router.since(mark)} == {"tenant-c"}
    assert line["tenants"] == ["tenant-c"], line
    assert line["arguments"] == {"query": "up", "org_id": "tenant-c"}, line


def test_policy_denied_call(audit_server: LayeredServer, audit_dir: Path) -> None:
    res, line = call(audit_server, audit_dir / "audit.jsonl", "get_config", {}, user(audit_server, ["team-a"], "al"))
    assert res.get("isError"), res
    assert line["event"] == "tool_call" and line["outcome"] == "denied" and line["tool"] == "get_config", line
    assert line["reason"] == res["content"][0]["text"], line
    assert "is not allowed for you" in line["reason"], line
    assert line["subject"] == "al" and line["tenants"] == ["tenant-a"], line
    assert line["items"] is None and line["upstream"] is None and line["bytes"] == text_bytes(res), line


@pytest.mark.parametrize("arguments,kind", [
    ({"query": "up", "bogus": 1}, "invalid_arguments"),
    ({"query": 42}, "invalid_arguments"),
    ({"query": "sum(up"}, "invalid_promql"),
], ids=["unknown-argument", "wrong-type", "bad-promql"])
def test_failed_call(audit_server: LayeredServer, audit_dir: Path, arguments: dict[str, Any], kind: str) -> None:
    res, line = call(audit_server, audit_dir / "audit.jsonl", "execute_query", arguments,
                     user(audit_server, ["team-a"], "al"))
    assert res.get("isError"), res
    assert line["event"] == "tool_call" and line["outcome"] == kind, line
    assert line["reason"] and line["reason"] == res["content"][0]["text"][:1024], line
    assert line["arguments"] == arguments and line["items"] is None and line["bytes"] == text_bytes(res), line


def test_long_arguments_are_cut(audit_server: LayeredServer, audit_dir: Path) -> None:
    q = 'up{job="' + "j" * 1000 + '"}'
    _, line = call(audit_server, audit_dir / "audit.jsonl", "execute_query", {"query": q},
                   user(audit_server, ["team-a"], "al"))
    assert line["arguments"]["query"] == q[:MAX_ARG] + f"…[cut at {MAX_ARG} bytes]", line["arguments"]


# --------------------------------------------------------------------------
# refusals before the tool
# --------------------------------------------------------------------------

def test_rate_limited_request(audit_server: LayeredServer, audit_dir: Path) -> None:
    headers = user(audit_server, ["team-a"], "limited-user")
    h, first = traced(headers)
    assert raw_call(audit_server.mcp_url, "execute_query", {"query": "up"}, h).status == 200
    assert audit_line(audit_dir / "audit.jsonl", first)["outcome"] == "ok"
    h, second = traced(headers)
    r = raw_call(audit_server.mcp_url, "execute_query", {"query": "up"}, h)
    assert r.status == 429, r.text[:300]
    line = audit_line(audit_dir / "audit.jsonl", second)
    # One tool_call line per call, whichever layer refused it; nothing
    # was sent, so no tenants.
    assert line["event"] == "tool_call" and line["outcome"] == "limited", line
    assert 'rate limit "audit-burst" reached' in line["reason"], line
    assert line["tool"] == "execute_query" and line["arguments"] == {"query": "up"}, line
    assert line["subject"] == "limited-user" and line["tenants"] == [], line


@pytest.mark.parametrize("case", ["no-token", "expired"])
def test_unauthenticated_request(audit_server: LayeredServer, audit_dir: Path, case: str) -> None:
    iss = audit_server.issuer
    headers = {} if case == "no-token" else bearer(iss.attack_expired(aud=audit_server.resource, sub="mallory"))
    h, trace_id = traced(headers)
    assert raw_call(audit_server.mcp_url, "execute_query", {"query": "up"}, h).status == 401
    line = audit_line(audit_dir / "audit.jsonl", trace_id)
    assert line["event"] == "authn" and line["outcome"] == "denied", line
    assert line["subject"] is None and line["groups"] == [] and line["tool"] is None, line
    assert ("no bearer token" if case == "no-token" else "expired") in line["reason"], line


def test_no_secrets_in_the_audit_log(audit_server: LayeredServer, audit_dir: Path, router: TenantRouter) -> None:
    path = audit_dir / "audit.jsonl"
    token = audit_server.token(["team-a"], sub="secretive")
    expired = audit_server.issuer.attack_expired(aud=audit_server.resource, sub="secretive")
    arg_secret = f"ARG-SECRET-{secrets.token_hex(8)}"
    token_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLWxvb2tpbmc"
    jar = {"Cookie": f"session={COOKIE}; theme=dark"}
    mark = router.mark()
    q = f'up{{job="{token_like}"}}'
    res, line = call(audit_server, path, "execute_query", {"query": q}, {**bearer(token), **jar})
    assert not res.get("isError") and line["arguments"] == {"query": q}, "PromQL is written verbatim"
    res, line = call(audit_server, path, "execute_query", {"query": "up", "token": arg_secret},
                     {**bearer(token), **jar})
    assert line["outcome"] == "invalid_arguments" and line["arguments"]["token"] == "[redacted]", line
    call(audit_server, path, "get_config", {}, {**bearer(token), **jar})
    h, trace_id = traced({**bearer(expired), **jar})
    assert raw_call(audit_server.mcp_url, "execute_query", {"query": "up"}, h).status == 401
    audit_line(path, trace_id)
    creds = base64.b64encode(f"mcp:{PASSWORD}".encode()).decode()
    sent = {q.headers.get("authorization") for q in router.since(mark)}
    assert sent == {f"Basic {creds}"}, f"the upstream password must be in use: {sent}"
    text = "".join(p.read_text() for p in (Path(f"{path}.1"), path) if p.exists())
    for name, secret in [("bearer token", token), ("expired token", expired), ("upstream password", PASSWORD),
                         ("basic credentials", creds), ("cookie", COOKIE), ("token argument", arg_secret)]:
        assert secret not in text, f"the {name} is in the audit log"
    assert token.split(".")[2] not in text and expired.split(".")[2] not in text, "a token signature is in the log"


# --------------------------------------------------------------------------
# rotation, stderr, check-config
# --------------------------------------------------------------------------

def plain_config(tenant_stack: TenantStack, **audit: Any) -> ServerConfig:
    return audited(layered_config(tenant_stack.url, tenancy="static", static_tenants=["tenant-a"]), **audit)


def test_rotation(pool: Any, tenant_stack: TenantStack, audit_dir: Path) -> None:
    path = audit_dir / "rotate.jsonl"
    srv = _layered(pool, "audit-rotate", lambda: plain_config(tenant_stack, sink="file", path=str(path),
                                                              max_bytes=65536))
    traces = []
    for _ in range(20):  # ~4.2 kB a line, 84 kB in all: one rotation
        h, trace_id = traced()
        res = raw_tool_result(raw_call(srv.mcp_url, "execute_query", {"query": "up", "pad": "x" * 4000}, h))
        assert res.get("isError"), res
        traces.append(trace_id)
    rotated = Path(f"{path}.1")
    assert rotated.exists(), f"no {rotated}: {sorted(os.listdir(audit_dir))}"
    for p in (rotated, path):
        assert 0 < p.stat().st_size <= 65536, (p, p.stat().st_size)
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, oct(p.stat().st_mode)
    lines = read_lines(path)
    assert [x["trace_id"] for x in lines] == traces, "every line, in order, across the two files"
    assert all(x["log_type"] == "audit" and x["outcome"] == "invalid_arguments" for x in lines)
    assert traces[-1] in path.read_text() and traces[0] in rotated.read_text()


def test_stderr_sink(pool: Any, tenant_stack: TenantStack) -> None:
    srv = _layered(pool, "audit-stderr", lambda: plain_config(tenant_stack, sink="stderr"))
    h, trace_id = traced()
    assert not raw_tool_result(raw_call(srv.mcp_url, "execute_query", {"query": "up"}, h)).get("isError")

    def ours() -> list[dict[str, Any]]:
        return [json.loads(x) for x in srv.proc.tail(10000).splitlines() if trace_id in x and x.startswith("{")]

    lines = wait_until("audit line on stderr", ours, timeout=5)
    assert len(lines) == 1 and lines[0]["log_type"] == "audit", lines
    assert lines[0]["event"] == "tool_call" and lines[0]["tenants"] == ["tenant-a"], lines
    log = srv.proc.tail(10000).splitlines()
    audit = [x for x in log if '"log_type":"audit"' in x]
    assert all(json.loads(x)["log_type"] == "audit" for x in audit), "every audit line is a whole JSON line"
    operational = [x for x in log if x and x not in audit and not x.startswith("$ ")]
    assert any("serving MCP" in x for x in operational), operational[:5]
    assert not any("log_type" in x for x in operational), "operational lines are not audit lines"


@pytest.mark.parametrize("audit,words", [
    ({"sink": "file", "path": "/tmp/a.jsonl", "max_bytes": 1000}, "audit.max_bytes"),
    ({"sink": "file"}, "audit.path"),
    ({"sink": "file", "path": "/nonexistent-dir-xyz/audit.jsonl"}, "does not exist"),
    ({"max_argument_bytes": 10}, "audit.max_argument_bytes"),
], ids=["small-max-bytes", "no-path", "no-directory", "tiny-argument-bound"])
def test_check_config_refuses(workdir: Path, tenant_stack: TenantStack, audit: dict[str, Any], words: str) -> None:
    cfg = plain_config(tenant_stack, **audit)
    p = run_cli(["check-config", "--config", cfg.write(workdir / "servers" / "audit-bad.toml")])
    out = p.stdout + p.stderr
    assert p.returncode != 0 and words in out, out
