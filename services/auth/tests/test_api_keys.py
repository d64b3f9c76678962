"""Personal API keys: shown once, stored hashed, listed without the key, revoked."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tessera.auth.models import ApiKey
from tessera.common.security import api_key_usable

pytestmark = pytest.mark.usefixtures("auth_app")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_key_is_shown_once_and_stored_only_as_its_hash(
    client: httpx.AsyncClient, register: Any, login_as: Any, query: Any
) -> None:
    token = await login_as((await register())["email"])
    created = await client.post(
        "/auth/api-keys",
        json={"name": "misp sync", "allowed_cidrs": ["10.0.0.0/8", "2001:db8::1"]},
        headers=_auth(token),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key = body["key"]
    assert key.startswith(body["prefix"] + "_")
    assert body["allowed_cidrs"] == ["10.0.0.0/8", "2001:db8::1/128"]

    [(stored, row_text)] = await query(
        "SELECT key_hash, k::text FROM api_keys k WHERE id = :id", id=body["id"]
    )
    assert stored == hashlib.sha256(key.encode()).hexdigest()
    assert key not in row_text

    listed = (await client.get("/auth/api-keys", headers=_auth(token))).json()
    assert listed["total"] == 1
    assert "key" not in listed["items"][0]
    assert key not in str(listed)

    [(event,)] = await query(
        "SELECT payload FROM outbox WHERE event_type = 'auth.api_key.created' "
        "AND payload->>'subject' = :id",
        id=body["id"],
    )
    assert event["data"]["key_hash"] == stored
    assert key not in str(event)


async def test_revoked_key_is_announced_and_another_users_key_is_404(
    client: httpx.AsyncClient, register: Any, login_as: Any, query: Any
) -> None:
    owner = await login_as((await register())["email"])
    other = await login_as((await register())["email"])
    key_id = (await client.post("/auth/api-keys", json={"name": "k"}, headers=_auth(owner))).json()[
        "id"
    ]

    assert (
        await client.delete(f"/auth/api-keys/{key_id}", headers=_auth(other))
    ).status_code == 404
    assert (
        await client.delete(f"/auth/api-keys/{key_id}", headers=_auth(owner))
    ).status_code == 204
    assert (
        await client.delete(f"/auth/api-keys/{key_id}", headers=_auth(owner))
    ).status_code == 204
    revoked = await query(
        "SELECT 1 FROM outbox "
        "WHERE event_type = 'auth.api_key.revoked' AND payload->>'subject' = :id",
        id=key_id,
    )
    assert len(revoked) == 1, "revoking twice announces once"
    listed = (await client.get("/auth/api-keys", headers=_auth(owner))).json()
    assert listed["items"][0]["revoked_at"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "k", "allowed_cidrs": ["not-a-network"]}, "allowed_cidrs.0"),
        ({"name": "k", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "k", "scope": "all"}, "scope"),
    ],
)
async def test_bad_input_names_the_field(
    client: httpx.AsyncClient, register: Any, login_as: Any, body: dict[str, Any], field: str
) -> None:
    token = await login_as((await register())["email"])
    r = await client.post("/auth/api-keys", json=body, headers=_auth(token))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]]


def test_an_auth_key_row_is_usable_only_unrevoked_unexpired_and_from_its_networks() -> None:
    now = datetime.now(UTC)
    key = ApiKey(name="k", prefix="tsk_x", key_hash="0" * 64, allowed_cidrs=["192.0.2.0/24"])
    assert api_key_usable(key, client_ip="192.0.2.7", now=now)
    assert not api_key_usable(key, client_ip="198.51.100.7", now=now)
    assert not api_key_usable(key, client_ip=None, now=now)
    assert not api_key_usable(None, client_ip="192.0.2.7", now=now)
    expired = ApiKey(
        name="k", prefix="tsk_x", key_hash="1" * 64, expires_at=now - timedelta(seconds=1)
    )
    assert not api_key_usable(expired, client_ip=None, now=now)
    revoked = ApiKey(name="k", prefix="tsk_x", key_hash="2" * 64, revoked_at=now)
    assert not api_key_usable(revoked, client_ip=None, now=now)
    anywhere = ApiKey(name="k", prefix="tsk_x", key_hash="3" * 64)
    assert api_key_usable(anywhere, client_ip="203.0.113.1", now=now)


async def test_api_keys_need_a_signed_in_user(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/api-keys", json={"name": "k"})
    assert r.status_code == 401
