"""Rendering the chart offline and looking at what came out.

The chart is rendered by Helm 4 embedded in PyPI `helm-python-sdk` (no helm
binary, no cluster); manifests are parsed with PyYAML; the server config is
the ConfigMap's `config.toml`. `materialize()` turns a rendered Deployment into
what the container would see (the config file, the mounted secret files, the
environment) under a temporary directory, so `mcp-prometheus check-config` can
run on it.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from helm_python.chart import Chart

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "chart"
VALUES_DIR = Path(__file__).resolve().parent / "values"
RELEASE = "mcp-prometheus"
NAMESPACE = "monitoring"
KUBE_VERSION = "v1.30.0"

CASES = sorted(p.stem for p in VALUES_DIR.glob("*.yaml"))


@functools.cache
def chart() -> Chart:
    return Chart.load(CHART_DIR)


def case_values(case: str) -> dict[str, Any]:
    return yaml.safe_load((VALUES_DIR / f"{case}.yaml").read_text()) or {}


@dataclass
class Rendered:
    docs: list[dict[str, Any]]
    notes: str
    values: dict[str, Any]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str) -> dict[str, Any] | None:
        found = self.all(kind)
        assert len(found) <= 1, f"{len(found)} {kind} objects"
        return found[0] if found else None

    def one(self, kind: str) -> dict[str, Any]:
        found = self.get(kind)
        assert found is not None, f"no {kind} rendered; kinds: {sorted({d['kind'] for d in self.docs})}"
        return found

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod["containers"]
        assert len(containers) == 1
        return containers[0]

    @property
    def toml_text(self) -> str:
        return self.one("ConfigMap")["data"]["config.toml"]

    @property
    def config(self) -> dict[str, Any]:
        return tomllib.loads(self.toml_text)

    @property
    def secret(self) -> dict[str, Any] | None:
        return self.get("Secret")


def render(values: dict[str, Any] | None = None, *, name: str = RELEASE, namespace: str = NAMESPACE) -> Rendered:
    """Renders the chart; raises helm_python's HelmRenderError / HelmValuesError."""
    out = chart().render(values or {}, name=name, namespace=namespace)
    docs: list[dict[str, Any]] = []
    notes = ""
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return Rendered(docs, notes, values or {})


def render_case(case: str) -> Rendered:
    return render(case_values(case))


# --------------------------------------------------------------------------
# what the container sees
# --------------------------------------------------------------------------

@functools.cache
def _test_pem() -> str:
    """A self-signed certificate, for CA files (check-config may parse them)."""
    try:
        p = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "/dev/null", "-subj", "/CN=chart-test-ca", "-days", "30"],
            capture_output=True, text=True, check=True, timeout=30)
        return p.stdout
    except (OSError, subprocess.CalledProcessError):
        return "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _dummy_file(path: str) -> str:
    """Content for a file whose Secret the chart does not render."""
    base = os.path.basename(path)
    if "encryption" in base.lower() or base == "MCP_OAUTH_ENCRYPTION_KEY":
        return "8f3c2a9b1e7d4c6a0b5f9e2d3c8a7b6f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b"  # 32 random-looking bytes, hex
    if base.endswith((".crt", ".pem")):
        return _test_pem()
    return f"dummy-{base}"


@dataclass
class Materialized:
    config_path: Path
    env: dict[str, str]
    files: dict[str, Path]  # path in the container -> path here


def materialize(r: Rendered, root: Path) -> Materialized:
    """Writes the container's view (config.toml, mounted files, env) under `root`."""
    secret = r.secret
    secret_data = {}
    if secret is not None:
        secret_data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    chart_secret_name = secret["metadata"]["name"] if secret else None

    def secret_value(name: str, key: str, path: str) -> str:
        if name == chart_secret_name:
            assert key in secret_data, f"Secret {name} has no key {key!r}: {sorted(secret_data)}"
            return secret_data[key]
        return _dummy_file(path if key.islower() else key)

    volumes = {v["name"]: v for v in r.pod.get("volumes", [])}
    mount_map: dict[str, Path] = {}
    files: dict[str, Path] = {}
    for i, m in enumerate(r.container.get("volumeMounts", [])):
        if m["name"] == "config":
            continue
        here = root / "mnt" / f"{i}-{m['name']}"
        here.mkdir(parents=True, exist_ok=True)
        mount_map[m["mountPath"].rstrip("/")] = here
        vol = volumes[m["name"]]
        sources: list[tuple[str, list[dict[str, str]]]] = []
        if "secret" in vol:
            sources.append((vol["secret"]["secretName"], vol["secret"].get("items") or []))
        for src in (vol.get("projected") or {}).get("sources", []):
            if "secret" in src:
                sources.append((src["secret"]["name"], src["secret"].get("items") or []))
        for name, items in sources:
            for item in items:
                dest = here / item["path"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(secret_value(name, item["key"], item["path"]))
                files[f"{m['mountPath'].rstrip('/')}/{item['path']}"] = dest

    # One pass (a rewritten path may itself start with a mount path, e.g.
    # /tmp); longest mount paths first, so /a/b wins over /a.
    mounts = sorted(mount_map, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(m) for m in mounts) + r")/") if mounts else None

    def rewrite(text: str) -> str:
        if pattern is None:
            return text
        return pattern.sub(lambda mo: str(mount_map[mo.group(1)]) + "/", text)

    config_path = root / "config.toml"
    config_path.write_text(rewrite(r.toml_text))

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for e in r.container.get("env", []):
        if "value" in e:
            env[e["name"]] = rewrite(str(e["value"]))
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            env[e["name"]] = secret_value(ref["name"], ref["key"], ref["key"])
        else:
            env[e["name"]] = f"dummy-{e['name'].lower()}"
    return Materialized(config_path, env, files)


def server_binary() -> Path | None:
    explicit = os.environ.get("MCP_PROMETHEUS_BIN")
    path = Path(explicit) if explicit else REPO / "target" / "debug" / "mcp-prometheus"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def check_config(binary: Path, m: Materialized) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), "check-config", "--config", str(m.config_path)],
                          env=m.env, capture_output=True, text=True, timeout=60)
