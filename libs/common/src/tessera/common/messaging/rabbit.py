"""RabbitMQ topology, the outbox publisher, and the retrying, dead-lettering consumer.

For the whole suite:

* ``tessera.events`` — the one durable topic exchange every producer publishes to, with
  publisher confirms and ``mandatory``; its alternate exchange ``tessera.unrouted`` (fanout)
  feeds the quorum queue of the same name, so an event that no queue is bound to yet is kept
  (``tessera-admin unrouted list|replay``) instead of vanishing.

Per consuming service (``mailer`` here as the example):

* ``mailer.events`` — the service's durable quorum queue, bound to each routing key it
  handles (``auth.user.registered.v1``...);
* ``mailer.events.quarantine`` — where a message goes when it comes back unacknowledged
  (its consumer died while it, or a message ahead of it, was in flight); consumed one at a
  time, so only the message that really kills its consumer is counted against the delivery
  limit, never the innocent ones that were prefetched with it;
* ``mailer.events.retry.<N>ms`` — one quorum queue per retry delay; a failed message waits
  there for its TTL and is dead-lettered back to ``mailer.events`` (growing delays, no
  head-of-line blocking between delays);
* ``mailer.events.dlq`` — where a message lands, with its error in the headers, once it has
  failed ``len(retry_delays)+1`` times or can never succeed (undecodable, unknown type,
  invalid data); RabbitMQ itself dead-letters there what was delivered ``delivery_limit``
  times without ever being acknowledged (``x-death`` says why).

Messages are acknowledged explicitly, and only after they were handled, re-published to a
retry queue, or dead-lettered with publisher confirms: nothing is dropped silently, and a
publish that RabbitMQ returns (no queue for it) raises instead of counting as done.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import aiormq.exceptions
import structlog
from aio_pika import RobustExchange
from faststream import AckPolicy
from faststream.exceptions import IncorrectState
from faststream.message import StreamMessage
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
)
from opentelemetry import context as otel_context
from opentelemetry import propagate
from pydantic import BaseModel, ValidationError

from tessera.common import metrics
from tessera.common.ids import safe_id
from tessera.common.messaging.envelope import Envelope, Event, routing_key
from tessera.common.messaging.outbox import BrokerUnavailable, OutboxRow
from tessera.common.settings import BrokerSettings

__all__ = [
    "BrokerPublisher",
    "EventConsumer",
    "PermanentError",
    "Topology",
    "declare_exchange",
    "declare_topology",
    "describe_validation_error",
    "events_exchange",
    "last_attempt",
    "new_broker",
]

log = structlog.stdlib.get_logger(__name__)

ATTEMPT = "x-tessera-attempt"
ERROR = "x-tessera-error"
FAILED_AT = "x-tessera-failed-at"
ORIGINAL_KEY = "x-tessera-routing-key"
QUARANTINED = "x-tessera-quarantined"
PUBLISH_TIMEOUT_S = 10.0

_LAST_ATTEMPT: ContextVar[bool] = ContextVar("tessera_last_attempt", default=False)


def last_attempt() -> bool:
    """Whether the event being handled is on its last attempt: if its handler fails now,
    the event is dead-lettered, not retried. A handler that must account for its work (a
    job's progress, say) reads it to record the failure instead of leaving it unaccounted."""
    return _LAST_ATTEMPT.get()


#: what a publish raises when the broker, not the message, is the problem
_BROKER_DOWN = (
    TimeoutError,
    ConnectionError,  # aiormq's AMQPConnectionError is one
    OSError,
    aiormq.exceptions.ChannelClosed,  # the channel went away under a batch
    aiormq.exceptions.ChannelInvalidStateError,
    IncorrectState,  # FastStream: not connected (yet)
)


class PermanentError(Exception):
    """A handler error that no retry can fix: the message goes straight to the DLQ."""


@dataclass(frozen=True)
class Topology:
    """Names and limits of the exchange and one service's queues."""

    service: str
    exchange: str = "tessera.events"
    unrouted: str = "tessera.unrouted"
    queue_prefix: str = ""
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000)
    delivery_limit: int = 5

    @classmethod
    def for_service(cls, service: str, settings: BrokerSettings) -> Topology:
        return cls(
            service=service,
            exchange=settings.exchange,
            unrouted=settings.unrouted,
            queue_prefix=settings.queue_prefix,
            retry_delays_ms=tuple(settings.retry_delays_ms),
            delivery_limit=settings.delivery_limit,
        )

    @property
    def queue(self) -> str:
        return f"{self.queue_prefix}{self.service}.events"

    @property
    def quarantine(self) -> str:
        return f"{self.queue}.quarantine"

    @property
    def dlq(self) -> str:
        return f"{self.queue}.dlq"

    def retry_queue(self, delay_ms: int) -> str:
        return f"{self.queue}.retry.{delay_ms}ms"

    @property
    def queues(self) -> list[str]:
        """Every queue of the service."""
        retries = [self.retry_queue(d) for d in self.retry_delays_ms]
        return [self.queue, self.quarantine, *retries, self.dlq]

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays_ms) + 1

    @property
    def main_delivery_limit(self) -> int:
        """The main queue's limit is only a safety net (a message comes back from there to
        be quarantined, not handled): generous, because every message prefetched when a
        consumer dies is counted, innocent or not."""
        return max(20, 4 * self.delivery_limit)

    def main_queue(self) -> RabbitQueue:
        """The service's queue; one definition for the declaration and the subscriber (a
        queue declared again with other arguments is refused by RabbitMQ)."""
        return quorum_queue(self.queue, **self._dead_lettered_after(self.main_delivery_limit))

    def quarantine_queue(self) -> RabbitQueue:
        return quorum_queue(self.quarantine, **self._dead_lettered_after(self.delivery_limit))

    def waiting_queue(self, delay_ms: int) -> RabbitQueue:
        """The retry queue of one delay: a message waits there ``delay_ms`` and is then
        dead-lettered back to the service's queue."""
        return quorum_queue(
            self.retry_queue(delay_ms),
            **{
                "x-message-ttl": delay_ms,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue,
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )

    def _dead_lettered_after(self, deliveries: int) -> dict[str, Any]:
        # set explicitly: RabbitMQ's default differs between versions (none before 4.0,
        # 20 from 4.0 on, and then without a dead-letter exchange the message is dropped)
        return {
            "x-delivery-limit": deliveries,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.dlq,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",  # at-least-once dead-lettering requires it
        }


def new_broker(
    url: str, *, prefetch: int, middlewares: Sequence[Any] = (), **options: Any
) -> RabbitBroker:
    """A broker whose channel receives at most ``prefetch`` unacknowledged messages.

    The limit is set on the default channel: the service's queue is declared there before
    the subscriber starts and FastStream then consumes on that same channel (basic.qos only
    limits consuming; publishing is unaffected).
    """
    return RabbitBroker(
        url,
        # a mandatory publish that no queue takes is returned: raise, never count it as sent
        default_channel=Channel(prefetch_count=prefetch, on_return_raises=True),
        middlewares=middlewares,
        **options,
    )


def events_exchange(name: str, *, unrouted: str | None = None) -> RabbitExchange:
    """The topic exchange; with ``unrouted``, declared with that alternate exchange (a
    reference for publishing needs no arguments: publishes declare it passively)."""
    return RabbitExchange(
        name,
        type=ExchangeType.TOPIC,
        durable=True,
        arguments=cast("Any", {"alternate-exchange": unrouted} if unrouted else None),
    )


def quorum_queue(name: str, **arguments: Any) -> RabbitQueue:
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        durable=True,
        arguments=cast("Any", arguments or None),
    )


async def declare_exchange(broker: RabbitBroker, topology: Topology) -> RobustExchange:
    """Declare (idempotently) the events exchange and its alternate exchange and queue.

    Every service does this at start, producer or consumer, so a publish never meets a
    missing exchange. An exchange declared earlier without the alternate exchange makes
    RabbitMQ refuse the declaration (PRECONDITION_FAILED); the error says how to fix it.
    """
    unrouted = await broker.declare_exchange(
        RabbitExchange(topology.unrouted, type=ExchangeType.FANOUT, durable=True)
    )
    kept = await broker.declare_queue(quorum_queue(topology.unrouted))
    await kept.bind(unrouted, routing_key="")
    try:
        return await broker.declare_exchange(
            events_exchange(topology.exchange, unrouted=topology.unrouted)
        )
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise RuntimeError(
            f"exchange {topology.exchange!r} exists with other arguments (declared before it "
            f"had the alternate exchange {topology.unrouted!r}); run `tessera-admin broker "
            "upgrade-exchange` once, then restart the consumers (each binds its queues again "
            "when it starts; what is published meanwhile is kept in the unrouted queue)"
        ) from exc


async def declare_topology(
    broker: RabbitBroker, topology: Topology, routing_keys: list[str]
) -> None:
    """Declare (idempotently) the exchange, queues and bindings of one consuming service."""
    exchange = await declare_exchange(broker, topology)
    try:
        main = await broker.declare_queue(topology.main_queue())
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise RuntimeError(
            f"queue {topology.queue!r} exists with other arguments (declared by an older "
            "release, before it had a delivery limit and a dead-letter exchange); move its "
            "messages away or let it drain, delete it with `rabbitmqctl delete_queue "
            f"{topology.queue}`, and restart"
        ) from exc
    for key in routing_keys:
        await main.bind(exchange, routing_key=key)
    for delay in topology.retry_delays_ms:
        await broker.declare_queue(topology.waiting_queue(delay))
    await broker.declare_queue(quorum_queue(topology.dlq))


class BrokerPublisher:
    """Publishes outbox rows to the events exchange, continuing each row's trace.

    Publishes are persistent and ``mandatory`` with publisher confirms. A publish that has
    no confirm within ``timeout`` seconds fails, whatever it was waiting for: while the
    broker is unreachable, FastStream's first publish to an exchange waits for the
    reconnection without any limit. Failures that are the broker's, not the row's, are
    raised as :class:`BrokerUnavailable`; anything else (a return, a nack, a value AMQP
    cannot carry) is the row's own and counts as one of its attempts.
    """

    def __init__(
        self, broker: RabbitBroker, exchange: str, *, timeout: float = PUBLISH_TIMEOUT_S
    ) -> None:
        self.broker = broker
        self.exchange = events_exchange(exchange)
        self.timeout = timeout

    async def __call__(self, row: OutboxRow) -> None:
        stored: dict[str, Any] = dict(row.headers or {})
        token = otel_context.attach(propagate.extract(stored))
        try:
            headers = {k: v for k, v in stored.items() if k not in ("traceparent", "tracestate")}
            # a request id came from a client's header: only a short ASCII one travels as the
            # correlation id (an AMQP short string, at most 255 bytes), else the event's id
            request_id = safe_id(stored.get("x-request-id"))
            if request_id is None:
                headers.pop("x-request-id", None)
            async with asyncio.timeout(self.timeout):
                await self.broker.publish(
                    row.payload.encode(),
                    exchange=self.exchange,
                    routing_key=row.routing_key,
                    persist=True,
                    mandatory=True,
                    message_id=str(row.event_id),
                    message_type=row.event_type,
                    content_type="application/json",
                    correlation_id=request_id or str(row.event_id),
                    headers=headers,
                    timeout=self.timeout,
                )
        except _BROKER_DOWN as exc:
            raise BrokerUnavailable(f"{type(exc).__name__}: {exc}"[:500]) from exc
        finally:
            otel_context.detach(token)


Handler = Callable[[Envelope, Any], Awaitable[None]]


@dataclass
class _Route:
    model: type[BaseModel]
    fn: Handler


@dataclass
class EventConsumer:
    """One service's subscriber: decodes envelopes and dispatches them by type and version.

    Handlers receive the envelope and its ``data`` validated into the consumer's own trimmed
    model. A handler that raises is retried after each of ``retry_delays_ms``; after the last
    one (or at once for :class:`PermanentError`, an undecodable body, an unknown type or
    data its model refuses) the message goes to the DLQ with the error. The error recorded
    (log line, DLQ header) never quotes the message's data: events may carry secrets.

    A message that arrives *redelivered* was in flight when a consumer died (or could not
    settle it). It is moved to the quarantine queue, consumed one message at a time, so a
    message that kills its consumer every time reaches the delivery limit there alone and is
    dead-lettered by RabbitMQ, while the messages prefetched with it are handled.
    """

    topology: Topology
    routes: dict[tuple[str, int], _Route] = field(default_factory=dict)

    def on(self, event: type[Event], fn: Handler) -> None:
        self.routes[(event.type, event.version)] = _Route(model=event, fn=fn)

    @property
    def routing_keys(self) -> list[str]:
        return sorted(routing_key(t, v) for t, v in self.routes)

    def subscribe(self, broker: RabbitBroker) -> None:
        handled = ", ".join(self.routing_keys) or "nothing yet"
        t = self.topology
        common: dict[str, Any] = {
            "ack_policy": AckPolicy.MANUAL,
            # the handler's argument is the message itself, undecoded: FastStream's own JSON
            # decoding fails before ``process`` runs, and an undecodable message would sit
            # unacked, never reaching the DLQ (``_dispatch`` decodes it and dead-letters
            # what it cannot). Not asked for as ``message: RabbitMessage`` either: that is a
            # context field, which FastDepends resolves in a worker thread, per message
            # (7 % of a consumer's CPU, measured with bench/event_latency.py --profile)
            "decoder": _itself,
        }
        main = broker.subscriber(
            t.main_queue(),
            title=f"{t.queue}:consume",
            description=(
                f"Events consumed by {t.service}: {handled}. Envelope JSON "
                f"(id, type, version, occurred_at, producer, subject, data); retried after "
                f"{list(t.retry_delays_ms)} ms, then {t.dlq}."
            ),
            **common,
        )
        quarantine = broker.subscriber(
            t.quarantine_queue(),
            # its own channel, one message at a time: only the message being handled can be
            # counted against the delivery limit when the consumer dies
            channel=Channel(prefetch_count=1, on_return_raises=True),
            title=f"{t.quarantine}:consume",
            description=(
                f"Messages of {t.queue} that came back unacknowledged, handled one at a "
                f"time; after {t.delivery_limit} deliveries RabbitMQ moves one to {t.dlq}."
            ),
            include_in_schema=False,
            **common,
        )

        async def on_message(message: Any) -> None:
            await self.process(broker, message)

        async def on_quarantined(message: Any) -> None:
            await self.process(broker, message, quarantined=True)

        main(on_message)
        quarantine(on_quarantined)

    async def process(
        self, broker: RabbitBroker, message: Any, *, quarantined: bool = False
    ) -> None:
        headers: dict[str, Any] = dict(message.headers or {})
        raw = message.raw_message
        try:
            if not quarantined and _redelivered(raw, headers):
                await self._quarantine(broker, message, headers)
                await message.ack()
                return
        except BaseException:
            await message.nack(requeue=True)
            raise
        attempt = int(headers.get(ATTEMPT, 1))
        original_key = headers.get(ORIGINAL_KEY) or raw.routing_key or ""
        outcome: Exception | None = None
        last = _LAST_ATTEMPT.set(attempt >= self.topology.max_attempts)
        try:
            await self._dispatch(message.body)
        except Exception as exc:
            outcome = exc
        finally:
            _LAST_ATTEMPT.reset(last)
        try:
            if outcome is not None:
                permanent = isinstance(outcome, PermanentError | ValidationError)
                await self._forward(
                    broker,
                    message,
                    headers,
                    original_key=original_key,
                    error=outcome,
                    attempt=attempt,
                    dead=permanent or attempt >= self.topology.max_attempts,
                )
            await message.ack()
        except BaseException:
            # not handled, not forwarded: give it back (it comes back redelivered, so it is
            # quarantined; the delivery limit ends a loop)
            await message.nack(requeue=True)
            raise

    async def _dispatch(self, body: bytes) -> None:
        try:
            envelope = Envelope.model_validate_json(body)
        except ValidationError as exc:
            raise PermanentError(
                f"undecodable envelope: {describe_validation_error(exc)}"
            ) from None
        route = self.routes.get((envelope.type, envelope.version))
        if route is None:
            raise PermanentError(f"no handler for {envelope.routing_key}")
        try:
            data = route.model.model_validate(envelope.data)
        except ValidationError as exc:
            # the text names fields and error types only: the data may hold a token
            raise PermanentError(
                f"invalid {envelope.routing_key} data: {describe_validation_error(exc)}"
            ) from None
        with structlog.contextvars.bound_contextvars(
            event_id=str(envelope.id), event_type=envelope.type
        ):
            started = time.perf_counter()
            await route.fn(envelope, data)
            log.debug(
                "event_handled",
                consumer=self.topology.service,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    async def _quarantine(
        self, broker: RabbitBroker, message: Any, headers: dict[str, Any]
    ) -> None:
        log.warning(
            "event_quarantined",
            consumer=self.topology.service,
            message_id=message.message_id,
            delivery_count=headers.get("x-delivery-count"),
        )
        forwarded = _forwardable(headers) | {
            QUARANTINED: datetime.now(UTC).isoformat(),
            ORIGINAL_KEY: headers.get(ORIGINAL_KEY) or message.raw_message.routing_key or "",
        }
        await self._republish(broker, message, queue=self.topology.quarantine, headers=forwarded)
        metrics.EVENTS_CONSUMED.labels(
            self.topology.service, message.raw_message.type or "unknown", "quarantined"
        ).inc()

    async def _forward(
        self,
        broker: RabbitBroker,
        message: Any,
        headers: dict[str, Any],
        *,
        original_key: str,
        error: BaseException,
        attempt: int,
        dead: bool,
    ) -> None:
        """Re-publish a failed message to its next retry queue, or to the DLQ when ``dead``."""
        forwarded = {
            **_forwardable(headers),
            ERROR: error_text(error)[:1000],
            ORIGINAL_KEY: original_key,
        }
        forwarded.pop(QUARANTINED, None)
        if dead:
            queue = self.topology.dlq
            forwarded |= {ATTEMPT: attempt, FAILED_AT: datetime.now(UTC).isoformat()}
            log.error("event_dead_lettered", dlq=queue, **self._context(message, error, attempt))
        else:
            delay = self.topology.retry_delays_ms[attempt - 1]
            queue = self.topology.retry_queue(delay)
            forwarded |= {ATTEMPT: attempt + 1}
            log.warning("event_retry", retry_in_ms=delay, **self._context(message, error, attempt))
        await self._republish(broker, message, queue=queue, headers=forwarded)
        outcome = "dead_lettered" if dead else "retried"
        event_type = message.raw_message.type or "unknown"
        metrics.EVENTS_CONSUMED.labels(self.topology.service, event_type, outcome).inc()

    def _context(self, message: Any, error: BaseException, attempt: int) -> dict[str, Any]:
        return {
            "consumer": self.topology.service,
            "attempt": attempt,
            "error": error_text(error)[:500],
            "message_id": message.message_id,
        }

    @staticmethod
    async def _republish(
        broker: RabbitBroker, message: Any, *, queue: str, headers: dict[str, Any]
    ) -> None:
        await broker.publish(
            message.body,
            queue=queue,
            persist=True,
            mandatory=True,
            message_id=message.message_id or str(uuid.uuid4()),
            message_type=message.raw_message.type,
            content_type=message.content_type or "application/json",
            correlation_id=message.correlation_id,
            headers=headers,
            timeout=PUBLISH_TIMEOUT_S,
        )


async def _itself(message: StreamMessage[Any]) -> StreamMessage[Any]:
    return message


def _redelivered(raw: Any, headers: dict[str, Any]) -> bool:
    """Whether RabbitMQ delivered this message before without it being acknowledged."""
    try:
        count = int(headers.get("x-delivery-count") or 0)
    except (TypeError, ValueError):
        count = 0
    return bool(getattr(raw, "redelivered", False)) or count > 0


def describe_validation_error(exc: ValidationError) -> str:
    """Where and how data is invalid, without quoting the data (which may hold secrets)."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['type']}"
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    return f"{exc.error_count()} error(s): " + "; ".join(parts[:10])


def error_text(error: BaseException) -> str:
    """The text recorded for a failure (log lines, the DLQ's error header)."""
    if isinstance(error, ValidationError):
        return f"ValidationError({describe_validation_error(error)})"
    return repr(error)


def _forwardable(headers: dict[str, Any]) -> dict[str, Any]:
    """The headers a retried, quarantined or dead-lettered copy keeps: all (``traceparent``
    included, so a retry stays in its trace) but RabbitMQ's own delivery bookkeeping."""
    return {
        k: v
        for k, v in headers.items()
        if not k.startswith(("x-death", "x-first-death", "x-last-death", "x-delivery-count"))
    }
