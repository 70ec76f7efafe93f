"""Integrity at rest in Valkey (issue 9, items 3 and 8): every record the
authorization server keeps there (clients, pending logins, codes, refresh
grants, consents) is sealed with the encryption key and bound to its key
name, so someone who can write to Valkey cannot mint tenants or redirect
URIs: a flipped character or a record copied under another key is refused
(and the server keeps running). Every key carries a TTL.

Server: `oauth_sealed_server` (Valkey 9, key prefix SEALED_PREFIX).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from constants import CLIENT_REDIRECT
from httputil import http_get
from kvstore import KvServer
from oauth_browse import browser
from oauth_client import DirectClient, assert_token_response, oauth_error
from oauth_fixtures import SEALED_PREFIX
from oauth_server import OAuthServer

# Text that would show in a record stored as plain JSON.
PLAIN_MARKERS = [b'"groups"', b'"redirect_uri', b'"client_id"', b'"scope"', b"team-a", b"team-b",
                 b"alice@example.test", b'"family"', b"BEGIN PRIVATE KEY", b'"d":']


def sha256_hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def record_key(kv: KvServer, kind: str, secret: str) -> str:
    """The key of a record: `<prefix><kind>:<sha256 hex of the token or client_id>`."""
    key = f"{SEALED_PREFIX}{kind}:{sha256_hex(secret)}"
    keys = kv.keys(SEALED_PREFIX)
    assert key in keys, (f"no {kind} record at {key}; keys of that kind: "
                         f"{[k for k in keys if k.startswith(SEALED_PREFIX + kind)][:10]} (of {len(keys)})")
    return key


def flip(value: bytes) -> bytes:
    """One character changed in the middle (still printable)."""
    i = len(value) // 2
    b = value[i]
    repl = ord("A") if b != ord("A") else ord("B")
    return value[:i] + bytes([repl]) + value[i + 1:]


def assert_alive(srv: OAuthServer) -> None:
    assert srv.proc.poll() is None, f"the server died: exit {srv.proc.returncode}\n{srv.proc.tail()}"
    assert http_get(srv.srv.obs_url + "/healthz", 5).status == 200


@pytest.fixture(scope="module")
def sealed(oauth_sealed_server: OAuthServer, valkey_store: KvServer) -> tuple[OAuthServer, KvServer]:
    return oauth_sealed_server, valkey_store


@pytest.fixture(scope="module")
def populated(sealed: tuple[OAuthServer, KvServer]) -> dict[str, Any]:
    """One of each record: confidential client, consent, code (redeemed),
    refresh grants (rotated), a pending login, an unredeemed code."""
    srv, kv = sealed
    c = DirectClient.register(srv, auth_method="client_secret_basic", name="sealed-records")
    tok = c.tokens("alice")
    again = assert_token_response(c.refresh(tok["refresh_token"]))
    open_code = c.login("bob")  # a code nobody redeems
    with browser() as http:  # a pending login stopped at the consent page
        c.start("bob", consent=None, http=http, scope="openid")
    with browser() as http:  # a pending login stopped before our callback
        c.start("alice", stop_before="/oauth/callback", http=http)
    return {"client": c, "tok": tok, "again": again, "open_code": open_code}


def test_records_are_sealed(sealed: tuple[OAuthServer, KvServer], populated: dict[str, Any]) -> None:
    srv, kv = sealed
    c = kv.client()
    keys = kv.keys(SEALED_PREFIX)
    kinds = sorted({k[len(SEALED_PREFIX):].split(":", 1)[0] for k in keys})
    print(f"\n{len(keys)} keys under {SEALED_PREFIX!r}, kinds: {kinds}")
    plain = []
    for k in keys:
        if c.type(k).decode() != "string":
            continue
        v = c.get(k) or b""
        if len(v) <= 16:  # markers such as "used at" timestamps or "1"
            continue
        hits = [m.decode() for m in PLAIN_MARKERS if m in v]
        if hits or v.lstrip().startswith((b"{", b"[")):
            plain.append((k, hits, v[:120]))
    assert not plain, "records stored in clear (not sealed):\n" + "\n".join(f"  {k}: {h} {v!r}" for k, h, v in plain)
    assert record_key(kv, "client", populated["client"].client_id)
    assert record_key(kv, "refresh", populated["again"]["refresh_token"])


def test_flipped_refresh_record_refused(sealed: tuple[OAuthServer, KvServer]) -> None:
    srv, kv = sealed
    client = DirectClient.register(srv, name="flip")
    victim = client.tokens("alice")
    bystander = client.tokens("alice")
    key = record_key(kv, "refresh", victim["refresh_token"])
    c = kv.client()
    c.set(key, flip(c.get(key)), keepttl=True)
    oauth_error(client.refresh(victim["refresh_token"]), 400, "invalid_grant", "a refresh record edited in Valkey")
    assert_alive(srv)
    assert_token_response(client.refresh(bystander["refresh_token"]))  # the others are untouched


def test_refresh_record_moved_to_another_key_refused(sealed: tuple[OAuthServer, KvServer]) -> None:
    """Bob's grant (team-b, team-c) copied under alice's refresh key: alice's
    token must not turn into bob's tenants."""
    srv, kv = sealed
    client = DirectClient.register(srv, name="swap")
    alice = client.tokens("alice")
    bob = client.tokens("bob")
    c = kv.client()
    a_key = record_key(kv, "refresh", alice["refresh_token"])
    b_key = record_key(kv, "refresh", bob["refresh_token"])
    c.set(a_key, c.get(b_key), keepttl=True)
    r = client.refresh(alice["refresh_token"])
    if r.status == 200:
        groups = srv.verify(r.json()["access_token"]).get("groups")
        raise AssertionError(f"a record copied under another key was accepted: alice's refresh token now gives "
                             f"groups {groups}")
    oauth_error(r, 400, "invalid_grant", "a refresh record moved under another key")
    assert_alive(srv)
    assert_token_response(client.refresh(bob["refresh_token"]))  # bob's own record still works


def test_client_record_moved_to_another_key_refused(sealed: tuple[OAuthServer, KvServer]) -> None:
    """The attacker's client (redirect to evil.example) copied under the
    victim's client key: authorize for the victim with the attacker's
    redirect URI must not start a login (it would send the code there)."""
    srv, kv = sealed
    victim = DirectClient.register(srv, name="victim")
    evil = "https://evil.example/cb"
    attacker = DirectClient.register(srv, name="attacker", redirect_uris=[evil])
    c = kv.client()
    v_key = record_key(kv, "client", victim.client_id)
    c.set(v_key, c.get(record_key(kv, "client", attacker.client_id)), keepttl=True)
    res = victim.start(redirect_uri=evil)
    assert res.stopped_at is None and res.response is not None, (
        f"a client record moved under another key was used: the browser went on to {res.stopped_at}\n"
        f"{res.describe()}")
    assert len(res.hops) == 1 and res.response.status_code in (400, 401, 500), res.describe()
    assert_alive(srv)
    assert victim.start(redirect_uri=CLIENT_REDIRECT).stopped_at is None, "the tampered client still logs in"


def test_flipped_client_record_refused(sealed: tuple[OAuthServer, KvServer]) -> None:
    srv, kv = sealed
    victim = DirectClient.register(srv, name="flipped-client")
    c = kv.client()
    key = record_key(kv, "client", victim.client_id)
    c.set(key, flip(c.get(key)), keepttl=True)
    res = victim.start()
    assert res.stopped_at is None and res.response is not None and len(res.hops) == 1, (
        f"an edited client record was used\n{res.describe()}")
    assert res.response.status_code in (400, 401, 500), res.describe()
    assert_alive(srv)


def test_every_key_has_a_ttl(sealed: tuple[OAuthServer, KvServer], populated: dict[str, Any]) -> None:
    """Nothing under the prefix lives forever (unused clients expire too:
    client_idle_ttl = 10m here)."""
    srv, kv = sealed
    c = kv.client()
    keys = kv.keys(SEALED_PREFIX)
    assert keys, "nothing stored"
    ttls = {k: c.pttl(k) for k in keys}
    forever = sorted(k for k, t in ttls.items() if t is None or t < 0)
    assert not forever, f"{len(forever)} of {len(keys)} keys have no TTL: {forever[:20]}"
    client_key = record_key(kv, "client", populated["client"].client_id)
    assert 0 < ttls[client_key] <= 600_000, f"client record TTL {ttls[client_key]} ms, client_idle_ttl is 10m"
