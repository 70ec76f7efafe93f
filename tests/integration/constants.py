"""Constants shared by the authn / tenancy and OAuth helpers, fixtures and
tests. Imports nothing of ours but httputil (a leaf), so every module may
import it without an import cycle.
"""

from __future__ import annotations

import os
import secrets

from httputil import closed_port

# --------------------------------------------------------------------------
# tenancy and the protected resource
# --------------------------------------------------------------------------

GROUP_MAP = {"team-a": ["tenant-a"], "team-b": ["tenant-b", "tenant-c"]}
ALICE_TENANTS = {"tenant-a"}
BOB_TENANTS = {"tenant-b", "tenant-c"}
MIMIR_UPSTREAM = "mimir"

PRM_PATH = "/.well-known/oauth-protected-resource"
AS_METADATA_PATH = "/.well-known/oauth-authorization-server"

# --------------------------------------------------------------------------
# the OAuth authorization server ([oauth])
# --------------------------------------------------------------------------

# mcp-prometheus as a client of the provider (tests/oidc/provider.mjs)
SERVER_CLIENT_ID = os.environ.get("MCP_OAUTH_TEST_PROVIDER_CLIENT", "mcp-prometheus")
SERVER_CLIENT_SECRET = "mcp-prometheus-secret"
PROVIDER_SCOPES = ["openid", "profile", "email", "groups", "offline_access"]

# One encryption key for every server of the session (hex, 32 bytes).
ENCRYPTION_KEY = secrets.token_hex(32)
# The rate limit of every OAuth server but the dedicated rate-limit one: high
# enough that a whole session from 127.0.0.1 never hits it.
RELAXED_RATE_LIMIT = 100000

# The MCP client's redirect URI: a loopback port nobody listens on (the
# browser stops there, never fetching it).
CLIENT_REDIRECT = f"http://127.0.0.1:{closed_port()}/callback"
