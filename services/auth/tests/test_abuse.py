"""Rate limits per address and per account, and progressive lockout, in real Redis."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tessera.auth.app import create_app
from tessera.auth.service.context import AuthContext
from tessera.auth.settings import Settings
from tessera.common.testing import Infra, make_settings

PASSWORD = "correct horse battery staple"


@pytest.fixture
def strict_settings(infra: Infra, auth_settings: Settings) -> Settings:
    """The test run's auth (already migrated) with small limits and a short lockout."""
    return make_settings(
        Settings,
        infra,
        argon2=auth_settings.argon2.model_dump(),
        broker={"outbox_relay": False},
        rate_limits={
            "enabled": True,
            "login_per_ip": {"limit": 4, "window_s": 60},
            "login_per_account": {"limit": 100, "window_s": 60},
            "register_per_ip": {"limit": 2, "window_s": 60},
            "recover_per_account": {"limit": 2, "window_s": 60},
        },
        lockout={"failures": 3, "window_s": 60, "base_lock_s": 1, "max_lock_s": 8},
    )


@pytest.fixture
async def strict_app(strict_settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(strict_settings)
    async with app.router.lifespan_context(app):
        yield app


def client_from(app: FastAPI, ip: str | None = None) -> httpx.AsyncClient:
    ip = ip or f"198.51.100.{random.randint(1, 254)}-{uuid.uuid4().hex[:6]}"
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def _register(app: FastAPI, email: str) -> None:
    async with client_from(app) as c:
        r = await c.post(
            "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Eve"}
        )
        assert r.status_code == 201, r.text


def _email() -> str:
    return f"abuse-{uuid.uuid4().hex[:12]}@example.org"


async def test_login_from_one_address_past_its_limit_gets_429_with_retry_after(
    strict_app: FastAPI,
) -> None:
    async with client_from(strict_app) as c:
        statuses = [
            (await c.post("/auth/login", json={"email": _email(), "password": "nope"})).status_code
            for _ in range(5)
        ]
        refused = await c.post("/auth/login", json={"email": _email(), "password": "nope"})
    assert statuses[:4] == [401, 401, 401, 401]
    assert statuses[4] == 429
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "too_many_requests"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_another_address_is_not_limited_by_the_first(strict_app: FastAPI) -> None:
    async with client_from(strict_app) as first:
        for _ in range(5):
            await first.post("/auth/login", json={"email": _email(), "password": "nope"})
        assert (
            await first.post("/auth/login", json={"email": _email(), "password": "x"})
        ).status_code == 429
    async with client_from(strict_app) as second:
        r = await second.post("/auth/login", json={"email": _email(), "password": "nope"})
    assert r.status_code == 401


async def test_repeated_wrong_passwords_lock_the_account_even_for_the_right_one(
    strict_app: FastAPI, auth_settings: Settings
) -> None:
    email = _email()
    await _register(strict_app, email)
    wrong = []
    for _ in range(3):  # a new address each time: the account is what gets locked
        async with client_from(strict_app) as c:
            wrong.append(
                (
                    await c.post("/auth/login", json={"email": email, "password": "bad guess"})
                ).status_code
            )
    async with client_from(strict_app) as c:
        locked = await c.post("/auth/login", json={"email": email, "password": PASSWORD})

    assert wrong == [401, 401, 401]
    assert locked.status_code == 429
    assert locked.json()["code"] == "account_locked"
    assert int(locked.headers["retry-after"]) >= 1

    # the owner is told by email: an auth.account.locked event in the outbox
    runtime = strict_app.state.runtime
    async with runtime.engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT payload FROM outbox WHERE event_type = 'auth.account.locked' "
                    "AND payload->'data'->>'email' = :e"
                ),
                {"e": email},
            )
        ).all()
    assert len(rows) == 1
    assert rows[0].payload["data"]["locked_for_s"] == 1

    await asyncio.sleep(1.2)  # the first lock lasts base_lock_s
    async with client_from(strict_app) as c:
        assert (
            await c.post("/auth/login", json={"email": email, "password": PASSWORD})
        ).status_code == 200


async def test_a_second_lock_lasts_twice_as_long(strict_app: FastAPI) -> None:
    email = _email()
    await _register(strict_app, email)
    guard = strict_app.state.runtime.get(AuthContext).guard
    first = [await guard.failed_login(email) for _ in range(3)]
    second = [await guard.failed_login(email) for _ in range(3)]
    assert first == [None, None, 1]
    assert second == [None, None, 2]


async def test_a_successful_login_resets_the_failure_count(strict_app: FastAPI) -> None:
    email = _email()
    await _register(strict_app, email)
    for password in ["bad", "bad", PASSWORD, "bad", "bad"]:
        async with client_from(strict_app) as c:
            await c.post("/auth/login", json={"email": email, "password": password})
    async with client_from(strict_app) as c:
        r = await c.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200


async def test_unknown_email_locks_the_same_way_so_lockout_reveals_no_account(
    strict_app: FastAPI,
) -> None:
    known, unknown = _email(), _email()
    await _register(strict_app, known)
    answers = {}
    for email in (known, unknown):
        for _ in range(3):
            async with client_from(strict_app) as c:
                await c.post("/auth/login", json={"email": email, "password": "bad guess"})
        async with client_from(strict_app) as c:
            r = await c.post("/auth/login", json={"email": email, "password": "bad guess"})
        answers[email] = (r.status_code, r.json()["code"])
    assert answers[known] == answers[unknown] == (429, "account_locked")


async def test_registrations_from_one_address_are_limited(strict_app: FastAPI) -> None:
    async with client_from(strict_app) as c:
        statuses = [
            (
                await c.post(
                    "/auth/register",
                    json={"email": _email(), "password": PASSWORD, "full_name": "Spammer"},
                )
            ).status_code
            for _ in range(3)
        ]
    assert statuses == [201, 201, 429]


async def test_redis_keys_do_not_contain_the_email(strict_app: FastAPI) -> None:
    email = _email()
    async with client_from(strict_app) as c:
        await c.post("/auth/login", json={"email": email, "password": "bad"})
    redis = strict_app.state.runtime.redis
    prefix = strict_app.state.runtime.get(AuthContext).settings.redis.key_prefix
    keys = [k.decode() async for k in redis.scan_iter(match=f"{prefix}auth:*")]
    assert keys
    assert not any(email.split("@")[0] in key for key in keys)


async def test_recovery_requests_per_account_are_limited_alike_for_unknown_emails(
    strict_app: FastAPI,
) -> None:
    known, unknown = _email(), _email()
    await _register(strict_app, known)
    answers = {}
    for email in (known, unknown):
        statuses = []
        for _ in range(3):
            async with client_from(strict_app) as c:  # new address: the account is limited
                statuses.append(
                    (await c.post("/auth/password/recover", json={"email": email})).status_code
                )
        answers[email] = statuses
    assert answers[known] == answers[unknown] == [202, 202, 429]


async def test_an_action_without_configured_limits_is_an_error_not_unlimited(
    strict_app: FastAPI,
) -> None:
    with pytest.raises(ValueError, match="no rate limit"):
        await strict_app.state.runtime.get(AuthContext).guard.limit("logn", ip="192.0.2.1")
