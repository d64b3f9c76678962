"""Access-token verification, done locally by every service.

Tokens are JWTs signed by auth with an asymmetric key (EdDSA or ES256) named by ``kid``.
Public keys come from auth's JWKS, fetched with httpx, cached, and refetched when a token
names a ``kid`` the cache does not know (at most once per ``jwks_min_refetch_s``). ``alg``
is pinned to the key's own algorithm, so ``none`` and HS256-signed-with-the-public-key
forgeries fail; ``exp``, ``nbf``, ``iss`` and ``aud`` are checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

import httpx
import jwt
from fastapi import Depends, Request
from jwt import PyJWK

from tessera.common.problems import Problem
from tessera.common.settings import JwtSettings

__all__ = [
    "ApiKeyRecord",
    "JWKSKeySource",
    "KeySource",
    "Principal",
    "StaticKeySource",
    "TokenVerifier",
    "Unauthorized",
    "api_key_usable",
    "current_principal",
    "hash_api_key",
]


class Unauthorized(Problem):
    status = 401
    code = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str = "a valid bearer token is required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


@dataclass(frozen=True)
class Principal:
    """Who is calling, as proven by a verified access token."""

    user_id: uuid.UUID
    session_id: str | None
    token_id: str
    expires_at: int
    roles: frozenset[str] = frozenset()
    orgs: Mapping[str, str] = field(default_factory=dict)
    claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_superadmin(self) -> bool:
        return "superadmin" in self.roles


class KeySource(Protocol):
    async def get(self, kid: str) -> PyJWK | None: ...


class StaticKeySource:
    """Keys held in memory (auth verifies its own tokens this way; tests use it too)."""

    def __init__(self, jwks: Mapping[str, Any] | None = None) -> None:
        self._keys: dict[str, PyJWK] = {}
        if jwks:
            self.replace(jwks)

    def replace(self, jwks: Mapping[str, Any]) -> None:
        self._keys = {k["kid"]: PyJWK(k) for k in jwks.get("keys", []) if "kid" in k}

    async def get(self, kid: str) -> PyJWK | None:
        return self._keys.get(kid)


class JWKSKeySource:
    """Auth's JWKS over HTTP, cached; an unknown ``kid`` triggers a bounded refetch."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        cache_s: float = 300.0,
        min_refetch_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._cache_s = cache_s
        self._min_refetch_s = min_refetch_s
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self, kid: str) -> PyJWK | None:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > self._cache_s
        if stale or (kid not in self._keys and self._may_refetch(now)):
            await self._refresh(force_unknown=kid)
        return self._keys.get(kid)

    def _may_refetch(self, now: float) -> bool:
        return self._fetched_at is None or now - self._fetched_at >= self._min_refetch_s

    async def _refresh(self, *, force_unknown: str) -> None:
        async with self._lock:
            now = self._clock()
            fresh = self._fetched_at is not None and now - self._fetched_at <= self._cache_s
            if fresh and (force_unknown in self._keys or not self._may_refetch(now)):
                return
            try:
                response = await self._client.get(self.url, timeout=5.0)
                response.raise_for_status()
                document = response.json()
                keys = document.get("keys") if isinstance(document, dict) else None
                if not isinstance(keys, list):
                    raise ValueError("the JWKS document has no list of keys")
            except (httpx.HTTPError, ValueError):
                if self._keys:  # keep verifying with what we had
                    self._fetched_at = now
                    return
                raise
            parsed: dict[str, PyJWK] = {}
            for key in keys:
                try:
                    parsed[key["kid"]] = PyJWK(key)
                except (KeyError, TypeError, jwt.PyJWTError):  # one bad entry spoils nothing
                    continue
            self._keys = parsed
            self._fetched_at = now


Revoked = Callable[[Mapping[str, Any]], Awaitable[bool]]


class TokenVerifier:
    def __init__(
        self,
        settings: JwtSettings,
        keys: KeySource,
        *,
        is_revoked: Revoked | None = None,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.is_revoked = is_revoked

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("malformed token") from exc
        alg = header.get("alg")
        kid = header.get("kid")
        if alg not in self.settings.algorithms:
            raise Unauthorized("token algorithm is not accepted")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("token has no key id")
        try:
            key = await self.keys.get(kid)
        except (httpx.HTTPError, ValueError) as exc:  # unreachable, or not a JWKS
            raise Problem(
                "signing keys are unavailable", status=503, code="jwks_unavailable"
            ) from exc
        if key is None:
            raise Unauthorized("token signed with an unknown key")
        if key.algorithm_name != alg:
            raise Unauthorized("token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[key.algorithm_name],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("token expired") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"invalid token: {exc}") from exc
        if self.is_revoked is not None and await self.is_revoked(claims):
            raise Unauthorized("token revoked")
        try:
            user_id = uuid.UUID(str(claims["sub"]))
        except ValueError as exc:
            raise Unauthorized("token subject is not a user id") from exc
        orgs = claims.get("orgs") or {}
        return Principal(
            user_id=user_id,
            session_id=claims.get("sid"),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            roles=frozenset(claims.get("roles") or ()),
            orgs=dict(orgs) if isinstance(orgs, dict) else {},
            claims=claims,
        )


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the verified caller (``app.state.verifier`` does the work)."""
    verifier: TokenVerifier = request.app.state.verifier
    return await verifier.verify(bearer_token(request))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


class ApiKeyRecord(Protocol):
    """What a service keeps of an API key (auth's row, or another service's projection of
    ``auth.api_key.created/revoked``)."""

    revoked_at: datetime | None
    expires_at: datetime | None
    allowed_cidrs: list[str]


def hash_api_key(key: str) -> str:
    """The at-rest and on-the-bus form of an API key: SHA-256 hex (keys are 256-bit random)."""
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_usable(record: ApiKeyRecord | None, *, client_ip: str | None, now: datetime) -> bool:
    """Whether a key, found by ``hash_api_key`` of what the client sent, may be used now from
    ``client_ip``: not revoked, not expired, and inside its allowed networks if it has any."""
    if record is None or record.revoked_at is not None:
        return False
    if record.expires_at is not None and record.expires_at <= now:
        return False
    if record.allowed_cidrs:
        if client_ip is None:
            return False
        address = ipaddress.ip_address(client_ip)
        return any(address in ipaddress.ip_network(c) for c in record.allowed_cidrs)
    return True
