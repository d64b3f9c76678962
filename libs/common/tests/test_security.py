"""Access-token verification: what a service accepts, what it refuses, and how JWKS is cached.

Keys are real (Ed25519 and P-256 made by ``cryptography``), tokens are signed by pyjwt or,
for forgeries pyjwt refuses to make, assembled by hand.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from tessera.common.http import create_service_app
from tessera.common.problems import Problem
from tessera.common.security import (
    CurrentPrincipal,
    JWKSKeySource,
    Principal,
    StaticKeySource,
    TokenVerifier,
    Unauthorized,
)
from tessera.common.settings import JwtSettings, ServiceSettings

ISSUER = "tessera-auth"
AUDIENCE = "tessera"
ED_KID = "ed-1"
EC_KID = "ec-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Keys:
    """One Ed25519 and one P-256 signing key, and the public JWKS naming them."""

    def __init__(self) -> None:
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.ec = ec.generate_private_key(ec.SECP256R1())

    @staticmethod
    def public_jwk(private: Any, kid: str, alg: str) -> dict[str, Any]:
        algorithm = OKPAlgorithm if alg == "EdDSA" else ECAlgorithm
        jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
        return {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                self.public_jwk(self.ed, ED_KID, "EdDSA"),
                self.public_jwk(self.ec, EC_KID, "ES256"),
            ]
        }


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def settings() -> JwtSettings:
    return JwtSettings(issuer=ISSUER, audience=AUDIENCE, leeway_s=5)


@pytest.fixture
def verifier(keys: Keys, settings: JwtSettings) -> TokenVerifier:
    return TokenVerifier(settings, StaticKeySource(keys.jwks()))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": str(uuid.uuid4()),
        "sid": "session-42",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "roles": ["user", "superadmin"],
        "orgs": {"org-1": "owner", "org-2": "member"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def sign(private: Any, payload: dict[str, Any], *, kid: str | None, alg: str) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, private, algorithm=alg, headers=headers)


def ed_token(keys: Keys, **overrides: Any) -> str:
    return sign(keys.ed, claims(**overrides), kid=ED_KID, alg="EdDSA")


def hand_made(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}." + _b64(
        signature
    )


async def refused(verifier: TokenVerifier, token: str) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        await verifier.verify(token)
    assert caught.value.status == 401
    assert caught.value.code == "unauthorized"
    return caught.value


# --- accepted tokens ------------------------------------------------------------------


async def test_eddsa_token_verifies_into_principal(keys: Keys, verifier: TokenVerifier) -> None:
    body = claims()
    principal = await verifier.verify(sign(keys.ed, body, kid=ED_KID, alg="EdDSA"))

    assert isinstance(principal, Principal)
    assert principal.user_id == uuid.UUID(body["sub"])
    assert principal.session_id == "session-42"
    assert principal.token_id == body["jti"]
    assert principal.expires_at == body["exp"]
    assert principal.roles == frozenset({"user", "superadmin"})
    assert principal.is_superadmin
    assert dict(principal.orgs) == {"org-1": "owner", "org-2": "member"}


async def test_es256_token_verifies_into_principal(keys: Keys, verifier: TokenVerifier) -> None:
    body = claims(roles=["user"], orgs={"org-9": "viewer"}, sid="s-es")
    principal = await verifier.verify(sign(keys.ec, body, kid=EC_KID, alg="ES256"))

    assert principal.user_id == uuid.UUID(body["sub"])
    assert principal.session_id == "s-es"
    assert principal.roles == frozenset({"user"})
    assert not principal.is_superadmin
    assert dict(principal.orgs) == {"org-9": "viewer"}


async def test_token_within_leeway_of_expiry_is_still_accepted(
    keys: Keys, verifier: TokenVerifier
) -> None:
    now = int(time.time())
    principal = await verifier.verify(ed_token(keys, exp=now - 2, iat=now - 600, nbf=now - 600))
    assert principal.expires_at == now - 2


# --- refused tokens -------------------------------------------------------------------


async def test_unsigned_alg_none_token_is_refused(keys: Keys, verifier: TokenVerifier) -> None:
    token = hand_made({"alg": "none", "typ": "JWT", "kid": ED_KID}, claims())
    error = await refused(verifier, token)
    assert error.headers["WWW-Authenticate"].startswith("Bearer")


async def test_hs256_signed_with_the_public_key_is_refused(
    keys: Keys, verifier: TokenVerifier
) -> None:
    """The algorithm-confusion attack: the public key used as an HMAC secret."""
    public = keys.ed.public_key()
    secrets = [
        public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw),
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        json.dumps(Keys.public_jwk(keys.ed, ED_KID, "EdDSA")).encode(),
    ]
    for secret in secrets:
        header = {"alg": "HS256", "typ": "JWT", "kid": ED_KID}
        payload = claims()
        signing_input = (
            f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}".encode()
        )
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
        await refused(verifier, f"{signing_input.decode()}.{_b64(signature)}")


async def test_expired_token_is_refused(keys: Keys, verifier: TokenVerifier) -> None:
    now = int(time.time())
    error = await refused(verifier, ed_token(keys, iat=now - 900, nbf=now - 900, exp=now - 60))
    assert "expired" in str(error.detail)


async def test_token_not_yet_valid_is_refused(keys: Keys, verifier: TokenVerifier) -> None:
    await refused(verifier, ed_token(keys, nbf=int(time.time()) + 120))


async def test_wrong_issuer_is_refused(keys: Keys, verifier: TokenVerifier) -> None:
    error = await refused(verifier, ed_token(keys, iss="someone-else"))
    assert "issuer" in str(error.detail).lower()


async def test_wrong_audience_is_refused(keys: Keys, verifier: TokenVerifier) -> None:
    error = await refused(verifier, ed_token(keys, aud="another-suite"))
    assert "audience" in str(error.detail).lower()


async def test_unknown_kid_is_refused(keys: Keys, verifier: TokenVerifier) -> None:
    error = await refused(verifier, sign(keys.ed, claims(), kid="retired-long-ago", alg="EdDSA"))
    assert "unknown key" in str(error.detail)


async def test_missing_kid_is_refused(keys: Keys, verifier: TokenVerifier) -> None:
    error = await refused(verifier, sign(keys.ed, claims(), kid=None, alg="EdDSA"))
    assert "key id" in str(error.detail)


async def test_header_alg_different_from_the_keys_alg_is_refused(
    keys: Keys, verifier: TokenVerifier
) -> None:
    # a genuine ES256 signature, but naming the EdDSA key
    error = await refused(verifier, sign(keys.ec, claims(), kid=ED_KID, alg="ES256"))
    assert "does not match" in str(error.detail)
    # and the other way round
    await refused(verifier, sign(keys.ed, claims(), kid=EC_KID, alg="EdDSA"))


async def test_algorithm_not_in_settings_is_refused_even_with_a_good_signature(
    keys: Keys,
) -> None:
    only_eddsa = TokenVerifier(
        JwtSettings(issuer=ISSUER, audience=AUDIENCE, algorithms=["EdDSA"]),
        StaticKeySource(keys.jwks()),
    )
    await refused(only_eddsa, sign(keys.ec, claims(), kid=EC_KID, alg="ES256"))
    assert await only_eddsa.verify(ed_token(keys))


async def test_tampered_payload_is_refused(keys: Keys, verifier: TokenVerifier) -> None:
    header, _, signature = ed_token(keys).split(".")
    forged = _b64(json.dumps(claims(roles=["superadmin"])).encode())
    await refused(verifier, f"{header}.{forged}.{signature}")


@pytest.mark.parametrize("claim", ["jti", "sub", "exp", "iss", "aud"])
async def test_token_missing_a_required_claim_is_refused(
    keys: Keys, verifier: TokenVerifier, claim: str
) -> None:
    body = claims()
    del body[claim]
    await refused(verifier, sign(keys.ed, body, kid=ED_KID, alg="EdDSA"))


async def test_subject_that_is_not_a_user_id_is_refused(
    keys: Keys, verifier: TokenVerifier
) -> None:
    await refused(verifier, ed_token(keys, sub="admin"))


@pytest.mark.parametrize(
    "token", ["garbage", "", "a.b.c", "....", "eyJhbGciOiJFZERTQSJ9.e30", "Bearer x.y.z"]
)
async def test_garbage_string_is_refused(verifier: TokenVerifier, token: str) -> None:
    await refused(verifier, token)


async def test_revoked_token_is_refused(keys: Keys, settings: JwtSettings) -> None:
    revoked: set[str] = set()

    async def is_revoked(token_claims: Any) -> bool:
        return token_claims["jti"] in revoked

    verifier = TokenVerifier(settings, StaticKeySource(keys.jwks()), is_revoked=is_revoked)
    body = claims()
    token = sign(keys.ed, body, kid=ED_KID, alg="EdDSA")
    assert await verifier.verify(token)
    revoked.add(body["jti"])
    await refused(verifier, token)


# --- JWKS over HTTP -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """A JWKS endpoint behind httpx.MockTransport that counts its requests."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.requests = 0
        self.fail_with: int | None = None
        self.body: bytes | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        assert request.url.path == "/auth/.well-known/jwks.json"
        if self.fail_with is not None:
            return httpx.Response(self.fail_with, text="upstream down")
        if self.body is not None:
            return httpx.Response(200, content=self.body)
        return httpx.Response(200, json=self.jwks)


JWKS_URL = "http://auth.test/auth/.well-known/jwks.json"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_source(clock: FakeClock) -> Callable[..., tuple[JWKSKeySource, JwksServer]]:
    def make(jwks: dict[str, Any], **kwargs: Any) -> tuple[JWKSKeySource, JwksServer]:
        server = JwksServer(jwks)
        client = httpx.AsyncClient(transport=httpx.MockTransport(server.handler))
        kwargs.setdefault("cache_s", 300.0)
        kwargs.setdefault("min_refetch_s", 5.0)
        return JWKSKeySource(JWKS_URL, client=client, clock=clock, **kwargs), server

    return make


def only(keys: Keys, *which: str) -> dict[str, Any]:
    return {"keys": [k for k in keys.jwks()["keys"] if k["kid"] in which]}


async def test_jwks_is_fetched_once_while_cached(
    keys: Keys, clock: FakeClock, make_source: Callable[..., Any]
) -> None:
    source, server = make_source(keys.jwks())
    assert (await source.get(ED_KID)).algorithm_name == "EdDSA"
    clock.now += 100
    assert (await source.get(EC_KID)).algorithm_name == "ES256"
    assert await source.get(ED_KID) is not None
    assert server.requests == 1

    clock.now += 250  # 350 s after the first fetch: the cache has expired
    assert await source.get(ED_KID) is not None
    assert server.requests == 2


async def test_rotated_key_is_fetched_when_a_token_names_it(
    keys: Keys, clock: FakeClock, make_source: Callable[..., Any]
) -> None:
    source, server = make_source(only(keys, ED_KID))
    assert await source.get(ED_KID) is not None
    assert server.requests == 1

    server.jwks = keys.jwks()  # auth rotated in a new key
    clock.now += 6
    key = await source.get(EC_KID)
    assert key is not None
    assert key.algorithm_name == "ES256"
    assert server.requests == 2


async def test_unknown_kid_refetches_at_most_once_per_min_refetch_interval(
    keys: Keys, clock: FakeClock, make_source: Callable[..., Any]
) -> None:
    source, server = make_source(keys.jwks(), min_refetch_s=5.0)
    assert await source.get(ED_KID) is not None
    assert server.requests == 1

    clock.now += 1
    assert await source.get("forged-kid") is None
    assert server.requests == 1  # too soon after the last fetch

    clock.now += 5
    results = await asyncio.gather(*(source.get(f"forged-{i}") for i in range(20)))
    assert results == [None] * 20
    assert server.requests == 2  # a burst of unknown kids costs one fetch

    clock.now += 1
    assert await source.get("forged-kid") is None
    assert server.requests == 2
    clock.now += 5
    assert await source.get("forged-kid") is None
    assert server.requests == 3


async def test_failed_refetch_keeps_verifying_with_the_old_keys(
    keys: Keys, clock: FakeClock, make_source: Callable[..., Any], settings: JwtSettings
) -> None:
    source, server = make_source(keys.jwks())
    verifier = TokenVerifier(settings, source)
    assert await verifier.verify(ed_token(keys))

    server.fail_with = 503
    clock.now += 1000  # cache expired: a refetch is attempted and fails
    assert await verifier.verify(ed_token(keys))
    assert server.requests == 2

    server.fail_with = None
    server.body = b"<html>proxy error</html>"
    clock.now += 1000
    assert await verifier.verify(ed_token(keys))
    assert server.requests == 3


async def test_unreachable_jwks_with_nothing_cached_is_503_not_401(
    keys: Keys, make_source: Callable[..., Any], settings: JwtSettings
) -> None:
    source, server = make_source(keys.jwks())
    server.fail_with = 502
    with pytest.raises(Problem) as caught:
        await TokenVerifier(settings, source).verify(ed_token(keys))
    assert caught.value.status == 503
    assert caught.value.code == "jwks_unavailable"


async def test_jwks_answering_non_json_with_nothing_cached_is_503(
    keys: Keys, make_source: Callable[..., Any], settings: JwtSettings
) -> None:
    source, server = make_source(keys.jwks())
    server.body = b"<html>captive portal</html>"
    with pytest.raises(Problem) as caught:
        await TokenVerifier(settings, source).verify(ed_token(keys))
    assert caught.value.status == 503


async def test_concurrent_requests_share_one_failed_fetch_and_the_failure_is_remembered(
    keys: Keys, clock: FakeClock, settings: JwtSettings
) -> None:
    fetches = 0

    async def slow_and_down(request: httpx.Request) -> httpx.Response:
        nonlocal fetches
        fetches += 1
        await asyncio.sleep(0.05)  # auth does not answer quickly either
        return httpx.Response(503, text="auth is down")

    client = httpx.AsyncClient(transport=httpx.MockTransport(slow_and_down))
    source = JWKSKeySource(JWKS_URL, client=client, clock=clock, min_refetch_s=5.0)
    verifier = TokenVerifier(settings, source)
    token = ed_token(keys)

    started = time.monotonic()
    outcomes = await asyncio.gather(
        *(verifier.verify(token) for _ in range(20)), return_exceptions=True
    )
    elapsed = time.monotonic() - started

    assert fetches == 1, "each request waited for a fetch of its own"
    assert elapsed < 0.5, f"requests queued behind each other's fetches ({elapsed:.2f} s)"
    assert all(isinstance(o, Problem) and o.status == 503 for o in outcomes), outcomes
    with pytest.raises(Problem):  # still within the refetch interval: no new fetch
        await verifier.verify(token)
    assert fetches == 1
    clock.now += 5.0
    with pytest.raises(Problem):
        await verifier.verify(token)
    assert fetches == 2, "the failure was remembered longer than the refetch interval"


async def test_jwks_recovers_once_auth_answers_after_a_remembered_failure(
    keys: Keys, make_source: Callable[..., Any], clock: FakeClock, settings: JwtSettings
) -> None:
    source, server = make_source(keys.jwks())
    server.fail_with = 502
    verifier = TokenVerifier(settings, source)
    with pytest.raises(Problem):
        await verifier.verify(ed_token(keys))
    server.fail_with = None
    clock.now += 5.0
    assert (await verifier.verify(ed_token(keys))).user_id


async def test_jwks_entries_that_are_not_keys_are_skipped(
    keys: Keys, make_source: Callable[..., Any]
) -> None:
    jwks = keys.jwks()
    jwks["keys"] += [{"kty": "OKP", "crv": "Ed25519"}, {"kid": "broken", "kty": "nonsense"}]
    source, _ = make_source(jwks)
    assert await source.get(ED_KID) is not None
    assert await source.get("broken") is None


# --- the FastAPI dependency -----------------------------------------------------------


@pytest.fixture
def app(keys: Keys, settings: JwtSettings) -> Any:
    app = create_service_app(
        settings=ServiceSettings(environment="test"), prefix="/probe", title="probe"
    )

    @app.get("/probe/me")
    async def me(caller: CurrentPrincipal) -> dict[str, Any]:
        return {"user_id": str(caller.user_id), "roles": sorted(caller.roles)}

    app.state.verifier = TokenVerifier(settings, StaticKeySource(keys.jwks()))
    return app


async def _get(app: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        return await client.get("/probe/me", headers=headers or {})


async def test_request_without_bearer_token_gets_401_problem(app: Any) -> None:
    response = await _get(app)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "unauthorized"
    assert body["status"] == 401


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer ", "Bearer not-a-jwt", "tok"])
async def test_request_with_bad_authorization_gets_401(app: Any, header: str) -> None:
    response = await _get(app, {"Authorization": header})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "www-authenticate" in response.headers


async def test_request_with_good_token_reaches_the_route(app: Any, keys: Keys) -> None:
    body = claims(roles=["user"])
    token = sign(keys.ec, body, kid=EC_KID, alg="ES256")
    response = await _get(app, {"Authorization": f"bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"user_id": body["sub"], "roles": ["user"]}


# --- verified tokens are remembered ------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_a_token_verified_once_is_not_checked_again_but_its_expiry_is(
    keys: Keys,
) -> None:
    settings = JwtSettings(issuer=ISSUER, audience=AUDIENCE, leeway_s=0)
    verifier = TokenVerifier(settings, StaticKeySource(keys.jwks()))
    token = ed_token(keys, exp=int(time.time()) + 1)

    first = await verifier.verify(token)
    again = await verifier.verify(token)
    assert again == first
    assert (verifier.misses, verifier.hits) == (1, 1)

    await asyncio.sleep(2.1)
    # the signature is not checked again, the expiry is: the full check refuses it
    assert "expired" in str(await refused(verifier, token))
    assert verifier.hits == 1


async def test_a_remembered_token_is_refused_once_revoked(
    keys: Keys, settings: JwtSettings
) -> None:
    revoked: set[str] = set()

    async def is_revoked(claims: Any) -> bool:
        return claims.get("sid") in revoked

    verifier = TokenVerifier(settings, StaticKeySource(keys.jwks()), is_revoked=is_revoked)
    token = ed_token(keys, sid="s-1")
    await verifier.verify(token)
    revoked.add("s-1")
    assert "revoked" in str(await refused(verifier, token))


async def test_a_remembered_token_is_refused_once_its_key_is_withdrawn(
    keys: Keys, settings: JwtSettings
) -> None:
    source = StaticKeySource(keys.jwks())
    verifier = TokenVerifier(settings, source)
    token = ed_token(keys)
    await verifier.verify(token)
    source.replace({"keys": [k for k in keys.jwks()["keys"] if k["kid"] != ED_KID]})
    assert "unknown key" in str(await refused(verifier, token))


async def test_a_token_not_valid_yet_is_not_remembered_as_valid(
    keys: Keys, settings: JwtSettings
) -> None:
    clock = Clock()
    verifier = TokenVerifier(settings, StaticKeySource(keys.jwks()), clock=clock)
    token = ed_token(keys, nbf=int(clock.now) + 3600)
    await refused(verifier, token)
    await refused(verifier, token)
    assert verifier.hits == 0


async def test_the_remembered_tokens_are_bounded(keys: Keys, settings: JwtSettings) -> None:
    verifier = TokenVerifier(settings, StaticKeySource(keys.jwks()), cache_size=2)
    tokens = [ed_token(keys, jti=f"t-{n}") for n in range(3)]
    for token in tokens:
        await verifier.verify(token)
    await verifier.verify(tokens[0])  # the oldest was forgotten: checked in full again
    assert (verifier.misses, verifier.hits) == (4, 0)
    await verifier.verify(tokens[2])
    assert verifier.hits == 1
