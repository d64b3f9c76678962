"""Idempotent event handlers, wired by the kernel: a handler is only its effect.

    consumer = Consumer()

    @consumer.on(VersionPublished)
    async def version_published(uow: Handling, event: VersionPublished) -> None:
        await service.record_version(uow, event)

For each event, the kernel opens a unit of work, claims ``(event id, this service)`` in the
inbox, calls the handler, and commits once: the claim, the handler's rows and the events it
publishes are one transaction. A redelivered event finds its claim and the handler is not
called; a handler that raises rolls everything back (the claim too) and the transport
(:class:`~tessera.common.messaging.rabbit.EventConsumer`) retries or dead-letters the
message. Handlers never commit.

An effect outside the database (an email) cannot be part of a transaction, and no transaction
should stay open while it happens: ``consumer.on(Event, fn, transaction=False)`` calls the
handler with its unit of work *not* entered. The handler opens ``async with uow:`` as often as
it needs (the mailer: record and lease the delivery, commit, talk SMTP, record the outcome)
and its own rows make it idempotent; the kernel skips an event whose claim is already in the
inbox and writes the claim once the handler has returned. A handler whose effect is one
transaction of its own (after a download, say) calls ``await uow.claim()`` in it: the claim
then commits with the effect, and a redelivery after a crash between the two does nothing
twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

import structlog
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.common import metrics
from tessera.common.db import UnitOfWork, driver_in_transaction, pooled_driver
from tessera.common.messaging.envelope import Envelope, Event, routing_key
from tessera.common.messaging.inbox import already_claimed_on, claim, claim_on
from tessera.common.messaging.rabbit import EventConsumer, Topology, last_attempt

if TYPE_CHECKING:
    from tessera.common.messaging.outbox import Outbox

__all__ = ["Consumer", "Handler", "Handling"]

log = structlog.stdlib.get_logger(__name__)

E = TypeVar("E", bound=Event)
T = TypeVar("T")


class Handling(UnitOfWork):
    """The unit of work of one inbound event: its transaction, the envelope being handled,
    and the objects the service provided to its runtime (``uow.get(Mailer)``)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        envelope: Envelope,
        outbox: Outbox | None,
        resources: Mapping[type, Any],
        inbox: Table | None = None,
        consumer: str = "",
    ) -> None:
        super().__init__(sessions, outbox=outbox)
        self.envelope = envelope
        self._resources = resources
        self._inbox = inbox
        self._consumer = consumer

    async def claim(self) -> bool:
        """Claim the event being handled in this unit of work's open transaction: True the
        first time, False when another delivery claimed it (leave without committing). For
        ``transaction=False`` handlers; the kernel's own claim afterwards finds it there."""
        if self._inbox is None:
            raise RuntimeError("this unit of work handles no claimable event")
        driver = await driver_in_transaction(self.session)
        return await claim_on(
            driver,
            self._inbox,
            event_id=self.envelope.id,
            consumer=self._consumer,
            event_type=self.envelope.type,
        )

    @property
    def last_attempt(self) -> bool:
        """If the handler fails now, the event is dead-lettered rather than retried (see
        :func:`tessera.common.messaging.rabbit.last_attempt`)."""
        return last_attempt()

    def get(self, kind: type[T]) -> T:
        try:
            found = self._resources[kind]
        except KeyError:
            raise LookupError(f"no {kind.__name__} was provided to the runtime") from None
        return found


Handler = Callable[[Handling, Any], Awaitable[None]]


@dataclass(frozen=True)
class _Registered:
    event: type[Event]
    fn: Handler
    transaction: bool = True


class Consumer:
    """The events one service handles, and their handlers: a declaration, no I/O."""

    def __init__(self) -> None:
        self._handlers: dict[tuple[str, int], _Registered] = {}

    @overload
    def on(
        self, event: type[E], *, transaction: bool = True
    ) -> Callable[[Callable[[Handling, E], Awaitable[None]]], Any]: ...
    @overload
    def on(
        self,
        event: type[E],
        fn: Callable[[Handling, E], Awaitable[None]],
        *,
        transaction: bool = True,
    ) -> None: ...

    def on(
        self,
        event: type[E],
        fn: Callable[[Handling, E], Awaitable[None]] | None = None,
        *,
        transaction: bool = True,
    ) -> Any:
        """Register ``fn`` for ``event`` (directly, or as a decorator). ``transaction=False``:
        the handler gets its unit of work unopened and makes itself idempotent."""

        def register(handler: Callable[[Handling, E], Awaitable[None]]) -> Any:
            key = (event.type, event.version)
            if key in self._handlers:
                raise ValueError(f"{routing_key(*key)} already has a handler")
            self._handlers[key] = _Registered(event, handler, transaction)
            return handler

        if fn is None:
            return register
        register(fn)
        return None

    @property
    def events(self) -> list[type[Event]]:
        return [r.event for r in self._handlers.values()]

    @property
    def routing_keys(self) -> list[str]:
        return sorted(routing_key(t, v) for t, v in self._handlers)

    def transport(
        self,
        topology: Topology,
        *,
        sessions: Callable[[], async_sessionmaker[AsyncSession]],
        inbox: Table,
        outbox: Callable[[], Outbox | None],
        resources: Mapping[type, Any],
    ) -> EventConsumer:
        """The transport-level consumer whose handlers run these inside a claimed unit of
        work. ``sessions`` and ``outbox`` are read per event (they exist once started)."""
        transport = EventConsumer(topology)
        name = topology.service
        for registered in self._handlers.values():
            wrap = _claimed if registered.transaction else _claimed_after
            transport.on(
                registered.event, wrap(registered.fn, name, sessions, inbox, outbox, resources)
            )
        return transport


def _duplicate(consumer: str, envelope: Envelope) -> None:
    log.info("event_already_handled", consumer=consumer, event_id=str(envelope.id))
    metrics.EVENTS_CONSUMED.labels(consumer, envelope.type, "duplicate").inc()


def _handled(consumer: str, envelope: Envelope, started: float) -> None:
    elapsed = time.perf_counter() - started
    metrics.EVENTS_CONSUMED.labels(consumer, envelope.type, "handled").inc()
    metrics.observe_processing(consumer, envelope.type, elapsed)
    log.debug("event_effect_committed", consumer=consumer, duration_ms=round(elapsed * 1000, 2))


def _claimed(
    fn: Handler,
    consumer: str,
    sessions: Callable[[], async_sessionmaker[AsyncSession]],
    inbox: Table,
    outbox: Callable[[], Outbox | None],
    resources: Mapping[type, Any],
) -> Callable[[Envelope, Any], Awaitable[None]]:
    async def handle(envelope: Envelope, event: Any) -> None:
        uow = Handling(sessions(), envelope=envelope, outbox=outbox(), resources=resources)
        async with uow:
            first = await claim(
                uow.session,
                inbox,
                event_id=envelope.id,
                consumer=consumer,
                event_type=envelope.type,
            )
            if not first:
                _duplicate(consumer, envelope)
                return
            started = time.perf_counter()
            await fn(uow, event)
            await uow.commit()
            _handled(consumer, envelope, started)

    handle.__name__ = getattr(fn, "__name__", "handle")
    return handle


def _claimed_after(
    fn: Handler,
    consumer: str,
    sessions: Callable[[], async_sessionmaker[AsyncSession]],
    inbox: Table,
    outbox: Callable[[], Outbox | None],
    resources: Mapping[type, Any],
) -> Callable[[Envelope, Any], Awaitable[None]]:
    """For ``transaction=False``: skip an event already claimed, call the handler with its
    unit of work unopened, claim the event once the handler has returned."""

    async def handle(envelope: Envelope, event: Any) -> None:
        made = sessions()
        uow = Handling(
            made,
            envelope=envelope,
            outbox=outbox(),
            resources=resources,
            inbox=inbox,
            consumer=consumer,
        )
        engine = made.kw["bind"]
        # one statement each, on the driver outside any transaction (no session, no BEGIN)
        async with pooled_driver(engine) as driver:
            done = await already_claimed_on(driver, inbox, event_id=envelope.id, consumer=consumer)
        if done:
            _duplicate(consumer, envelope)
            return
        started = time.perf_counter()
        await fn(uow, event)
        async with pooled_driver(engine) as driver:
            await claim_on(
                driver, inbox, event_id=envelope.id, consumer=consumer, event_type=envelope.type
            )
        _handled(consumer, envelope, started)

    handle.__name__ = getattr(fn, "__name__", "handle")
    return handle
