"""The container image (`make image`) is self-contained, proven without a
container runtime: its OCI archive is unpacked layer by layer into a
directory, and the binary runs from that tree in a `chroot` as the image's
user (65532) with an empty environment, so nothing of the host (libraries,
certificates, users) can help it.

Runs under `make test-image`, which builds the image and sets
MCP_PROMETHEUS_IMAGE; skipped otherwise (it needs root for chroot).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Iterator

import pytest

from httputil import free_port, http_get, port_open
from imagetree import REPO, Image, ThrowawayCa, TlsProxy, container_argv, make_ca, needed, render_chart, tree, unpack
from procs import ManagedProcess, await_start
from promstack import Prometheus
from rawmcp import raw_call, raw_tool_result

ARCHIVE = os.environ.get("MCP_PROMETHEUS_IMAGE")
pytestmark = pytest.mark.skipif(not ARCHIVE, reason="MCP_PROMETHEUS_IMAGE unset: `make test-image` builds the image")

BINARY = "/usr/local/bin/mcp-prometheus"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CONFIG = "/etc/mcp-prometheus/config.toml"  # where the chart mounts it


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    if os.geteuid() != 0:
        pytest.fail("the image test runs the binary in a chroot: run it as root", pytrace=False)
    assert ARCHIVE and Path(ARCHIVE).is_file(), f"no image archive at {ARCHIVE}: run `make image`"
    return unpack(Path(ARCHIVE), tmp_path_factory.mktemp("image"))


@pytest.fixture(scope="module")
def pristine(image: Image) -> dict[str, str]:
    """The tree as unpacked, before any test adds a config file to it."""
    return tree(image.root)


def run_in(image: Image, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(image.command(*args), capture_output=True, text=True, timeout=60)


def cargo_version() -> str:
    return tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["version"]


# --------------------------------------------------------------------------
# what is in the image
# --------------------------------------------------------------------------

def test_config_entrypoint_user_and_labels(image: Image) -> None:
    rt = image.runtime
    assert rt["User"] == "65532:65532"
    assert rt["Entrypoint"] == [BINARY, "serve"]
    assert rt["Cmd"] == ["--listen", "0.0.0.0:8080", "--observability-listen", "0.0.0.0:9091"]
    assert set(rt["ExposedPorts"]) == {"8080/tcp", "9091/tcp"}
    labels = rt["Labels"]
    assert labels["org.opencontainers.image.version"] == cargo_version()
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert re.fullmatch(r"[0-9a-f]{40}", labels["org.opencontainers.image.revision"]), labels
    assert len(image.layers) == 2, image.layers  # runtime, then the binary


def test_file_system_is_exactly_the_staged_one(image: Image, pristine: dict[str, str]) -> None:
    """The binary, the libraries its dynamic section names (recursively) and
    their loader, the CA bundle, users, nsswitch, /tmp: nothing else (no shell)."""
    interp, names = needed(image.root / BINARY.lstrip("/"))
    assert interp, "expected a dynamically linked binary"
    libs: dict[str, str] = {}
    queue = list(names)
    while queue:
        name = queue.pop()
        if name in libs:
            continue
        found = [p for p in pristine if p.rsplit("/", 1)[-1] == name and not pristine[p].startswith("->")]
        assert len(found) == 1, f"{name}: {found}"
        libs[name] = found[0]
        queue += needed(image.root / found[0].lstrip("/"))[1]
    files = {p for p, kind in pristine.items() if not kind.startswith("d ")}
    expected = {BINARY, interp, *libs.values(), CA_BUNDLE, "/etc/passwd", "/etc/group", "/etc/nsswitch.conf"}
    assert files == expected, f"extra: {sorted(files - expected)}; missing: {sorted(expected - files)}"
    assert pristine["/tmp"] == "d 0o1777 0:0"
    assert pristine[BINARY] == "f 0o755 0:0"
    assert all(k.endswith(" 0:0") or k.startswith("->") for k in pristine.values()), "all owned by root"
    passwd = (image.root / "etc/passwd").read_text()
    assert "nonroot:x:65532:65532:" in passwd
    assert (image.root / CA_BUNDLE.lstrip("/")).read_text().count("BEGIN CERTIFICATE") > 50


def test_dockerfile_builds_the_same_image_config(image: Image) -> None:
    """The Dockerfile's final stage: FROM scratch, the same two staged
    directories, and the same entrypoint, command, user and ports."""
    text = (REPO / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM "):]
    assert final.startswith("\nFROM scratch")
    assert re.findall(r"^COPY --from=builder (\S+) /$", final, re.M) == ["/rootfs/runtime/", "/rootfs/app/"]
    assert "scripts/stage-rootfs.sh /out/mcp-prometheus /rootfs" in text
    directive = {m[0]: m[1].strip() for m in re.findall(r"^(ENTRYPOINT|CMD|USER|EXPOSE) (.+)$", final, re.M)}
    assert json.loads(directive["ENTRYPOINT"]) == image.runtime["Entrypoint"]
    assert json.loads(directive["CMD"]) == image.runtime["Cmd"]
    assert directive["USER"] == image.runtime["User"]
    assert {f"{p}/tcp" for p in directive["EXPOSE"].split()} == set(image.runtime["ExposedPorts"])
    assert f'org.opencontainers.image.version="{cargo_version()}"' in final


# --------------------------------------------------------------------------
# running it from the tree
# --------------------------------------------------------------------------

def test_version_runs_as_nonroot_from_the_tree(image: Image) -> None:
    p = run_in(image, BINARY, "version")
    assert p.returncode == 0, p.stderr
    m = re.fullmatch(r"mcp-prometheus (\S+) \(revision ([0-9a-f]{40}|unknown), built (\d{4}-\d\d-\d\d)\)\n", p.stdout)
    assert m, p.stdout
    assert m[1] == cargo_version()
    assert m[2] == image.runtime["Labels"]["org.opencontainers.image.revision"]


def test_check_config_on_the_charts_config(image: Image) -> None:
    rendered = render_chart({})
    (image.root / "etc/mcp-prometheus").mkdir(exist_ok=True)
    (image.root / CONFIG.lstrip("/")).write_text(rendered["config_toml"])
    p = run_in(image, BINARY, "check-config", "--config", CONFIG)
    assert p.returncode == 0, p.stderr
    assert "config is valid" in p.stderr


@pytest.fixture
def chart_server(image: Image, prom: Prometheus, workdir: Path) -> Iterator[tuple[str, str, ManagedProcess]]:
    """The server as the chart starts it: the rendered config at the chart's
    mount path, the container's argv resolved against the image's entrypoint."""
    mcp_port, obs_port = free_port(), free_port()
    rendered = render_chart({
        "listenAddress": "127.0.0.1",
        "containerPorts": {"mcp": mcp_port, "observability": obs_port},
        "config": {"server": {"allowed_hosts": ["127.0.0.1"]},
                   "upstreams": [{"name": "prometheus", "url": prom.url, "timeout": "10s"}]},
    })
    (image.root / "etc/mcp-prometheus").mkdir(exist_ok=True)
    (image.root / CONFIG.lstrip("/")).write_text(rendered["config_toml"])
    argv = container_argv(image, rendered["container"])
    proc = ManagedProcess("mcp-prometheus[image]", image.command(*argv), workdir / "logs" / "image-serve.log")
    obs = f"http://127.0.0.1:{obs_port}"
    await_start(proc, ("/readyz from the image", lambda: http_get(obs + "/readyz", 1).status == 200, 30),
                ("MCP listener", lambda: port_open(mcp_port), 15))
    try:
        yield f"http://127.0.0.1:{mcp_port}/mcp", obs, proc
    finally:
        proc.stop()


def test_serve_as_the_chart_runs_it(chart_server: tuple[str, str, ManagedProcess]) -> None:
    mcp_url, obs, proc = chart_server
    uid_line = next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                    if line.startswith("Uid:"))
    # chroot execs the server in place: this is the server, running as 65532.
    assert uid_line.split()[1:] == ["65532"] * 4, uid_line
    assert http_get(obs + "/readyz").status == 200
    result = raw_tool_result(raw_call(mcp_url, "execute_query", {"query": 'up{job="prometheus"}'}))
    assert not result.get("isError"), result
    series = result["structuredContent"]["data"]["result"]
    assert series and series[0]["metric"]["job"] == "prometheus", result


def test_trusts_the_ca_bundle_at_its_image_path(image: Image, prom: Prometheus, workdir: Path,
                                                tmp_path: Path) -> None:
    """An upstream whose CA is only in the image's /etc/ssl/certs bundle:
    refused before the CA is added there, answered after (the binary reads
    the bundle at the path the image puts it)."""
    ca: ThrowawayCa = make_ca(tmp_path)
    proxy = TlsProxy(ca, prom.url)
    bundle = image.root / CA_BUNDLE.lstrip("/")
    original = bundle.read_bytes()
    try:
        outcomes = []
        for trusted in (False, True):
            if trusted:
                bundle.write_bytes(original + ca.ca_pem.encode())
            mcp_port, obs_port = free_port(), free_port()
            (image.root / "etc/mcp-prometheus").mkdir(exist_ok=True)
            (image.root / "etc/mcp-prometheus/tls.toml").write_text(
                f'[server]\nlisten = "127.0.0.1:{mcp_port}"\n[observability]\nlisten = "127.0.0.1:{obs_port}"\n'
                f'[[upstreams]]\nname = "tls"\nurl = "{proxy.url}"\ntimeout = "5s"\n')
            proc = ManagedProcess(f"mcp-prometheus[image-tls-{trusted}]",
                                  image.command(BINARY, "serve", "--config", "/etc/mcp-prometheus/tls.toml"),
                                  workdir / "logs" / f"image-tls-{trusted}.log")
            try:
                await_start(proc, ("MCP listener", lambda: port_open(mcp_port), 30))
                url = f"http://127.0.0.1:{mcp_port}/mcp"
                outcomes.append(raw_tool_result(raw_call(url, "execute_query", {"query": "up"})))
            finally:
                proc.stop()
        untrusted, trusted_result = outcomes
        assert untrusted.get("isError"), untrusted
        assert "certificate" in str(untrusted).lower(), untrusted
        assert not trusted_result.get("isError"), trusted_result
        assert trusted_result["structuredContent"]["data"]["result"], trusted_result
    finally:
        bundle.write_bytes(original)
        proxy.close()
