"""Transactional outbox and its relay.

An event row is written in the same transaction as the state change (``UnitOfWork``), with
the trace context of the request that caused it. The relay in the same process is woken
right after the commit; a short polling fallback picks up rows that another replica or a
crash left behind. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so replicas share the
work, published concurrently with publisher confirms, and marked sent. A row whose publish
fails stays unsent and is retried with a growing back-off: nothing is lost while the broker
is down, and a duplicate after a crash is absorbed by the consumers' inbox. A sent row keeps
the envelope's metadata for ``outbox_retention_s`` but not its data.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.telemetry import current_trace_headers

__all__ = ["Outbox", "OutboxRelay", "PublishFn", "outbox_table"]

log = structlog.stdlib.get_logger(__name__)

PublishFn = Callable[[Row[Any]], Awaitable[None]]


def outbox_table(metadata: MetaData) -> Table:
    table = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("event_type", String(200), nullable=False),
        Column("routing_key", String(255), nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("sent_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column("last_error", Text, nullable=True),
    )
    Index(
        "ix_outbox_unsent",
        table.c.id,
        postgresql_where=table.c.sent_at.is_(None),
    )
    return table


class Outbox:
    """The producer side of one service: builds rows and wakes the relay after commits."""

    def __init__(self, table: Table, *, producer: str) -> None:
        self.table = table
        self.producer = producer
        self._wakeup = asyncio.Event()

    def row_for(self, event: Event, *, subject: str) -> dict[str, Any]:
        envelope = Envelope.wrap(event, producer=self.producer, subject=subject)
        headers: dict[str, Any] = current_trace_headers()
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            headers["x-request-id"] = request_id
        return {
            "event_id": envelope.id,
            "event_type": envelope.type,
            "routing_key": envelope.routing_key,
            "payload": envelope.model_dump(mode="json"),
            "headers": headers,
        }

    def notify(self) -> None:
        """Called after a commit that wrote rows: the relay drains right away."""
        self._wakeup.set()

    async def wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    def clear(self) -> None:
        self._wakeup.clear()


class OutboxRelay:
    """Moves committed outbox rows to the broker; one per process, replicas share rows."""

    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Outbox,
        publish: PublishFn,
        *,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        retention_s: float = 3600.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.publish = publish
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention_s = retention_s
        self.max_backoff = max_backoff
        self._last_purge = 0.0

    async def run(self) -> None:
        """Drain forever: on wake-up, on the poll interval, backing off while failing."""
        delay = self.poll_interval
        while True:
            self.outbox.clear()
            try:
                while await self.drain_once() >= self.batch_size:
                    pass
                delay = self.poll_interval
                await self._purge_sent()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = min(max(delay * 2, self.poll_interval), self.max_backoff)
                log.warning("outbox_relay_failed", error=repr(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                continue
            await self.outbox.wait(delay)

    async def drain_once(self) -> int:
        """Publish one batch of unsent rows; return how many rows were claimed."""
        t = self.outbox.table
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(t)
                    .where(t.c.sent_at.is_(None))
                    .order_by(t.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            results = await asyncio.gather(
                *(self.publish(row) for row in rows), return_exceptions=True
            )
            sent = [row.id for row, res in zip(rows, results, strict=True) if res is None]
            failed = [
                (row.id, res)
                for row, res in zip(rows, results, strict=True)
                if isinstance(res, BaseException)
            ]
            if sent:
                # once the broker has confirmed it, the event's data (which may carry a
                # single-use token for the mailer) is not kept at rest; the envelope's
                # metadata (id, type, subject, producer, time) stays for auditing
                await conn.execute(
                    update(t)
                    .where(t.c.id.in_(sent))
                    .values(
                        sent_at=func.now(),
                        payload=t.c.payload.op("-", return_type=JSONB)(literal_column("'data'")),
                    )
                )
            for row_id, error in failed:
                await conn.execute(
                    update(t)
                    .where(t.c.id == row_id)
                    .values(attempts=t.c.attempts + 1, last_error=repr(error)[:2000])
                )
        if failed:
            raise failed[0][1]
        return len(rows)

    async def _purge_sent(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < 60:
            return
        self._last_purge = now
        t = self.outbox.table
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(t).where(
                    t.c.sent_at.is_not(None),
                    t.c.sent_at
                    < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, self.retention_s),
                )
            )

    async def pending(self) -> int:
        t = self.outbox.table
        async with self.engine.connect() as conn:
            return int(
                await conn.scalar(select(func.count()).select_from(t).where(t.c.sent_at.is_(None)))
                or 0
            )
