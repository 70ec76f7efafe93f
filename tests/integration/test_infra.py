"""Self-tests of the test infrastructure (no mcp-prometheus involved): the
tenant router over three real Prometheus, the JWT issuer and its attack
tokens, the real OIDC provider with the headless login, the streaming fake
upstream, and the TOML rendering of layered configs."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import time
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import jwt
import pytest

from authstack import TenantStack, issuer_entry, layered_config
from big_upstream import BigUpstream
from constants import GROUP_MAP
from httputil import http_get, http_post
from jwt_issuer import JwtIssuer, b64url
from oidc_login import (
    CONFIDENTIAL_CLIENT,
    CONFIDENTIAL_SECRET,
    LoginError,
    OidcProvider,
    jwt_header,
    login,
    refresh,
    start_oidc_provider,
)
from tenant_router import FEDERATION_LABEL, RULER_MULTI_TENANT_ERROR


def api(stack: TenantStack, path: str, org: str | None, prefix: bool = True, **params: Any):
    base = stack.router.url if prefix else stack.router.root
    qs = ("?" + urllib.parse.urlencode(params, doseq=True)) if params else ""
    headers = {"X-Scope-OrgID": org} if org is not None else {}
    return http_get(f"{base}/api/v1/{path}{qs}", timeout=10, headers=headers)


# --------------------------------------------------------------------------
# tenant router
# --------------------------------------------------------------------------

def test_router_requires_org_id(tenant_stack: TenantStack) -> None:
    r = api(tenant_stack, "query", None, query="up")
    assert r.status == 401 and "no org id" in r.text, (r.status, r.text)


@pytest.mark.parametrize("prefix", [True, False], ids=["prefix", "root"])
@pytest.mark.parametrize("tenant", ["tenant-a", "tenant-b", "tenant-c"])
def test_router_single_tenant_gets_own_data(tenant_stack: TenantStack, tenant: str, prefix: bool) -> None:
    r = api(tenant_stack, "query", tenant, prefix=prefix, query="up")
    assert r.status == 200, r.text
    res = r.json()["data"]["result"]
    assert res and {s["metric"]["tenant"] for s in res} == {tenant}, res
    assert all(FEDERATION_LABEL not in s["metric"] for s in res), res


def test_router_federates_queries(tenant_stack: TenantStack) -> None:
    r = api(tenant_stack, "query", "tenant-b|tenant-c", query="up")
    assert r.status == 200, r.text
    res = r.json()["data"]["result"]
    assert {(s["metric"]["tenant"], s["metric"][FEDERATION_LABEL]) for s in res} == {
        ("tenant-b", "tenant-b"), ("tenant-c", "tenant-c")}, res
    now = time.time()
    r = api(tenant_stack, "query_range", "tenant-a|tenant-c", query="up", start=now - 30, end=now, step=5)
    res = r.json()["data"]
    assert res["resultType"] == "matrix" and {s["metric"][FEDERATION_LABEL] for s in res["result"]} == {
        "tenant-a", "tenant-c"}, res


def test_router_federates_discovery(tenant_stack: TenantStack) -> None:
    org = "tenant-a|tenant-b"
    labels = api(tenant_stack, "labels", org).json()["data"]
    assert "tenant" in labels and FEDERATION_LABEL in labels, labels
    values = api(tenant_stack, "label/tenant/values", org).json()["data"]
    assert values == ["tenant-a", "tenant-b"], values
    series = api(tenant_stack, "series", org, **{"match[]": "up"}).json()["data"]
    assert {s["tenant"] for s in series} == {"tenant-a", "tenant-b"}, series
    md = api(tenant_stack, "metadata", org, metric="prometheus_http_requests_total").json()["data"]
    assert len(md.get("prometheus_http_requests_total", [])) == 1, md  # identical entries merged


def test_router_ruler_refuses_federation(tenant_stack: TenantStack) -> None:
    for path in ("rules", "alerts"):
        r = api(tenant_stack, path, "tenant-a|tenant-b")
        assert r.status == 400 and RULER_MULTI_TENANT_ERROR in r.text, (path, r.status, r.text)
    rules = api(tenant_stack, "rules", "tenant-b").json()["data"]["groups"]
    assert [g["name"] for g in rules] == ["tenant-b-rules"], rules
    alerts = api(tenant_stack, "alerts", "tenant-c").json()["data"]["alerts"]
    assert {a["labels"]["tenant"] for a in alerts} == {"tenant-c"}, alerts


def test_router_unknown_tenant_and_ready(tenant_stack: TenantStack) -> None:
    r = api(tenant_stack, "query", "tenant-zzz", query="up")
    assert r.status == 404 and "unknown tenant" in r.text, r.text
    assert http_get(tenant_stack.router.url + "/-/ready").status == 200
    assert http_get(tenant_stack.router.root + "/ready").status == 200


def test_router_records_requests(tenant_stack: TenantStack) -> None:
    router = tenant_stack.router
    mark = router.mark()
    tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r = http_post(router.url + "/api/v1/query", b"query=up", {"X-Scope-OrgID": "tenant-a", "traceparent": tp,
                                                              "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200 and r.json()["data"]["result"], r.text
    reqs = router.since(mark)
    assert len(reqs) == 1, reqs
    rq = reqs[0]
    assert rq.method == "POST" and rq.route == "/prometheus/api/v1/query" and rq.params["query"] == ["up"]
    assert rq.org_id == "tenant-a" and rq.tenants == ["tenant-a"] and rq.headers["traceparent"] == tp
    assert rq.status == 200
    assert router.tenants_seen(mark) == {"tenant-a"}


# --------------------------------------------------------------------------
# JWT issuer
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def infra_issuer() -> Iterator[JwtIssuer]:
    i = JwtIssuer("infra", default_audience="https://mcp.example.test/mcp")
    yield i
    i.close()


def verify(i: JwtIssuer, token: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(i.jwks_url, cache_keys=False).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256", "ES256"], audience="https://mcp.example.test/mcp",
                      issuer=i.issuer, leeway=30)


def test_issuer_discovery_and_jwks(infra_issuer: JwtIssuer) -> None:
    d = http_get(infra_issuer.url + "/.well-known/openid-configuration").json()
    assert d["issuer"] == infra_issuer.url and d["jwks_uri"] == infra_issuer.jwks_url
    before = infra_issuer.fetch_count()
    keys = http_get(infra_issuer.jwks_url).json()["keys"]
    assert infra_issuer.fetch_count() == before + 1
    assert {(k["kty"], k["alg"]) for k in keys} == {("RSA", "RS256"), ("EC", "ES256")}, keys
    assert all(k.get("kid") and k.get("use") == "sig" and "d" not in k for k in keys), keys
    rsa = next(k for k in keys if k["kty"] == "RSA")
    assert len(jwt.utils.base64url_decode(rsa["n"])) == 256  # 2048 bits
    assert next(k for k in keys if k["kty"] == "EC")["crv"] == "P-256"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_issuer_mints_valid_tokens(infra_issuer: JwtIssuer, alg: str) -> None:
    tok = infra_issuer.mint(alg=alg, groups=["team-a"], sub="alice")
    assert jwt_header(tok)["alg"] == alg
    claims = verify(infra_issuer, tok)
    assert claims["groups"] == ["team-a"] and claims["sub"] == "alice"


ATTACKS = {
    "attack_alg_none": jwt.InvalidAlgorithmError,
    "attack_hs256_with_public_key": jwt.InvalidAlgorithmError,
    "attack_expired": jwt.ExpiredSignatureError,
    "attack_not_yet_valid": jwt.ImmatureSignatureError,
    "attack_wrong_issuer": jwt.InvalidIssuerError,
    "attack_wrong_audience": jwt.InvalidAudienceError,
    "attack_unknown_kid": jwt.PyJWKClientError,
    "attack_tampered": jwt.InvalidSignatureError,
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_issuer_attack_tokens_are_bad(infra_issuer: JwtIssuer, attack: str) -> None:
    tok = getattr(infra_issuer, attack)(groups=["team-a"])
    with pytest.raises(ATTACKS[attack]):
        verify(infra_issuer, tok)


def test_issuer_attack_token_shapes(infra_issuer: JwtIssuer) -> None:
    none = infra_issuer.attack_alg_none()
    assert jwt_header(none)["alg"] == "none" and none.endswith(".")
    # the confusion token really is HMAC-SHA256 keyed with the public key PEM
    conf = infra_issuer.attack_hs256_with_public_key()
    h, p, s = conf.split(".")
    want = hmac.new(infra_issuer.rsa.public_pem(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    assert s == b64url(want) and jwt_header(conf)["alg"] == "HS256"
    big = infra_issuer.attack_oversized()
    assert len(big) > 8192
    verify(infra_issuer, big)  # validly signed: only its size is wrong


def test_issuer_rotation(infra_issuer: JwtIssuer) -> None:
    old_rsa, old_ec = infra_issuer.rotate()
    kids = {k["kid"] for k in http_get(infra_issuer.jwks_url).json()["keys"]}
    assert old_rsa.kid not in kids and old_ec.kid not in kids and infra_issuer.rsa.kid in kids
    verify(infra_issuer, infra_issuer.mint(groups=["x"]))
    with pytest.raises(jwt.PyJWKClientError):
        verify(infra_issuer, infra_issuer.mint(key=old_rsa, groups=["x"]))


# --------------------------------------------------------------------------
# OIDC provider + headless login
# --------------------------------------------------------------------------

RESOURCE = "http://127.0.0.1:1/mcp"


@pytest.fixture(scope="module")
def infra_oidc(workdir: Path) -> Iterator[OidcProvider]:
    p = start_oidc_provider(workdir, resource=RESOURCE, name="oidc-provider-infra")
    yield p
    p.stop()


def oidc_verify(p: OidcProvider, token: str, audience: str) -> dict[str, Any]:
    key = jwt.PyJWKClient(p.metadata()["jwks_uri"]).get_signing_key_from_jwt(token)
    return jwt.decode(token, key.key, algorithms=["RS256", "ES256"], audience=audience, issuer=p.issuer)


def test_oidc_discovery(infra_oidc: OidcProvider) -> None:
    md = infra_oidc.metadata()
    assert md["issuer"] == infra_oidc.issuer
    assert md["code_challenge_methods_supported"] == ["S256"]
    assert "groups" in md["claims_supported"] and "offline_access" in md["scopes_supported"]


def test_oidc_login_alice(infra_oidc: OidcProvider) -> None:
    t = login(infra_oidc, "alice")
    claims = oidc_verify(infra_oidc, t.id_token, "mcp-test")
    assert claims["sub"] == "alice" and claims["groups"] == ["team-a"], claims
    assert t.refresh_token, t.raw
    # the access token is a JWT for the resource (RFC 8707 / RFC 9068)
    at = oidc_verify(infra_oidc, t.access_token, RESOURCE)
    assert at["groups"] == ["team-a"] and at["client_id"] == "mcp-test", at
    assert jwt_header(t.access_token)["typ"] == "at+jwt"


def test_oidc_refresh(infra_oidc: OidcProvider) -> None:
    t = login(infra_oidc, "bob")
    assert t.refresh_token
    t2 = refresh(infra_oidc, t.refresh_token)
    assert t2.access_token and t2.access_token != t.access_token
    assert oidc_verify(infra_oidc, t2.id_token, "mcp-test")["groups"] == ["team-b", "team-c"]


def test_oidc_confidential_client(infra_oidc: OidcProvider) -> None:
    t = login(infra_oidc, "bob", client_id=CONFIDENTIAL_CLIENT, client_secret=CONFIDENTIAL_SECRET,
              scope="openid groups")
    claims = oidc_verify(infra_oidc, t.id_token, CONFIDENTIAL_CLIENT)
    assert claims["groups"] == ["team-b", "team-c"]
    assert t.refresh_token is None  # no offline_access asked


def test_oidc_pkce_required(infra_oidc: OidcProvider) -> None:
    with pytest.raises(LoginError, match="code_challenge|PKCE|pkce"):
        login(infra_oidc, "alice", use_pkce=False)


def test_oidc_scope_for_resource(infra_oidc: OidcProvider) -> None:
    t = login(infra_oidc, "alice", scope="openid groups offline_access mcp:read", resource=RESOURCE)
    at = oidc_verify(infra_oidc, t.access_token, RESOURCE)
    assert at["scope"] == "mcp:read", at


# --------------------------------------------------------------------------
# streaming fake upstream
# --------------------------------------------------------------------------

def test_big_upstream_streams_valid_json() -> None:
    big = BigUpstream(total_bytes=8 * 1024 * 1024)
    try:
        r = http_get(big.url + "/api/v1/query?query=big_metric", timeout=30)
        assert r.status == 200
        body = json.loads(r.body)
        res = body["data"]["result"]
        assert len(r.body) >= 8 * 1024 * 1024 and len(res) >= 8 * 1024
        assert len({(s["metric"]["chunk"], s["metric"]["n"]) for s in res}) == len(res)
        assert big.completed == 1 and big.sent_bytes >= 8 * 1024 * 1024
    finally:
        big.close()


def test_big_upstream_survives_early_hangup() -> None:
    big = BigUpstream(total_bytes=300 * 1024 * 1024)
    try:
        with socket.create_connection(("127.0.0.1", big.fake.port), timeout=5) as s:
            s.sendall(b"GET /api/v1/query?query=x HTTP/1.1\r\nHost: x\r\n\r\n")
            got = s.recv(65536)
            assert b"200 OK" in got and b"chunked" in got.lower()
        deadline = time.monotonic() + 20
        while big.aborted == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert big.aborted == 1 and big.completed == 0
        assert big.sent_bytes < 300 * 1024 * 1024
    finally:
        big.close()


# --------------------------------------------------------------------------
# layered config rendering
# --------------------------------------------------------------------------

def test_layered_config_renders_valid_toml() -> None:
    i = JwtIssuer("render")
    try:
        cfg = layered_config("http://127.0.0.1:1/prometheus",
                             issuers=[issuer_entry(i, groups_claim="traits.groups", header="Teleport-Jwt-Assertion")],
                             required_scopes=["mcp:read"], trusted=["muster-client"],
                             upstream_extra={"auth": {"kind": "forward", "header": "Teleport-Jwt-Assertion",
                                                      "to": "X-Grafana-JWT"}})
        doc = tomllib.loads(cfg.render())
    finally:
        i.close()
    assert doc["server"]["public_url"] == f"http://127.0.0.1:{cfg.listen_port}"
    authn = doc["layers"]["authn"]
    assert authn["issuers"][0]["groups_claim"] == "traits.groups" and authn["required_scopes"] == ["mcp:read"]
    assert doc["layers"]["audience"]["trusted"] == ["muster-client"]
    assert doc["layers"]["tenancy"]["groups"] == GROUP_MAP and doc["layers"]["tenancy"]["mode"] == "group-map"
    assert doc["upstreams"][0]["auth"] == {"kind": "forward", "header": "Teleport-Jwt-Assertion",
                                           "to": "X-Grafana-JWT"}
    assert set(doc["layers"]) == {"authn", "audience", "tenancy", "truncate", "metrics", "trace", "limits"}
