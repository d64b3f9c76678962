"""Fixtures of the mailer's integration tests: real RabbitMQ, Postgres and an SMTP server.

The SMTP server is aiosmtpd on a free local port, one per test, keeping what it accepted.
Each test starts the mailer app's lifespan (engine, broker, consumer on this run's private
queue names) and publishes envelopes the way a producer's outbox relay does.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import aio_pika
import pytest
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from sqlalchemy import text

from tessera.common.messaging.rabbit import Topology
from tessera.common.runtime import ServiceRuntime
from tessera.common.testing import Infra, make_settings, prepare_database
from tessera.mailer.app import MIGRATIONS, create_app
from tessera.mailer.settings import Settings as MailerSettings

PUBLIC_URL = "https://app.tessera.test"
WAIT_S = 10.0


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class SmtpInbox:
    """The aiosmtpd handler: stores every accepted message; can refuse the next few DATA."""

    def __init__(self) -> None:
        self.port = 0
        self.refused = 0
        self._received: list[Received] = []
        self._refuse_next = 0
        self._lock = threading.Lock()

    def refuse_next(self, count: int) -> None:
        """Answer the next ``count`` DATA commands with 451 (a temporary failure)."""
        with self._lock:
            self._refuse_next = count

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self._refuse_next > 0:
                self._refuse_next -= 1
                self.refused += 1
                return "451 4.3.0 Mailbox temporarily unavailable, try again later"
            message = BytesParser(policy=policy.default).parsebytes(envelope.content)
            self._received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 OK: queued"

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [r for r in self._received if address in r.rcpt_tos]

    async def wait_for(self, address: str, *, timeout: float = WAIT_S) -> Received:
        """The first message for ``address``, waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no email for {address} within {timeout} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[SmtpInbox]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd in its own thread)."""
    inbox = SmtpInbox()
    for attempt in range(5):
        port = _free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=5.0)
        try:
            controller.start()
        except OSError:  # the port was taken between probing and binding
            if attempt == 4:
                raise
            continue
        break
    inbox.port = port
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def mailer_database(infra: Infra) -> None:
    prepare_database(make_settings(MailerSettings, infra), MIGRATIONS)


@pytest.fixture
def mailer_settings(infra: Infra, mailer_database: None, smtp: SmtpInbox) -> MailerSettings:
    return make_settings(
        MailerSettings,
        infra,
        smtp={"host": "127.0.0.1", "port": smtp.port, "timeout_s": 5.0},
        driver="smtp",
        public_url=PUBLIC_URL,
    )


@pytest.fixture
async def mailer_app(mailer_settings: MailerSettings) -> AsyncIterator[FastAPI]:
    """The mailer running: its consumer is subscribed to this run's queue when this yields."""
    app = create_app(mailer_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
def runtime(mailer_app: FastAPI) -> ServiceRuntime:
    return mailer_app.state.runtime


@pytest.fixture
def topology(mailer_settings: MailerSettings) -> Topology:
    return Topology.for_service("mailer", mailer_settings.broker)


Publish = Callable[..., Awaitable[None]]


@pytest.fixture
async def publish(infra: Infra, mailer_app: FastAPI) -> AsyncIterator[Publish]:
    """Publish an envelope as a producer's relay does: persistent, confirmed, must route."""
    connection = await aio_pika.connect(infra.rabbitmq)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(infra.exchange, ensure=True)

        async def _publish(envelope: dict[str, Any], *, routing_key: str | None = None) -> None:
            await exchange.publish(
                aio_pika.Message(
                    json.dumps(envelope).encode(),
                    message_id=envelope["id"],
                    type=envelope.get("type"),
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    app_id="tessera-auth",
                ),
                routing_key=routing_key or f"{envelope['type']}.v{envelope['version']}",
                mandatory=True,
            )

        yield _publish


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
