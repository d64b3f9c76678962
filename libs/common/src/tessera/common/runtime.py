"""What one running service holds, built inside its lifespan (never at import time).

``ServiceRuntime`` owns the engine, the broker, the outbox relay and the consumer of one
service process, and the objects the service provided (``provide``/``get``). The kit's
``create_app`` constructs one from the service's description and runs its lifespan; routes
reach it through ``tessera.common.deps``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar
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

from tessera.common import metrics
from tessera.common.consumers import Consumer
from tessera.common.db import UnitOfWork, create_engine, reading_sessions, schema_is_migrated
from tessera.common.http import ReadinessCheck
from tessera.common.logging import configure_logging
from tessera.common.messaging.envelope import Event
from tessera.common.messaging.inbox import inbox_table
from tessera.common.messaging.outbox import (
    BrokerUnavailable,
    Outbox,
    OutboxRelay,
    PublishFn,
    outbox_table,
)
from tessera.common.messaging.rabbit import (
    BrokerPublisher,
    EventConsumer,
    Topology,
    declare_exchange,
    declare_topology,
    events_exchange,
    new_broker,
)
from tessera.common.migrations import head_revision, known_revisions
from tessera.common.revocation import Revocations
from tessera.common.security import JWKSKeySource, KeySource, TokenVerifier
from tessera.common.settings import ServiceSettings
from tessera.common.telemetry import configure_telemetry, shutdown_telemetry, tracing_disabled

__all__ = ["ExtraLifespan", "MessagingTables", "NotMigrated", "ServiceRuntime"]

log = structlog.stdlib.get_logger(__name__)
T = TypeVar("T")


def _public_amqp_url(url: str) -> str:
    """The broker address without credentials, for published documents."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{parts.scheme or 'amqp'}://{host}:{parts.port or 5672}{parts.path or '/'}"


class NotMigrated(RuntimeError):
    """The service's schema is behind its code; run ``make migrate`` first."""


class MessagingTables:
    """The outbox and inbox tables of one service's metadata (and that metadata: the
    service's own tables, which Alembic manages)."""

    def __init__(self, metadata: MetaData) -> None:
        self.metadata = metadata
        self.outbox: Table = outbox_table(metadata)
        self.inbox: Table = inbox_table(metadata)


class ServiceRuntime:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        tables: MessagingTables,
        migrations_dir: Path,
        consumer: Consumer | EventConsumer | None = None,
        publishes: Sequence[type[Event]] = (),
        key_source: KeySource | None = None,
        run_relay: bool | None = None,
        resources: Sequence[object] = (),
    ) -> None:
        self.settings = settings
        self.tables = tables
        self.migrations_dir = migrations_dir
        self.resources: dict[type, Any] = {}
        for resource in resources:
            self.provide(resource)
        self.outbox = Outbox(tables.outbox, producer=settings.service_name)
        self.topology = Topology.for_service(settings.service_name, settings.broker)
        if isinstance(consumer, Consumer):  # the kit's: handlers run in a claimed unit of work
            consumer = consumer.transport(
                self.topology,
                sessions=lambda: self.sessions,
                inbox=tables.inbox,
                outbox=lambda: self.outbox,
                resources=self.resources,
            )
        self.consumer = consumer
        self._key_source = key_source
        self._run_relay = settings.broker.outbox_relay if run_relay is None else run_relay
        self.engine: AsyncEngine
        self.sessions: async_sessionmaker[AsyncSession]
        self.readers: async_sessionmaker[AsyncSession]
        self.broker: RabbitBroker
        self.relay: OutboxRelay
        self.http: httpx.AsyncClient
        self.redis: Redis
        self.revocations: Revocations
        self.verifier: TokenVerifier
        self._tasks: list[asyncio.Task[Any]] = []
        self._monitor: Any = None
        # constructing the broker does no I/O; it connects in start()
        self.broker = new_broker(
            settings.broker.url.get_secret_value(),
            prefetch=settings.broker.prefetch,
            middlewares=[]
            if tracing_disabled()
            else [
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
        exchange = events_exchange(settings.broker.exchange, unrouted=settings.broker.unrouted)
        for event in publishes:
            self.broker.publisher(
                exchange=exchange,
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
        return UnitOfWork(self.sessions, outbox=self.outbox, readers=self.readers)

    def provide(self, resource: object, *, as_: type | None = None) -> None:
        """Make ``resource`` reachable by its type (or ``as_``) from routes
        (``deps.resource``) and handlers (``uow.get``)."""
        self.resources[as_ or type(resource)] = resource

    def get(self, kind: type[T]) -> T:
        try:
            found = self.resources[kind]
        except KeyError:
            raise LookupError(f"no {kind.__name__} was provided to the runtime") from None
        return found

    def readiness(self) -> Mapping[str, ReadinessCheck]:
        async def database() -> None:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def broker() -> None:
            if not await self.broker.ping(timeout=2.0):
                raise ConnectionError("broker does not answer")

        async def redis() -> None:
            await self.redis.ping()

        async def outbox() -> dict[str, Any]:
            # informative, never "not ready": parked rows wait for an operator, not a restart
            return (await self.relay.stats()).as_dict()

        return {"database": database, "broker": broker, "redis": redis, "outbox": outbox}

    async def refresh_metrics(self) -> None:
        """Read what the metrics show at scrape time: outbox rows, queue depths, the pool.
        A dependency that does not answer leaves its series as they were."""
        service = self.settings.service_name
        with contextlib.suppress(Exception):
            stats = await self.relay.stats()
            metrics.OUTBOX_ROWS.labels(service, "pending").set(stats.pending)
            metrics.OUTBOX_ROWS.labels(service, "parked").set(stats.parked)
            metrics.OUTBOX_OLDEST.labels(service).set(stats.oldest_pending_age_s or 0)
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                for queue, role, ready in await self._queue_depths():
                    metrics.QUEUE_MESSAGES.labels(service, queue, role).set(ready)
        pool: Any = self.engine.pool
        with contextlib.suppress(Exception):
            metrics.DB_CONNECTIONS.labels(service, "used").set(pool.checkedout())
            metrics.DB_CONNECTIONS.labels(service, "idle").set(pool.checkedin())
            metrics.DB_CONNECTIONS_MAX.labels(service).set(pool.size() + pool._max_overflow)

    async def _queue_depths(self) -> list[tuple[str, str, int]]:
        """(queue, role, ready messages) of each of the service's queues, declared passively
        on a channel of the broker's connection kept for this."""
        if self._monitor is None or self._monitor.is_closed:
            connection = self.broker._connection  # FastStream 0.7 keeps it here
            if connection is None:
                return []
            self._monitor = await connection.channel()
        t = self.topology
        roles = [(t.queue, "main"), (t.quarantine, "quarantine"), (t.dlq, "dead_letter")]
        roles += [(t.retry_queue(d), "retry") for d in t.retry_delays_ms]
        depths = []
        for name, role in roles:
            queue = await self._monitor.declare_queue(name, passive=True)
            depths.append((name, role, int(queue.declaration_result.message_count or 0)))
        return depths

    async def start(self) -> None:
        s = self.settings
        configure_logging(s.service_name, level=s.log_level, fmt=s.log_format)
        self.engine = create_engine(s)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.readers = reading_sessions(self.engine)
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
        else:  # a producer only: its publishes must still find the exchange
            await declare_exchange(self.broker, self.topology)
        await self.broker.start()
        self.relay = OutboxRelay(
            self.engine,
            self.outbox,
            _counted(
                BrokerPublisher(self.broker, s.broker.exchange, timeout=s.broker.publish_timeout_s),
                s.service_name,
            ),
            batch_size=s.broker.outbox_batch_size,
            poll_interval=s.broker.outbox_poll_interval_s,
            retention_s=s.broker.outbox_retention_s,
            lease_s=s.broker.outbox_lease_s,
            max_attempts=s.broker.outbox_max_attempts,
            retry_base_s=s.broker.outbox_retry_base_s,
            retry_max_s=s.broker.outbox_retry_max_s,
        )
        if self._run_relay:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        # what start-up made lives as long as the process: keep it out of every later
        # collection (a full collection over it paused requests ~100 ms every few seconds:
        # p99 of /auth/me 130 ms → 20 ms), and collect young objects less often (a request
        # allocates thousands; 700 per collection made the collector a tenth of the CPU)
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        log.info("service_started", service=s.service_name, environment=s.environment)

    async def stop(self) -> None:
        """Stop within bounds: a background task that does not end within ``STOP_WAIT_S`` of
        being cancelled (or a broker that does not close) is logged with where it waits and
        left behind, so a shutdown never hangs (an orchestrator would kill it anyway)."""
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_WAIT_S)
            for task in pending:
                log.error("stop_task_stuck", task=task.get_name(),
                          where=_where(task), waited_s=STOP_WAIT_S)  # fmt: skip
        self._tasks.clear()
        try:
            await asyncio.wait_for(self.broker.stop(), timeout=STOP_WAIT_S)
        except TimeoutError:
            log.error("stop_broker_stuck", waited_s=STOP_WAIT_S)
        except Exception:  # noqa: S110 - closing what is going away anyway
            pass
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


STOP_WAIT_S = 15.0
"""how long :meth:`Runtime.stop` waits for each of its parts"""


def _where(task: asyncio.Task[Any]) -> str:
    frames = task.get_stack(limit=8)
    return " <- ".join(f"{f.f_code.co_name} ({f.f_code.co_filename}:{f.f_lineno})" for f in frames)


def _counted(publish: PublishFn, service: str) -> PublishFn:
    """``publish``, counting what it published and what failed, by event type."""

    async def counted(row: Any) -> None:
        try:
            await publish(row)
        except BrokerUnavailable:
            metrics.PUBLISH_FAILURES.labels(service, row.event_type, "broker_unavailable").inc()
            raise
        except Exception:
            metrics.PUBLISH_FAILURES.labels(service, row.event_type, "row").inc()
            raise
        metrics.EVENTS_PUBLISHED.labels(service, row.event_type).inc()

    return counted


ExtraLifespan = Callable[[FastAPI, ServiceRuntime], contextlib.AbstractAsyncContextManager[None]]
