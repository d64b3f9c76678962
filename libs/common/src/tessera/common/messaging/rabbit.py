"""RabbitMQ topology, the outbox publisher, and the retrying, dead-lettering consumer.

Per consuming service (``mailer`` here as the example):

* ``tessera.events`` — the one durable topic exchange every producer publishes to;
* ``mailer.events`` — the service's durable quorum queue, bound to each routing key it
  handles (``auth.user.registered.v1``...);
* ``mailer.events.retry.<N>ms`` — one quorum queue per retry delay; a failed message waits
  there for its TTL and is dead-lettered back to ``mailer.events`` (growing delays, no
  head-of-line blocking between delays);
* ``mailer.events.dlq`` — where a message lands, with its error in the headers, once it has
  failed ``len(retry_delays)+1`` times or can never succeed (undecodable, unknown type).

Messages are acknowledged explicitly, and only after they were handled, re-published to a
retry queue, or dead-lettered with publisher confirms: nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from faststream import AckPolicy
from faststream.message import StreamMessage
from faststream.rabbit import (
    Channel,
    ExchangeType,
    QueueType,
    RabbitBroker,
    RabbitExchange,
    RabbitQueue,
)
from faststream.rabbit.annotations import RabbitMessage
from opentelemetry import context as otel_context
from opentelemetry import propagate
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Row

from tessera.common.messaging.envelope import Envelope, Event, routing_key
from tessera.common.settings import BrokerSettings

__all__ = [
    "BrokerPublisher",
    "EventConsumer",
    "PermanentError",
    "Topology",
    "declare_topology",
    "events_exchange",
    "new_broker",
]

log = structlog.stdlib.get_logger(__name__)

ATTEMPT = "x-tessera-attempt"
ERROR = "x-tessera-error"
FAILED_AT = "x-tessera-failed-at"
ORIGINAL_KEY = "x-tessera-routing-key"
PUBLISH_TIMEOUT_S = 10.0


class PermanentError(Exception):
    """A handler error that no retry can fix: the message goes straight to the DLQ."""


@dataclass(frozen=True)
class Topology:
    """Names of one service's exchange and queues."""

    service: str
    exchange: str = "tessera.events"
    queue_prefix: str = ""
    retry_delays_ms: tuple[int, ...] = (1_000, 5_000, 30_000)

    @classmethod
    def for_service(cls, service: str, settings: BrokerSettings) -> Topology:
        return cls(
            service=service,
            exchange=settings.exchange,
            queue_prefix=settings.queue_prefix,
            retry_delays_ms=tuple(settings.retry_delays_ms),
        )

    @property
    def queue(self) -> str:
        return f"{self.queue_prefix}{self.service}.events"

    @property
    def dlq(self) -> str:
        return f"{self.queue}.dlq"

    def retry_queue(self, delay_ms: int) -> str:
        return f"{self.queue}.retry.{delay_ms}ms"

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays_ms) + 1


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
        default_channel=Channel(prefetch_count=prefetch),
        middlewares=middlewares,
        **options,
    )


def events_exchange(name: str) -> RabbitExchange:
    return RabbitExchange(name, type=ExchangeType.TOPIC, durable=True)


def quorum_queue(name: str, **arguments: Any) -> RabbitQueue:
    return RabbitQueue(
        name,
        queue_type=QueueType.QUORUM,
        durable=True,
        arguments=cast("Any", arguments or None),
    )


async def declare_topology(
    broker: RabbitBroker, topology: Topology, routing_keys: list[str]
) -> None:
    """Declare (idempotently) the exchange, queues and bindings of one consuming service."""
    exchange = await broker.declare_exchange(events_exchange(topology.exchange))
    main = await broker.declare_queue(quorum_queue(topology.queue))
    for key in routing_keys:
        await main.bind(exchange, routing_key=key)
    for delay in topology.retry_delays_ms:
        await broker.declare_queue(
            quorum_queue(
                topology.retry_queue(delay),
                **{
                    "x-message-ttl": delay,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": topology.queue,
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
        )
    await broker.declare_queue(quorum_queue(topology.dlq))


class BrokerPublisher:
    """Publishes outbox rows to the events exchange, continuing each row's trace.

    A publish that has no confirm within ``timeout`` seconds fails, whatever it was waiting
    for: while the broker is unreachable, FastStream's first publish to an exchange waits for
    the reconnection without any limit, and the relay would hold its transaction open.
    """

    def __init__(
        self, broker: RabbitBroker, exchange: str, *, timeout: float = PUBLISH_TIMEOUT_S
    ) -> None:
        self.broker = broker
        self.exchange = events_exchange(exchange)
        self.timeout = timeout

    async def __call__(self, row: Row[Any]) -> None:
        stored: dict[str, Any] = dict(row.headers or {})
        token = otel_context.attach(propagate.extract(stored))
        try:
            headers = {k: v for k, v in stored.items() if k not in ("traceparent", "tracestate")}
            async with asyncio.timeout(self.timeout):
                await self.broker.publish(
                    json.dumps(row.payload, separators=(",", ":")).encode(),
                    exchange=self.exchange,
                    routing_key=row.routing_key,
                    persist=True,
                    mandatory=False,
                    message_id=str(row.event_id),
                    message_type=row.event_type,
                    content_type="application/json",
                    correlation_id=stored.get("x-request-id") or str(row.event_id),
                    headers=headers,
                    timeout=self.timeout,
                )
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
    one (or at once for :class:`PermanentError`, an undecodable body or an unknown type) the
    message goes to the DLQ with the error.
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
        subscriber = broker.subscriber(
            quorum_queue(self.topology.queue),
            ack_policy=AckPolicy.MANUAL,
            # keep the body as bytes: FastStream's own JSON decoding fails before
            # ``process`` runs, and an undecodable message would sit unacked, never
            # reaching the DLQ; ``_dispatch`` decodes it and dead-letters what it cannot
            decoder=_raw_body,
            title=f"{self.topology.queue}:consume",
            description=(
                f"Events consumed by {self.topology.service}: {handled}. Envelope JSON "
                f"(id, type, version, occurred_at, producer, subject, data); retried after "
                f"{list(self.topology.retry_delays_ms)} ms, then {self.topology.dlq}."
            ),
        )

        async def on_message(message: RabbitMessage) -> None:
            await self.process(broker, message)

        subscriber(on_message)

    async def process(self, broker: RabbitBroker, message: Any) -> None:
        headers: dict[str, Any] = dict(message.headers or {})
        attempt = int(headers.get(ATTEMPT, 1))
        raw = message.raw_message
        original_key = headers.get(ORIGINAL_KEY) or raw.routing_key or ""
        outcome: Exception | None = None
        try:
            await self._dispatch(message.body)
        except Exception as exc:
            outcome = exc
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
            await message.nack(requeue=True)
            raise

    async def _dispatch(self, body: bytes) -> None:
        try:
            envelope = Envelope.model_validate_json(body)
        except ValidationError as exc:
            raise PermanentError(f"undecodable envelope: {exc.error_count()} errors") from exc
        route = self.routes.get((envelope.type, envelope.version))
        if route is None:
            raise PermanentError(f"no handler for {envelope.routing_key}")
        data = route.model.model_validate(envelope.data)
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
        forwarded = {**_forwardable(headers), ERROR: repr(error)[:1000], ORIGINAL_KEY: original_key}
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

    def _context(self, message: Any, error: BaseException, attempt: int) -> dict[str, Any]:
        return {
            "consumer": self.topology.service,
            "attempt": attempt,
            "error": repr(error)[:500],
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


async def _raw_body(message: StreamMessage[Any]) -> bytes:
    return message.body


def _forwardable(headers: dict[str, Any]) -> dict[str, Any]:
    """The headers a retried or dead-lettered copy keeps: all (``traceparent`` included, so a
    retry stays in its trace) but RabbitMQ's ``x-death`` bookkeeping."""
    return {k: v for k, v in headers.items() if not k.startswith("x-death")}
