"""Streamable HTTP sessions (clients before 2026-07-28) belong to the caller
that opened them. rmcp knows a session by its id alone; the server records
who opened each one (issuer, subject, OAuth client), and a request naming a
session another caller opened is sent on naming none: it gets rmcp's own
answer to an unknown session (404, the same bytes), whatever it asks (a
tool call, the event stream, the session's end), and a 2026-07-28 call,
which needs no session, is answered as always. The owner's session goes on
as before, and no request of the other caller reaches the upstream in it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from authasserts import assert_no_upstream, assert_tenants_within
from authstack import LayeredServer
from constants import ALICE_TENANTS, BOB_TENANTS
from httputil import HttpResponse, http_get, http_post
from rawmcp import BASE_HEADERS, bearer, raw_call, raw_initialize, raw_tool_result
from tenant_router import TenantRouter

LEGACY = "2025-11-25"
NOT_FOUND = "Not Found: Session not found"


def session_headers(session: str, caller: dict[str, str]) -> dict[str, str]:
    return {**BASE_HEADERS, **caller, "Mcp-Session-Id": session, "MCP-Protocol-Version": LEGACY}


def call_up(url: str, session: str, caller: dict[str, str], rpc_id: int) -> HttpResponse:
    body = {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
            "params": {"name": "execute_query", "arguments": {"query": "up"}}}
    return http_post(url, json.dumps(body).encode(), session_headers(session, caller))


def delete(url: str, session: str, caller: dict[str, str]) -> int:
    req = urllib.request.Request(url, method="DELETE", headers=session_headers(session, caller))
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def tenants(result: dict[str, Any]) -> set[str]:
    return {s["metric"].get("tenant", "?") for s in result["structuredContent"]["data"]["result"]}


def open_session(url: str, caller: dict[str, str]) -> str:
    r = raw_initialize(url, caller)
    assert r.status == 200, r.text[:300]
    return r.headers["mcp-session-id"]


def test_another_caller_cannot_call_read_or_end_a_session(authn_server: LayeredServer,
                                                          router: TenantRouter) -> None:
    url = authn_server.mcp_url
    alice = bearer(authn_server.token(["team-a"], sub="alice"))
    bob = bearer(authn_server.token(["team-b"], sub="bob"))
    session = open_session(url, alice)
    mark = router.mark()

    refused = call_up(url, session, bob, 2)
    assert (refused.status, refused.text) == (404, NOT_FOUND), f"HTTP {refused.status} {refused.text[:300]}"
    unknown = call_up(url, "no-such-session", bob, 2)
    assert (unknown.status, unknown.text) == (refused.status, refused.text), \
        "another's session must read as no session at all"
    stream = http_get(url, 5, {**session_headers(session, bob), "Accept": "text/event-stream"})
    assert (stream.status, stream.text) == (404, NOT_FOUND), f"GET: HTTP {stream.status} {stream.text[:300]}"
    # rmcp ends an unknown session with 202 (204 here): bob's DELETE reads
    # the same, and ends nothing
    assert delete(url, session, bob) == delete(url, "no-such-session", bob) == 204
    time.sleep(0.3)
    assert_no_upstream(router, mark, "bob in alice's session")

    # Alice's session is untouched by all of it and reads her tenants only.
    result = raw_tool_result(call_up(url, session, alice, 3))
    assert not result.get("isError"), result
    assert tenants(result) == ALICE_TENANTS, result
    assert assert_tenants_within(router, mark, ALICE_TENANTS, "alice") == ALICE_TENANTS
    assert delete(url, session, alice) == 204
    assert call_up(url, session, alice, 4).status == 404, "a session ended by its owner is gone"


def test_the_owner_is_who_not_which_token(authn_server: LayeredServer, router: TenantRouter) -> None:
    """A refreshed token of the same subject and client keeps the session
    (clients refresh mid-session); a token of another subject with the same
    groups does not (groups are not who one is), nor the same user through
    another OAuth client (another application she signed in to)."""
    url = authn_server.mcp_url
    alice = bearer(authn_server.token(["team-a"], sub="alice", azp="desktop-app"))
    session = open_session(url, alice)
    mark = router.mark()
    again = bearer(authn_server.token(["team-a"], sub="alice", azp="desktop-app"))
    assert not raw_tool_result(call_up(url, session, again, 2)).get("isError")
    mallory = bearer(authn_server.token(["team-a"], sub="mallory", azp="desktop-app"))
    assert call_up(url, session, mallory, 3).status == 404
    other_app = bearer(authn_server.token(["team-a"], sub="alice", azp="other-app"))
    assert call_up(url, session, other_app, 4).status == 404
    assert assert_tenants_within(router, mark, ALICE_TENANTS, "alice") == ALICE_TENANTS
    assert delete(url, session, alice) == 204


def test_stateless_calls_naming_a_session_are_answered_as_ever(authn_server: LayeredServer,
                                                               router: TenantRouter) -> None:
    """2026-07-28 needs no session and rmcp ignores the header there: a
    stale id is no reason to refuse a call, and another caller's id gives
    that caller its own answer, never the session's."""
    url = authn_server.mcp_url
    alice = bearer(authn_server.token(["team-a"], sub="alice"))
    bob = bearer(authn_server.token(["team-b"], sub="bob"))
    session = open_session(url, alice)
    stale = raw_tool_result(raw_call(url, "execute_query", {"query": "up"},
                                     {**alice, "Mcp-Session-Id": "ended-long-ago"}))
    assert tenants(stale) == ALICE_TENANTS, stale
    mark = router.mark()
    bobs = raw_tool_result(raw_call(url, "execute_query", {"query": "up"}, {**bob, "Mcp-Session-Id": session}))
    assert tenants(bobs) == BOB_TENANTS, bobs
    assert assert_tenants_within(router, mark, BOB_TENANTS, "bob naming alice's session") == BOB_TENANTS
    mine = raw_tool_result(call_up(url, session, alice, 2))
    assert tenants(mine) == ALICE_TENANTS, mine
    assert delete(url, session, alice) == 204


def post_naming_twice(url: str, first: str, second: str, caller: dict[str, str]) -> tuple[int, str]:
    """A legacy `execute_query up` carrying two Mcp-Session-Id headers."""
    import http.client
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    body = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                       "params": {"name": "execute_query", "arguments": {"query": "up"}}}).encode()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest("POST", u.path)
        for k, v in {**BASE_HEADERS, **caller, "MCP-Protocol-Version": LEGACY,
                     "Content-Length": str(len(body))}.items():
            conn.putheader(k, v)
        conn.putheader("Mcp-Session-Id", first)
        conn.putheader("Mcp-Session-Id", second)
        conn.endheaders(body)
        r = conn.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        conn.close()


def test_a_second_session_header_does_not_reach_anothers_session(authn_server: LayeredServer,
                                                                 router: TenantRouter) -> None:
    """The owner check and rmcp read the same (first) id: bob naming his own
    session first and alice's second stays in his; alice's first is hers,
    refused."""
    url = authn_server.mcp_url
    alice = bearer(authn_server.token(["team-a"], sub="alice"))
    bob = bearer(authn_server.token(["team-b"], sub="bob"))
    hers, his = open_session(url, alice), open_session(url, bob)
    mark = router.mark()
    assert post_naming_twice(url, hers, his, bob) == (404, NOT_FOUND)
    status, text = post_naming_twice(url, his, hers, bob)
    assert status == 200, text[:300]
    assert assert_tenants_within(router, mark, BOB_TENANTS, "bob") == BOB_TENANTS
    for session, caller in ((hers, alice), (his, bob)):
        assert delete(url, session, caller) == 204
