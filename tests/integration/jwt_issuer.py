"""A test JWT issuer: keys, a JWKS endpoint, and tokens good and bad.

`JwtIssuer()` generates an RSA-2048 and an EC P-256 key and serves, on
127.0.0.1 (threaded http.server):

* `/.well-known/openid-configuration` - `issuer` (its own base URL), `jwks_uri`
* `/jwks` - the public keys (kid, alg, use=sig); fetches are counted

`rotate()` replaces both keys (new kids; the old ones leave the JWKS).
`mint()` signs arbitrary claims with an arbitrary header; the `attack_*`
methods build the classic bad tokens (alg none, HS256 keyed with the RSA
public key PEM, expired, not yet valid, wrong iss / aud, unknown kid,
tampered payload, oversized).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from httputil import LocalServer, QuietHandler, reply_unless_gone


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


@dataclass
class KeyPair:
    kid: str
    alg: str  # RS256 | ES256
    private: Any
    public: Any

    def jwk(self) -> dict[str, Any]:
        conv = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        d = conv.to_jwk(self.public, as_dict=True)
        d.update(kid=self.kid, alg=self.alg, use="sig")
        return d

    def public_pem(self) -> bytes:
        return self.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def new_rsa(kid: str | None = None) -> KeyPair:
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(kid or f"rsa-{uuid.uuid4().hex[:8]}", "RS256", k, k.public_key())


def new_ec(kid: str | None = None) -> KeyPair:
    k = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(kid or f"ec-{uuid.uuid4().hex[:8]}", "ES256", k, k.public_key())


class JwtIssuer(LocalServer):
    """Keys + JWKS/discovery server + token minting."""

    def __init__(self, name: str = "issuer", default_audience: str | list[str] | None = None):
        self.name = name
        self.default_audience = default_audience
        self._lock = threading.Lock()
        self.rsa = new_rsa()
        self.ec = new_ec()
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.requests: list[str] = []
        self.extra_keys: list[KeyPair] = []  # also published (e.g. during a rotation overlap)
        outer = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                with outer._lock:
                    outer.requests.append(path)
                if path == "/jwks":
                    with outer._lock:
                        outer.jwks_fetches += 1
                    body = json.dumps(outer.jwks()).encode()
                    self._send(200, body, "application/json")
                elif path == "/.well-known/openid-configuration":
                    with outer._lock:
                        outer.discovery_fetches += 1
                    self._send(200, json.dumps(outer.discovery()).encode(), "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                reply_unless_gone(self, status, body, ctype, {"Cache-Control": "no-store"})

        super().__init__(Handler, f"jwt-{name}")

    # ---------------------------------------------------------------- server

    @property
    def issuer(self) -> str:
        """The `iss` of its tokens: its base URL."""
        return self.url

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks"

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            keys = [self.rsa, self.ec, *self.extra_keys]
        return {"keys": [k.jwk() for k in keys]}

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": self.jwks_url,
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
        }

    def fetch_count(self) -> int:
        with self._lock:
            return self.jwks_fetches

    def rotate(self) -> tuple[KeyPair, KeyPair]:
        """New RSA and EC keys with new kids; the old keys are dropped from
        the JWKS. Returns the old (rsa, ec) pair (still usable for minting)."""
        new_r, new_e = new_rsa(), new_ec()
        with self._lock:
            old = (self.rsa, self.ec)
            self.rsa, self.ec = new_r, new_e
        return old

    # ---------------------------------------------------------------- tokens

    def claims(self, sub: str = "user-1", groups: list[str] | None = None, aud: Any = None,
               lifetime: int = 300, **extra: Any) -> dict[str, Any]:
        """Standard claims: iss (this issuer), sub, aud, iat, nbf, exp, groups."""
        now = int(time.time())
        c: dict[str, Any] = {
            "iss": self.issuer,
            "sub": sub,
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        audience = aud if aud is not None else self.default_audience
        if audience is not None:
            c["aud"] = audience
        if groups is not None:
            c["groups"] = groups
        c.update(extra)
        return {k: v for k, v in c.items() if v is not None}

    def key_for(self, alg: str) -> KeyPair:
        return self.rsa if alg.startswith(("RS", "PS")) else self.ec

    def mint(self, claims: dict[str, Any] | None = None, *, alg: str = "RS256", kid: str | None = None,
             key: KeyPair | None = None, headers: dict[str, Any] | None = None, **claim_kw: Any) -> str:
        """A signed token. `claims` replaces the defaults entirely; otherwise
        `claim_kw` goes to `claims()` (sub, groups, aud, lifetime, extra claims).
        `kid` overrides the header's kid (e.g. an unknown one)."""
        body = claims if claims is not None else self.claims(**claim_kw)
        k = key or self.key_for(alg)
        hdr = {"kid": kid if kid is not None else k.kid, "typ": "JWT"}
        if headers:
            hdr.update(headers)
        return jwt.encode(body, k.private, algorithm=alg, headers=hdr)

    # ---------------------------------------------------------------- attacks

    def attack_alg_none(self, **claim_kw: Any) -> str:
        """Unsigned: header alg none, empty signature."""
        return f"{b64url_json({'alg': 'none', 'typ': 'JWT', 'kid': self.rsa.kid})}.{b64url_json(self.claims(**claim_kw))}."

    def attack_hs256_with_public_key(self, **claim_kw: Any) -> str:
        """HS256 whose HMAC secret is the RSA public key's PEM text (key confusion)."""
        header = b64url_json({"alg": "HS256", "typ": "JWT", "kid": self.rsa.kid})
        payload = b64url_json(self.claims(**claim_kw))
        signing_input = f"{header}.{payload}".encode()
        sig = hmac.new(self.rsa.public_pem(), signing_input, hashlib.sha256).digest()
        return f"{header}.{payload}.{b64url(sig)}"

    def attack_expired(self, leeway_s: int = 30, **claim_kw: Any) -> str:
        now = int(time.time())
        past = now - leeway_s - 300
        return self.mint(self.claims(iat=past - 300, nbf=past - 300, exp=past, **claim_kw))

    def attack_not_yet_valid(self, leeway_s: int = 30, **claim_kw: Any) -> str:
        now = int(time.time())
        future = now + leeway_s + 300
        return self.mint(self.claims(iat=now, nbf=future, exp=future + 600, **claim_kw))

    def attack_wrong_issuer(self, **claim_kw: Any) -> str:
        c = self.claims(**claim_kw)
        c["iss"] = "https://evil.example.com"
        return self.mint(c)

    def attack_wrong_audience(self, **claim_kw: Any) -> str:
        claim_kw["aud"] = "https://some-other-service.example.com"
        return self.mint(**claim_kw)

    def attack_unknown_kid(self, **claim_kw: Any) -> str:
        """Signed by a key that is not in the JWKS, with a kid nobody knows."""
        stranger = new_rsa(f"unknown-{uuid.uuid4().hex[:8]}")
        return self.mint(key=stranger, **claim_kw)

    def attack_tampered(self, **claim_kw: Any) -> str:
        """Header and signature of a valid token, payload of another (more groups)."""
        good = self.mint(**claim_kw)
        h, _, s = good.split(".")
        c = self.claims(**claim_kw)
        c["groups"] = list(c.get("groups") or []) + ["admins", "team-a", "team-b"]
        c["sub"] = "root"
        return f"{h}.{b64url_json(c)}.{s}"

    def attack_oversized(self, min_bytes: int = 9000, **claim_kw: Any) -> str:
        """A validly signed token bigger than 8 KiB (a huge groups claim)."""
        groups = list(claim_kw.pop("groups", None) or [])
        n = 0
        while True:
            tok = self.mint(groups=groups + [f"group-{i:05d}-padding-padding" for i in range(n)], **claim_kw)
            if len(tok) > min_bytes:
                return tok
            n += 100
