"""List and replay a service's dead-letter queue (used by every service's CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika

from tessera.common.messaging.rabbit import ATTEMPT, ERROR, FAILED_AT, ORIGINAL_KEY, Topology

__all__ = ["DeadLetter", "list_dead_letters", "replay_dead_letters"]


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    event_type: str
    routing_key: str
    attempts: int
    error: str
    failed_at: str
    body: bytes


def _dead_letter(message: aio_pika.abc.AbstractIncomingMessage) -> DeadLetter:
    headers: dict[str, Any] = dict(message.headers or {})
    return DeadLetter(
        message_id=message.message_id or "",
        event_type=message.type or "",
        routing_key=str(headers.get(ORIGINAL_KEY, "")),
        attempts=int(str(headers.get(ATTEMPT, 0))),
        error=str(headers.get(ERROR, "")),
        failed_at=str(headers.get(FAILED_AT, "")),
        body=message.body,
    )


async def list_dead_letters(url: str, topology: Topology, *, limit: int = 100) -> list[DeadLetter]:
    """Peek at up to ``limit`` messages; they stay in the DLQ, in order."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.dlq, ensure=True)
        found: list[DeadLetter] = []
        while len(found) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            found.append(_dead_letter(message))
        # closing the channel without acking returns every peeked message to the queue
        await channel.close()
    return found


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
        channel = await connection.channel(publisher_confirms=True)
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
            headers = {
                k: v for k, v in dict(message.headers or {}).items() if k not in (ATTEMPT, ERROR)
            }
            headers["x-tessera-replayed"] = True
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    message_id=message.message_id,
                    type=message.type,
                    content_type=message.content_type,
                    correlation_id=message.correlation_id,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=topology.queue,
            )
            await message.ack()
            replayed.append(letter)
        await channel.close()
    return replayed
