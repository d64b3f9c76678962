"""Signing keys: generation, encryption at rest, the JWKS, and issuing access tokens.

The newest unretired key signs; every key whose ``verify_until`` has not passed stays in the
JWKS so tokens signed before a rotation keep verifying until they expire.

Rotation (:func:`rotate_signing_key`, ``tessera-auth keys rotate``) happens in the database;
every running auth process picks it up without a restart: :meth:`KeyRing.run_reloader`
reloads the keys every ``reload_every_s`` seconds, and a token naming a ``kid`` the ring does
not know triggers a reload at once (at most once per ``min_reload_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import jwt
import structlog
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, OKPAlgorithm
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.auth import audit, models
from tessera.auth.models import SigningKey, utcnow
from tessera.auth.settings import Settings

__all__ = [
    "RELOAD_EVERY_S",
    "KeyRing",
    "all_signing_keys",
    "new_signing_key",
    "rotate_signing_key",
]

log = structlog.stdlib.get_logger(__name__)

#: how often a running process rereads the keys; a rotation is seen within this delay
RELOAD_EVERY_S = 30.0
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('auth.signing_keys'))"


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


async def rotate_signing_key(session: AsyncSession, settings: Settings) -> SigningKey:
    """Add a new signing key and retire the active one(s); the caller commits.

    A retired key keeps verifying (stays in the JWKS) until ``verify_until``: the last
    access token it can have signed has expired by then, counting the delay before every
    running process has reloaded (:data:`RELOAD_EVERY_S`) and the verifiers' clock leeway.
    """
    await session.execute(text(_LOCK))
    fernet = Fernet(settings.key_encryption_key.get_secret_value().encode())
    now = utcnow()
    verify_until = now + timedelta(
        seconds=settings.access_token_ttl_s + RELOAD_EVERY_S + settings.jwt.leeway_s
    )
    active = (
        await session.execute(
            select(SigningKey).where(SigningKey.retired_at.is_(None)).with_for_update()
        )
    ).scalars()
    for key in active:
        key.retired_at = now
        key.verify_until = verify_until
    key = new_signing_key(settings.signing_algorithm, fernet)
    # strictly newer than every retired key, so it is the one that signs
    key.created_at = now + timedelta(microseconds=1)
    session.add(key)
    audit.record(
        session,
        actor_id=None,
        action="signing_key.rotated",
        target_type="signing_key",
        target_id=key.kid,
        after={"algorithm": key.algorithm, "retired_verify_until": verify_until.isoformat()},
    )
    await session.flush()
    return key


async def all_signing_keys(session: AsyncSession) -> list[SigningKey]:
    """Every key ever made, newest first (``keys list``)."""
    stmt = select(SigningKey).order_by(SigningKey.created_at.desc())
    return list((await session.execute(stmt)).scalars())


class KeyRing:
    """Auth's keys in memory; also the ``KeySource`` auth verifies its own tokens with."""

    def __init__(
        self,
        settings: Settings,
        *,
        reload_every_s: float = RELOAD_EVERY_S,
        min_reload_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.reload_every_s = reload_every_s
        self.min_reload_s = min_reload_s
        self._clock = clock
        self._fernet = Fernet(settings.key_encryption_key.get_secret_value().encode())
        self._signing: tuple[str, str, Any] | None = None
        self._public: dict[str, tuple[PyJWK, datetime | None]] = {}
        self._jwks_keys: list[tuple[dict[str, Any], datetime | None]] = []
        self._loaded_at = 0.0
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._lock = asyncio.Lock()

    @property
    def fernet(self) -> Fernet:
        return self._fernet

    def bind(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Let the ring reread the database by itself (reloads; unknown ``kid``)."""
        self._sessions = sessions

    async def ensure_key(self, session: AsyncSession) -> None:
        """Create the first signing key if none signs (one replica wins the lock)."""
        await session.execute(text(_LOCK))
        keys = await models.usable_signing_keys(session)
        if not any(k.retired_at is None for k in keys):
            session.add(new_signing_key(self.settings.signing_algorithm, self._fernet))
        await session.flush()

    async def load(self, session: AsyncSession) -> None:
        keys = await models.usable_signing_keys(session)
        active = next((k for k in keys if k.retired_at is None), None)
        if active is not None and (self._signing is None or self._signing[0] != active.kid):
            pem = self._fernet.decrypt(active.private_key_encrypted)
            private = serialization.load_pem_private_key(pem, password=None)
            self._signing = (active.kid, active.algorithm, private)
        self._public = {k.kid: (PyJWK(k.public_jwk), k.verify_until) for k in keys}
        self._jwks_keys = [(k.public_jwk, k.verify_until) for k in keys]
        self._loaded_at = self._clock()

    async def reload(self, *, force: bool = True) -> bool:
        """Reread the keys from the database; without ``force``, not within ``min_reload_s``
        of the last load. Returns whether it reloaded."""
        if self._sessions is None:
            return False
        async with self._lock:
            if not force and self._clock() - self._loaded_at < self.min_reload_s:
                return False
            async with self._sessions() as session:
                await self.load(session)
        return True

    async def run_reloader(self) -> None:
        """Reload every ``reload_every_s`` until cancelled; a failed reload keeps the keys."""
        while True:
            await asyncio.sleep(self.reload_every_s)
            try:
                await self.reload()
            except Exception:  # the database may be briefly away: keep signing with what we had
                log.warning("signing_keys_reload_failed", exc_info=True)

    @contextlib.asynccontextmanager
    async def reloading(self) -> AsyncIterator[KeyRing]:
        """Run :meth:`run_reloader` in the background for the duration of the block."""
        task = asyncio.create_task(self.run_reloader(), name="signing-keys-reloader")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def signing_kid(self) -> str | None:
        return self._signing[0] if self._signing else None

    @property
    def jwks(self) -> dict[str, Any]:
        now = utcnow()
        return {"keys": [jwk for jwk, until in self._jwks_keys if until is None or until > now]}

    async def get(self, kid: str) -> PyJWK | None:
        if kid not in self._public:
            try:
                await self.reload(force=False)  # a key rotated in by another process?
            except Exception:  # the database is away: the kid stays unknown, the caller 401s
                log.warning("signing_keys_reload_failed", exc_info=True)
        entry = self._public.get(kid)
        if entry is None:
            return None
        key, until = entry
        if until is not None and until <= utcnow():
            return None
        return key

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
