"""Fixtures of the sync service's integration tests: the app running in-process against the
real PostgreSQL and RabbitMQ, auth's events published to it as auth's relay would (users,
organisations, memberships, API keys), and MISP clients authenticated by those keys.

``await world.member("Ada", org)`` registers a user in an organisation with an API key and
answers a ``Member`` whose ``headers`` authenticate MISP-style (``Authorization: <key>``).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from tessera.common.security import hash_api_key
from tessera.common.testing import (
    Infra,
    _create_database,
    _drop_broker_names,
    _drop_database,
    make_settings,
    prepare_database,
    run_sync,
)
from tessera.common.testing.broker import eventually, publish_envelope
from tessera.common.testing.tokens import TokenMinter
from tessera.sync.app import MIGRATIONS, create_app
from tessera.sync.settings import Settings

WAIT_S = 10.0


@pytest.fixture(scope="session")
def sync_database(infra: Infra) -> None:
    prepare_database(make_settings(Settings, infra), MIGRATIONS)


@pytest.fixture
def roles() -> dict[str, Any]:
    """Per-test role overrides (``SYNC__ROLES``): tests that need them change this dict."""
    return {}


@pytest.fixture
def settings(
    infra: Infra, sync_database: None, roles: dict[str, Any], request: pytest.FixtureRequest
) -> Settings:
    """``@pytest.mark.sync_settings(host_org_uuid=...)`` changes some for one test."""
    marker = request.node.get_closest_marker("sync_settings")
    return make_settings(Settings, infra, roles=roles, **(marker.kwargs if marker else {}))


@pytest.fixture
def tokens() -> TokenMinter:
    return TokenMinter()


@pytest.fixture
async def app(settings: Settings, tokens: TokenMinter) -> AsyncIterator[FastAPI]:
    application = create_app(settings, key_source=tokens.key_source)
    async with application.router.lifespan_context(application):
        yield application


@contextmanager
def uvicorn_serving(app: FastAPI) -> Iterator[str]:
    """``app`` behind uvicorn on a free port of 127.0.0.1, in a thread with its own event loop
    (its lifespan, so its consumers and relay, run there): its root URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def served(settings: Settings, tokens: TokenMinter) -> Iterator[str]:
    """The sync app behind uvicorn on a free port, in a thread with its own event loop: the
    root URL PyMISP is given."""
    with uvicorn_serving(create_app(settings, key_source=tokens.key_source)) as root:
        yield f"{root}/sync/"


@dataclass
class Instance:
    """Another sync instance, as a remote server is: a database, an exchange and queues of its
    own, behind uvicorn (:func:`running_instance`)."""

    infra: Infra
    root: str
    dsn: str
    tokens: TokenMinter

    @property
    def url(self) -> str:
        """What a server entry elsewhere names (MISP's base URL)."""
        return f"{self.root}/sync/"


@contextmanager
def running_instance(infra: Infra, **settings: Any) -> Iterator[Instance]:
    """A sync instance of its own next to this run's (``settings`` as ``make_settings`` takes
    them: ``roles``, ``host_org_uuid``...), dropped with its database and broker names after."""
    other = Infra(infra.postgres_admin, infra.redis, infra.rabbitmq)
    run_sync(_create_database(other))
    try:
        configured = make_settings(Settings, other, **settings)
        prepare_database(configured, MIGRATIONS)
        tokens = TokenMinter()
        dsn = make_url(infra.postgres_admin).set(database=other.database)
        with uvicorn_serving(create_app(configured, key_source=tokens.key_source)) as root:
            yield Instance(other, root, dsn.render_as_string(hide_password=False), tokens)
    finally:
        run_sync(_drop_broker_names(other))
        run_sync(_drop_database(other))


@contextmanager
def running_peer(infra: Infra, sync_org: uuid.UUID) -> Iterator[Instance]:
    """A second sync instance where the users of ``sync_org`` (created there) are sync users:
    the account this instance's servers use to push to it."""
    sync_user = {"admin": "sync_user", "member": "sync_user"}
    with running_instance(infra, roles={"organisations": {str(sync_org): sync_user}}) as other:
        envelope = auth_envelope(
            "auth.organisation.created",
            {"organisation_id": str(sync_org), "name": "Home's account"}, str(sync_org),
        )  # fmt: skip
        run_sync(publish_envelope(other.infra.rabbitmq, other.infra.exchange, envelope))
        yield other


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://sync") as c:
        yield c


def auth_envelope(type_: str, data: dict[str, Any], subject: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "auth",
        "subject": subject,
        "data": data,
    }


@dataclass
class Member:
    id: uuid.UUID
    email: str
    org: uuid.UUID
    key: str
    key_id: uuid.UUID
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.key, "Accept": "application/json"}


@dataclass
class World:
    infra: Infra
    app: FastAPI
    client: httpx.AsyncClient
    tokens: TokenMinter

    async def query(self, sql: str, *args: Any) -> list[Any]:
        async with self.app.state.runtime.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            return list(await raw.driver_connection.fetch(sql, *args))

    async def publish(self, type_: str, data: dict[str, Any], subject: str) -> None:
        await publish_envelope(
            self.infra.rabbitmq, self.infra.exchange, auth_envelope(type_, data, subject)
        )

    async def organisation(self, name: str = "Org", org: uuid.UUID | None = None) -> uuid.UUID:
        org = org or uuid.uuid4()
        await self.publish(
            "auth.organisation.created",
            {"organisation_id": str(org), "name": f"{name} {org.hex[:8]}"},
            str(org),
        )
        return org

    async def member(
        self, name: str, org: uuid.UUID, *, role: str = "member", cidrs: list[str] | None = None
    ) -> Member:
        """A user of ``org`` with an API key, known to the sync service (projection done)."""
        user = uuid.uuid4()
        email = f"{name.lower()}-{user.hex[:8]}@example.org"
        key = f"tsk_{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
        key_id = uuid.uuid4()
        await self.publish(
            "auth.user.registered",
            {"user_id": str(user), "email": email, "full_name": name, "locale": "en",
             "verification_token": "t" * 30, "verification_expires_at": "2030-01-01T00:00:00Z"},
            str(user),
        )  # fmt: skip
        await self.publish(
            "auth.membership.granted",
            {"organisation_id": str(org), "user_id": str(user), "role": role},
            str(org),
        )
        await self.publish(
            "auth.api_key.created",
            {"api_key_id": str(key_id), "user_id": str(user), "key_hash": hash_api_key(key),
             "prefix": key[:12], "expires_at": None, "allowed_cidrs": cidrs or []},
            str(user),
        )  # fmt: skip
        await eventually(
            lambda: self.query(
                "SELECT 1 FROM api_keys k JOIN memberships m ON m.user_uuid = k.user_uuid "
                "JOIN users u ON u.uuid = k.user_uuid JOIN organisations o "
                "ON o.uuid = m.organisation_uuid WHERE k.id = $1", key_id),
            timeout=WAIT_S, what=f"{name}'s key in the sync projection",
        )  # fmt: skip
        return Member(user, email, org, key, key_id)


@dataclass
class InstanceWorld(World):
    """An :class:`Instance` seen from the test: its database read directly (its engine lives
    on uvicorn's event loop), auth's events published to its own exchange."""

    dsn: str = ""

    @classmethod
    def of(cls, instance: Instance, client: httpx.AsyncClient) -> InstanceWorld:
        return cls(instance.infra, None, client, instance.tokens, dsn=instance.dsn)  # type: ignore[arg-type]

    async def query(self, sql: str, *args: Any) -> list[Any]:
        conn = await asyncpg.connect(self.dsn, server_settings={"search_path": "sync"})
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


@pytest.fixture
def world(infra: Infra, app: FastAPI, client: httpx.AsyncClient, tokens: TokenMinter) -> World:
    return World(infra, app, client, tokens)
