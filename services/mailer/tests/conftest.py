"""Fixtures of the mailer's integration tests: real RabbitMQ, Postgres and an SMTP server.

The SMTP server is the kernel's ``SmtpSink`` (aiosmtpd on a free local port), one per test.
Each test starts the mailer app's lifespan (engine, broker, consumer on this run's private
queue names) and publishes envelopes the way a producer's outbox relay does.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tessera.common.messaging.rabbit import Topology
from tessera.common.runtime import ServiceRuntime
from tessera.common.testing import Infra, make_settings, prepare_database
from tessera.common.testing.broker import eventually, publish_envelope
from tessera.common.testing.smtp import SmtpSink
from tessera.common.testing.tokens import TokenMinter
from tessera.mailer.app import MIGRATIONS, create_app
from tessera.mailer.settings import Settings as MailerSettings

PUBLIC_URL = "https://app.tessera.test"
WAIT_S = 10.0


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd in its own thread)."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def mailer_database(infra: Infra) -> None:
    prepare_database(make_settings(MailerSettings, infra), MIGRATIONS)


@pytest.fixture
def mailer_settings(
    infra: Infra, mailer_database: None, smtp: SmtpSink, request: pytest.FixtureRequest
) -> MailerSettings:
    """``@pytest.mark.mailer_settings(recipient_limit={...})`` changes some for one test."""
    marker = request.node.get_closest_marker("mailer_settings")
    return make_settings(
        MailerSettings,
        infra,
        smtp={"host": "127.0.0.1", "port": smtp.port, "timeout_s": 5.0},
        driver="smtp",
        public_url=PUBLIC_URL,
        **(marker.kwargs if marker else {}),
    )


@pytest.fixture
def tokens() -> TokenMinter:
    """Signs access tokens the mailer accepts (in place of auth's JWKS)."""
    return TokenMinter()


@pytest.fixture
async def mailer_app(
    mailer_settings: MailerSettings, tokens: TokenMinter
) -> AsyncIterator[FastAPI]:
    """The mailer running: its consumer is subscribed to this run's queue when this yields."""
    app = create_app(mailer_settings, key_source=tokens.key_source)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def client(mailer_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP to the running mailer, in-process."""
    transport = httpx.ASGITransport(app=mailer_app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://mailer") as c:
        yield c


@pytest.fixture
def superadmin(tokens: TokenMinter) -> dict[str, str]:
    return tokens.bearer(uuid.uuid4(), roles=["superadmin"])


@pytest.fixture
def runtime(mailer_app: FastAPI) -> ServiceRuntime:
    return mailer_app.state.runtime


@pytest.fixture
def topology(mailer_settings: MailerSettings) -> Topology:
    return Topology.for_service("mailer", mailer_settings.broker)


Publish = Callable[..., Awaitable[None]]


@pytest.fixture
async def publish(infra: Infra, mailer_app: FastAPI) -> Publish:
    """Publish an envelope as a producer's relay does: persistent, confirmed, must route."""

    async def _publish(envelope: dict[str, Any], *, routing_key: str | None = None) -> None:
        await publish_envelope(infra.rabbitmq, infra.exchange, envelope, routing_key=routing_key)

    return _publish


def user_registered(**data: Any) -> dict[str, Any]:
    """An ``auth.user.registered`` v1 envelope as auth's outbox writes it; ``data`` overrides.

    A value of ``None`` removes the field.
    """
    user_id = str(uuid.uuid4())
    body = {
        "user_id": user_id,
        "email": f"user-{uuid.uuid4().hex[:12]}@example.com",
        "full_name": "Ada Lovelace",
        "locale": "en",
        "verification_token": f"tok_{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}",
        "verification_expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }
    body.update(data)
    return {
        "id": str(uuid.uuid4()),
        "type": "auth.user.registered",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "auth",
        "subject": user_id,
        "data": {k: v for k, v in body.items() if v is not None},
    }


@pytest.fixture
def new_event() -> Callable[..., dict[str, Any]]:
    return user_registered


Query = Callable[..., Awaitable[list[Any]]]


@pytest.fixture
def query(runtime: ServiceRuntime) -> Query:
    """Rows read through the mailer's own engine (role ``tessera_mailer``, schema ``mailer``)."""

    async def _query(sql: str, **params: Any) -> list[Any]:
        async with runtime.sessions() as session:
            return list((await session.execute(text(sql), params)).all())

    return _query


DELIVERY_COLUMNS = (
    "recipient, subject, locale, status, message_id, template, event_type, sent_at, user_id"
)
Deliveries = Callable[..., Awaitable[list[Any]]]


@pytest.fixture
def deliveries(query: Query) -> Deliveries:
    """The delivery rows of one event, as the mailer recorded them."""

    async def _deliveries(event_id: str) -> list[Any]:
        return await query(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = :id",
            id=event_id,
        )

    return _deliveries


@pytest.fixture
def wait_for_deliveries(deliveries: Deliveries) -> Deliveries:
    """The delivery rows of an event once there are ``count`` of them, each settled (the
    outcome is committed after the SMTP hand-over, so it can trail the email by a moment)."""

    async def _wait(event_id: str, count: int = 1) -> list[Any]:
        async def enough() -> list[Any]:
            rows = await deliveries(event_id)
            settled = all(r.status not in ("queued", "sending") for r in rows)
            return rows if len(rows) >= count and settled else []

        rows: list[Any] = await eventually(enough, timeout=WAIT_S, what=f"{count} delivery row(s)")
        return rows

    return _wait
