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
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Protocol

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt import PyJWK

from tessera.common.problems import Problem
from tessera.common.settings import JwtSettings

__all__ = [
    "ApiKeyRecord",
    "JWKSKeySource",
    "JWKSUnavailable",
    "KeySource",
    "Principal",
    "StaticKeySource",
    "TokenVerifier",
    "Unauthorized",
    "api_key_usable",
    "bearer_scheme",
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
        self._failed_at: float | None = None
        self._failure = ""
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
        """Fetch the JWKS; callers arriving meanwhile wait for that one fetch, and a failure
        with nothing cached is remembered for ``min_refetch_s`` instead of being retried by
        every request in turn."""
        async with self._lock:
            now = self._clock()
            fresh = self._fetched_at is not None and now - self._fetched_at <= self._cache_s
            if fresh and (force_unknown in self._keys or not self._may_refetch(now)):
                return
            if self._failed_at is not None and now - self._failed_at < self._min_refetch_s:
                raise JWKSUnavailable(self._failure)
            try:
                response = await self._client.get(self.url, timeout=5.0)
                response.raise_for_status()
                document = response.json()
                keys = document.get("keys") if isinstance(document, dict) else None
                if not isinstance(keys, list):
                    raise ValueError("the JWKS document has no list of keys")
            except (httpx.HTTPError, ValueError) as exc:
                if self._keys:  # keep verifying with what we had
                    self._fetched_at = now
                    return
                self._failed_at = self._clock()
                self._failure = f"{self.url}: {type(exc).__name__}"
                raise JWKSUnavailable(self._failure) from exc
            self._failed_at = None
            parsed: dict[str, PyJWK] = {}
            for key in keys:
                try:
                    parsed[key["kid"]] = PyJWK(key)
                except (KeyError, TypeError, jwt.PyJWTError):  # one bad entry spoils nothing
                    continue
            self._keys = parsed
            self._fetched_at = now


class JWKSUnavailable(Exception):
    """auth's public keys could not be fetched and none are cached."""


Revoked = Callable[[Mapping[str, Any]], Awaitable[bool]]


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    kid: str
    expires_at: float
    not_before: float | None


class TokenVerifier:
    """Verifies access tokens; a token whose signature was checked is remembered (by its
    exact text, until it expires, at most ``cache_size`` of them), so a client calling
    again with the same token costs a dictionary lookup instead of a signature check.
    Expiry, ``nbf``, the key still being published and the deny-list are checked on every
    call, cached or not."""

    def __init__(
        self,
        settings: JwtSettings,
        keys: KeySource,
        *,
        is_revoked: Revoked | None = None,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.is_revoked = is_revoked
        self.cache_size = cache_size
        self._clock = clock
        self._verified: OrderedDict[str, _Verified] = OrderedDict()
        self.hits = 0
        self.misses = 0

    async def verify(self, token: str) -> Principal:
        cached = await self._cached(token)
        if cached is not None:
            self.hits += 1
            if self.is_revoked is not None and await self.is_revoked(cached.claims):
                raise Unauthorized("token revoked")
            return cached
        self.misses += 1
        principal, kid = await self._verify(token)
        if self.cache_size > 0:
            nbf = principal.claims.get("nbf")
            self._verified[token] = _Verified(
                principal,
                kid,
                float(principal.expires_at),
                float(nbf) if isinstance(nbf, int | float) else None,
            )
            while len(self._verified) > self.cache_size:
                self._verified.popitem(last=False)
        return principal

    async def _cached(self, token: str) -> Principal | None:
        entry = self._verified.get(token)
        if entry is None:
            return None
        now, leeway = self._clock(), self.settings.leeway_s
        usable = now <= entry.expires_at + leeway and (
            entry.not_before is None or now + leeway >= entry.not_before
        )
        if usable:
            try:
                usable = await self.keys.get(entry.kid) is not None  # a withdrawn key
            except (JWKSUnavailable, httpx.HTTPError, ValueError):
                usable = False
        if not usable:
            self._verified.pop(token, None)  # the full check says why
            return None
        self._verified.move_to_end(token)
        return entry.principal

    async def _verify(self, token: str) -> tuple[Principal, str]:
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
        except (JWKSUnavailable, httpx.HTTPError, ValueError) as exc:  # unreachable, not a JWKS
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
        principal = Principal(
            user_id=user_id,
            session_id=claims.get("sid"),
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
            roles=frozenset(claims.get("roles") or ()),
            orgs=dict(orgs) if isinstance(orgs, dict) else {},
            claims=claims,
        )
        return principal, kid


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


# Documents the scheme in the OpenAPI (each route using ``CurrentPrincipal`` lists it under
# ``security``); never refuses by itself: ``bearer_token`` and the verifier decide.
bearer_scheme = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An access token from auth (`POST /auth/login`, `POST /auth/token/refresh`).",
    auto_error=False,
)


async def current_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)] = None,
) -> Principal:
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
        try:
            address = ipaddress.ip_address(client_ip or "")
        except ValueError:  # no address, or one we cannot parse: not inside any network
            return False
        return any(_contains(cidr, address) for cidr in record.allowed_cidrs)
    return True


def _contains(cidr: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return address in ipaddress.ip_network(cidr, strict=False)
    except ValueError:  # a stored network that does not parse allows nothing
        return False
