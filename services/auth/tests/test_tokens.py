"""Refresh-token rotation, reuse detection and logout, over HTTP against the real app."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jwt
from sqlalchemy import text

PASSWORD = "correct horse battery staple"


async def _login(client: httpx.AsyncClient, register: Any, email: str) -> dict[str, Any]:
    await register(email)
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


async def _refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post("/auth/token/refresh", json={"refresh_token": refresh_token})


async def _me(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    return await client.get("/auth/me", headers={"Authorization": f"Bearer {access_token}"})


def _claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def _assert_invalid_refresh(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "invalid_refresh_token"


async def test_refresh_returns_a_new_working_pair_in_the_same_session(
    client: httpx.AsyncClient, register: Any, email: str, query: Any
) -> None:
    first = await _login(client, register, email)

    response = await _refresh(client, first["refresh_token"])

    assert response.status_code == 200, response.text
    second = response.json()
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["token_type"] == "Bearer"
    assert second["refresh_token"] != first["refresh_token"]
    old, new = _claims(first["access_token"]), _claims(second["access_token"])
    assert new["sid"] == old["sid"]
    assert new["jti"] != old["jti"]
    assert (await _me(client, second["access_token"])).status_code == 200
    # the new refresh token rotates in turn
    assert (await _refresh(client, second["refresh_token"])).status_code == 200
    rows = await query(
        "SELECT r.expires_at = s.expires_at AS same_expiry, r.used_at IS NOT NULL AS used, "
        "s.last_used_at IS NOT NULL AS touched FROM refresh_tokens r "
        "JOIN sessions s ON s.id = r.session_id WHERE s.id = :sid ORDER BY r.created_at",
        sid=old["sid"],
    )
    # the family keeps the login's absolute expiry; all but the newest token are used
    assert [(r.same_expiry, r.used, r.touched) for r in rows] == [
        (True, True, True),
        (True, True, True),
        (True, False, True),
    ]


async def test_unknown_refresh_token_is_401_problem(client: httpx.AsyncClient) -> None:
    _assert_invalid_refresh(await _refresh(client, "not-a-refresh-token-anyone-was-given"))


async def test_expired_refresh_token_is_refused(
    client: httpx.AsyncClient, register: Any, email: str, runtime: Any
) -> None:
    tokens = await _login(client, register, email)
    sid = _claims(tokens["access_token"])["sid"]
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            text(
                "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' "
                "WHERE session_id = :sid"
            ),
            {"sid": sid},
        )

    _assert_invalid_refresh(await _refresh(client, tokens["refresh_token"]))


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient, register: Any, email: str, query: Any
) -> None:
    """A thief replays the old token after the owner rotated: both lose the session."""
    stolen = await _login(client, register, email)
    owner = (await _refresh(client, stolen["refresh_token"])).json()
    assert (await _me(client, owner["access_token"])).status_code == 200

    replay = await _refresh(client, stolen["refresh_token"])

    _assert_invalid_refresh(replay)
    # the owner's newer refresh token and its access token are dead too
    _assert_invalid_refresh(await _refresh(client, owner["refresh_token"]))
    assert (await _me(client, owner["access_token"])).status_code == 401
    sid = _claims(owner["access_token"])["sid"]
    [(reason,)] = await query("SELECT revoked_reason FROM sessions WHERE id = :sid", sid=sid)
    assert reason == "refresh_token_reuse"
    events = await query(
        "SELECT payload->'data'->>'reason' AS reason FROM outbox "
        "WHERE event_type = 'auth.session.revoked' AND payload->'data'->>'session_id' = :sid",
        sid=sid,
    )
    assert [e.reason for e in events] == ["refresh_token_reuse"]


async def test_reuse_revokes_only_that_session_not_the_users_others(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    tokens = await _login(client, register, email)
    other = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()
    await _refresh(client, tokens["refresh_token"])

    _assert_invalid_refresh(await _refresh(client, tokens["refresh_token"]))

    assert (await _me(client, other["access_token"])).status_code == 200
    assert (await _refresh(client, other["refresh_token"])).status_code == 200


async def test_two_concurrent_refreshes_with_one_token_succeed_exactly_once(
    client: httpx.AsyncClient, register: Any, email: str, query: Any
) -> None:
    tokens = await _login(client, register, email)

    responses = await asyncio.gather(
        _refresh(client, tokens["refresh_token"]), _refresh(client, tokens["refresh_token"])
    )

    assert sorted(r.status_code for r in responses) == [200, 401]
    # the row lock let one rotate; the other saw a used token (a reuse) and rotated nothing
    sid = _claims(tokens["access_token"])["sid"]
    [(count,)] = await query("SELECT count(*) FROM refresh_tokens WHERE session_id = :sid", sid=sid)
    assert count == 2


async def test_logout_refuses_the_access_token_at_once_and_the_refresh_token(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    tokens = await _login(client, register, email)
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}

    response = await client.post("/auth/logout", headers=auth)

    assert response.status_code == 204, response.text
    assert response.content == b""
    me = await _me(client, tokens["access_token"])
    assert me.status_code == 401
    assert me.json()["detail"] == "token revoked"
    _assert_invalid_refresh(await _refresh(client, tokens["refresh_token"]))


async def test_logout_with_a_refresh_token_of_another_own_session_ends_both(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    first = await _login(client, register, email)
    second = (await client.post("/auth/login", json={"email": email, "password": PASSWORD})).json()

    response = await client.post(
        "/auth/logout",
        headers={"Authorization": f"Bearer {first['access_token']}"},
        json={"refresh_token": second["refresh_token"]},
    )

    assert response.status_code == 204, response.text
    _assert_invalid_refresh(await _refresh(client, second["refresh_token"]))
    assert (await _me(client, second["access_token"])).status_code == 401


async def test_logout_with_someone_elses_refresh_token_leaves_their_session_alone(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    mine = await _login(client, register, email)
    theirs = await _login(client, register, f"other-{email}")

    response = await client.post(
        "/auth/logout",
        headers={"Authorization": f"Bearer {mine['access_token']}"},
        json={"refresh_token": theirs["refresh_token"]},
    )

    assert response.status_code == 204
    assert (await _me(client, theirs["access_token"])).status_code == 200
    assert (await _refresh(client, theirs["refresh_token"])).status_code == 200


async def test_logout_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/logout")

    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_refreshed_access_token_carries_the_users_current_organisations(
    client: httpx.AsyncClient, register: Any, email: str
) -> None:
    tokens = await _login(client, register, email)
    assert _claims(tokens["access_token"])["orgs"] == {}
    created = await client.post(
        "/auth/organisations",
        json={"name": f"Org {email}"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert created.status_code == 201, created.text

    refreshed = (await _refresh(client, tokens["refresh_token"])).json()

    assert _claims(refreshed["access_token"])["orgs"] == {created.json()["id"]: "admin"}
