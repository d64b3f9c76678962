"""The audit log: entries for changes and logins, readable by the right people only."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text

from tessera.auth.audit import record
from tessera.common.db import UnitOfWork

pytestmark = pytest.mark.usefixtures("auth_app")

PASSWORD = "correct horse battery staple"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _superadmin(register: Any, login_as: Any, runtime: Any) -> tuple[dict[str, Any], str]:
    user = await register()
    async with runtime.sessions() as session:
        await session.execute(
            text("UPDATE users SET is_superadmin = true WHERE id = :id"), {"id": user["id"]}
        )
        await session.commit()
    return user, await login_as(user["email"])


async def test_registration_and_logins_are_audited_with_where_from_and_no_secret(
    client: httpx.AsyncClient, register: Any, login_as: Any, runtime: Any
) -> None:
    user = await register()
    bad = await client.post(
        "/auth/login",
        json={"email": user["email"], "password": "the wrong one"},
        headers={"User-Agent": "audit-test/1.0", "X-Request-ID": "audit-req-1"},
    )
    assert bad.status_code == 401
    await login_as(user["email"])
    _, admin = await _superadmin(register, login_as, runtime)

    page = (
        await client.get(f"/auth/audit?target_id={user['id']}&limit=10", headers=_auth(admin))
    ).json()
    actions = [e["action"] for e in page["items"]]
    assert actions == ["login.succeeded", "login.failed", "user.registered"]
    failed = page["items"][1]
    assert failed["user_agent"] == "audit-test/1.0"
    assert failed["request_id"] == "audit-req-1"
    assert failed["ip_address"]
    assert "the wrong one" not in str(page)
    assert PASSWORD not in str(page)
    assert page["items"][2]["after"]["email"] == user["email"]


async def test_filters_and_pagination(
    client: httpx.AsyncClient, register: Any, login_as: Any, runtime: Any
) -> None:
    _, admin = await _superadmin(register, login_as, runtime)
    user = await register()
    for _ in range(3):
        await login_as(user["email"])
    query = f"/auth/audit?target_id={user['id']}&action=login.succeeded"
    first = (await client.get(f"{query}&limit=2", headers=_auth(admin))).json()
    rest = (await client.get(f"{query}&limit=2&offset=2", headers=_auth(admin))).json()
    assert first["total"] == rest["total"] == 3
    assert len(first["items"]) == 2
    assert len(rest["items"]) == 1
    bad = await client.get("/auth/audit?since=yesterday", headers=_auth(admin))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "since"


async def test_organisation_admin_sees_only_their_organisations_entries(
    client: httpx.AsyncClient, register: Any, login_as: Any
) -> None:
    alice = await login_as((await register())["email"])
    bob = await login_as((await register())["email"])
    mine = (
        await client.post(
            "/auth/organisations", json={"name": f"A {uuid.uuid4().hex[:8]}"}, headers=_auth(alice)
        )
    ).json()
    theirs = (
        await client.post(
            "/auth/organisations", json={"name": f"B {uuid.uuid4().hex[:8]}"}, headers=_auth(bob)
        )
    ).json()

    page = (await client.get("/auth/audit?limit=200", headers=_auth(alice))).json()
    organisations = {e["organisation_id"] for e in page["items"]}
    assert mine["id"] in organisations
    assert theirs["id"] not in organisations
    assert organisations == {mine["id"]}


async def test_a_plain_user_cannot_read_the_audit_log(
    client: httpx.AsyncClient, register: Any, login_as: Any
) -> None:
    token = await login_as((await register())["email"])
    r = await client.get("/auth/audit", headers=_auth(token))
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_secrets_handed_to_the_audit_log_are_masked(runtime: Any) -> None:
    uow: UnitOfWork = runtime.uow()
    marker = uuid.uuid4().hex
    async with uow:
        record(
            uow,
            actor_id=None,
            action="test.masking",
            target_type="test",
            target_id=marker,
            after={"password": "hunter2-secret", "nested": {"refresh_token": "rt-secret"}},
        )
        await uow.commit()
    async with runtime.sessions() as session:
        [(after,)] = (
            await session.execute(
                text("SELECT after FROM audit_log WHERE target_id = :t"), {"t": marker}
            )
        ).all()
    assert "hunter2-secret" not in str(after)
    assert "rt-secret" not in str(after)


async def _entries(runtime: Any, target_id: str) -> list[Any]:
    async with runtime.sessions() as session:
        return list(
            (
                await session.execute(
                    text(
                        "SELECT action, before, after FROM audit_log WHERE target_id = :t "
                        "ORDER BY id"
                    ),
                    {"t": target_id},
                )
            ).all()
        )


async def test_password_change_and_the_sessions_it_ends_are_audited(
    client: httpx.AsyncClient, register: Any, login_as: Any, runtime: Any
) -> None:
    user = await register()
    other_session = await login_as(user["email"])
    current = await login_as(user["email"])
    changed = await client.post(
        "/auth/password/change",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase 7"},
        headers=_auth(current),
    )
    assert changed.status_code == 204, changed.text

    actions = [row[0] for row in await _entries(runtime, user["id"])]
    assert "user.password_changed" in actions
    sid = jwt.decode(other_session, options={"verify_signature": False})["sid"]
    [(action, _, after)] = await _entries(runtime, sid)
    assert action == "session.revoked"
    assert after == {"reason": "password_changed"}
    assert "a brand new passphrase 7" not in str(await _entries(runtime, user["id"]))


async def test_deleting_an_account_erases_what_the_audit_log_said_about_the_person(
    client: httpx.AsyncClient, register: Any, login_as: Any, runtime: Any
) -> None:
    user = await register()
    token = await login_as(user["email"])
    renamed = await client.patch(
        "/auth/me", json={"full_name": "Someone Private"}, headers=_auth(token)
    )
    assert renamed.status_code == 200
    deleted = await client.request(
        "DELETE", "/auth/me", json={"password": PASSWORD}, headers=_auth(token)
    )
    assert deleted.status_code == 204, deleted.text

    entries = await _entries(runtime, user["id"])
    actions = [row[0] for row in entries]
    assert actions[0] == "user.registered"
    assert "user.updated" in actions
    assert actions[-1] == "user.deleted"
    assert user["email"] not in str(entries)
    assert "Someone Private" not in str(entries)
