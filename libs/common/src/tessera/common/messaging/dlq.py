"""List and replay what is parked on the broker: a service's dead-letter queue (every
service's CLI) and the suite's unrouted queue (``tessera-admin``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika

from tessera.common.messaging.rabbit import (
    ATTEMPT,
    ERROR,
    FAILED_AT,
    ORIGINAL_KEY,
    QUARANTINED,
    Topology,
)

__all__ = [
    "DeadLetter",
    "list_dead_letters",
    "list_unrouted",
    "replay_dead_letters",
    "replay_unrouted",
]


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    event_type: str
    routing_key: str
    attempts: int
    error: str
    failed_at: str
    body: bytes


def _x_death(headers: dict[str, Any]) -> dict[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return deaths[0]
    return {}


def _dead_letter(message: aio_pika.abc.AbstractIncomingMessage) -> DeadLetter:
    headers: dict[str, Any] = dict(message.headers or {})
    death = _x_death(headers)
    error = str(headers.get(ERROR, ""))
    failed_at = str(headers.get(FAILED_AT, ""))
    if not error and death:
        # dead-lettered by RabbitMQ itself: delivered ``delivery_limit`` times and never
        # acknowledged, i.e. its consumer died on it each time
        reason = str(death.get("reason") or headers.get("x-first-death-reason") or "")
        error = f"dead-lettered by RabbitMQ ({reason}) from {death.get('queue', '?')}"
        if reason == "delivery_limit":
            error += ": delivered again and again without being acknowledged (consumer crash)"
        failed_at = str(death.get("time", "")) or failed_at
    return DeadLetter(
        message_id=message.message_id or "",
        event_type=message.type or "",
        routing_key=str(headers.get(ORIGINAL_KEY) or message.routing_key or ""),
        attempts=int(str(headers.get(ATTEMPT, 0))),
        error=error,
        failed_at=failed_at,
        body=message.body,
    )


async def _peek(url: str, queue_name: str, *, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` messages of a queue; they stay in it, in order."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=True)
        found: list[DeadLetter] = []
        while len(found) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            found.append(_dead_letter(message))
        # closing the channel without acking returns every peeked message to the queue
        await channel.close()
    return found


async def list_dead_letters(url: str, topology: Topology, *, limit: int = 100) -> list[DeadLetter]:
    """Peek at up to ``limit`` messages of the service's DLQ; they stay there, in order."""
    return await _peek(url, topology.dlq, limit=limit)


async def list_unrouted(url: str, topology: Topology, *, limit: int = 100) -> list[DeadLetter]:
    """Peek at events the exchange had no queue for (they stay in ``tessera.unrouted``)."""
    return await _peek(url, topology.unrouted, limit=limit)


_BOOKKEEPING = (ATTEMPT, ERROR, FAILED_AT, QUARANTINED, "x-death", "x-first-death", "x-last-death")


def _replayable(message: aio_pika.abc.AbstractIncomingMessage) -> aio_pika.Message:
    """A fresh copy: body, ids, type, correlation id and trace context kept; the failure
    bookkeeping dropped, so the copy starts with a full set of attempts."""
    headers = {
        k: v
        for k, v in dict(message.headers or {}).items()
        if not k.startswith(_BOOKKEEPING) and k != "x-delivery-count"
    }
    headers["x-tessera-replayed"] = True
    return aio_pika.Message(
        message.body,
        headers=headers,
        message_id=message.message_id,
        type=message.type,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


async def replay_dead_letters(
    url: str,
    topology: Topology,
    *,
    message_ids: set[str] | None = None,
    limit: int = 10_000,
) -> list[DeadLetter]:
    """Move messages (all, or those with ``message_ids``) back to the service's queue.

    Each is re-published with confirms to ``<service>.events`` with a fresh attempt count
    before it is acked in the DLQ, so a crash mid-way duplicates at worst (the inbox absorbs
    that) and never loses a message.
    """
    connection = await aio_pika.connect(url)
    replayed: list[DeadLetter] = []
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.get_queue(topology.dlq, ensure=True)
        seen = 0
        while seen < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            seen += 1
            letter = _dead_letter(message)
            if message_ids is not None and letter.message_id not in message_ids:
                continue
            await channel.default_exchange.publish(
                _replayable(message), routing_key=topology.queue, mandatory=True
            )
            await message.ack()
            replayed.append(letter)
        await channel.close()
    return replayed


async def replay_unrouted(
    url: str, topology: Topology, *, message_ids: set[str] | None = None
) -> list[DeadLetter]:
    """Publish kept events (all, or those with ``message_ids``) to the exchange again with
    their routing keys, for the queues bound since; one that still has no queue comes back
    to the unrouted queue (at its end, so each message is looked at once)."""
    connection = await aio_pika.connect(url)
    replayed: list[DeadLetter] = []
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(topology.unrouted, passive=True)
        waiting = int(queue.declaration_result.message_count or 0)
        exchange = await channel.get_exchange(topology.exchange)
        for _ in range(waiting):
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            letter = _dead_letter(message)
            if message_ids is not None and letter.message_id not in message_ids:
                continue  # left unacked: closing the channel gives it back, in order
            await exchange.publish(_replayable(message), routing_key=message.routing_key or "")
            await message.ack()
            replayed.append(letter)
        await channel.close()
    return replayed
