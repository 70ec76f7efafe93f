"""Assertions shared by the authn / tenancy / OAuth tests: what reached the
tenant router (tenant_router.py), and the shape of an authn refusal."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from httputil import HttpResponse
from rawmcp import bearer, json_body, raw_call, raw_tool_result, www_authenticate
from tenant_router import TenantRouter

if TYPE_CHECKING:
    from authstack import LayeredServer


def assert_no_upstream(router: TenantRouter, mark: int, what: str) -> None:
    reqs = router.since(mark)
    assert not reqs, (f"{what}: the upstream must not be called, but the tenant router saw "
                      f"{[(r.method, r.path, r.org_id) for r in reqs]}")


def assert_tenants_within(router: TenantRouter, mark: int, allowed: set[str], what: str) -> set[str]:
    """No request since `mark` named a tenant outside `allowed`; returns the
    tenants seen."""
    reqs = router.since(mark)
    seen = {t for r in reqs for t in r.tenants}
    bad = [(r.path, r.org_id) for r in reqs if not set(r.tenants) <= allowed]
    assert not bad, f"{what}: upstream requests for tenants outside {sorted(allowed)}: {bad}"
    return seen


def assert_reads_tenants(mcp_url: str, router: TenantRouter, access_token: str, allowed: set[str],
                         who: str) -> None:
    """`execute_query up` with the token answers exactly the `allowed`
    tenants' series, and no upstream request named another tenant."""
    mark = router.mark()
    res = raw_tool_result(raw_call(mcp_url, "execute_query", {"query": "up"}, bearer(access_token)))
    assert not res.get("isError"), f"{who}: {res}"
    got = {s["metric"].get("tenant") for s in res["structuredContent"]["data"]["result"]}
    assert got == allowed, f"{who}: tenants {got}, want {allowed}"
    assert assert_tenants_within(router, mark, allowed, who) == allowed


def assert_refused(r: HttpResponse, srv: LayeredServer, status: int = 401, error: str | None = "invalid_token",
                   description: str | None = None) -> dict[str, str]:
    """An authn refusal: status, Bearer challenge with resource_metadata, and
    (for bad tokens) error / error_description in the challenge and the body."""
    assert r.status == status, f"expected HTTP {status}, got {r.status}: {r.headers} {r.text[:500]}"
    ch = www_authenticate(r)
    assert ch.get("_scheme", "").lower() == "bearer", f"WWW-Authenticate: {r.headers.get('www-authenticate')!r}"
    assert ch.get("resource_metadata") == srv.resource_metadata_url, (
        f"resource_metadata {ch.get('resource_metadata')!r} != {srv.resource_metadata_url!r}")
    if error is None:
        assert "error" not in ch, f"no credentials: the challenge should carry no error code (RFC 6750 3.1): {ch}"
        return ch
    assert ch.get("error") == error, f"challenge error {ch.get('error')!r} != {error!r}: {ch}"
    body = json_body(r)
    assert body.get("error") == error, body
    desc = body.get("error_description")
    assert isinstance(desc, str) and desc.strip(), body
    if description:
        assert re.search(description, desc, re.I), f"error_description {desc!r} does not match /{description}/"
        assert re.search(description, ch.get("error_description", ""), re.I), (
            f"challenge error_description {ch.get('error_description')!r} does not match /{description}/")
    return ch
