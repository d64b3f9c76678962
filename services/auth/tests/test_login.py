"""Login: tokens, their claims, the caller's account, and rehashing on new argon2 costs."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from tessera.auth.app import create_app
from tessera.auth.settings import Argon2Settings, Settings

PASSWORD = "correct horse battery staple"


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": password})


def _decode_part(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def test_login_returns_bearer_access_and_refresh_tokens(
    client: httpx.AsyncClient, register: Any, email: str, auth_settings: Settings
) -> None:
    await register(email)

    response = await _login(client, email)

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == auth_settings.access_token_ttl_s
    assert len(body["refresh_token"]) >= 40
    assert body["refresh_token"] != body["access_token"]


async def test_login_with_other_letter_case_of_email_succeeds(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    await register(email)

    response = await _login(client, email.upper())

    assert response.status_code == 200, response.text


async def test_access_token_is_an_eddsa_jwt_with_kid_and_standard_claims(
    client: httpx.AsyncClient, register: Any, email: str, auth_settings: Settings, query: Any
) -> None:
    user = await register(email)

    token = (await _login(client, email)).json()["access_token"]

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid"} <= set(claims)
    assert claims["iss"] == auth_settings.jwt.issuer
    assert claims["aud"] == auth_settings.jwt.audience
    assert claims["sub"] == user["id"]
    assert claims["exp"] - claims["iat"] == auth_settings.access_token_ttl_s
    assert claims["nbf"] <= claims["iat"] + 1
    # the session id names the stored login
    sessions = await query(
        "SELECT user_id, revoked_at FROM sessions WHERE id = :sid", sid=claims["sid"]
    )
    assert [(str(s.user_id), s.revoked_at) for s in sessions] == [(user["id"], None)]
    # a private member never travels in a token
    assert "password" not in json.dumps(claims)


async def test_each_login_gets_its_own_jti_and_session(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    await register(email)

    first = jwt.decode(
        (await _login(client, email)).json()["access_token"], options={"verify_signature": False}
    )
    second = jwt.decode(
        (await _login(client, email)).json()["access_token"], options={"verify_signature": False}
    )

    assert first["jti"] != second["jti"]
    assert first["sid"] != second["sid"]


async def test_refresh_token_is_stored_only_as_its_hash(
    client: httpx.AsyncClient, register: Any, email: str, query: Any
) -> None:
    await register(email)
    body = (await _login(client, email)).json()
    sid = jwt.decode(body["access_token"], options={"verify_signature": False})["sid"]

    [(stored, row_text)] = await query(
        "SELECT token_hash, r::text FROM refresh_tokens r WHERE session_id = :sid", sid=sid
    )

    assert stored == hashlib.sha256(body["refresh_token"].encode()).hexdigest()
    assert body["refresh_token"] not in row_text


async def test_wrong_password_and_unknown_email_both_give_the_same_401(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    await register(email)

    wrong_password = await _login(client, email, "not the right password")
    unknown_email = await _login(client, f"nobody-{uuid.uuid4().hex}@example.com")

    for response in (wrong_password, unknown_email):
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "invalid_credentials"
    ignore = {"instance", "request_id"}
    assert {k: v for k, v in wrong_password.json().items() if k not in ignore} == {
        k: v for k, v in unknown_email.json().items() if k not in ignore
    }


async def test_me_with_the_access_token_returns_the_user(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    user = await register(email, full_name="Grace Hopper", locale="en-GB")
    token = (await _login(client, email)).json()["access_token"]

    response = await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.text
    assert response.json() == user


def _tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    return f"{header}.{payload}.{base64.urlsafe_b64encode(bytes(raw)).rstrip(b'=').decode()}"


def _tamper_claims(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = _decode_part(payload)
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _alg_none(token: str) -> str:
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "typ": "JWT", "kid": kid}).encode()
    ).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    return f"{header.decode()}.{payload.decode()}."


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "TAMPER_SIGNATURE",
        "TAMPER_CLAIMS",
        "ALG_NONE",
    ],
    ids=[
        "no-header",
        "empty-bearer",
        "basic-scheme",
        "garbage",
        "tampered-signature",
        "tampered-claims",
        "alg-none",
    ],
)
async def test_me_without_a_valid_token_is_401_problem(
    client: httpx.AsyncClient, register: Any, email: str, authorization: str | None
) -> None:
    await register(email)
    token = (await _login(client, email)).json()["access_token"]
    forged = {
        "TAMPER_SIGNATURE": lambda: f"Bearer {_tamper_signature(token)}",
        "TAMPER_CLAIMS": lambda: f"Bearer {_tamper_claims(token)}",
        "ALG_NONE": lambda: f"Bearer {_alg_none(token)}",
    }
    if authorization in forged:
        authorization = forged[authorization]()
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = await client.get("/auth/me", headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    problem = response.json()
    assert problem["status"] == 401
    assert problem["code"] == "unauthorized"


async def test_login_rehashes_the_password_when_argon2_costs_change(
    client: httpx.AsyncClient, register: Any, email: str, query: Any, auth_settings: Settings
) -> None:
    user = await register(email)
    [(old_hash,)] = await query("SELECT password_hash FROM users WHERE id = :id", id=user["id"])
    stronger = Argon2Settings(time_cost=2, memory_cost_kib=16_384, parallelism=1)
    assert f"m={stronger.memory_cost_kib},t={stronger.time_cost}" not in old_hash
    upgraded = create_app(auth_settings.model_copy(update={"argon2": stronger}))

    async with upgraded.router.lifespan_context(upgraded):
        transport = httpx.ASGITransport(app=upgraded)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as other:
            response = await _login(other, email)

    assert response.status_code == 200, response.text
    [(new_hash,)] = await query("SELECT password_hash FROM users WHERE id = :id", id=user["id"])
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$")
    assert f"m={stronger.memory_cost_kib},t={stronger.time_cost},p={stronger.parallelism}$" in (
        new_hash
    )
    # the rehashed password still logs in (also with the old costs configured)
    assert (await _login(client, email)).status_code == 200


async def test_login_keeps_the_hash_when_argon2_costs_are_unchanged(
    client: httpx.AsyncClient, register: Any, email: str, query: Any
) -> None:
    user = await register(email)
    [(before,)] = await query("SELECT password_hash FROM users WHERE id = :id", id=user["id"])

    assert (await _login(client, email)).status_code == 200

    [(after,)] = await query("SELECT password_hash FROM users WHERE id = :id", id=user["id"])
    assert after == before


async def test_access_token_is_rejected_by_an_app_with_another_audience(
    auth_app: FastAPI, client: httpx.AsyncClient, register: Any, email: str
) -> None:
    """``aud`` is checked: a token for ``tessera`` is no good to a verifier expecting another."""
    from tessera.common.security import TokenVerifier, Unauthorized

    await register(email)
    token = (await _login(client, email)).json()["access_token"]
    verifier: TokenVerifier = auth_app.state.verifier
    other = TokenVerifier(
        verifier.settings.model_copy(update={"audience": "someone-else"}), verifier.keys
    )

    assert (await verifier.verify(token)).user_id is not None
    with pytest.raises(Unauthorized):
        await other.verify(token)
