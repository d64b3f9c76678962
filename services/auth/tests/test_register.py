"""Registration: the HTTP contract, the stored account, and the event in the outbox."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from tessera.auth.service.context import AuthContext
from tessera.common.testing import Infra

PASSWORD = "correct horse battery staple"


def _body(email: str, **changes: Any) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD, "full_name": "Ada Lovelace", "locale": "en"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


async def test_register_returns_201_with_public_fields_only(
    client: httpx.AsyncClient, email: str
) -> None:
    response = await client.post("/auth/register", json=_body(email, locale="fr-CA"))

    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    user = response.json()
    assert set(user) == {"id", "email", "full_name", "locale", "email_verified", "created_at"}
    uuid.UUID(user["id"])
    assert user["email"] == email
    assert user["full_name"] == "Ada Lovelace"
    assert user["locale"] == "fr-CA"
    assert user["email_verified"] is False
    assert PASSWORD not in response.text
    assert "argon2" not in response.text


async def test_register_same_email_in_other_case_is_409_problem(
    client: httpx.AsyncClient, email: str, query: Any
) -> None:
    first = await client.post("/auth/register", json=_body(email))
    assert first.status_code == 201, first.text

    again = await client.post("/auth/register", json=_body(email.upper(), full_name="Someone"))

    assert again.status_code == 409
    assert again.headers["content-type"].startswith("application/problem+json")
    problem = again.json()
    assert problem["status"] == 409
    assert problem["code"] == "email_taken"
    assert problem["type"].endswith("/email_taken")
    users = await query("SELECT id FROM users WHERE email_normalized = :e", e=email.lower())
    assert len(users) == 1
    # the refused registration wrote no event
    events = await query(
        "SELECT id FROM outbox WHERE lower(payload->'data'->>'email') = :e", e=email.lower()
    )
    assert len(events) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"full_name": None}, "full_name"),
        ({"full_name": ""}, "full_name"),
        ({"nickname": "ada"}, "nickname"),
        ({"password": None}, "password"),
        ({"locale": "English!"}, "locale"),
    ],
    ids=[
        "bad-email",
        "double-at-email",
        "missing-full-name",
        "empty-full-name",
        "unknown-field",
        "missing-password",
        "bad-locale",
    ],
)
async def test_register_invalid_input_is_422_naming_the_field(
    client: httpx.AsyncClient, email: str, query: Any, changes: dict[str, Any], field: str
) -> None:
    body = _body(email)
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}

    response = await client.post("/auth/register", json=body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert await query("SELECT id FROM users WHERE email_normalized = :e", e=email) == []


@pytest.mark.parametrize(
    "password",
    ["short1!", "aaaaaaaaaaaaaaaa", "abcabcabcabcabc", "SELF"],
    ids=["too-short", "one-character", "three-characters", "the-email-itself"],
)
async def test_register_weak_password_is_422_weak_password(
    client: httpx.AsyncClient, email: str, query: Any, password: str
) -> None:
    password = email if password == "SELF" else password

    response = await client.post("/auth/register", json=_body(email, password=password))

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "weak_password"
    assert {e["field"] for e in problem["errors"]} == {"password"}
    assert password not in response.text
    assert await query("SELECT id FROM users WHERE email_normalized = :e", e=email) == []


async def test_password_is_stored_as_argon2id_hash(
    client: httpx.AsyncClient, email: str, query: Any, auth_app: FastAPI
) -> None:
    user = (await client.post("/auth/register", json=_body(email))).json()

    [(stored,)] = await query("SELECT password_hash FROM users WHERE id = :id", id=user["id"])

    assert stored.startswith("$argon2id$")
    argon2 = auth_app.state.runtime.get(AuthContext).settings.argon2
    assert f"m={argon2.memory_cost_kib},t={argon2.time_cost},p={argon2.parallelism}" in stored
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


async def test_registration_writes_one_user_registered_event_to_the_outbox(
    client: httpx.AsyncClient, email: str, query: Any
) -> None:
    user = (await client.post("/auth/register", json=_body(email, locale="de"))).json()

    rows = await query(
        "SELECT event_type, routing_key, payload FROM outbox "
        "WHERE payload->'data'->>'user_id' = :id",
        id=user["id"],
    )

    assert len(rows) == 1
    event_type, key, envelope = rows[0]
    assert event_type == "auth.user.registered"
    assert key == "auth.user.registered.v1"
    assert envelope["type"] == "auth.user.registered"
    assert envelope["version"] == 1
    assert envelope["producer"] == "auth"
    assert envelope["subject"] == user["id"]
    data = envelope["data"]
    assert data["email"] == email
    assert data["full_name"] == "Ada Lovelace"
    assert data["locale"] == "de"
    assert len(data["verification_token"]) >= 20
    assert "password" not in str(envelope).lower()


async def test_verification_token_is_stored_only_as_its_hash(
    client: httpx.AsyncClient, email: str, query: Any
) -> None:
    user = (await client.post("/auth/register", json=_body(email))).json()
    [(envelope,)] = await query(
        "SELECT payload FROM outbox WHERE payload->'data'->>'user_id' = :id", id=user["id"]
    )
    token = envelope["data"]["verification_token"]

    tokens = await query(
        "SELECT purpose, token_hash, expires_at, used_at, t::text FROM email_tokens t "
        "WHERE user_id = :id",
        id=user["id"],
    )

    assert len(tokens) == 1
    purpose, token_hash, expires_at, used_at, row_text = tokens[0]
    assert purpose == "verify_email"
    assert token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row_text
    assert used_at is None
    assert expires_at.isoformat() == envelope["data"]["verification_expires_at"]


@contextlib.asynccontextmanager
async def _outbox_refusing(infra: Infra, email: str) -> AsyncIterator[None]:
    """Make inserting this address's outbox row fail, as a full disk or lost link would.

    The trigger is created as the superuser and matches only ``email``, so concurrent tests
    are unaffected even if a crash left it behind.
    """
    admin_url = make_url(infra.postgres_admin).set(database=infra.database)
    admin = await asyncpg.connect(admin_url.render_as_string(hide_password=False))
    name = f"fail_outbox_{uuid.uuid4().hex[:8]}"
    try:
        await admin.execute(
            f"""
            CREATE FUNCTION auth.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.payload->'data'->>'email' = '{email}' THEN
                RAISE EXCEPTION 'outbox unavailable';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER {name} BEFORE INSERT ON auth.outbox
              FOR EACH ROW EXECUTE FUNCTION auth.{name}();
            """
        )
        yield
    finally:
        await admin.execute(f"DROP TRIGGER IF EXISTS {name} ON auth.outbox")
        await admin.execute(f"DROP FUNCTION IF EXISTS auth.{name}()")
        await admin.close()


async def _register_without_raising(app: FastAPI, email: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/auth/register", json=_body(email))


async def test_registration_is_undone_when_its_event_cannot_be_written(
    auth_app: FastAPI, infra: Infra, email: str, query: Any
) -> None:
    """The account, its token and its outbox row commit together, or not at all."""
    async with _outbox_refusing(infra, email):
        response = await _register_without_raising(auth_app, email)

    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "internal_error"
    assert await query("SELECT id FROM users WHERE email_normalized = :e", e=email) == []
    assert (
        await query(
            "SELECT t.id FROM email_tokens t JOIN users u ON u.id = t.user_id "
            "WHERE u.email_normalized = :e",
            e=email,
        )
        == []
    )


async def test_unhandled_error_log_holds_no_password_hash_or_token(
    capsys: pytest.CaptureFixture[str], auth_app: FastAPI, infra: Infra, email: str
) -> None:
    """The 500's traceback is logged without frame locals or SQL parameters."""
    capsys.readouterr()
    async with _outbox_refusing(infra, email):
        response = await _register_without_raising(auth_app, email)

    assert response.status_code == 500
    logged = capsys.readouterr().err  # what the service's own renderer wrote
    assert "unhandled_error" in logged
    assert "outbox unavailable" in logged  # the traceback is there...
    assert PASSWORD not in logged  # ...but not the secrets around it
    assert "$argon2id$" not in logged
    assert "verification_token" not in logged
