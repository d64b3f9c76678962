"""Fixtures of auth's integration tests: the real app on this run's Postgres and RabbitMQ.

The schema is migrated once per pytest process; every test gets a fresh app (engine,
broker, outbox relay) through its lifespan and an httpx client talking to it in-process.
Tests never assume an empty table: each one registers its own uniquely named users.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tessera.auth.app import MIGRATIONS, create_app
from tessera.auth.settings import Settings
from tessera.common.runtime import ServiceRuntime
from tessera.common.testing import Infra, make_settings, prepare_database

# cheap argon2 so a test run does not spend seconds hashing
FAST_ARGON2 = {"time_cost": 1, "memory_cost_kib": 8192, "parallelism": 1}
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def auth_settings(infra: Infra) -> Settings:
    settings = make_settings(
        Settings,
        infra,
        argon2=FAST_ARGON2,
        # these tests read outbox rows before and after commit; delivery to RabbitMQ is
        # covered by the kernel, mailer and e2e tests
        broker={"outbox_relay": False},
        # limits and lockout are proven in test_abuse.py with their own settings; here they
        # would make unrelated tests depend on how many requests ran before them
        rate_limits={"enabled": False},
    )
    prepare_database(settings, MIGRATIONS)
    return settings


@pytest.fixture
async def auth_app(auth_settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(auth_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(auth_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=auth_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
def runtime(auth_app: FastAPI) -> ServiceRuntime:
    return auth_app.state.runtime


def _unique_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def email() -> str:
    """An address no other test (or earlier run) has registered."""
    return _unique_email()


Register = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def register(client: httpx.AsyncClient) -> Register:
    """Register a new account over HTTP and return its public JSON (fails the test if not 201)."""

    async def _register(
        email: str | None = None,
        *,
        password: str = PASSWORD,
        full_name: str = "Ada Lovelace",
        locale: str = "en",
    ) -> dict[str, Any]:
        body = {
            "email": email or _unique_email(),
            "password": password,
            "full_name": full_name,
            "locale": locale,
        }
        response = await client.post("/auth/register", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    return _register


Query = Callable[..., Awaitable[list[Any]]]


@pytest.fixture
def query(runtime: ServiceRuntime) -> Query:
    """Rows read through the service's own engine (role ``tessera_auth``, schema ``auth``)."""

    async def _query(sql: str, **params: Any) -> list[Any]:
        async with runtime.sessions() as session:
            return list((await session.execute(text(sql), params)).all())

    return _query


LoginAs = Callable[..., Awaitable[str]]


@pytest.fixture
def login_as(client: httpx.AsyncClient) -> LoginAs:
    """Log in over HTTP and return the access token (fails the test if not 200)."""

    async def _login_as(email: str, password: str = PASSWORD) -> str:
        response = await client.post("/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    return _login_as
