"""The Helm chart: strict lint, offline rendering, Kubernetes schema validation
of every manifest, the rendered config through `mcp-prometheus check-config`,
and the properties that matter (RBAC only when needed, secrets reaching the
pod, the HPA refusing in-memory OAuth storage, security context, probes,
appProtocol, allowed hosts).

Each file in values/ is one case, rendered as release `mcp-prometheus` in
namespace `monitoring`.
"""

from __future__ import annotations

import base64
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from helm_python import HelmError
from helm_python.chart import lint

from chartlib import (CASES, CHART_DIR, KUBE_VERSION, NAMESPACE, REPO, Rendered, case_values, chart, check_config,
                      materialize, render, render_case, server_binary)

SECRET_MOUNT = "/var/run/secrets/mcp-prometheus"
GRAFANA_ORG_RULE = {"apiGroups": ["observability.giantswarm.io"], "resources": ["grafanaorganizations"],
                    "verbs": ["get", "list", "watch"]}
# Custom resources kubernetes-validate has no schema for: checked by hand below.
CRD_KINDS = {"ServiceMonitor": "monitoring.coreos.com/v1", "HTTPRoute": "gateway.networking.k8s.io/v1"}
OAUTH_SECRETS = {"encryptionKey": "8f3c2a9b1e7d4c6a0b5f9e2d3c8a7b6f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b", "dexClientSecret": "s3cret",
                 "registrationToken": "reg-t0ken"}
OAUTH_PROVIDER = {"issuer_url": "https://dex.example.com", "client_id": "mcp-prometheus"}


def oauth_values(**over: Any) -> dict[str, Any]:
    """A small OAuth setup (memory storage, one replica) to vary in tests."""
    v: dict[str, Any] = {
        "secrets": dict(OAUTH_SECRETS),
        "config": {"server": {"public_url": "https://mcp.example.com"},
                   "oauth": {"enabled": True, "provider": dict(OAUTH_PROVIDER)}},
    }
    for k, val in over.items():
        v[k] = val
    return v


def render_error(values: dict[str, Any]) -> str:
    with pytest.raises(HelmError) as e:
        render(values)
    return str(e.value)


@pytest.fixture(scope="module", params=CASES)
def case(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def rendered(case: str) -> Rendered:
    return render_case(case)


# --------------------------------------------------------------------------
# lint, render, schemas
# --------------------------------------------------------------------------

def _lint_problems(report: dict[str, Any]) -> list[str]:
    problems = list(report.get("errors") or [])
    problems += [f"{m['path']}: {m['error']}" for m in report.get("messages", []) if m["severity"] >= 2]
    return problems


def test_lint_strict_with_defaults() -> None:
    report = lint(CHART_DIR, strict=True, kube_version=KUBE_VERSION, namespace=NAMESPACE)
    assert report["total_charts_linted"] == 1
    assert not _lint_problems(report), report


@pytest.mark.parametrize("name", CASES)
def test_lint_strict(name: str) -> None:
    report = lint(CHART_DIR, case_values(name), strict=True, kube_version=KUBE_VERSION, namespace=NAMESPACE)
    assert not _lint_problems(report), report


def test_every_manifest_is_valid_kubernetes(case: str, rendered: Rendered) -> None:
    assert rendered.docs
    for doc in rendered.docs:
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in CRD_KINDS:
            assert doc["apiVersion"] == CRD_KINDS[doc["kind"]], what
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{case}: {what} is invalid at {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            pytest.fail(f"{case}: no Kubernetes {KUBE_VERSION} schema for {what}: {e.message}")
        assert doc["metadata"].get("namespace", NAMESPACE) == NAMESPACE or doc["kind"].startswith("Cluster")


def test_custom_resources_are_well_formed(rendered: Rendered) -> None:
    sm = rendered.get("ServiceMonitor")
    if sm is not None:
        (endpoint,) = sm["spec"]["endpoints"]
        assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
        svc = rendered.one("Service")
        assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
        assert sm["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    route = rendered.get("HTTPRoute")
    if route is not None:
        assert route["spec"]["parentRefs"] and all("name" in p for p in route["spec"]["parentRefs"])
        svc = rendered.one("Service")
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                assert ref["name"] == svc["metadata"]["name"]
                assert ref["port"] in [p["port"] for p in svc["spec"]["ports"] if p["name"] == "http"]


def test_selectors_match_pod_labels(rendered: Rendered) -> None:
    pod_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [rendered.deployment["spec"]["selector"]["matchLabels"], rendered.one("Service")["spec"]["selector"]]
    for kind in ("PodDisruptionBudget",):
        if (d := rendered.get(kind)) is not None:
            selectors.append(d["spec"]["selector"]["matchLabels"])
    if (np := rendered.get("NetworkPolicy")) is not None:
        selectors.append(np["spec"]["podSelector"]["matchLabels"])
    for sel in selectors:
        assert sel.items() <= pod_labels.items(), sel


# --------------------------------------------------------------------------
# the rendered config
# --------------------------------------------------------------------------

def test_rendered_config_passes_check_config(case: str, rendered: Rendered, tmp_path: Path) -> None:
    binary = server_binary()
    if binary is None:
        pytest.skip("target/debug/mcp-prometheus missing (cargo build --bin mcp-prometheus) and no MCP_PROMETHEUS_BIN")
    m = materialize(rendered, tmp_path)
    p = check_config(binary, m)
    assert p.returncode == 0, (f"{case}: check-config exited {p.returncode}:\n{p.stderr}\n"
                               f"--- config.toml ---\n{m.config_path.read_text()}")
    # and no secret shows up in its output
    for value in (rendered.secret or {}).get("data", {}).values():
        assert base64.b64decode(value).decode() not in p.stdout


def test_config_numbers_stay_integers(rendered: Rendered) -> None:
    # Helm's toToml writes 50000 as 50000.0, which the server refuses.
    assert not re.search(r"=\s*-?\d+\.0\s*$", rendered.toml_text, re.M), rendered.toml_text
    cfg = rendered.config
    assert isinstance(cfg["tools"]["default_limit"], int)
    assert isinstance(cfg["layers"]["truncate"]["max_bytes"], int)


def test_chart_owned_keys(rendered: Rendered) -> None:
    cfg = rendered.config
    assert cfg["server"]["transport"] == "streamable-http"
    assert cfg["server"]["listen"] == "0.0.0.0:8080"
    assert cfg["observability"]["listen"] == "0.0.0.0:9091"
    mount = rendered.container["volumeMounts"][0]
    assert mount["mountPath"] == "/etc/mcp-prometheus/config.toml" and mount["readOnly"]
    # The image's entrypoint is `mcp-prometheus serve` (tests/integration/test_image.py runs this argv).
    assert "command" not in rendered.container
    assert rendered.container["args"] == ["--config", "/etc/mcp-prometheus/config.toml"]
    annotations = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])


def test_allowed_hosts_cover_service_names_and_public_hosts(case: str, rendered: Rendered) -> None:
    hosts = set(rendered.config["server"]["allowed_hosts"])
    svc = rendered.one("Service")
    name, port = svc["metadata"]["name"], next(p["port"] for p in svc["spec"]["ports"] if p["name"] == "http")
    for h in (name, f"{name}.{NAMESPACE}", f"{name}.{NAMESPACE}.svc", f"{name}.{NAMESPACE}.svc.cluster.local"):
        assert h in hosts and f"{h}:{port}" in hosts, (h, hosts)
    for ing in rendered.all("Ingress"):
        for rule in ing["spec"]["rules"]:
            assert rule["host"] in hosts
    for route in rendered.all("HTTPRoute"):
        for h in route["spec"].get("hostnames", []):
            assert h in hosts
    assert "*" not in hosts


def test_public_url_and_redirect_derived_from_ingress() -> None:
    r = render(oauth_values(
        ingress={"enabled": True, "hosts": [{"host": "mcp.corp.example", "paths": [{"path": "/"}]}],
                 "tls": [{"secretName": "t", "hosts": ["mcp.corp.example"]}]},
        config={"oauth": {"enabled": True, "provider": dict(OAUTH_PROVIDER)}}))
    cfg = r.config
    assert cfg["server"]["public_url"] == "https://mcp.corp.example"
    assert cfg["oauth"]["provider"]["redirect_url"] == "https://mcp.corp.example/oauth/callback"


def test_oauth_table_only_when_enabled() -> None:
    assert "oauth" not in render({}).config
    assert render(oauth_values()).config["oauth"]["enabled"] is True


def test_stateful_sessions_follow_replicas() -> None:
    assert render({}).config["server"]["stateful_sessions"] is True
    assert render({"replicaCount": 3}).config["server"]["stateful_sessions"] is False
    scaled = {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 5}}
    assert render(scaled).config["server"]["stateful_sessions"] is False
    assert render({"replicaCount": 3, "config": {"server": {"stateful_sessions": True}}}) \
        .config["server"]["stateful_sessions"] is True


# --------------------------------------------------------------------------
# RBAC and the ServiceAccount token
# --------------------------------------------------------------------------

def test_rbac_only_for_grafana_organization(case: str, rendered: Rendered) -> None:
    tenancy = rendered.config["layers"].get("tenancy", {})
    wants = bool(tenancy.get("enabled")) and tenancy.get("mode") == "grafana-organization"
    role, binding = rendered.get("ClusterRole"), rendered.get("ClusterRoleBinding")
    sa = rendered.one("ServiceAccount")
    assert rendered.get("Role") is None and rendered.get("RoleBinding") is None
    if not wants:
        assert role is None and binding is None, case
        assert rendered.pod["automountServiceAccountToken"] is False
        assert sa["automountServiceAccountToken"] is False
        return
    assert role is not None and binding is not None, case
    assert role["rules"] == [GRAFANA_ORG_RULE]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"],
                                    "namespace": NAMESPACE}]
    assert rendered.pod["serviceAccountName"] == sa["metadata"]["name"]
    assert rendered.pod["automountServiceAccountToken"] is True


def test_grafana_organization_refuses_no_token() -> None:
    v = case_values("grafana-organization")
    v["serviceAccount"] = {"automount": False}
    assert "automount" in render_error(v)


def test_rbac_can_be_left_to_the_operator() -> None:
    v = case_values("grafana-organization")
    v["rbac"] = {"create": False}
    r = render(v)
    assert r.get("ClusterRole") is None and r.pod["automountServiceAccountToken"] is True


# --------------------------------------------------------------------------
# secrets
# --------------------------------------------------------------------------

def _projected_items(r: Rendered) -> dict[str, tuple[str, str]]:
    """file name under the secret mount -> (Secret name, key)."""
    vol = next((v for v in r.pod["volumes"] if v["name"] == "secrets"), None)
    if vol is None:
        return {}
    out = {}
    for src in vol["projected"]["sources"]:
        for item in src["secret"]["items"]:
            out[item["path"]] = (src["secret"]["name"], item["key"])
    return out


def _file_keys(node: Any, prefix: str = "") -> dict[str, str]:
    """Every `*_file` key of the config: dotted key -> path."""
    out: dict[str, str] = {}
    if isinstance(node, dict):
        for k, v in node.items():
            key = f"{prefix}.{k}" if prefix else k
            if k.endswith("_file") and isinstance(v, str):
                out[key] = v
            else:
                out |= _file_keys(v, key)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out |= _file_keys(v, f"{prefix}[{i}]")
    return out


def test_every_config_file_is_mounted(case: str, rendered: Rendered) -> None:
    mounts = [m["mountPath"].rstrip("/") for m in rendered.container.get("volumeMounts", [])]
    for key, path in _file_keys(rendered.config).items():
        assert any(path.startswith(m + "/") for m in mounts), f"{case}: {key} = {path} is on no volume"
    items = _projected_items(rendered)
    for key, path in _file_keys(rendered.config).items():
        if path.startswith(SECRET_MOUNT + "/"):
            assert path.removeprefix(SECRET_MOUNT + "/") in items, (key, path, items)


def test_secret_keys_reach_the_pod(case: str, rendered: Rendered) -> None:
    cfg = rendered.config
    items = _projected_items(rendered)
    secret = rendered.secret
    if "oauth" not in cfg:
        assert not items and secret is None
        return
    oauth = cfg["oauth"]
    assert oauth["encryption_key_file"] == f"{SECRET_MOUNT}/encryption-key"
    assert oauth["provider"]["client_secret_file"] == f"{SECRET_MOUNT}/dex-client-secret"
    expected = {"encryption-key", "dex-client-secret"}
    if oauth.get("registration", "token") == "token":
        assert oauth["registration_token_file"] == f"{SECRET_MOUNT}/registration-token"
        expected.add("registration-token")
    if oauth["storage"]["kind"] == "valkey" and "password_file" in oauth["storage"]:
        assert oauth["storage"]["password_file"] == f"{SECRET_MOUNT}/valkey-password"
        expected.add("valkey-password")
    assert set(items) == expected
    mount = next(m for m in rendered.container["volumeMounts"] if m["name"] == "secrets")
    assert mount["mountPath"] == SECRET_MOUNT and mount["readOnly"]
    values = rendered.values.get("secrets", {})
    if values.get("existingSecret"):
        assert secret is None
        keys = values.get("keys", {})
        assert items["encryption-key"] == (values["existingSecret"], keys.get("encryptionKey", "encryption-key"))
        assert items["dex-client-secret"] == (values["existingSecret"],
                                              keys.get("dexClientSecret", "dex-client-secret"))
        ann = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
        if values.get("existingSecretChecksum"):
            assert ann["checksum/secret"] == values["existingSecretChecksum"]
    else:
        assert secret is not None
        data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        for path, (name, key) in items.items():
            if name == secret["metadata"]["name"]:
                assert key in data, (path, key)
        assert data["encryption-key"] == values["encryptionKey"]  # passed through as given
        assert data["dex-client-secret"] == values["dexClientSecret"]
        ann = rendered.deployment["spec"]["template"]["metadata"]["annotations"]
        assert re.fullmatch(r"[0-9a-f]{64}", ann["checksum/secret"])


def test_valkey_password_from_valkeys_own_secret() -> None:
    r = render_case("oauth-valkey")
    items = _projected_items(r)
    assert items["valkey-password"] == ("valkey-users", "mcp-prometheus")
    assert "valkey-password" not in r.one("Secret")["data"]
    assert r.config["oauth"]["storage"]["tls"]["ca_file"] == "/etc/mcp-prometheus/ca/valkey/ca.crt"


def test_valkey_password_in_chart_secret() -> None:
    v = oauth_values(replicaCount=2)
    v["secrets"]["valkeyPassword"] = "v4lkey"
    v["config"]["oauth"]["storage"] = {"kind": "valkey", "url": "redis://valkey:6379"}
    r = render(v)
    assert _projected_items(r)["valkey-password"] == (r.one("Secret")["metadata"]["name"], "valkey-password")
    assert base64.b64decode(r.one("Secret")["data"]["valkey-password"]).decode() == "v4lkey"
    assert r.config["oauth"]["storage"]["password_file"] == f"{SECRET_MOUNT}/valkey-password"


@pytest.mark.parametrize("key", ["00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF",
                                 base64.b64encode(bytes(range(32))).decode()])
def test_encryption_key_hex_or_base64(key: str) -> None:
    v = oauth_values()
    v["secrets"]["encryptionKey"] = key
    r = render(v)
    assert base64.b64decode(r.one("Secret")["data"]["encryption-key"]).decode() == key


@pytest.mark.parametrize("key", ["tooshort", "0123456789abcdef" * 3, base64.b64encode(bytes(31)).decode(),
                                 "zz" * 32])
def test_encryption_key_refused_when_not_32_bytes(key: str) -> None:
    v = oauth_values()
    v["secrets"]["encryptionKey"] = key
    assert "encryptionKey" in render_error(v)


@pytest.mark.parametrize("missing", sorted(OAUTH_SECRETS))
def test_oauth_needs_its_secrets(missing: str) -> None:
    v = oauth_values()
    del v["secrets"][missing]
    assert f"secrets.{missing}" in render_error(v)


def test_no_registration_token_unless_registration_is_token() -> None:
    v = oauth_values()
    del v["secrets"]["registrationToken"]
    v["config"]["oauth"]["registration"] = "off"
    r = render(v)
    assert "registration-token" not in _projected_items(r)
    assert "registration_token_file" not in r.config["oauth"]


# --------------------------------------------------------------------------
# replicas and the HPA
# --------------------------------------------------------------------------

def test_hpa_refuses_several_replicas_with_memory_storage() -> None:
    v = oauth_values(autoscaling={"enabled": True, "minReplicas": 1, "maxReplicas": 3})
    msg = render_error(v)
    assert "autoscaling.maxReplicas" in msg and "memory" in msg and "valkey" in msg


def test_replicas_refuse_memory_storage() -> None:
    msg = render_error(oauth_values(replicaCount=2))
    assert "replicaCount" in msg and "memory" in msg


def test_hpa_with_one_replica_and_memory_storage_renders() -> None:
    r = render(oauth_values(autoscaling={"enabled": True, "minReplicas": 1, "maxReplicas": 1}))
    assert r.one("HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 1


def test_hpa_with_valkey_storage_renders() -> None:
    r = render_case("oauth-valkey")
    hpa = r.one("HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": r.deployment["metadata"]["name"]}
    assert "replicas" not in r.deployment["spec"]
    assert r.config["server"]["stateful_sessions"] is False


def test_hpa_without_oauth_renders() -> None:
    r = render({"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6}})
    assert r.one("HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 6


def test_pdb(rendered: Rendered) -> None:
    pdb = rendered.one("PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1


# --------------------------------------------------------------------------
# pod hardening, probes, ports
# --------------------------------------------------------------------------

def test_security_context(rendered: Rendered) -> None:
    pod_sc = rendered.pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] != 0
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = rendered.container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] != 0
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for v in rendered.pod["volumes"]:
        assert "hostPath" not in v
    assert not rendered.pod.get("hostNetwork")


def test_probes_on_the_observability_port(rendered: Rendered) -> None:
    c = rendered.container
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    obs_port = int(rendered.config["observability"]["listen"].rsplit(":", 1)[1])
    mcp_port = int(rendered.config["server"]["listen"].rsplit(":", 1)[1])
    assert ports == {"http": mcp_port, "metrics": obs_port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    svc_ports = {p["name"]: p for p in rendered.one("Service")["spec"]["ports"]}
    assert svc_ports["http"]["targetPort"] == "http" and svc_ports["metrics"]["targetPort"] == "metrics"


def test_service_app_protocol(case: str, rendered: Rendered) -> None:
    http = next(p for p in rendered.one("Service")["spec"]["ports"] if p["name"] == "http")
    want = rendered.values.get("service", {}).get("appProtocol")
    if want:
        assert http["appProtocol"] == want
    else:
        assert "appProtocol" not in http


def test_network_policy(case: str, rendered: Rendered) -> None:
    np = rendered.one("NetworkPolicy")
    ports = [p["port"] for rule in np["spec"]["ingress"] for p in rule.get("ports", [])]
    assert "http" in ports and "metrics" in ports
    egress = rendered.values.get("networkPolicy", {}).get("egress", {}).get("enabled", False)
    assert ("Egress" in np["spec"]["policyTypes"]) == egress
    if egress:
        dns = np["spec"]["egress"][0]
        assert {p["port"] for p in dns["ports"]} == {53}
    assert render({"networkPolicy": {"enabled": False}}).get("NetworkPolicy") is None


def test_image_defaults_to_app_version() -> None:
    cargo = tomllib.loads((REPO / "Cargo.toml").read_text())
    app_version = chart().metadata["appVersion"]
    assert app_version == cargo["workspace"]["package"]["version"], "chart appVersion != Cargo.toml version"
    r = render({})
    # Our own image (make image), never the Go server's ghcr.io/giantswarm/mcp-prometheus.
    assert r.container["image"] == f"mcp-prometheus:{app_version}"
    assert "image.registry is empty" in r.notes
    pushed = render({"image": {"registry": "registry.example.com/team"}})
    assert pushed.container["image"] == f"registry.example.com/team/mcp-prometheus:{app_version}"
    assert "image.registry is empty" not in pushed.notes
    digest = "sha256:" + "a" * 64
    assert render({"image": {"registry": "r.example", "digest": digest}}).container["image"] == \
        f"r.example/mcp-prometheus@{digest}"


def test_dockerfile_matches_the_chart() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM rust:\S+ AS builder", text, re.M)
    assert "--release" in text
    assert re.search(r"^FROM scratch$", text, re.M)
    assert re.search(r"^USER 65532", text, re.M)
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/mcp-prometheus", "serve"\]$', text, re.M)
    cargo = tomllib.loads((REPO / "Cargo.toml").read_text())
    assert f'org.opencontainers.image.version="{cargo["workspace"]["package"]["version"]}"' in text
    assert chart().values["podSecurityContext"]["runAsUser"] == 65532


# --------------------------------------------------------------------------
# values the schema refuses
# --------------------------------------------------------------------------

@pytest.mark.parametrize("values, where", [
    ({"app": {"oauth": {"enabled": True}}}, "app"),  # the Go chart's values
    ({"ciliumNetworkPolicy": {"enabled": True}}, "ciliumNetworkPolicy"),
    ({"config": {"layers": {"authn": {"enabld": True}}}}, "enabld"),
    ({"config": {"server": {"max_request_body_bytes": 1}}}, "max_request_body_bytes"),
    ({"config": {"tools": {"chart_max_width": 100000}}}, "chart_max_width"),
    ({"config": {"layers": {"tenancy": {"mode": "groups"}}}}, "mode"),
    ({"config": {"oauth": {"storage": {"kind": "redis"}}}}, "kind"),
    ({"config": {"upstreams": []}}, "upstreams"),
    ({"config": {"upstreams": [{"name": "p", "url": "http://p:9090", "external_ui": "kibana"}]}}, "external_ui"),
    ({"config": {"upstreams": [{"name": "p", "url": "http://p:9090", "external_url": "javascript:x"}]}},
     "external_url"),
])
def test_schema_refuses(values: dict[str, Any], where: str) -> None:
    assert where in render_error(values)


def test_gateway_api_needs_parent_refs() -> None:
    assert "parentRefs" in render_error({"gatewayAPI": {"enabled": True}})


def test_valkey_needs_url() -> None:
    v = oauth_values()
    v["config"]["oauth"]["storage"] = {"kind": "valkey"}
    assert "config.oauth.storage.url" in render_error(v)


# --------------------------------------------------------------------------
# the README's examples
# --------------------------------------------------------------------------

def _readme_helm_yaml_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    start = text.index("## Deploying with Helm")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end != -1 else None]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


def test_readme_examples_render_and_validate() -> None:
    import yaml
    blocks = _readme_helm_yaml_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        r = render(yaml.safe_load(block))
        for doc in r.docs:
            if doc["kind"] not in CRD_KINDS:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_readme_production_example_is_a_test_case() -> None:
    import yaml
    production = yaml.safe_load(_readme_helm_yaml_blocks()[0])
    assert production == case_values("production")
