"""What a refused caller is told, and the edges of token, JWKS, API-key and deny-list checks.

Promises: each refusal names its own reason (so a client can tell an expired token, which it
refreshes, from a forged one); the principal carries the verified claims; a JWKS fetch is
shared by every request that arrives while it runs, and a failure names the URL; an API key
is usable only while neither revoked nor expired; a deny-listed session stays deny-listed
until ``until`` and not much longer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tessera.common.problems import Problem
from tessera.common.revocation import Revocations
from tessera.common.security import (
    JWKSKeySource,
    JWKSUnavailable,
    StaticKeySource,
    TokenVerifier,
    Unauthorized,
    api_key_usable,
    bearer_token,
)
from tessera.common.settings import JwtSettings
from tessera.common.testing import Infra

from .test_security import (  # the same real keys and token helpers
    AUDIENCE,
    EC_KID,
    ED_KID,
    ISSUER,
    JWKS_URL,
    FakeClock,
    Keys,
    claims,
    ed_token,
    hand_made,
    sign,
)


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def verifier(keys: Keys) -> TokenVerifier:
    settings = JwtSettings(issuer=ISSUER, audience=AUDIENCE, leeway_s=5)
    return TokenVerifier(settings, StaticKeySource(keys.jwks()))


async def _detail(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    return str(caught.value.detail)


async def test_each_refusal_names_its_own_reason(keys: Keys, verifier: TokenVerifier) -> None:
    now = int(time.time())
    cases = {
        "malformed token": "not-a-jwt",
        "token algorithm is not accepted": hand_made({"alg": "HS256", "kid": ED_KID}, claims()),
        "token has no key id": sign(keys.ed, claims(), kid=None, alg="EdDSA"),
        "token signed with an unknown key": sign(keys.ed, claims(), kid="gone", alg="EdDSA"),
        "token algorithm does not match its key": sign(keys.ec, claims(), kid=ED_KID, alg="ES256"),
        "token expired": ed_token(keys, iat=now - 900, nbf=now - 900, exp=now - 60),
        "token subject is not a user id": ed_token(keys, sub="admin"),
    }
    for reason, token in cases.items():
        assert await _detail(verifier, token) == reason
    # an empty key id is no key id, not an unknown key
    assert await _detail(verifier, sign(keys.ed, claims(), kid="", alg="EdDSA")) == (
        "token has no key id"
    )


async def test_revoked_token_is_refused_as_revoked(keys: Keys) -> None:
    async def always(_: Any) -> bool:
        return True

    revoking = TokenVerifier(
        JwtSettings(issuer=ISSUER, audience=AUDIENCE),
        StaticKeySource(keys.jwks()),
        is_revoked=always,
    )
    assert await _detail(revoking, ed_token(keys)) == "token revoked"


async def test_principal_carries_the_verified_claims(keys: Keys, verifier: TokenVerifier) -> None:
    body = claims(plan="gold")
    principal = await verifier.verify(sign(keys.ec, body, kid=EC_KID, alg="ES256"))
    assert principal.claims["plan"] == "gold"
    assert principal.claims["jti"] == body["jti"]


async def test_token_whose_orgs_claim_is_not_an_object_verifies_with_no_orgs(
    keys: Keys, verifier: TokenVerifier
) -> None:
    for orgs in (["org-1"], "org-1"):
        principal = await verifier.verify(ed_token(keys, orgs=orgs))
        assert dict(principal.orgs) == {}


async def test_static_key_source_without_keys_knows_no_key(keys: Keys) -> None:
    assert await StaticKeySource().get(ED_KID) is None
    source = StaticKeySource(keys.jwks())
    source.replace({"not-keys": []})
    assert await source.get(ED_KID) is None


# --- the bearer header ----------------------------------------------------------------


def _request(authorization: str | None) -> Any:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    from starlette.requests import Request

    return Request({"type": "http", "headers": headers})


@pytest.mark.parametrize("header", [None, "Basic dXNlcjpwYXNz", "Bearer ", "Bearer    ", "tok"])
def test_a_request_without_a_bearer_token_is_told_one_is_required(header: str | None) -> None:
    with pytest.raises(Unauthorized) as caught:
        bearer_token(_request(header))
    assert caught.value.detail == "a valid bearer token is required"


def test_bearer_token_after_several_spaces_is_taken() -> None:
    # RFC 6750: "Bearer" 1*SP b64token
    assert bearer_token(_request("Bearer  abc.def.ghi")) == "abc.def.ghi"
    assert bearer_token(_request("bearer abc")) == "abc"


# --- JWKS over HTTP -------------------------------------------------------------------


def _slow_jwks(keys: Keys, counter: list[int], *, body: Any = None) -> httpx.AsyncClient:
    async def handler(request: httpx.Request) -> httpx.Response:
        counter.append(1)
        await asyncio.sleep(0.05)  # auth answers, but not at once
        return httpx.Response(200, json=keys.jwks() if body is None else body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("kid", [ED_KID, "forged"])
async def test_requests_arriving_during_a_slow_fetch_share_it(keys: Keys, kid: str) -> None:
    fetches: list[int] = []
    source = JWKSKeySource(JWKS_URL, client=_slow_jwks(keys, fetches), clock=FakeClock())
    found = await asyncio.gather(*(source.get(kid) for _ in range(10)))
    assert len(fetches) == 1
    assert all((key is not None) == (kid == ED_KID) for key in found)


async def test_an_unknown_kid_may_refetch_exactly_min_refetch_s_after_the_last_fetch(
    keys: Keys,
) -> None:
    fetches: list[int] = []
    clock = FakeClock()
    source = JWKSKeySource(
        JWKS_URL, client=_slow_jwks(keys, fetches), clock=clock, min_refetch_s=5.0
    )
    await source.get(ED_KID)
    clock.now += 5.0
    assert await source.get("forged") is None
    assert len(fetches) == 2


async def test_jwks_that_is_not_an_object_with_nothing_cached_is_503(keys: Keys) -> None:
    fetches: list[int] = []
    source = JWKSKeySource(
        JWKS_URL, client=_slow_jwks(keys, fetches, body=[1, 2]), clock=FakeClock()
    )
    verifier = TokenVerifier(JwtSettings(issuer=ISSUER, audience=AUDIENCE), source)
    with pytest.raises(Problem) as caught:
        await verifier.verify(ed_token(keys))
    assert (caught.value.status, caught.value.code) == (503, "jwks_unavailable")
    assert caught.value.detail == "signing keys are unavailable"


async def test_jwks_failure_names_the_url_and_the_error_also_when_remembered() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="down")

    client = httpx.AsyncClient(transport=httpx.MockTransport(down))
    source = JWKSKeySource(JWKS_URL, client=client, clock=FakeClock())
    for _ in range(2):  # fetched, then remembered
        with pytest.raises(JWKSUnavailable) as caught:
            await source.get(ED_KID)
        assert str(caught.value) == f"{JWKS_URL}: HTTPStatusError"


async def test_after_a_failed_refetch_the_old_keys_serve_another_cache_period(
    keys: Keys,
) -> None:
    requests: list[int] = []
    down = False

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(1)
        return httpx.Response(503) if down else httpx.Response(200, json=keys.jwks())

    clock = FakeClock()
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    source = JWKSKeySource(JWKS_URL, client=client, clock=clock, cache_s=300.0)
    assert await source.get(ED_KID) is not None
    down = True
    clock.now += 301  # stale: one refetch, which fails
    assert await source.get(ED_KID) is not None
    clock.now += 100  # within the period the old keys were given again: auth is left alone
    assert await source.get(ED_KID) is not None
    assert len(requests) == 2


async def test_jwks_entries_that_are_not_keys_spoil_none_of_the_keys_after_them(
    keys: Keys,
) -> None:
    jwks = {"keys": [{"kty": "OKP"}, {"kid": "broken", "kty": "nonsense"}, *keys.jwks()["keys"]]}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=jwks)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    source = JWKSKeySource(JWKS_URL, client=client, clock=FakeClock())
    assert await source.get(ED_KID) is not None
    assert await source.get(EC_KID) is not None


# --- API keys -------------------------------------------------------------------------

NOW = datetime.now(UTC)


@dataclass
class Key:
    allowed_cidrs: list[str] = field(default_factory=list)
    revoked_at: datetime | None = None
    expires_at: datetime | None = None


def test_an_api_key_is_usable_only_while_neither_revoked_nor_expired() -> None:
    ip = "192.0.2.1"
    assert api_key_usable(Key(), client_ip=ip, now=NOW)
    assert api_key_usable(Key(expires_at=NOW + timedelta(seconds=1)), client_ip=ip, now=NOW)
    assert not api_key_usable(None, client_ip=ip, now=NOW)
    assert not api_key_usable(Key(revoked_at=NOW - timedelta(days=1)), client_ip=ip, now=NOW)
    assert not api_key_usable(Key(expires_at=NOW), client_ip=ip, now=NOW), "expires at now"


def test_a_stored_network_written_with_host_bits_allows_its_addresses() -> None:
    key = Key(allowed_cidrs=["192.0.2.10/24"])
    assert api_key_usable(key, client_ip="192.0.2.200", now=NOW)
    assert not api_key_usable(key, client_ip="198.51.100.1", now=NOW)


# --- the deny-list --------------------------------------------------------------------


@pytest.fixture
async def redis(infra: Infra) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis)
    try:
        yield client
    finally:
        await client.aclose()


async def test_a_revoked_session_is_deny_listed_until_until_and_not_much_longer(
    redis: Redis, infra: Infra
) -> None:
    prefix = f"{infra.redis_prefix}{uuid.uuid4().hex[:6]}:"
    revocations = Revocations(redis, prefix=prefix)
    before = time.time()
    until = before + 600.5
    await revocations.revoke_session("s-1", until=until)
    left_s = await redis.pttl(f"{prefix}revoked:sid:s-1") / 1000
    assert until - time.time() <= left_s <= until - before + 1

    # every token of it has expired already: deny-listed for a moment only
    await revocations.revoke_session("s-2", until=before - 60)
    assert 0 < await redis.pttl(f"{prefix}revoked:sid:s-2") <= 1000


async def test_redis_down_fails_closed_unless_told_otherwise() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        with pytest.raises(Problem) as caught:
            await Revocations(client, prefix="t:").is_revoked({"sid": "s-1"})
    finally:
        await client.aclose()
    assert (caught.value.status, caught.value.code) == (503, "revocation_unavailable")
    assert caught.value.detail == "the token deny-list is unavailable"


# --- the cache of verified tokens ---------------------------------------------------------


async def test_a_cached_token_revoked_since_is_refused_as_revoked(keys: Keys) -> None:
    revoked = False

    async def is_revoked(_: Any) -> bool:
        return revoked

    verifier = TokenVerifier(
        JwtSettings(issuer=ISSUER, audience=AUDIENCE),
        StaticKeySource(keys.jwks()),
        is_revoked=is_revoked,
    )
    token = ed_token(keys)
    await verifier.verify(token)
    revoked = True
    assert await _detail(verifier, token) == "token revoked"
    assert (verifier.hits, verifier.misses) == (1, 1), "refused from the cache"


@pytest.mark.parametrize(("size", "hits"), [(0, 0), (1, 2), (2, 2)])
async def test_the_cache_keeps_at_most_cache_size_tokens(keys: Keys, size: int, hits: int) -> None:
    verifier = TokenVerifier(
        JwtSettings(issuer=ISSUER, audience=AUDIENCE), StaticKeySource(keys.jwks()), cache_size=size
    )
    token = ed_token(keys)
    for _ in range(3):
        await verifier.verify(token)
    assert (verifier.hits, verifier.misses) == (hits, 3 - hits)
    assert len(verifier._verified) == min(size, 1)


async def test_a_token_without_nbf_is_served_from_the_cache(keys: Keys) -> None:
    verifier = TokenVerifier(
        JwtSettings(issuer=ISSUER, audience=AUDIENCE), StaticKeySource(keys.jwks())
    )
    body = claims()
    del body["nbf"]
    token = sign(keys.ed, body, kid=ED_KID, alg="EdDSA")
    first, second = await verifier.verify(token), await verifier.verify(token)
    assert first == second
    assert verifier.hits == 1


async def test_a_cached_token_past_its_expiry_and_leeway_is_checked_in_full_again(
    keys: Keys,
) -> None:
    clock = FakeClock()
    clock.now = time.time()
    verifier = TokenVerifier(
        JwtSettings(issuer=ISSUER, audience=AUDIENCE, leeway_s=5),
        StaticKeySource(keys.jwks()),
        clock=clock,
    )
    token = ed_token(keys)
    expires = (await verifier.verify(token)).expires_at
    clock.now = expires + 5  # still within the leeway: from the cache
    await verifier.verify(token)
    assert (verifier.hits, verifier.misses) == (1, 1)
    clock.now = expires + 6  # past it: not from the cache (pyjwt, on the real clock, accepts)
    await verifier.verify(token)
    assert (verifier.hits, verifier.misses) == (1, 2)


async def test_known_keys_are_fetched_again_only_once_the_cache_period_is_over(keys: Keys) -> None:
    fetches: list[int] = []
    clock = FakeClock()
    source = JWKSKeySource(
        JWKS_URL, client=_slow_jwks(keys, fetches), clock=clock, cache_s=300.0, min_refetch_s=5.0
    )
    await source.get(ED_KID)
    for step in (10.0, 290.0):  # 10 s, then exactly 300 s after the fetch
        clock.now += step
        assert await source.get(ED_KID) is not None
    assert len(fetches) == 1
    clock.now += 1.0
    await source.get(ED_KID)
    assert len(fetches) == 2


async def test_a_cached_token_is_not_served_while_its_keys_cannot_be_checked(keys: Keys) -> None:
    class Failing(StaticKeySource):
        failing = False

        async def get(self, kid: str) -> Any:
            if self.failing:
                raise JWKSUnavailable("auth is down")
            return await super().get(kid)

    source = Failing(keys.jwks())
    verifier = TokenVerifier(JwtSettings(issuer=ISSUER, audience=AUDIENCE), source)
    token = ed_token(keys)
    await verifier.verify(token)
    source.failing = True
    with pytest.raises(Problem) as raised:
        await verifier.verify(token)
    assert (raised.value.status, raised.value.code) == (503, "jwks_unavailable")
    assert verifier.hits == 0
