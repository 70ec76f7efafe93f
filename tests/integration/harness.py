"""Process and fixture plumbing for the mcp-prometheus integration tests.

Starts real Prometheus / Alertmanager processes and the server under test on
free 127.0.0.1 ports, waits for them with polling (never fixed sleeps), keeps
their logs in files, and provides small in-process fake upstreams (HTTP 500,
garbage, slow) built on http.server.
"""

from __future__ import annotations

import atexit
import http.server
import json
import os
import signal
import socket
import string
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
CONFIG_DIR = REPO / "config"
RULES_FILE = CONFIG_DIR / "rules.yml"
ALERTMANAGER_CONFIG = CONFIG_DIR / "alertmanager.yml"

PROMETHEUS_BIN = os.environ.get("PROMETHEUS_BIN", "prometheus")
ALERTMANAGER_BIN = os.environ.get("ALERTMANAGER_BIN", "prometheus-alertmanager")


def serve_threaded(handler: type[http.server.BaseHTTPRequestHandler], name: str,
                   ) -> tuple[http.server.ThreadingHTTPServer, threading.Thread]:
    """An HTTP server on a free 127.0.0.1 port, answering from daemon threads
    (the fake upstreams, the tenant router, the test issuer)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return server, thread

def server_binary() -> Path:
    """The mcp-prometheus binary under test (MCP_PROMETHEUS_BIN overrides)."""
    env = os.environ.get("MCP_PROMETHEUS_BIN")
    return Path(env) if env else REPO / "target" / "debug" / "mcp-prometheus"


# --------------------------------------------------------------------------
# ports, HTTP polling
# --------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on (same trick; nobody binds it afterwards)."""
    return free_port()


@dataclass
class HttpResponse:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def http_get(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> HttpResponse:
    """GET without raising on HTTP error statuses (raises on connection errors)."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return HttpResponse(r.status, r.read(), {k.lower(): v for k, v in r.headers.items()})
    except urllib.error.HTTPError as e:
        return HttpResponse(e.code, e.read(), {k.lower(): v for k, v in e.headers.items()})


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> HttpResponse:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return HttpResponse(r.status, r.read(), {k.lower(): v for k, v in r.headers.items()})
    except urllib.error.HTTPError as e:
        return HttpResponse(e.code, e.read(), {k.lower(): v for k, v in e.headers.items()})


def wait_until(
    what: str,
    check: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.1,
    proc: "ManagedProcess | None" = None,
) -> Any:
    """Poll `check` until it returns a truthy value; exceptions count as "not yet".

    Fails early when `proc` has exited. Raises TimeoutError naming `what` and
    the last failure otherwise.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{proc.name} exited with code {proc.returncode} while waiting for {what}\n"
                f"--- last lines of {proc.log_path} ---\n{proc.tail()}"
            )
        try:
            result = check()
            if result:
                return result
            last = result
        except Exception as e:  # noqa: BLE001 - polling
            last = e
        if time.monotonic() > deadline:
            extra = f"\n--- last lines of {proc.log_path} ---\n{proc.tail()}" if proc else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last: {last!r}{extra}")
        time.sleep(interval)


def tail_file(path: Path, lines: int = 40) -> str:
    try:
        data = path.read_text(errors="replace").splitlines()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(data[-lines:])


# --------------------------------------------------------------------------
# managed processes
# --------------------------------------------------------------------------

_ALL_PROCESSES: list["ManagedProcess"] = []


class ManagedProcess:
    """A child process whose stdout+stderr go to a log file; stopped at teardown."""

    def __init__(self, name: str, args: list[str], log_path: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.args = [str(a) for a in args]
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")
        self._log.write(f"$ {' '.join(self.args)}\n".encode())
        self._log.flush()
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )
        _ALL_PROCESSES.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def tail(self, lines: int = 40) -> str:
        try:
            self._log.flush()
        except ValueError:  # already closed (the process was stopped)
            pass
        return tail_file(self.log_path, lines)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit code."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        try:
            self._log.close()
        except OSError:
            pass
        if self in _ALL_PROCESSES:
            _ALL_PROCESSES.remove(self)
        return self.proc.returncode


def live_processes() -> list[ManagedProcess]:
    return list(_ALL_PROCESSES)


@atexit.register
def _kill_leftovers() -> None:  # pragma: no cover - safety net
    for p in list(_ALL_PROCESSES):
        try:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            pass


# --------------------------------------------------------------------------
# Prometheus and Alertmanager
# --------------------------------------------------------------------------

@dataclass
class Alertmanager:
    port: int
    proc: ManagedProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_alertmanager(workdir: Path) -> Alertmanager:
    port = free_port()
    data = workdir / "alertmanager-data"
    data.mkdir(parents=True, exist_ok=True)
    proc = ManagedProcess(
        "alertmanager",
        [
            ALERTMANAGER_BIN,
            f"--config.file={ALERTMANAGER_CONFIG}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        workdir / "logs" / "alertmanager.log",
    )
    am = Alertmanager(port, proc)
    try:
        wait_until("alertmanager /-/ready", lambda: http_get(f"{am.url}/-/ready", 1).status == 200,
                   timeout=30, proc=proc)
    except Exception:
        proc.stop()
        raise
    return am


@dataclass
class Prometheus:
    name: str
    port: int
    route_prefix: str  # "" or "/prometheus"
    proc: ManagedProcess
    config_path: Path

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL as configured in mcp-prometheus (includes the route prefix)."""
        return self.root + self.route_prefix

    @property
    def instance(self) -> str:
        """The `instance` label of its self-scrape target."""
        return f"127.0.0.1:{self.port}"

    def api(self, path: str, **params: Any) -> Any:
        qs = ("?" + urllib.parse.urlencode(params)) if params else ""
        r = http_get(f"{self.url}/api/v1/{path}{qs}", timeout=5)
        if r.status != 200:
            raise RuntimeError(f"{path}: HTTP {r.status}: {r.text[:300]}")
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def query(self, q: str) -> list[dict[str, Any]]:
        return self.api("query", query=q)["result"]


def start_prometheus(workdir: Path, name: str, am: Alertmanager, route_prefix: str = "") -> Prometheus:
    port = free_port()
    d = workdir / name
    d.mkdir(parents=True, exist_ok=True)
    cfg = d / "prometheus.yml"
    tmpl = string.Template((FIXTURES / "prometheus.yml.tmpl").read_text())
    cfg.write_text(tmpl.substitute(
        SELF_PORT=port,
        METRICS_PATH=f"{route_prefix}/metrics",
        INSTANCE=name,
        RULES_FILE=str(RULES_FILE),
        AM_PORT=am.port,
    ))
    args = [
        PROMETHEUS_BIN,
        f"--config.file={cfg}",
        f"--storage.tsdb.path={d / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=exemplar-storage",
        "--web.enable-admin-api",
        "--rules.alert.resend-delay=2s",
    ]
    if route_prefix:
        args += [f"--web.route-prefix={route_prefix}", f"--web.external-url=http://127.0.0.1:{port}{route_prefix}"]
    proc = ManagedProcess(f"prometheus-{name}", args, workdir / "logs" / f"prometheus-{name}.log")
    prom = Prometheus(name, port, route_prefix, proc, cfg)
    try:
        wait_until(f"{name} /-/ready", lambda: http_get(f"{prom.url}/-/ready", 1).status == 200,
                   timeout=30, proc=proc)
    except Exception:
        proc.stop()
        raise
    return prom


def wait_for_prometheus_data(prom: Prometheus, am: Alertmanager, timeout: float = 45.0) -> None:
    """Wait until everything the tests look at exists (no fixed sleeps)."""

    def scalar(q: str) -> float:
        res = prom.query(q)
        return float(res[0]["value"][1]) if res else 0.0

    # several samples of its own `up` (range queries want several points) and
    # both targets (prometheus + alertmanager) scraped at least once
    wait_until(f"{prom.name}: 3 samples of up{{job=prometheus}}",
               lambda: scalar('count_over_time(up{job="prometheus"}[1m])') >= 3, timeout, proc=prom.proc)
    wait_until(f"{prom.name}: both targets up", lambda: scalar("sum(up)") >= 2, timeout, proc=prom.proc)
    wait_until(f"{prom.name}: recording rule job:up:sum", lambda: prom.query('job:up:sum{job="prometheus"}'),
               timeout, proc=prom.proc)

    def firing() -> bool:
        alerts = prom.api("alerts")["alerts"]
        return any(a["labels"].get("alertname") == "AlwaysFiring" and a["state"] == "firing" for a in alerts)

    wait_until(f"{prom.name}: AlwaysFiring firing", firing, timeout, proc=prom.proc)

    def am_listed() -> bool:
        ams = prom.api("alertmanagers")["activeAlertmanagers"]
        return any(f"127.0.0.1:{am.port}" in a["url"] for a in ams)

    wait_until(f"{prom.name}: alertmanager discovered", am_listed, timeout, proc=prom.proc)

    def metadata() -> bool:
        md = prom.api("metadata", metric="prometheus_http_requests_total")
        tmd = prom.api("targets/metadata", match_target='{job="prometheus"}', metric="prometheus_build_info")
        return bool(md) and bool(tmd)

    wait_until(f"{prom.name}: metric metadata", metadata, timeout, proc=prom.proc)


# --------------------------------------------------------------------------
# fake upstreams (in-process HTTP servers)
# --------------------------------------------------------------------------

@dataclass
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    @property
    def route(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    @property
    def params(self) -> dict[str, list[str]]:
        """Query-string parameters, plus form parameters of a POST body."""
        out = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        if self.body and "x-www-form-urlencoded" in self.headers.get("content-type", ""):
            for k, v in urllib.parse.parse_qs(self.body.decode()).items():
                out.setdefault(k, []).extend(v)
        return out


class FakeUpstream:
    """A tiny threaded HTTP server answering every request the same way; it
    records the requests it gets."""

    def __init__(self, name: str, handler: Callable[[http.server.BaseHTTPRequestHandler], None]):
        self.name = name
        self.requests: list[RecordedRequest] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(RecordedRequest(self.command, self.path,
                                                      {k.lower(): v for k, v in self.headers.items()}, body))
                try:
                    handler(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = _handle
            do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server, self.thread = serve_threaded(Handler, f"fake-{name}")
        self.port = self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _reply(h: http.server.BaseHTTPRequestHandler, status: int, body: bytes, ctype: str) -> None:
    h.send_response(status)
    h.send_header("Content-Type", ctype)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


SLOW_SECONDS = 3.0


def fake_http500() -> FakeUpstream:
    return FakeUpstream("http500", lambda h: _reply(h, 500, b"boom: internal server error\n", "text/plain"))


def fake_garbage() -> FakeUpstream:
    body = b"<html><body>this is definitely not JSON {{{</body></html>"
    return FakeUpstream("garbage", lambda h: _reply(h, 200, body, "application/json"))


def fake_prometheus() -> FakeUpstream:
    """Answers like a healthy, empty Prometheus (for checking what is sent)."""

    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        route = urllib.parse.urlsplit(h.path).path
        if route.endswith("/-/ready"):
            _reply(h, 200, b"Prometheus Server is Ready.\n", "text/plain")
        elif route.endswith("/api/v1/query"):
            _reply(h, 200, b'{"status":"success","data":{"resultType":"vector","result":[]}}', "application/json")
        elif route.endswith("/api/v1/status/buildinfo"):
            _reply(h, 200, b'{"status":"success","data":{"version":"2.99.0","revision":"fake","branch":"",'
                           b'"buildUser":"","buildDate":"","goVersion":"go"}}', "application/json")
        else:
            _reply(h, 404, b"404 page not found\n", "text/plain")

    return FakeUpstream("recorder", handler)


def fake_slow(seconds: float = SLOW_SECONDS) -> FakeUpstream:
    def handler(h: http.server.BaseHTTPRequestHandler) -> None:
        time.sleep(seconds)
        _reply(h, 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode(),
               "application/json")

    return FakeUpstream("slow", handler)


# --------------------------------------------------------------------------
# mcp-prometheus config files and processes
# --------------------------------------------------------------------------

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
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render())
        return path


@dataclass
class McpServer:
    name: str
    config: ServerConfig
    config_path: Path
    proc: ManagedProcess

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.config.listen_port}/mcp"

    @property
    def obs_url(self) -> str:
        return f"http://127.0.0.1:{self.config.obs_port}"


def require_binary() -> Path:
    b = server_binary()
    if not b.exists():
        raise FileNotFoundError(
            f"server binary {b} does not exist: build it first (cargo build / make) "
            "or point MCP_PROMETHEUS_BIN at it"
        )
    return b


def start_mcp_server(workdir: Path, name: str, config: ServerConfig, wait_ready: bool = True,
                     env: dict[str, str] | None = None) -> McpServer:
    """Start `mcp-prometheus serve --transport streamable-http` and wait for it."""
    binary = require_binary()
    config.listen_port = config.listen_port or free_port()
    config.obs_port = config.obs_port or free_port()
    cfg_path = config.write(workdir / "servers" / f"{name}.toml")
    proc = ManagedProcess(
        f"mcp-prometheus[{name}]",
        [binary, "serve", "--config", cfg_path, "--transport", "streamable-http"],
        workdir / "logs" / f"mcp-prometheus-{name}.log",
        env=env,
    )
    srv = McpServer(name, config, cfg_path, proc)
    try:
        endpoint = "/readyz" if wait_ready else "/healthz"
        wait_until(f"{proc.name} {endpoint}", lambda: http_get(srv.obs_url + endpoint, 1).status == 200,
                   timeout=30, proc=proc)
        # the MCP listener may be a separate socket: wait until it accepts connections
        wait_until(f"{proc.name} MCP listener", lambda: _port_open(config.listen_port), timeout=15, proc=proc)
    except Exception:
        proc.stop()
        raise
    return srv


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    binary = require_binary()
    full_env = dict(os.environ)
    full_env.pop("PROMETHEUS_URL", None)
    if env:
        full_env.update(env)
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, env=full_env,
                          timeout=timeout, stdin=subprocess.DEVNULL)
