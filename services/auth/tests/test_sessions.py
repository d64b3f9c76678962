"""The caller's sessions: listing, revoking one, and what a revocation leaves behind."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt

from tessera.auth.settings import Settings
from tessera.common.runtime import ServiceRuntime

PASSWORD = "correct horse battery staple"
FIELDS = {
    "id",
    "created_at",
    "last_used_at",
    "expires_at",
    "ip_address",
    "user_agent",
    "current",
    "revoked",
}


async def _login(client: httpx.AsyncClient, email: str, agent: str = "pytest") -> dict[str, Any]:
    response = await client.post(
        "/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"User-Agent": agent},
    )
    assert response.status_code == 200, response.text
    return response.json()


def _auth(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _sid(tokens: dict[str, Any]) -> str:
    return jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"]


async def test_sessions_lists_the_callers_logins_newest_first_flagging_the_current_one(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    await register(email)
    logins = [await _login(client, email, agent=f"browser-{i}") for i in range(3)]
    await register()  # someone else's sessions never show
    caller = logins[1]

    response = await client.get("/auth/sessions", headers=_auth(caller))

    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 3
    assert (page["limit"], page["offset"]) == (20, 0)
    items = page["items"]
    assert [i["id"] for i in items] == [_sid(t) for t in reversed(logins)]
    assert [i["user_agent"] for i in items] == ["browser-2", "browser-1", "browser-0"]
    assert [i["current"] for i in items] == [False, True, False]
    assert all(set(i) == FIELDS for i in items)
    assert not any(i["revoked"] for i in items)
    assert all(i["ip_address"] for i in items)


async def test_sessions_paginate_with_limit_and_offset(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    await register(email)
    logins = [await _login(client, email) for _ in range(5)]
    newest_first = [_sid(t) for t in reversed(logins)]

    pages = []
    for offset in (0, 2, 4):
        response = await client.get(
            "/auth/sessions", params={"limit": 2, "offset": offset}, headers=_auth(logins[0])
        )
        assert response.status_code == 200, response.text
        pages.append(response.json())

    assert [p["total"] for p in pages] == [5, 5, 5]
    assert [[i["id"] for i in p["items"]] for p in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
    ]
    too_big = await client.get("/auth/sessions", params={"limit": 1000}, headers=_auth(logins[0]))
    assert too_big.status_code == 422


async def test_sessions_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/auth/sessions")).status_code == 401


async def test_deleting_one_of_my_sessions_revokes_it_and_it_is_listed_as_revoked(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    await register(email)
    mine, other_device = await _login(client, email), await _login(client, email)

    response = await client.delete(f"/auth/sessions/{_sid(other_device)}", headers=_auth(mine))

    assert response.status_code == 204, response.text
    me = await client.get("/auth/me", headers=_auth(other_device))
    assert me.status_code == 401
    refreshed = await client.post(
        "/auth/token/refresh", json={"refresh_token": other_device["refresh_token"]}
    )
    assert refreshed.status_code == 401
    # the caller's own session goes on working
    assert (await client.get("/auth/me", headers=_auth(mine))).status_code == 200
    listed = (await client.get("/auth/sessions", headers=_auth(mine))).json()["items"]
    assert {i["id"]: i["revoked"] for i in listed} == {_sid(other_device): True, _sid(mine): False}
    # deleting it again is harmless
    again = await client.delete(f"/auth/sessions/{_sid(other_device)}", headers=_auth(mine))
    assert again.status_code == 204


async def test_deleting_another_users_session_is_404_like_an_unknown_id(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    await register(email)
    victim_email = f"victim-{email}"
    await register(victim_email)
    attacker, victim = await _login(client, email), await _login(client, victim_email)

    theirs = await client.delete(f"/auth/sessions/{_sid(victim)}", headers=_auth(attacker))
    unknown = await client.delete(f"/auth/sessions/{uuid.uuid4()}", headers=_auth(attacker))

    for response in (theirs, unknown):
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "session_not_found"
    ignore = {"instance", "request_id"}
    assert {k: v for k, v in theirs.json().items() if k not in ignore} == {
        k: v for k, v in unknown.json().items() if k not in ignore
    }
    assert (await client.get("/auth/me", headers=_auth(victim))).status_code == 200


async def test_revoked_session_is_deny_listed_in_redis_for_at_least_an_access_token_lifetime(
    client: httpx.AsyncClient,
    register: Any,
    email: str,
    runtime: ServiceRuntime,
    auth_settings: Settings,
) -> None:
    await register(email)
    tokens = await _login(client, email)
    key = f"{auth_settings.redis.key_prefix}revoked:sid:{_sid(tokens)}"
    assert await runtime.redis.exists(key) == 0

    assert (await client.post("/auth/logout", headers=_auth(tokens))).status_code == 204

    ttl = await runtime.redis.ttl(key)
    assert ttl >= auth_settings.access_token_ttl_s
    # and not forever: the key goes once every token of the session has expired
    assert ttl <= auth_settings.access_token_ttl_s + 120


async def test_revoking_a_session_writes_one_session_revoked_event_to_the_outbox(
    client: httpx.AsyncClient, register: Any, email: str, query: Any
) -> None:
    user = await register(email)
    mine, other_device = await _login(client, email), await _login(client, email)

    await client.delete(f"/auth/sessions/{_sid(other_device)}", headers=_auth(mine))
    await client.delete(f"/auth/sessions/{_sid(other_device)}", headers=_auth(mine))

    rows = await query(
        "SELECT event_type, routing_key, payload FROM outbox "
        "WHERE payload->'data'->>'session_id' = :sid",
        sid=_sid(other_device),
    )
    assert len(rows) == 1  # revoking twice publishes once
    [(event_type, routing_key, payload)] = rows
    assert event_type == "auth.session.revoked"
    assert routing_key == "auth.session.revoked.v1"
    assert payload["subject"] == _sid(other_device)
    assert payload["data"] == {
        "session_id": _sid(other_device),
        "user_id": user["id"],
        "reason": "revoked_by_user",
    }
