"""Account flows over HTTP: verification, recovery, password change, login links, profile and
deletion, with the attacks on each (replayed, expired, foreign-purpose tokens; enumeration)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tessera.auth import domain
from tessera.common.runtime import ServiceRuntime

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase 42"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": password})


async def _access(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    response = await _login(client, email, password)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _events(query: Any, user_id: str, event_type: str) -> list[dict[str, Any]]:
    """The envelopes of ``event_type`` about ``user_id`` in the outbox, oldest first."""
    rows = await query(
        "SELECT payload FROM outbox WHERE event_type = :t "
        "AND (payload->'data'->>'user_id' = :id OR payload->>'subject' = :id) ORDER BY id",
        t=event_type,
        id=user_id,
    )
    return [r.payload for r in rows]


async def _execute(runtime: ServiceRuntime, sql: str, **params: Any) -> None:
    async with runtime.sessions() as session:
        await session.execute(text(sql), params)
        await session.commit()


async def _reset_token(client: httpx.AsyncClient, query: Any, user: dict[str, Any]) -> str:
    response = await client.post("/auth/password/recover", json={"email": user["email"]})
    assert response.status_code == 202, response.text
    events = await _events(query, user["id"], "auth.password.recovery_requested")
    return str(events[-1]["data"]["reset_token"])


async def _login_token(client: httpx.AsyncClient, query: Any, user: dict[str, Any]) -> str:
    response = await client.post("/auth/login-link", json={"email": user["email"]})
    assert response.status_code == 202, response.text
    events = await _events(query, user["id"], "auth.login_link.requested")
    return str(events[-1]["data"]["login_token"])


def _assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem["code"] == code, problem
    return problem


# --- email verification ---------------------------------------------------------------------


async def test_verify_with_the_registration_token_marks_the_email_verified(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    assert user["email_verified"] is False
    [registered] = await _events(query, user["id"], "auth.user.registered")

    response = await client.post(
        "/auth/verify", json={"token": registered["data"]["verification_token"]}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {**user, "email_verified": True}
    [(verified_at,)] = await query(
        "SELECT email_verified_at FROM users WHERE id = :id", id=user["id"]
    )
    assert verified_at is not None


async def test_verification_token_works_once(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    [registered] = await _events(query, user["id"], "auth.user.registered")
    body = {"token": registered["data"]["verification_token"]}
    assert (await client.post("/auth/verify", json=body)).status_code == 200

    _assert_problem(await client.post("/auth/verify", json=body), 400, "invalid_token")


async def test_unknown_verification_token_is_400_invalid_token(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/auth/verify", json={"token": domain.new_token()})

    _assert_problem(response, 400, "invalid_token")


async def test_expired_verification_token_is_400_and_leaves_the_email_unverified(
    client: httpx.AsyncClient, register: Any, query: Any, runtime: ServiceRuntime
) -> None:
    user = await register()
    [registered] = await _events(query, user["id"], "auth.user.registered")
    await _execute(
        runtime,
        "UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE user_id = :id",
        id=uuid.UUID(user["id"]),
    )

    response = await client.post(
        "/auth/verify", json={"token": registered["data"]["verification_token"]}
    )

    _assert_problem(response, 400, "invalid_token")
    [(verified_at,)] = await query(
        "SELECT email_verified_at FROM users WHERE id = :id", id=user["id"]
    )
    assert verified_at is None


async def test_resend_mails_a_new_token_and_the_old_one_stops_working(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register(locale="en-GB")
    [registered] = await _events(query, user["id"], "auth.user.registered")

    response = await client.post("/auth/verify/resend", json={"email": user["email"].upper()})

    assert response.status_code == 202, response.text
    [resent] = await _events(query, user["id"], "auth.email_verification.requested")
    data = resent["data"]
    assert data["email"] == user["email"]
    assert data["full_name"] == user["full_name"]
    assert data["locale"] == "en-GB"
    assert data["verification_expires_at"]
    new_token = data["verification_token"]
    assert new_token != registered["data"]["verification_token"]
    stale = {"token": registered["data"]["verification_token"]}
    _assert_problem(await client.post("/auth/verify", json=stale), 400, "invalid_token")
    verified = await client.post("/auth/verify", json={"token": new_token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["email_verified"] is True


async def test_resend_answers_the_same_for_unknown_and_verified_addresses(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    [registered] = await _events(query, user["id"], "auth.user.registered")
    await client.post("/auth/verify", json={"token": registered["data"]["verification_token"]})

    verified = await client.post("/auth/verify/resend", json={"email": user["email"]})
    unknown = await client.post(
        "/auth/verify/resend", json={"email": f"nobody-{uuid.uuid4().hex}@example.com"}
    )

    assert verified.status_code == unknown.status_code == 202
    assert verified.json() == unknown.json()
    # nothing to verify: no mail
    assert await _events(query, user["id"], "auth.email_verification.requested") == []


# --- password recovery ------------------------------------------------------------------------


async def test_password_reset_sets_the_password_and_ends_every_session(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    first = await _access(client, user["email"])
    second = await _access(client, user["email"])
    token = await _reset_token(client, query, user)
    [event] = await _events(query, user["id"], "auth.password.recovery_requested")
    assert event["data"]["email"] == user["email"]
    assert event["data"]["full_name"] == user["full_name"]
    assert event["data"]["locale"] == user["locale"]
    [(stored_hash, expires_at)] = await query(
        "SELECT token_hash, expires_at FROM email_tokens "
        "WHERE user_id = :id AND purpose = 'password_reset'",
        id=user["id"],
    )
    assert stored_hash == hashlib.sha256(token.encode()).hexdigest()
    assert expires_at.isoformat() == event["data"]["expires_at"]

    response = await client.post(
        "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 204, response.text
    assert (await _login(client, user["email"])).status_code == 401
    fresh = await _access(client, user["email"], NEW_PASSWORD)
    # the link proved the mailbox: the address counts as verified
    assert (await client.get("/auth/me", headers=_bearer(fresh))).json()["email_verified"]
    for access in (first, second):
        me = await client.get("/auth/me", headers=_bearer(access))
        assert me.status_code == 401, me.text
    reasons = await query(
        "SELECT revoked_reason FROM sessions WHERE user_id = :id AND revoked_at IS NOT NULL",
        id=user["id"],
    )
    assert [r.revoked_reason for r in reasons] == ["password_reset", "password_reset"]
    [changed] = await _events(query, user["id"], "auth.password.changed")
    assert changed["data"] == {
        "user_id": user["id"],
        "email": user["email"],
        "full_name": user["full_name"],
        "locale": user["locale"],
    }
    [(changed_at,)] = await query(
        "SELECT password_changed_at FROM users WHERE id = :id", id=user["id"]
    )
    assert changed_at is not None


async def test_replayed_reset_token_is_400(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    token = await _reset_token(client, query, user)
    body = {"token": token, "new_password": NEW_PASSWORD}
    assert (await client.post("/auth/password/reset", json=body)).status_code == 204

    replay = await client.post(
        "/auth/password/reset", json={"token": token, "new_password": "yet another passphrase"}
    )

    _assert_problem(replay, 400, "invalid_token")
    assert (await _login(client, user["email"], NEW_PASSWORD)).status_code == 200


async def test_expired_reset_token_is_400(
    client: httpx.AsyncClient, register: Any, query: Any, runtime: ServiceRuntime
) -> None:
    user = await register()
    token = await _reset_token(client, query, user)
    await _execute(
        runtime,
        "UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = :h",
        h=domain.hash_token(token),
    )

    response = await client.post(
        "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )

    _assert_problem(response, 400, "invalid_token")
    assert (await _login(client, user["email"])).status_code == 200


async def test_reset_token_lives_15_minutes_by_default(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    await _reset_token(client, query, user)

    [(lifetime,)] = await query(
        "SELECT extract(epoch FROM expires_at - created_at) FROM email_tokens "
        "WHERE user_id = :id AND purpose = 'password_reset'",
        id=user["id"],
    )

    assert 899 <= float(lifetime) <= 901


async def test_login_link_token_is_refused_as_a_reset_token(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    login_token = await _login_token(client, query, user)

    response = await client.post(
        "/auth/password/reset", json={"token": login_token, "new_password": NEW_PASSWORD}
    )

    _assert_problem(response, 400, "invalid_token")
    assert (await _login(client, user["email"])).status_code == 200
    # nor is a verification token
    [registered] = await _events(query, user["id"], "auth.user.registered")
    misuse = await client.post(
        "/auth/password/reset",
        json={"token": registered["data"]["verification_token"], "new_password": NEW_PASSWORD},
    )
    _assert_problem(misuse, 400, "invalid_token")


async def test_a_newer_reset_request_voids_the_older_link(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    older = await _reset_token(client, query, user)
    newer = await _reset_token(client, query, user)

    stale = await client.post(
        "/auth/password/reset", json={"token": older, "new_password": NEW_PASSWORD}
    )

    _assert_problem(stale, 400, "invalid_token")
    fresh = await client.post(
        "/auth/password/reset", json={"token": newer, "new_password": NEW_PASSWORD}
    )
    assert fresh.status_code == 204, fresh.text


@pytest.mark.parametrize("path", ["/auth/password/recover", "/auth/login-link"])
async def test_mail_link_requests_answer_the_same_for_known_and_unknown_addresses(
    client: httpx.AsyncClient, register: Any, query: Any, path: str
) -> None:
    user = await register()
    unknown_email = f"nobody-{uuid.uuid4().hex}@example.com"

    known = await client.post(path, json={"email": user["email"]})
    unknown = await client.post(path, json={"email": unknown_email})

    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    ignore = {"date", "x-request-id", "traceparent", "server-timing"}
    assert {k: v for k, v in known.headers.items() if k not in ignore} == {
        k: v for k, v in unknown.headers.items() if k not in ignore
    }
    # only the real account gets a mail
    assert (
        await query("SELECT id FROM outbox WHERE payload->'data'->>'email' = :e", e=unknown_email)
        == []
    )


@pytest.mark.parametrize(
    ("path", "event_type"),
    [
        ("/auth/password/recover", "auth.password.recovery_requested"),
        ("/auth/login-link", "auth.login_link.requested"),
        ("/auth/verify/resend", "auth.email_verification.requested"),
    ],
)
async def test_mail_link_answer_is_sent_before_the_address_is_looked_up(
    auth_app: FastAPI, register: Any, query: Any, path: str, event_type: str
) -> None:
    """No timing oracle: the 202 leaves before any lookup, whether the account exists or not."""
    user = await register()
    body = json.dumps({"email": user["email"]}).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    responded = asyncio.Event()
    requests = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []
    events_when_answered: list[Any] = []

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await responded.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        if message["type"] == "http.response.body" and not message.get("more_body"):
            events_when_answered.extend(await _events(query, user["id"], event_type))
            responded.set()

    await auth_app(scope, receive, send)

    assert status == [202]
    assert events_when_answered == []  # the answer did not wait for the lookup
    assert len(await _events(query, user["id"], event_type)) == 1  # which then happened


async def test_reset_to_a_common_password_is_422_and_keeps_the_token(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    token = await _reset_token(client, query, user)

    weak = await client.post(
        "/auth/password/reset", json={"token": token, "new_password": "Password1234"}
    )

    problem = _assert_problem(weak, 422, "weak_password")
    assert {e["field"] for e in problem["errors"]} == {"new_password"}
    assert "too common" in problem["detail"]
    # the refused attempt rolled back: the link still works once
    strong = await client.post(
        "/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert strong.status_code == 204, strong.text


async def test_register_with_a_common_password_is_422_weak_password(
    client: httpx.AsyncClient, email: str
) -> None:
    body = {"email": email, "password": "QWERTYUIOP123", "full_name": "Eve"}

    response = await client.post("/auth/register", json=body)

    problem = _assert_problem(response, 422, "weak_password")
    assert {e["field"] for e in problem["errors"]} == {"password"}


def test_the_shipped_common_password_list_is_loaded_lower_cased() -> None:
    common = domain.common_passwords()

    assert len(common) > 5000
    assert {"password", "123456", "qwertyuiop", "iloveyou"} <= common
    assert all(p == p.lower() for p in common)
    assert PASSWORD not in common


# --- password change --------------------------------------------------------------------------


async def test_password_change_ends_other_sessions_but_not_the_callers(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    caller = await _access(client, user["email"])
    other = await _access(client, user["email"])

    response = await client.post(
        "/auth/password/change",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_bearer(caller),
    )

    assert response.status_code == 204, response.text
    assert (await client.get("/auth/me", headers=_bearer(caller))).status_code == 200
    assert (await client.get("/auth/me", headers=_bearer(other))).status_code == 401
    other_sid = jwt.decode(other, options={"verify_signature": False})["sid"]
    [(reason,)] = await query("SELECT revoked_reason FROM sessions WHERE id = :id", id=other_sid)
    assert reason == "password_changed"
    assert (await _login(client, user["email"])).status_code == 401
    assert (await _login(client, user["email"], NEW_PASSWORD)).status_code == 200
    assert len(await _events(query, user["id"], "auth.password.changed")) == 1


async def test_password_change_with_the_wrong_current_password_is_401(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    caller = await _access(client, user["email"])
    other = await _access(client, user["email"])

    response = await client.post(
        "/auth/password/change",
        json={"current_password": "not my password at all", "new_password": NEW_PASSWORD},
        headers=_bearer(caller),
    )

    _assert_problem(response, 401, "invalid_credentials")
    assert (await client.get("/auth/me", headers=_bearer(other))).status_code == 200
    assert (await _login(client, user["email"])).status_code == 200
    assert await _events(query, user["id"], "auth.password.changed") == []


async def test_password_change_needs_a_bearer_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/password/change",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )

    _assert_problem(response, 401, "unauthorized")


async def test_password_change_to_a_common_password_is_422_naming_new_password(
    client: httpx.AsyncClient, register: Any
) -> None:
    user = await register()
    caller = await _access(client, user["email"])

    response = await client.post(
        "/auth/password/change",
        json={"current_password": PASSWORD, "new_password": "1234567890"},
        headers=_bearer(caller),
    )

    problem = _assert_problem(response, 422, "weak_password")
    assert {e["field"] for e in problem["errors"]} == {"new_password"}
    assert (await _login(client, user["email"])).status_code == 200


# --- login links ------------------------------------------------------------------------------


async def test_login_link_logs_in_once_and_verifies_the_email(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    token = await _login_token(client, query, user)
    [event] = await _events(query, user["id"], "auth.login_link.requested")
    assert event["data"]["email"] == user["email"]
    assert event["data"]["expires_at"]

    response = await client.post("/auth/login-link/consume", json={"token": token})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    me = await client.get("/auth/me", headers=_bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user["id"]
    assert me.json()["email_verified"] is True
    replay = await client.post("/auth/login-link/consume", json={"token": token})
    _assert_problem(replay, 400, "invalid_token")


async def test_reset_token_is_refused_as_a_login_link(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    reset = await _reset_token(client, query, user)

    response = await client.post("/auth/login-link/consume", json={"token": reset})

    _assert_problem(response, 400, "invalid_token")


async def test_expired_login_link_is_400(
    client: httpx.AsyncClient, register: Any, query: Any, runtime: ServiceRuntime
) -> None:
    user = await register()
    token = await _login_token(client, query, user)
    await _execute(
        runtime,
        "UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = :h",
        h=domain.hash_token(token),
    )

    response = await client.post("/auth/login-link/consume", json={"token": token})

    _assert_problem(response, 400, "invalid_token")


# --- profile ----------------------------------------------------------------------------------


async def test_patch_me_changes_only_the_given_fields(
    client: httpx.AsyncClient, register: Any
) -> None:
    user = await register(full_name="Ada Lovelace", locale="en")
    access = await _access(client, user["email"])

    response = await client.patch("/auth/me", json={"locale": "fr-CA"}, headers=_bearer(access))

    assert response.status_code == 200, response.text
    assert response.json() == {**user, "locale": "fr-CA"}
    renamed = await client.patch(
        "/auth/me", json={"full_name": "Ada King"}, headers=_bearer(access)
    )
    assert renamed.json() == {**user, "locale": "fr-CA", "full_name": "Ada King"}
    assert (await client.get("/auth/me", headers=_bearer(access))).json() == renamed.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"locale": "French!"}, "locale"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "Eve\x07"}, "full_name"),
        ({"email": "other@example.com"}, "email"),
    ],
    ids=["bad-locale", "empty-name", "control-char", "email-not-editable"],
)
async def test_patch_me_with_a_bad_value_is_422_naming_the_field(
    client: httpx.AsyncClient, register: Any, body: dict[str, Any], field: str
) -> None:
    user = await register()
    access = await _access(client, user["email"])

    response = await client.patch("/auth/me", json=body, headers=_bearer(access))

    problem = _assert_problem(response, 422, "validation_failed")
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert (await client.get("/auth/me", headers=_bearer(access))).json() == user


# --- deletion ---------------------------------------------------------------------------------


async def test_delete_me_anonymises_the_account_and_ends_its_sessions(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register(full_name="Ada Lovelace")
    caller = await _access(client, user["email"])
    other = await _access(client, user["email"])

    response = await client.request(
        "DELETE", "/auth/me", json={"password": PASSWORD}, headers=_bearer(caller)
    )

    assert response.status_code == 204, response.text
    [row] = await query(
        "SELECT email, email_normalized, full_name, password_hash, deleted_at "
        "FROM users WHERE id = :id",
        id=user["id"],
    )
    anonymous = f"deleted-{user['id']}@deleted.invalid"
    assert (row.email, row.email_normalized, row.full_name) == (anonymous, anonymous, "")
    assert not row.password_hash.startswith("$argon2")
    assert row.deleted_at is not None
    for access in (caller, other):
        assert (await client.get("/auth/me", headers=_bearer(access))).status_code == 401
    assert (await _login(client, user["email"])).status_code == 401
    # the placeholder address is not even a valid login, and the placeholder hash verifies
    # nothing
    assert (await _login(client, anonymous, "!deleted")).status_code in {401, 422}
    [deleted] = await _events(query, user["id"], "auth.user.deleted")
    assert deleted["data"] == {"user_id": user["id"]}
    # the former address goes to the mailer once, for the goodbye email
    [goodbye] = await _events(query, user["id"], "auth.account.deleted")
    assert goodbye["data"] == {
        "user_id": user["id"],
        "email": user["email"],
        "full_name": "Ada Lovelace",
        "locale": user["locale"],
    }
    # the address is free again
    again = await register(user["email"])
    assert again["id"] != user["id"]


async def test_delete_me_with_the_wrong_password_is_401_and_keeps_the_account(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    access = await _access(client, user["email"])

    response = await client.request(
        "DELETE", "/auth/me", json={"password": "not my password"}, headers=_bearer(access)
    )

    _assert_problem(response, 401, "invalid_credentials")
    assert (await client.get("/auth/me", headers=_bearer(access))).json() == user
    assert await _events(query, user["id"], "auth.user.deleted") == []
    assert await _events(query, user["id"], "auth.account.deleted") == []


async def test_mail_links_of_a_deleted_account_stop_working(
    client: httpx.AsyncClient, register: Any, query: Any
) -> None:
    user = await register()
    login_token = await _login_token(client, query, user)
    access = await _access(client, user["email"])
    await client.request("DELETE", "/auth/me", json={"password": PASSWORD}, headers=_bearer(access))

    response = await client.post("/auth/login-link/consume", json={"token": login_token})

    _assert_problem(response, 400, "invalid_token")
