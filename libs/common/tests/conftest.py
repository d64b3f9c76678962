"""A throwaway ``probe`` service for the kernel's own messaging tests.

The probe has its own role and schema (made by ``bootstrap_database``, tables by
``create_all``: no Alembic), the kernel's outbox and inbox, and one table of effects that a
handler increments, so "applied once" is a row with ``n == 1``. Every test gets empty
tables, and its own exchange and queue names (deleted afterwards: quorum queues outlive
their consumers), so tests never see each other's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aio_pika
import aiormq
import pytest
from faststream.rabbit import RabbitBroker
from pydantic_settings import SettingsConfigDict
from sqlalchemy import Column, Integer, Table, text
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tessera.common.bootstrap import bootstrap_database
from tessera.common.db import UnitOfWork, create_engine, make_metadata, reading_sessions
from tessera.common.messaging.envelope import Envelope
from tessera.common.messaging.outbox import Outbox, OutboxRelay
from tessera.common.messaging.rabbit import (
    BrokerPublisher,
    EventConsumer,
    Topology,
    declare_exchange,
    declare_topology,
    new_broker,
)
from tessera.common.runtime import MessagingTables
from tessera.common.settings import ServiceSettings
from tessera.common.testing import Infra, make_settings, run_sync


class ProbeSettings(ServiceSettings):
    """Settings of the probe service (env prefix ``PROBE__``)."""

    service_name: ClassVar[str] = "probe"
    model_config = SettingsConfigDict(env_prefix="PROBE__")


metadata = make_metadata("probe")
messaging = MessagingTables(metadata)
effects = Table(
    "probe_effects",
    metadata,
    Column("event_id", UUID(as_uuid=True), primary_key=True),
    Column("n", Integer, nullable=False),
)

RETRY_DELAYS_MS = (100, 200)
DELIVERY_LIMIT = 3
WAIT_S = 10.0


async def eventually(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any],
    *,
    timeout: float = WAIT_S,
    every: float = 0.02,
    what: str = "condition",
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s (last: {value!r})")
        await asyncio.sleep(every)


@dataclass
class Probe:
    """One test's view of the probe service: database, names, and broker helpers."""

    infra: Infra
    settings: ProbeSettings
    engine: AsyncEngine
    topology: Topology
    channel: aio_pika.abc.AbstractChannel
    tables: MessagingTables = messaging
    effects: Table = effects
    settings_cls: type[ProbeSettings] = ProbeSettings
    outbox: Outbox = field(init=False)
    sessions: async_sessionmaker[AsyncSession] = field(init=False)
    readers: async_sessionmaker[AsyncSession] = field(init=False)
    _cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    eventually = staticmethod(eventually)

    def __post_init__(self) -> None:
        self.outbox = Outbox(self.tables.outbox, producer="probe")
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.readers = reading_sessions(self.engine)

    # --- database -------------------------------------------------------------------------

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, outbox=self.outbox, readers=self.readers)

    def engine_copy(self) -> AsyncEngine:
        """A second engine on the same schema (another replica), disposed after the test."""
        engine = create_engine(self.settings)
        self._cleanups.append(engine.dispose)
        return engine

    def engine_copy_with(self, **pool: Any) -> AsyncEngine:
        """Like :meth:`engine_copy`, with other pool options (``pool_size=1``...)."""
        engine = create_async_engine(
            self.settings.database.async_url(),
            connect_args={"server_settings": {"search_path": self.settings.schema_name}},
            **pool,
        )
        self._cleanups.append(engine.dispose)
        return engine

    def uow_on(self, engine: AsyncEngine) -> UnitOfWork:
        return UnitOfWork(async_sessionmaker(engine, expire_on_commit=False), outbox=self.outbox)

    @contextlib.asynccontextmanager
    async def admin(self) -> AsyncIterator[Any]:
        """A superuser connection to this run's database (to read pg_stat_activity)."""
        import asyncpg

        url = make_url(self.infra.postgres_admin).set(database=self.infra.database)
        conn = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            yield conn
        finally:
            await conn.close()

    async def outbox_rows(self) -> list[Any]:
        t = self.tables.outbox
        async with self.engine.connect() as conn:
            return list((await conn.execute(t.select().order_by(t.c.id))).all())

    async def apply_effect(self, session: AsyncSession, event_id: uuid.UUID) -> None:
        """The probe's business effect: count one application of ``event_id``."""
        t = self.effects
        stmt = insert(t).values(event_id=event_id, n=1)
        await session.execute(
            stmt.on_conflict_do_update(index_elements=[t.c.event_id], set_={"n": t.c.n + 1})
        )

    async def effect_count(self, event_id: uuid.UUID) -> int | None:
        async with self.engine.connect() as conn:
            return await conn.scalar(
                self.effects.select()
                .with_only_columns(self.effects.c.n)
                .where(self.effects.c.event_id == event_id)
            )

    # --- broker ---------------------------------------------------------------------------

    @property
    def amqp_url(self) -> str:
        return self.infra.rabbitmq

    def broker(
        self, url: str | None = None, *, prefetch: int = 32, middlewares: Sequence[Any] = ()
    ) -> RabbitBroker:
        return new_broker(
            url or self.amqp_url,
            prefetch=prefetch,
            middlewares=middlewares,
            reconnect_interval=0.5,
            logger=None,
        )

    def consumer(self) -> EventConsumer:
        return EventConsumer(self.topology)

    @contextlib.asynccontextmanager
    async def consuming(
        self, consumer: EventConsumer, *, prefetch: int = 32, middlewares: Sequence[Any] = ()
    ) -> AsyncIterator[RabbitBroker]:
        """A started broker whose subscriber runs ``consumer``, its topology declared."""
        broker = self.broker(prefetch=prefetch, middlewares=middlewares)
        consumer.subscribe(broker)
        await broker.connect()
        try:
            await declare_topology(broker, self.topology, consumer.routing_keys)
            await broker.start()
            yield broker
        finally:
            await broker.stop()

    @contextlib.asynccontextmanager
    async def relaying(
        self,
        *,
        url: str | None = None,
        engine: AsyncEngine | None = None,
        poll_interval: float = 0.2,
        batch_size: int = 200,
        max_backoff: float = 1.0,
        publish_timeout: float = 5.0,
        publish_wrapper: Callable[[Any], Any] | None = None,
        **options: Any,
    ) -> AsyncIterator[OutboxRelay]:
        """An outbox relay running in the background, publishing through its own broker."""
        broker = self.broker(url)
        await broker.connect()
        await declare_exchange(broker, self.topology)
        publish: Any = BrokerPublisher(broker, self.topology.exchange, timeout=publish_timeout)
        if publish_wrapper is not None:
            publish = publish_wrapper(publish)
        relay = OutboxRelay(
            engine or self.engine,
            self.outbox,
            publish,
            batch_size=batch_size,
            poll_interval=poll_interval,
            max_backoff=max_backoff,
            **options,
        )
        task = asyncio.create_task(relay.run(), name="probe-relay")
        try:
            yield relay
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await broker.stop()

    async def tap(self, binding_key: str = "#") -> aio_pika.abc.AbstractQueue:
        """An exclusive queue bound to the probe's exchange: sees what the relay publishes."""
        exchange = await self.channel.declare_exchange(
            self.topology.exchange,
            aio_pika.ExchangeType.TOPIC,
            durable=True,
            arguments={"alternate-exchange": self.topology.unrouted},  # as the kernel does
        )
        queue = await self.channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key=binding_key)
        return queue

    async def publish_raw(
        self,
        body: bytes,
        *,
        routing_key: str,
        message_id: str | None = None,
        message_type: str | None = None,
        content_type: str = "application/json",
        to_queue: bool = False,
        headers: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Publish to the probe's exchange as another service's relay would (with confirms),
        or with ``to_queue`` straight to the queue named ``routing_key``."""
        exchange = (
            self.channel.default_exchange
            if to_queue
            else await self.channel.get_exchange(self.topology.exchange)
        )
        await exchange.publish(
            aio_pika.Message(
                body,
                message_id=message_id,
                type=message_type,
                content_type=content_type,
                headers=headers,
                correlation_id=correlation_id,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=routing_key,
        )

    async def publish_envelope(
        self, envelope: Envelope, *, to_queue: str | None = None, **options: Any
    ) -> None:
        options.setdefault("message_type", envelope.type)
        await self.publish_raw(
            envelope.model_dump_json().encode(),
            routing_key=to_queue or envelope.routing_key,
            message_id=str(envelope.id),
            to_queue=to_queue is not None,
            **options,
        )

    async def message_count(self, queue: str) -> int:
        declared = await self.channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)

    async def take_all(
        self, queue: str, *, expect: int, timeout: float = WAIT_S
    ) -> list[aio_pika.abc.AbstractIncomingMessage]:
        """Consume (and ack) messages from ``queue`` until ``expect`` have arrived."""
        found: list[aio_pika.abc.AbstractIncomingMessage] = []
        q = await self.channel.get_queue(queue)
        deadline = time.monotonic() + timeout

        async def more() -> bool:
            while time.monotonic() < deadline:
                message = await q.get(no_ack=True, fail=False)
                if message is None:
                    break
                found.append(message)
            return len(found) >= expect

        await eventually(more, timeout=timeout, what=f"{expect} message(s) in {queue}")
        return found

    async def cleanup(self) -> None:
        for step in reversed(self._cleanups):
            with contextlib.suppress(Exception):
                await step()
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            for name in [*self.topology.queues, self.topology.unrouted]:
                channel = await connection.channel()
                with contextlib.suppress(aiormq.exceptions.AMQPError):
                    await channel.queue_delete(name)
            for exchange in (self.topology.exchange, self.topology.unrouted):
                channel = await connection.channel()
                with contextlib.suppress(aiormq.exceptions.AMQPError):
                    await channel.exchange_delete(exchange)


async def _create_tables(settings: ProbeSettings) -> None:
    await bootstrap_database(settings)
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def probe_settings(infra: Infra) -> ProbeSettings:
    """The probe's role, schema and tables in this run's private database."""
    settings = make_settings(ProbeSettings, infra, broker={"retry_delays_ms": [*RETRY_DELAYS_MS]})
    run_sync(_create_tables(settings))
    return settings


@pytest.fixture
async def probe(infra: Infra, probe_settings: ProbeSettings) -> AsyncIterator[Probe]:
    """Empty probe tables, and an exchange and queue names no other test uses."""
    engine = create_engine(probe_settings)
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE outbox, inbox, probe_effects"))
    unique = uuid.uuid4().hex[:10]
    topology = Topology(
        service="probe",
        exchange=f"{infra.exchange}.{unique}",
        unrouted=f"{infra.unrouted}.{unique}",
        queue_prefix=f"{infra.queue_prefix}{unique}.",
        retry_delays_ms=RETRY_DELAYS_MS,
        delivery_limit=DELIVERY_LIMIT,
    )
    connection = await aio_pika.connect(infra.rabbitmq)
    channel = await connection.channel()
    probe = Probe(
        infra=infra,
        settings=probe_settings,
        engine=engine,
        topology=topology,
        channel=channel,
    )
    try:
        yield probe
    finally:
        await connection.close()
        await probe.cleanup()
        await engine.dispose()


# --- a TCP proxy in front of RabbitMQ -------------------------------------------------------


class TcpProxy:
    """A TCP relay to RabbitMQ that the test can cut (every connection) and restore, or
    stall: connections stay open, and accepted, but nothing gets through any more (a
    broker that takes the TCP connection and never answers)."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.server: asyncio.Server | None = None
        self.transports: set[asyncio.WriteTransport] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.stalled = asyncio.Event()

    def stall(self) -> None:
        self.stalled.set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for transport in list(self.transports):
            transport.abort()
        self.transports.clear()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=2.0)
        await self.server.wait_closed()
        self.server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        self.transports.add(writer.transport)
        if self.stalled.is_set():
            await _swallow(reader)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.transports.add(up_writer.transport)
        try:
            await asyncio.gather(
                _pipe(reader, up_writer, self.stalled), _pipe(up_reader, writer, self.stalled)
            )
        finally:
            writer.transport.abort()
            up_writer.transport.abort()
            self.tasks.discard(task)


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stalled: asyncio.Event
) -> None:
    try:
        while data := await reader.read(65536):
            if stalled.is_set():
                continue  # swallowed: the other side never hears of it
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.transport.abort()


async def _swallow(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(65536):
            pass


@pytest.fixture
async def rabbitmq_proxy(infra: Infra) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A proxy to this run's RabbitMQ and the AMQP URL that goes through it."""
    target = urlsplit(infra.rabbitmq)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5672)
    await proxy.start()
    proxied = target._replace(netloc=f"{target.username}:{target.password}@127.0.0.1:{proxy.port}")
    try:
        yield proxy, proxied.geturl()
    finally:
        if proxy.server is not None:
            await proxy.stop()
