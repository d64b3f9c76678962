"""The JWKS: public keys only, cacheable, enough for another service to verify tokens."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tessera.auth.settings import Settings
from tessera.common.security import JWKSKeySource, TokenVerifier, Unauthorized

JWKS = "/auth/.well-known/jwks.json"
PASSWORD = "correct horse battery staple"
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}


async def _token(client: httpx.AsyncClient, register: Any, email: str) -> str:
    await register(email)
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def test_jwks_is_cacheable_and_lists_public_keys_only(client: httpx.AsyncClient) -> None:
    response = await client.get(JWKS)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    cache_control = response.headers["cache-control"]
    max_age = [p for p in cache_control.split(",") if p.strip().startswith("max-age=")]
    assert max_age, cache_control
    assert int(max_age[0].split("=")[1]) > 0
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert {"kid", "alg", "kty"} <= set(key)
        assert key["alg"] in {"EdDSA", "ES256"}
        assert key.get("use", "sig") == "sig"
        assert not PRIVATE_MEMBERS & set(key), key
    assert len({k["kid"] for k in keys}) == len(keys)


async def test_token_kid_is_served_in_the_jwks(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    token = await _token(client, register, email)

    kids = {k["kid"] for k in (await client.get(JWKS)).json()["keys"]}

    assert jwt.get_unverified_header(token)["kid"] in kids


async def test_token_verifies_against_the_served_jwks(
    client: httpx.AsyncClient, register: Any, email: str, auth_settings: Settings
) -> None:
    """What every other service does: fetch auth's JWKS over HTTP and verify locally."""
    token = await _token(client, register, email)
    me = (await client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})).json()
    keys = JWKSKeySource(f"http://test{JWKS}", client=client)
    verifier = TokenVerifier(auth_settings.jwt, keys)

    principal = await verifier.verify(token)

    assert str(principal.user_id) == me["id"]
    assert principal.token_id == jwt.decode(token, options={"verify_signature": False})["jti"]
    assert principal.session_id


async def test_token_signed_by_another_key_with_the_same_kid_is_rejected(
    client: httpx.AsyncClient, register: Any, email: str, auth_settings: Settings
) -> None:
    token = await _token(client, register, email)
    claims = jwt.decode(token, options={"verify_signature": False})
    kid = jwt.get_unverified_header(token)["kid"]
    forged = jwt.encode(
        claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid}
    )
    verifier = TokenVerifier(auth_settings.jwt, JWKSKeySource(f"http://test{JWKS}", client=client))

    with pytest.raises(Unauthorized):
        await verifier.verify(forged)


async def test_signing_key_private_part_is_encrypted_at_rest(
    client: httpx.AsyncClient, query: Any, auth_settings: Settings
) -> None:
    served = {k["kid"]: k for k in (await client.get(JWKS)).json()["keys"]}

    rows = await query("SELECT kid, algorithm, private_key_encrypted, public_jwk FROM signing_keys")

    assert rows
    assert served
    assert set(served) <= {row[0] for row in rows}, "every served key is one of ours"
    fernet = Fernet(auth_settings.key_encryption_key.get_secret_value().encode())
    for kid, algorithm, blob, public_jwk in rows:
        blob = bytes(blob)
        assert b"PRIVATE KEY" not in blob
        assert not blob.startswith(b"-----BEGIN")
        pem = fernet.decrypt(blob)  # only the key-encryption key opens it
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        private = serialization.load_pem_private_key(pem, password=None)
        if kid in served:
            assert served[kid] == public_jwk
            assert served[kid]["alg"] == algorithm
        if algorithm == "EdDSA":
            assert isinstance(private, ed25519.Ed25519PrivateKey)
            raw = private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            x = jwt.utils.base64url_encode(raw).decode()
            assert public_jwk["x"] == x
