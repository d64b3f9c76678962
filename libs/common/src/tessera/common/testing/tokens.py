"""Access tokens for tests, signed like auth signs them, for any user, roles and memberships.

tokens = TokenMinter()
app = kit.create_app(SERVICE, settings, key_source=tokens.key_source)
headers = tokens.bearer(user_id, roles=["superadmin"], orgs={str(org): "admin"})
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm

from tessera.common.security import StaticKeySource
from tessera.common.settings import JwtSettings

__all__ = ["TokenMinter"]


class TokenMinter:
    """An Ed25519 key of its own; its JWKS verifies what it signs (``key_source``)."""

    def __init__(self, settings: JwtSettings | None = None, *, kid: str | None = None) -> None:
        self.settings = settings or JwtSettings()
        self.kid = kid or f"test-{uuid.uuid4().hex[:8]}"
        self._private = ed25519.Ed25519PrivateKey.generate()
        public = json.loads(OKPAlgorithm.to_jwk(self._private.public_key()))
        self.jwks: dict[str, Any] = {"keys": [public | {"kid": self.kid, "alg": "EdDSA"}]}
        self.key_source = StaticKeySource(self.jwks)

    def token(
        self,
        user_id: uuid.UUID | str,
        *,
        roles: Sequence[str] = (),
        orgs: Mapping[str, str] | None = None,
        session_id: str | None = None,
        ttl_s: int = 900,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": self.settings.issuer,
            "aud": self.settings.audience,
            "sub": str(user_id),
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "jti": uuid.uuid4().hex,
            "sid": session_id or uuid.uuid4().hex,
            "roles": list(roles),
            "orgs": dict(orgs or {}),
        } | claims
        return jwt.encode(body, self._private, algorithm="EdDSA", headers={"kid": self.kid})

    def bearer(self, user_id: uuid.UUID | str, **options: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, **options)}"}
