"""Talking to RabbitMQ the way other services do, and reading what reached a queue.

await publish_envelope(infra.rabbitmq, infra.exchange, envelope)
[dead] = await take(infra.rabbitmq, topology.dlq, expect=1)
async with tapped(infra.rabbitmq, infra.exchange, "mailer.delivery.failed.v1") as tap:
    ...
    [message] = await take(infra.rabbitmq, tap, expect=1)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika

from tessera.common.messaging.envelope import Envelope

__all__ = ["eventually", "publish_envelope", "queue_depth", "take", "tapped"]


async def eventually(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any],
    *,
    timeout: float = 10.0,
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


async def publish_envelope(
    url: str,
    exchange: str,
    envelope: Envelope | dict[str, Any],
    *,
    routing_key: str | None = None,
    producer: str | None = None,
    headers: dict[str, Any] | None = None,
) -> None:
    """Publish as a producer's relay does: persistent, mandatory, with confirms."""
    body = envelope.model_dump(mode="json") if isinstance(envelope, Envelope) else envelope
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        target = await channel.get_exchange(exchange, ensure=True)
        await target.publish(
            aio_pika.Message(
                json.dumps(body).encode(),
                message_id=str(body["id"]),
                type=body.get("type"),
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                app_id=f"tessera-{producer or body.get('producer', 'test')}",
                headers=headers,
            ),
            routing_key=routing_key or f"{body['type']}.v{body['version']}",
            mandatory=True,
        )


async def queue_depth(url: str, queue: str) -> int:
    """Messages ready in ``queue``."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)


async def take(
    url: str, queue: str, *, expect: int, timeout: float = 10.0
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Consume (and ack) messages from ``queue`` until ``expect`` have arrived."""
    found: list[aio_pika.abc.AbstractIncomingMessage] = []
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        source = await channel.get_queue(queue)

        async def more() -> bool:
            while (message := await source.get(no_ack=True, fail=False)) is not None:
                found.append(message)
            return len(found) >= expect

        await eventually(more, timeout=timeout, what=f"{expect} message(s) in {queue}")
    return found


@contextlib.asynccontextmanager
async def tapped(url: str, exchange: str, binding_key: str = "#") -> AsyncIterator[str]:
    """A queue of its own bound to ``exchange`` (read it with :func:`take`), deleted after."""
    name = f"tap.{uuid.uuid4().hex[:12]}"
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, durable=False)
        await queue.bind(exchange, routing_key=binding_key)
        try:
            yield name
        finally:
            await queue.delete(if_unused=False, if_empty=False)
