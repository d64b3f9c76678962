"""Transactional outbox and its relay.

An event row is written in the same transaction as the state change (``UnitOfWork``), with
the trace context of the request that caused it. The relay in the same process is woken
right after the commit; a short polling fallback picks up rows that another replica or a
crash left behind.

No transaction is open while the relay talks to the broker:

1. *claim* — a short transaction takes up to ``batch_size`` due rows with
   ``FOR UPDATE SKIP LOCKED`` (replicas share the work) and leases them by moving their
   ``next_attempt_at`` ``lease_s`` ahead, so a relay that dies mid-way leaves rows that
   another one takes over once the lease has run out;
2. *publish* — outside any transaction, concurrently, with publisher confirms;
3. *settle* — another short transaction marks what was confirmed as sent (dropping its
   ``data``, which may carry a single-use token for the mailer), and gives each row that
   failed its own next attempt with a growing delay; a row that failed ``max_attempts``
   times is *parked*: it stays in the table, is counted by :meth:`OutboxRelay.stats` (and so
   by ``/readyz`` and ``tessera-<svc> outbox list``) and goes out again only when
   ``tessera-<svc> outbox retry`` says so. One row can never hold up the others.

A broker that cannot be reached (:class:`BrokerUnavailable`) is not a row's fault: the
claimed rows are released without counting an attempt and the relay backs off as a whole,
so nothing is parked, let alone lost, while RabbitMQ is down. A duplicate after a crash is
absorbed by the consumers' inbox. Sent rows are purged after ``retention_s`` on their own
schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog
from opentelemetry.instrumentation.utils import suppress_instrumentation
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
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncEngine

from tessera.common.db import pooled_driver, qualified_name
from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.telemetry import current_trace_headers

__all__ = [
    "BrokerUnavailable",
    "Drain",
    "Outbox",
    "OutboxRelay",
    "OutboxRow",
    "OutboxStats",
    "PublishFn",
    "list_outbox",
    "outbox_stats",
    "outbox_table",
    "retry_outbox",
]

log = structlog.stdlib.get_logger(__name__)


class OutboxRow(NamedTuple):
    """A claimed row, as the relay hands it to the publish function."""

    id: int
    event_id: uuid.UUID
    event_type: str
    routing_key: str
    payload: str
    """the envelope as its JSON text, published as it is (never parsed by the relay)"""
    headers: dict[str, Any] | None
    attempts: int


PublishFn = Callable[[OutboxRow], Awaitable[None]]


@dataclass(frozen=True)
class _RelaySql:
    """The relay's statements for one outbox table, written for asyncpg (``$n``)."""

    claim: str
    sent: str
    release: str
    failed: str

    @classmethod
    def for_table(cls, table: Table) -> _RelaySql:
        t = qualified_name(table)
        columns = ", ".join(
            "payload::text AS payload" if field == "payload" else field
            for field in OutboxRow._fields
        )
        return cls(
            # the rows due the longest, skipping those another relay holds, leased at once
            claim=(
                f"UPDATE {t} SET next_attempt_at = now() + make_interval(secs => $2) "  # noqa: S608 (our table)
                f"WHERE id IN (SELECT id FROM {t} WHERE sent_at IS NULL AND parked_at IS NULL"
                " AND next_attempt_at <= now() ORDER BY next_attempt_at, id LIMIT $1"
                f" FOR UPDATE SKIP LOCKED) RETURNING {columns}"
            ),
            # data may carry a single-use token for the mailer: not kept once sent
            sent=(
                f"UPDATE {t} SET sent_at = now(), payload = payload - 'data' "  # noqa: S608
                "WHERE id = ANY($1::bigint[])"
            ),
            # another relay may have sent a row after our lease ran out: only unsent ones
            release=(
                f"UPDATE {t} SET next_attempt_at = now() "  # noqa: S608
                "WHERE id = ANY($1::bigint[]) AND sent_at IS NULL"
            ),
            failed=(
                f"UPDATE {t} SET attempts = $2, last_error = $3, "  # noqa: S608
                "next_attempt_at = now() + make_interval(secs => $4), "
                "parked_at = CASE WHEN $5::boolean THEN now() END "
                "WHERE id = $1 AND sent_at IS NULL"
            ),
        )


class BrokerUnavailable(Exception):
    """The broker could not take a publish (unreachable, no confirm in time, channel gone):
    nothing the row itself could fix, so it costs the row no attempt."""


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
        Column(
            "next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()
        ),
        Column("parked_at", DateTime(timezone=True), nullable=True),
    )
    Index(
        "ix_outbox_due",
        table.c.next_attempt_at,
        table.c.id,
        postgresql_where=table.c.sent_at.is_(None) & table.c.parked_at.is_(None),
    )
    Index("ix_outbox_sent", table.c.sent_at, postgresql_where=table.c.sent_at.is_not(None))
    return table


class Outbox:
    """The producer side of one service: builds rows and wakes the relay after commits."""

    def __init__(self, table: Table, *, producer: str) -> None:
        self.table = table
        self.producer = producer
        self._wakeup = asyncio.Event()
        self._insert_sql = (
            f"INSERT INTO {qualified_name(table)} "  # noqa: S608 (our table)
            "(event_id, event_type, routing_key, payload, headers) VALUES ($1, $2, $3, $4, $5)"
        )

    async def insert(self, driver: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Write ``rows`` (from :meth:`row_for`) on the asyncpg connection of the unit of
        work's transaction (:func:`~tessera.common.db.driver_in_transaction`). Bookkeeping,
        untraced: the request's span and the publish span that continues it say it all."""
        args = [
            (
                row["event_id"],
                row["event_type"],
                row["routing_key"],
                row["payload"]
                if isinstance(row["payload"], str)
                else json.dumps(row["payload"], separators=(",", ":")),
                json.dumps(row["headers"], separators=(",", ":")),
            )
            for row in rows
        ]
        with suppress_instrumentation():
            await driver.executemany(self._insert_sql, args)

    def row_for(self, event: Event, *, subject: str) -> dict[str, Any]:
        envelope = Envelope.wrap(event, producer=self.producer, subject=subject)
        return self._row(envelope, envelope.model_dump(mode="json"))

    def row_for_json(self, kind: type[Event], data: str, *, subject: str) -> dict[str, Any]:
        """A row for an event of ``kind`` whose ``data`` is already its JSON text: written
        and published as it is, never parsed nor encoded again (an applet's version is
        hundreds of kilobytes). The producer answers for ``data`` matching ``kind``'s schema
        (its contract tests check what it publishes)."""
        if not data.startswith("{") or not data.endswith("}"):
            raise ValueError("data must be the JSON text of an object")
        envelope = Envelope(type=kind.type, version=kind.version, producer=self.producer,
                            subject=subject, data={})  # fmt: skip
        head = envelope.model_dump_json(exclude={"data"})
        return self._row(envelope, f'{head[:-1]},"data":{data}}}')

    def _row(self, envelope: Envelope, payload: dict[str, Any] | str) -> dict[str, Any]:
        headers: dict[str, Any] = current_trace_headers()
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            headers["x-request-id"] = request_id
        return {
            "event_id": envelope.id,
            "event_type": envelope.type,
            "routing_key": envelope.routing_key,
            "payload": payload,
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


@dataclass(frozen=True)
class Drain:
    """What one pass of the relay did."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    parked: int = 0
    released: int = 0  # given back untouched because the broker was unavailable

    @property
    def broker_unavailable(self) -> bool:
        return self.released > 0


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    parked: int
    oldest_pending_age_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "parked": self.parked,
            "oldest_pending_age_s": self.oldest_pending_age_s,
        }


@contextlib.asynccontextmanager
async def _untraced() -> AsyncIterator[None]:
    """The relay's own bookkeeping makes no spans: claims every second, settles and purges
    would be traces of their own, about nothing a request did. Its publishes (FastStream's
    spans, children of each row's stored trace) are what a trace shows."""
    with suppress_instrumentation():
        yield


def _seconds(value: Any) -> Any:
    return func.make_interval(0, 0, 0, 0, 0, 0, value)


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
        max_backoff: float = 5.0,
        lease_s: float = 30.0,
        max_attempts: int = 10,
        retry_base_s: float = 1.0,
        retry_max_s: float = 300.0,
        purge_interval_s: float = 60.0,
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.publish = publish
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention_s = retention_s
        self.max_backoff = max_backoff
        self.lease_s = lease_s
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.purge_interval_s = purge_interval_s

    @functools.cached_property
    def _sql(self) -> _RelaySql:
        return _RelaySql.for_table(self.outbox.table)

    # --- the loops ------------------------------------------------------------------------

    async def run(self) -> None:
        """Relay forever (woken by commits, else every ``poll_interval``) and purge sent
        rows every ``purge_interval_s``; neither loop stops for an error."""
        purge = asyncio.create_task(self._purge_forever(), name="outbox-purge")
        try:
            await self._relay_forever()
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge

    async def _relay_forever(self) -> None:
        backoff = 0.0
        while True:
            self.outbox.clear()
            try:
                drained = await self.drain_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database, most likely: nothing was published
                backoff = self._grow(backoff)
                log.warning("outbox_relay_failed", error=repr(exc)[:500], retry_in_s=backoff)
                await asyncio.sleep(backoff)
                continue
            if drained.broker_unavailable:
                backoff = self._grow(backoff)
                log.warning(
                    "outbox_broker_unavailable", released=drained.released, retry_in_s=backoff
                )
                await asyncio.sleep(backoff)
                continue
            backoff = 0.0
            if drained.claimed >= self.batch_size:
                continue  # more rows are waiting
            await self.outbox.wait(self.poll_interval)

    def _grow(self, backoff: float) -> float:
        return min(max(backoff * 2, self.poll_interval / 4), self.max_backoff)

    async def _purge_forever(self) -> None:
        while True:
            await asyncio.sleep(self.purge_interval_s)
            try:
                purged = await self.purge_sent()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_purge_failed", error=repr(exc)[:500])
                continue
            if purged:
                log.debug("outbox_purged", rows=purged)

    # --- one pass -------------------------------------------------------------------------

    async def drain_once(self) -> Drain:
        """Claim a batch of due rows, publish them outside any transaction, settle them."""
        rows = await self._claim()
        if not rows:
            return Drain()
        try:
            results = await asyncio.gather(
                *(self.publish(row) for row in rows), return_exceptions=True
            )
        except asyncio.CancelledError:
            # stopping: hand the leases back so the next relay need not wait them out
            await asyncio.shield(self._release([row.id for row in rows]))
            raise
        sent: list[int] = []
        released: list[int] = []
        failed: list[tuple[OutboxRow, BaseException]] = []
        for row, result in zip(rows, results, strict=True):
            if result is None:
                sent.append(row.id)
            elif isinstance(result, BrokerUnavailable | asyncio.CancelledError):
                released.append(row.id)
            else:
                failed.append((row, result))
        # stopping now would leave published rows unmarked, to go out again: the settle
        # (one or two short statements) finishes first, then the cancellation goes on
        settling = asyncio.ensure_future(self._settle(sent=sent, failed=failed, released=released))
        try:
            parked = await asyncio.shield(settling)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await settling
            raise
        return Drain(
            claimed=len(rows),
            sent=len(sent),
            failed=len(failed),
            parked=parked,
            released=len(released),
        )

    @contextlib.asynccontextmanager
    async def _driver(self) -> AsyncIterator[Any]:
        """A pooled asyncpg connection, outside any transaction (each statement commits on
        its own), untraced: the relay's claims and settles are a few statements a batch,
        on the asyncpg driver at a third of the CPU of the same statements through Core."""
        async with pooled_driver(self.engine) as driver:
            with suppress_instrumentation():
                yield driver

    async def _claim(self) -> list[OutboxRow]:
        # one statement, so one short transaction of its own: the lease is taken atomically
        async with self._driver() as driver:
            records = await driver.fetch(self._sql.claim, self.batch_size, self.lease_s)
        return sorted((OutboxRow(*record) for record in records), key=lambda row: row.id)

    async def _settle(
        self,
        *,
        sent: list[int],
        failed: list[tuple[OutboxRow, BaseException]],
        released: list[int],
    ) -> int:
        sql = self._sql
        parked = 0
        async with self._driver() as driver:
            if sent:
                await driver.execute(sql.sent, sent)
            if released:
                await driver.execute(sql.release, released)
            if failed:
                params = []
                for row, error in failed:
                    attempts = row.attempts + 1
                    park = attempts >= self.max_attempts
                    parked += park
                    params.append(
                        (row.id, attempts, repr(error)[:2000], self.retry_delay(attempts), park)
                    )
                    (log.error if park else log.warning)(
                        "outbox_row_parked" if park else "outbox_row_failed",
                        row_id=row.id,
                        event_id=str(row.event_id),
                        event_type=row.event_type,
                        attempts=attempts,
                        error=repr(error)[:500],
                    )
                await driver.executemany(sql.failed, params)
        return parked

    async def _release(self, ids: list[int]) -> None:
        with contextlib.suppress(Exception):
            async with self._driver() as driver:
                await driver.execute(self._sql.release, ids)

    def retry_delay(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: doubling from ``retry_base_s``, capped at
        ``retry_max_s``, with a little jitter so a burst of failures does not come back as
        one."""
        delay = min(self.retry_base_s * 2 ** (attempts - 1), self.retry_max_s)
        return delay * random.uniform(0.9, 1.1)

    # --- housekeeping and visibility ------------------------------------------------------

    async def purge_sent(self, *, chunk: int = 5_000) -> int:
        """Delete rows sent more than ``retention_s`` ago, in chunks; return how many."""
        t = self.outbox.table
        total = 0
        while True:
            old = (
                select(t.c.id)
                .where(t.c.sent_at < func.now() - _seconds(self.retention_s))
                .limit(chunk)
            )
            async with _untraced(), self.engine.begin() as conn:
                result = await conn.execute(delete(t).where(t.c.id.in_(old.scalar_subquery())))
            total += result.rowcount
            if result.rowcount < chunk:
                return total

    async def stats(self) -> OutboxStats:
        return await outbox_stats(self.engine, self.outbox.table)

    async def pending(self) -> int:
        return (await self.stats()).pending


async def outbox_stats(engine: AsyncEngine, t: Table) -> OutboxStats:
    """Rows not sent yet (pending: will be tried; parked: wait for ``outbox retry``)."""
    unparked = t.c.parked_at.is_(None)
    query = select(
        func.count().filter(unparked),
        func.count().filter(t.c.parked_at.is_not(None)),
        func.extract("epoch", func.now() - func.min(t.c.created_at).filter(unparked)),
    ).where(t.c.sent_at.is_(None))
    async with _untraced(), engine.connect() as conn:
        pending, parked, oldest = (await conn.execute(query)).one()
    return OutboxStats(
        pending=int(pending),
        parked=int(parked),
        oldest_pending_age_s=round(float(oldest), 3) if oldest is not None else None,
    )


async def list_outbox(
    engine: AsyncEngine, t: Table, *, parked: bool | None = None, limit: int = 100
) -> list[Any]:
    """Unsent rows, oldest first: all, only the parked ones, or only the pending ones."""
    query = select(
        t.c.id, t.c.event_id, t.c.event_type, t.c.created_at, t.c.attempts, t.c.last_error,
        t.c.next_attempt_at, t.c.parked_at,
    ).where(t.c.sent_at.is_(None)).order_by(t.c.id).limit(limit)  # fmt: skip
    if parked is True:
        query = query.where(t.c.parked_at.is_not(None))
    elif parked is False:
        query = query.where(t.c.parked_at.is_(None))
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def retry_outbox(engine: AsyncEngine, t: Table, *, ids: Sequence[int] | None = None) -> int:
    """Make parked rows (those with ``ids``, or every parked row) due again with a fresh
    attempt count; return how many. A running relay picks them up within its poll."""
    query = (
        update(t)
        .where(t.c.sent_at.is_(None), t.c.parked_at.is_not(None))
        .values(parked_at=None, attempts=0, next_attempt_at=func.now())
    )
    if ids is not None:
        query = query.where(t.c.id.in_(list(ids)))
    async with engine.begin() as conn:
        result = await conn.execute(query)
    return int(result.rowcount)
