"""Signing keys: generation, encryption at rest, the JWKS, and issuing access tokens.

The newest unretired key signs; every key whose ``verify_until`` has not passed stays in the
JWKS so tokens signed before a rotation keep verifying until they expire.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, OKPAlgorithm
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tessera.auth import models
from tessera.auth.models import SigningKey, utcnow
from tessera.auth.settings import Settings

__all__ = ["KeyRing", "new_signing_key"]


def new_signing_key(algorithm: str, fernet: Fernet) -> SigningKey:
    kid = secrets.token_urlsafe(12)
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
    if algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
        public_jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    else:
        private = ec.generate_private_key(ec.SECP256R1())
        public_jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    public_jwk.update({"kid": kid, "alg": algorithm, "use": "sig"})
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return SigningKey(
        kid=kid,
        algorithm=algorithm,
        private_key_encrypted=fernet.encrypt(pem),
        public_jwk=public_jwk,
    )


class KeyRing:
    """Auth's keys in memory; also the ``KeySource`` auth verifies its own tokens with."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._fernet = Fernet(settings.key_encryption_key.get_secret_value().encode())
        self._signing: tuple[str, str, Any] | None = None
        self._public: dict[str, PyJWK] = {}
        self._jwks: dict[str, Any] = {"keys": []}
        self._loaded_at = 0.0

    @property
    def fernet(self) -> Fernet:
        return self._fernet

    async def ensure_key(self, session: AsyncSession) -> None:
        """Create the first signing key if there is none (one replica wins the lock)."""
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('auth.signing_keys'))"))
        if not await models.usable_signing_keys(session):
            session.add(new_signing_key(self.settings.signing_algorithm, self._fernet))
        await session.flush()

    async def load(self, session: AsyncSession) -> None:
        keys = await models.usable_signing_keys(session)
        active = next((k for k in keys if k.retired_at is None), None)
        if active is not None:
            pem = self._fernet.decrypt(active.private_key_encrypted)
            private = serialization.load_pem_private_key(pem, password=None)
            self._signing = (active.kid, active.algorithm, private)
        self._public = {k.kid: PyJWK(k.public_jwk) for k in keys}
        self._jwks = {"keys": [k.public_jwk for k in keys]}
        self._loaded_at = time.monotonic()

    @property
    def jwks(self) -> dict[str, Any]:
        return self._jwks

    @property
    def loaded_at(self) -> float:
        return self._loaded_at

    async def get(self, kid: str) -> PyJWK | None:
        return self._public.get(kid)

    def issue_access_token(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        roles: list[str] | None = None,
        orgs: dict[str, str] | None = None,
    ) -> tuple[str, int]:
        if self._signing is None:
            raise RuntimeError("no signing key loaded")
        kid, algorithm, private = self._signing
        now = utcnow()
        ttl = self.settings.access_token_ttl_s
        claims = {
            "iss": self.settings.jwt.issuer,
            "aud": self.settings.jwt.audience,
            "sub": str(user_id),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=ttl)).timestamp()),
            "jti": uuid.uuid4().hex,
            "sid": str(session_id),
            "roles": roles or [],
            "orgs": orgs or {},
        }
        token = jwt.encode(claims, private, algorithm=algorithm, headers={"kid": kid})
        return token, ttl
