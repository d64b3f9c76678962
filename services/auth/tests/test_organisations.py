"""Organisations, memberships and roles, through HTTP with real Postgres."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
import pytest

pytestmark = pytest.mark.usefixtures("auth_app")


async def _org(client: httpx.AsyncClient, token: str, name: str | None = None) -> dict[str, Any]:
    r = await client.post(
        "/auth/organisations",
        json={"name": name or f"Org {uuid.uuid4().hex[:8]}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text
    return r.json()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_creator_is_admin_and_the_events_are_in_the_outbox(
    client: httpx.AsyncClient, register: Any, login_as: Any, query: Any
) -> None:
    user = await register()
    token = await login_as(user["email"])
    org = await _org(client, token)

    members = (
        await client.get(f"/auth/organisations/{org['id']}/members", headers=_auth(token))
    ).json()
    assert members["total"] == 1
    assert members["items"][0]["user_id"] == user["id"]
    assert members["items"][0]["role"] == "admin"
    events = await query(
        "SELECT event_type FROM outbox WHERE payload->>'subject' = :s ORDER BY id", s=org["id"]
    )
    assert [e[0] for e in events] == ["auth.organisation.created", "auth.membership.granted"]


async def test_access_token_carries_the_users_organisations_and_roles(
    client: httpx.AsyncClient, register: Any, login_as: Any
) -> None:
    user = await register()
    token = await login_as(user["email"])
    org = await _org(client, token)
    claims = jwt.decode(await login_as(user["email"]), options={"verify_signature": False})
    assert claims["orgs"] == {org["id"]: "admin"}
    assert claims["roles"] == []


async def test_name_is_unique_whatever_the_case_and_spacing(
    client: httpx.AsyncClient, register: Any, login_as: Any
) -> None:
    token = await login_as((await register())["email"])
    name = f"Acme {uuid.uuid4().hex[:6]}"
    await _org(client, token, name)
    r = await client.post(
        "/auth/organisations",
        json={"name": "  " + name.upper().replace(" ", "   ")},
        headers=_auth(token),
    )
    assert r.status_code == 409
    assert r.json()["code"] == "organisation_name_taken"


async def test_outsider_cannot_see_or_change_an_organisation(
    client: httpx.AsyncClient, register: Any, login_as: Any
) -> None:
    owner = await login_as((await register())["email"])
    outsider = await login_as((await register())["email"])
    org = await _org(client, owner)

    assert (
        await client.get(f"/auth/organisations/{org['id']}", headers=_auth(outsider))
    ).status_code == 404
    assert (
        await client.patch(
            f"/auth/organisations/{org['id']}", json={"name": "Mine now"}, headers=_auth(outsider)
        )
    ).status_code == 404
    assert (
        await client.get(f"/auth/organisations/{org['id']}/members", headers=_auth(outsider))
    ).status_code == 404
    listed = (await client.get("/auth/organisations", headers=_auth(outsider))).json()
    assert org["id"] not in [o["id"] for o in listed["items"]]


async def test_member_reads_but_only_admins_change(
    client: httpx.AsyncClient, register: Any, login_as: Any, query: Any
) -> None:
    owner_user = await register()
    member_user = await register()
    owner = await login_as(owner_user["email"])
    member = await login_as(member_user["email"])
    org = await _org(client, owner)

    added = await client.post(
        f"/auth/organisations/{org['id']}/members",
        json={"email": member_user["email"], "role": "member"},
        headers=_auth(owner),
    )
    assert added.status_code == 201, added.text
    assert (
        await client.get(f"/auth/organisations/{org['id']}", headers=_auth(member))
    ).status_code == 200
    renamed = await client.patch(
        f"/auth/organisations/{org['id']}",
        json={"name": "Renamed by member"},
        headers=_auth(member),
    )
    assert renamed.status_code == 403
    assert renamed.json()["code"] == "not_organisation_admin"

    new_name = f"Renamed {uuid.uuid4().hex[:6]}"
    ok = await client.patch(
        f"/auth/organisations/{org['id']}", json={"name": new_name}, headers=_auth(owner)
    )
    assert ok.status_code == 200
    assert ok.json()["name"] == new_name
    updated = await query(
        "SELECT payload->'data'->>'name' FROM outbox "
        "WHERE event_type = 'auth.organisation.updated' AND payload->>'subject' = :s",
        s=org["id"],
    )
    assert [u[0] for u in updated] == [new_name]


async def test_last_admin_cannot_leave_or_be_demoted(
    client: httpx.AsyncClient, register: Any, login_as: Any
) -> None:
    owner_user = await register()
    owner = await login_as(owner_user["email"])
    org = await _org(client, owner)

    leave = await client.delete(
        f"/auth/organisations/{org['id']}/members/{owner_user['id']}", headers=_auth(owner)
    )
    assert leave.status_code == 409
    assert leave.json()["code"] == "last_admin"
    demote = await client.post(
        f"/auth/organisations/{org['id']}/members",
        json={"email": owner_user["email"], "role": "member"},
        headers=_auth(owner),
    )
    assert demote.status_code == 409


async def test_admin_removes_a_member_who_then_loses_access(
    client: httpx.AsyncClient, register: Any, login_as: Any, query: Any
) -> None:
    owner = await login_as((await register())["email"])
    member_user = await register()
    member = await login_as(member_user["email"])
    org = await _org(client, owner)
    await client.post(
        f"/auth/organisations/{org['id']}/members",
        json={"email": member_user["email"]},
        headers=_auth(owner),
    )
    removed = await client.delete(
        f"/auth/organisations/{org['id']}/members/{member_user['id']}", headers=_auth(owner)
    )
    assert removed.status_code == 204
    assert (
        await client.get(f"/auth/organisations/{org['id']}", headers=_auth(member))
    ).status_code == 404
    revoked = await query(
        "SELECT payload->'data'->>'user_id' FROM outbox "
        "WHERE event_type = 'auth.membership.revoked' AND payload->>'subject' = :s",
        s=org["id"],
    )
    assert [r[0] for r in revoked] == [member_user["id"]]


async def test_adding_an_unknown_email_is_404(
    client: httpx.AsyncClient, register: Any, login_as: Any
) -> None:
    owner = await login_as((await register())["email"])
    org = await _org(client, owner)
    r = await client.post(
        f"/auth/organisations/{org['id']}/members",
        json={"email": f"nobody-{uuid.uuid4().hex}@example.com"},
        headers=_auth(owner),
    )
    assert r.status_code == 404
    assert r.json()["code"] == "user_not_found"


async def test_superadmin_sees_every_organisation(
    client: httpx.AsyncClient, register: Any, login_as: Any, query: Any, runtime: Any
) -> None:
    owner = await login_as((await register())["email"])
    org = await _org(client, owner)
    admin_user = await register()
    async with runtime.sessions() as session:
        from sqlalchemy import text

        await session.execute(
            text("UPDATE users SET is_superadmin = true WHERE id = :id"), {"id": admin_user["id"]}
        )
        await session.commit()
    admin = await login_as(admin_user["email"])
    assert jwt.decode(admin, options={"verify_signature": False})["roles"] == ["superadmin"]
    assert (
        await client.get(f"/auth/organisations/{org['id']}", headers=_auth(admin))
    ).status_code == 200
    page = (await client.get("/auth/organisations?limit=200", headers=_auth(admin))).json()
    [(everything,)] = await query("SELECT count(*) FROM organisations")
    assert page["total"] == everything, "a superadmin, member of none, sees every organisation"
    assert page["limit"] == 200


async def test_lists_are_paginated_and_bounded(
    client: httpx.AsyncClient, register: Any, login_as: Any
) -> None:
    token = await login_as((await register())["email"])
    for _ in range(3):
        await _org(client, token)
    first = (await client.get("/auth/organisations?limit=2", headers=_auth(token))).json()
    second = (await client.get("/auth/organisations?limit=2&offset=2", headers=_auth(token))).json()
    assert first["total"] == second["total"] == 3
    assert len(first["items"]) == 2
    assert len(second["items"]) == 1
    too_many = await client.get("/auth/organisations?limit=1000", headers=_auth(token))
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "limit"
