"""What one running service holds, built inside its lifespan (never at import time).

``ServiceRuntime`` owns the engine, the broker, the outbox relay and the consumer of one
service process. ``create_app`` of each service constructs one, hands ``runtime.lifespan``
to the app factory, and reads ``runtime.uow()`` in its dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from fastapi import FastAPI
from faststream.rabbit import RabbitBroker
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from faststream.specification import AsyncAPI
from redis.asyncio import Redis
from sqlalchemy import MetaData, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tessera.common.db import UnitOfWork, create_engine, schema_is_migrated
from tessera.common.http import ReadinessCheck, create_service_app, instrument_app
from tessera.common.logging import configure_logging
from tessera.common.messaging.envelope import Event
from tessera.common.messaging.inbox import inbox_table
from tessera.common.messaging.outbox import Outbox, OutboxRelay, outbox_table
from tessera.common.messaging.rabbit import (
    BrokerPublisher,
    EventConsumer,
    Topology,
    declare_topology,
    events_exchange,
    new_broker,
)
from tessera.common.migrations import head_revision, known_revisions
from tessera.common.revocation import Revocations
from tessera.common.security import JWKSKeySource, KeySource, TokenVerifier
from tessera.common.settings import ServiceSettings
from tessera.common.telemetry import configure_telemetry, shutdown_telemetry

__all__ = ["MessagingTables", "NotMigrated", "ServiceRuntime", "service_app"]

log = structlog.stdlib.get_logger(__name__)


def _public_amqp_url(url: str) -> str:
    """The broker address without credentials, for published documents."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{parts.scheme or 'amqp'}://{host}:{parts.port or 5672}{parts.path or '/'}"


class NotMigrated(RuntimeError):
    """The service's schema is behind its code; run ``make migrate`` first."""


class MessagingTables:
    """The outbox and inbox tables of one service's metadata."""

    def __init__(self, metadata: MetaData) -> None:
        self.outbox: Table = outbox_table(metadata)
        self.inbox: Table = inbox_table(metadata)


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        tables: MessagingTables,
        migrations_dir: Path,
        consumer: EventConsumer | None = None,
        publishes: Sequence[type[Event]] = (),
        key_source: KeySource | None = None,
        run_relay: bool | None = None,
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.migrations_dir = migrations_dir
        self.consumer = consumer
        self.outbox = Outbox(tables.outbox, producer=settings.service_name)
        self.topology = Topology.for_service(settings.service_name, settings.broker)
        self._key_source = key_source
        self._run_relay = settings.broker.outbox_relay if run_relay is None else run_relay
        self.engine: AsyncEngine
        self.sessions: async_sessionmaker[AsyncSession]
        self.broker: RabbitBroker
        self.relay: OutboxRelay
        self.http: httpx.AsyncClient
        self.redis: Redis
        self.revocations: Revocations
        self.verifier: TokenVerifier
        self._tasks: list[asyncio.Task[Any]] = []
        # constructing the broker does no I/O; it connects in start()
        self.broker = new_broker(
            settings.broker.url.get_secret_value(),
            prefetch=settings.broker.prefetch,
            middlewares=[
                RabbitTelemetryMiddleware(
                    tracer_provider=configure_telemetry(settings.service_name)
                )
            ],
            reconnect_interval=1.0,
            graceful_timeout=10.0,
            app_id=f"tessera-{settings.service_name}",
            logger=None,
            specification_url=_public_amqp_url(settings.broker.url.get_secret_value()),
            description=f"Events of the Tessera {settings.service_name} service",
        )
        if consumer is not None:
            consumer.subscribe(self.broker)
        for event in publishes:
            self.broker.publisher(
                exchange=events_exchange(settings.broker.exchange),
                routing_key=event.routing_key(),
                title=f"{event.routing_key()}:publish",
                description=(event.__doc__ or "").strip() or None,
                schema=event,
                persist=True,
            )

    def asyncapi(self) -> dict[str, Any]:
        """The AsyncAPI 3 document of what this service consumes and publishes."""
        spec = AsyncAPI(
            self.broker,
            title=f"Tessera {self.settings.service_name} events",
            version="1.0.0",
            description=(
                f"Exchange {self.settings.broker.exchange!r} (topic). Every message is an "
                "envelope {id, type, version, occurred_at, producer, subject, data}; the "
                "payload schemas below describe `data`."
            ),
        )
        document: dict[str, Any] = spec.to_specification().to_jsonable()
        return document

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, outbox=self.outbox)

    def readiness(self) -> Mapping[str, ReadinessCheck]:
        async def database() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def broker() -> None:
            if not await self.broker.ping(timeout=2.0):
                raise ConnectionError("broker does not answer")

        async def redis() -> None:
            await self.redis.ping()

        return {"database": database, "broker": broker, "redis": redis}

    async def start(self) -> None:
        s = self.settings
        configure_logging(s.service_name, level=s.log_level, fmt=s.log_format)
        self.engine = create_engine(s)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        problem = await schema_is_migrated(
            self.engine,
            s.schema_name,
            head_revision(self.migrations_dir),
            known=known_revisions(self.migrations_dir),
        )
        if problem is not None:
            await self.engine.dispose()
            raise NotMigrated(
                f"{problem}; run `make migrate` (or `tessera-{s.service_name} db migrate`)"
            )
        self.http = httpx.AsyncClient()
        keys = self._key_source or JWKSKeySource(
            s.jwt.jwks_url,
            client=self.http,
            cache_s=s.jwt.jwks_cache_s,
            min_refetch_s=s.jwt.jwks_min_refetch_s,
        )
        self.redis = Redis.from_url(
            s.redis.url.get_secret_value(), socket_timeout=2.0, socket_connect_timeout=2.0
        )
        self.revocations = Revocations(
            self.redis, prefix=s.redis.key_prefix, fail_open=s.jwt.revocation_fail_open
        )
        self.verifier = TokenVerifier(s.jwt, keys, is_revoked=self.revocations.is_revoked)
        await self.broker.connect()
        if self.consumer is not None:
            await declare_topology(self.broker, self.topology, self.consumer.routing_keys)
        await self.broker.start()
        self.relay = OutboxRelay(
            self.engine,
            self.outbox,
            BrokerPublisher(self.broker, s.broker.exchange),
            batch_size=s.broker.outbox_batch_size,
            poll_interval=s.broker.outbox_poll_interval_s,
            retention_s=s.broker.outbox_retention_s,
        )
        if self._run_relay:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        log.info("service_started", service=s.service_name, environment=s.environment)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        with contextlib.suppress(Exception):
            await self.broker.stop()
        with contextlib.suppress(Exception):
            await self.http.aclose()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        await self.engine.dispose()
        shutdown_telemetry()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        app.state.runtime = self
        app.state.verifier = self.verifier
        try:
            yield
        finally:
            await self.stop()


ExtraLifespan = Callable[[FastAPI, ServiceRuntime], contextlib.AbstractAsyncContextManager[None]]


def service_app(
    settings: ServiceSettings,
    *,
    prefix: str,
    title: str,
    description: str,
    tables: MessagingTables,
    migrations_dir: Path,
    consumer: EventConsumer | None = None,
    publishes: Sequence[type[Event]] = (),
    key_source: KeySource | None = None,
    lifespan: ExtraLifespan | None = None,
) -> tuple[FastAPI, ServiceRuntime]:
    """A service's app and runtime, wired the same way for every service.

    ``lifespan`` runs inside the runtime's (database, broker and relay are up) for what the
    service itself must set up before serving, such as auth's signing keys.
    """
    runtime = ServiceRuntime(
        settings,
        tables=tables,
        migrations_dir=migrations_dir,
        consumer=consumer,
        publishes=publishes,
        key_source=key_source,
    )

    @contextlib.asynccontextmanager
    async def combined(app: FastAPI) -> AsyncIterator[None]:
        async with runtime.lifespan(app):
            if lifespan is None:
                yield
            else:
                async with lifespan(app, runtime):
                    yield

    app = create_service_app(
        settings=settings,
        prefix=prefix,
        title=title,
        description=description,
        lifespan=combined,
        readiness=runtime.readiness,
        asyncapi=runtime.asyncapi,
    )
    instrument_app(app, configure_telemetry(settings.service_name), prefix)
    return app, runtime
