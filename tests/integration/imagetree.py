"""The OCI image as a directory, for tests/integration/test_image.py: unpack
an OCI archive (`make image`) layer by layer into a root file system, run
the binary inside it with `chroot` as the image's user (no container
runtime), render the Helm chart (in .venv-chart, where helm-python-sdk
lives), and a TLS upstream signed by a throw-away CA.
"""

from __future__ import annotations

import http.server
import json
import re
import shutil
import ssl
import subprocess
import tarfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from httputil import QuietHandler, reply

REPO = Path(__file__).resolve().parents[2]
CHART_PYTHON = REPO / ".venv-chart" / "bin" / "python"


@dataclass
class Image:
    root: Path  # the unpacked file system
    config: dict[str, Any]  # the OCI image config ("config" holds Entrypoint, User, Labels…)
    layers: list[str]  # layer digests, bottom first

    @property
    def runtime(self) -> dict[str, Any]:
        return self.config["config"]

    def uid_gid(self) -> tuple[int, int]:
        uid, gid = self.runtime["User"].split(":")
        return int(uid), int(gid)

    def command(self, *args: str) -> list[str]:
        """`args` run inside the tree as the image's user, with an empty environment."""
        uid, gid = self.uid_gid()
        chroot = shutil.which("chroot") or "/usr/sbin/chroot"
        return ["env", "-i", chroot, f"--userspec={uid}:{gid}", f"--groups={gid}", str(self.root), *args]


def _blob(layout: Path, digest: str) -> Path:
    algo, hexdigest = digest.split(":", 1)
    return layout / "blobs" / algo / hexdigest


def unpack(archive: Path, dest: Path) -> Image:
    """The archive's single image, its layers applied in order under dest/rootfs."""
    layout = dest / "layout"
    layout.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="tar")
    index = json.loads((layout / "index.json").read_text())
    assert len(index["manifests"]) == 1, index
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]).read_text())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())
    root = dest / "rootfs"
    root.mkdir()
    layers = []
    for layer in manifest["layers"]:
        blob = _blob(layout, layer["digest"])
        names = subprocess.run(["tar", "-tf", str(blob)], capture_output=True, text=True, check=True).stdout
        assert ".wh." not in names, f"whiteouts in {layer['digest']}"
        # As root: owners and modes as recorded (GNU tar detects gzip/zstd).
        subprocess.run(["tar", "-xf", str(blob), "--numeric-owner", "--same-permissions", "-C", str(root)],
                       check=True)
        layers.append(layer["digest"])
    return Image(root, config, layers)


def tree(root: Path) -> dict[str, str]:
    """Every path under root (as "/…") with its type, mode and owner, or symlink target."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        rel = "/" + str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = f"-> {p.readlink()}"
        else:
            out[rel] = f"{'d' if p.is_dir() else 'f'} {oct(st.st_mode & 0o7777)} {st.st_uid}:{st.st_gid}"
    return out


def needed(path: Path) -> tuple[str | None, list[str]]:
    """(interpreter, NEEDED names) from the ELF program headers and dynamic section."""
    interp = re.search(r"Requesting program interpreter: (\S+)]",
                       subprocess.run(["readelf", "-l", str(path)], capture_output=True, text=True).stdout)
    dyn = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True).stdout
    return (interp.group(1) if interp else None), re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)]", dyn)


def render_chart(values: dict[str, Any]) -> dict[str, Any]:
    """The chart rendered with `values` (tests/chart/chartlib.py, run by the
    chart venv): {"config_toml": str, "container": {...}}."""
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO / 'tests' / 'chart')!r})\n"
        "from chartlib import render\n"
        "r = render(json.loads(sys.stdin.read()))\n"
        "print(json.dumps({'config_toml': r.toml_text, 'container': r.container}))\n"
    )
    p = subprocess.run([str(CHART_PYTHON), "-c", script], input=json.dumps(values), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, f"rendering the chart failed:\n{p.stderr[-3000:]}"
    return json.loads(p.stdout)


def container_argv(image: Image, container: dict[str, Any]) -> list[str]:
    """What Kubernetes runs: command or the image's Entrypoint, then args or
    (only without a command) the image's Cmd."""
    if "command" in container:
        return [*container["command"], *container.get("args", [])]
    return [*image.runtime.get("Entrypoint", []), *container.get("args", image.runtime.get("Cmd") or [])]


# --------------------------------------------------------------------------
# a TLS upstream
# --------------------------------------------------------------------------

@dataclass
class ThrowawayCa:
    ca_pem: str
    cert_file: Path
    key_file: Path


def make_ca(dir: Path) -> ThrowawayCa:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    def ssl_cmd(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ssl_cmd("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=mcp-prometheus image test CA", "-keyout", str(dir / "ca.key"), "-out", str(dir / "ca.crt"),
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ssl_cmd("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", str(dir / "server.key"), "-out", str(dir / "server.csr"))
    (dir / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                                 "extendedKeyUsage=serverAuth\n")
    ssl_cmd("x509", "-req", "-in", str(dir / "server.csr"), "-CA", str(dir / "ca.crt"), "-CAkey", str(dir / "ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", str(dir / "ext.cnf"), "-out", str(dir / "server.crt"))
    return ThrowawayCa((dir / "ca.crt").read_text(), dir / "server.crt", dir / "server.key")


class TlsProxy:
    """HTTPS on 127.0.0.1 in front of `upstream` (GET and POST, enough for the query API)."""

    def __init__(self, ca: ThrowawayCa, upstream: str):
        class Handler(QuietHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() == "content-type"}
                req = urllib.request.Request(upstream + self.path, data=body, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(req, timeout=10) as r:
                        reply(self, r.status, r.read(), r.headers.get("content-type", "application/json"))
                except urllib.error.HTTPError as e:
                    reply(self, e.code, e.read(), e.headers.get("content-type", "text/plain"))

            do_GET = _forward
            do_POST = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ca.cert_file, ca.key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="tls-upstream", daemon=True)
        self.thread.start()
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
