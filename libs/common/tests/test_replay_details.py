"""Replaying from the DLQ and the unrouted queue: exactly what was asked, never lost.

Promises: ``limit`` bounds how many dead letters are looked at; a selection by id replays
those wherever they are in the queue; the copy is persistent, keeps type and content type
and drops the failure bookkeeping; a replay that has nowhere to go raises and leaves the
message in the DLQ; an unrouted replay by id takes only the named events.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, ClassVar

import aio_pika
import pytest

from tessera.common.messaging.dlq import replay_dead_letters, replay_unrouted
from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.messaging.rabbit import ATTEMPT, ERROR, FAILED_AT, QUARANTINED

if TYPE_CHECKING:
    from conftest import Probe

pytestmark = pytest.mark.timeout(30)


class ThingHappened(Event):
    type: ClassVar[str] = "probe.thing.happened"
    version: ClassVar[int] = 1
    label: str


async def _dead_letters(probe: Probe, count: int) -> list[str]:
    """``count`` messages in the DLQ as the consumer leaves them; their ids, in order."""
    await probe.channel.declare_queue(
        probe.topology.dlq, durable=True, arguments={"x-queue-type": "quorum"}
    )
    ids = []
    for n in range(count):
        envelope = Envelope.wrap(ThingHappened(label=f"l{n}"), producer="probe", subject="s")
        await probe.publish_envelope(
            envelope,
            to_queue=probe.topology.dlq,
            content_type="application/vnd.probe+json",
            headers={
                ATTEMPT: 3,
                ERROR: "RuntimeError('boom')",
                FAILED_AT: "2026-12-02T00:00:00+00:00",
                QUARANTINED: "2026-12-02T00:00:00+00:00",
                "x-delivery-count": 4,
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            },
        )
        ids.append(str(envelope.id))
    await probe.eventually(
        lambda: _holds(probe, probe.topology.dlq, count), what=f"{count} in the DLQ"
    )
    return ids


async def _holds(probe: Probe, queue: str, count: int) -> bool:
    return await probe.message_count(queue) == count


async def _main_queue(probe: Probe) -> None:
    await probe.channel.declare_queue(
        probe.topology.queue, durable=True, arguments={"x-queue-type": "quorum"}
    )


async def test_replay_limit_bounds_the_messages_looked_at(probe: Probe) -> None:
    ids = await _dead_letters(probe, 3)
    await _main_queue(probe)
    replayed = await replay_dead_letters(probe.amqp_url, probe.topology, limit=2)
    assert [r.message_id for r in replayed] == ids[:2]
    await probe.eventually(lambda: _holds(probe, probe.topology.dlq, 1), what="one left")
    moved = await probe.take_all(probe.topology.queue, expect=2)
    assert [m.message_id for m in moved] == ids[:2]

    copy = moved[0]
    assert copy.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert copy.type == "probe.thing.happened"
    assert copy.content_type == "application/vnd.probe+json"
    headers = dict(copy.headers or {})
    assert headers.pop("x-tessera-replayed") is True
    assert headers.pop("x-delivery-count", 0) == 0, "the main queue's own count, not the old"
    assert headers == {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}


async def test_replay_by_id_finds_them_behind_others(probe: Probe) -> None:
    ids = await _dead_letters(probe, 3)
    await _main_queue(probe)
    replayed = await replay_dead_letters(probe.amqp_url, probe.topology, message_ids=set(ids[1:]))
    assert [r.message_id for r in replayed] == ids[1:]
    await probe.eventually(lambda: _holds(probe, probe.topology.dlq, 1), what="first left")


async def test_replay_with_nowhere_to_go_raises_and_keeps_the_message(probe: Probe) -> None:
    ids = await _dead_letters(probe, 1)
    # no main queue: the service was never started here, or its queue was deleted
    with pytest.raises(Exception):  # noqa: B017 - aio-pika's DeliveryError, or a closed channel
        await replay_dead_letters(probe.amqp_url, probe.topology)
    await probe.eventually(lambda: _holds(probe, probe.topology.dlq, 1), what="still in the DLQ")
    [kept] = await probe.take_all(probe.topology.dlq, expect=1)
    assert kept.message_id == ids[0]


async def test_unrouted_replay_by_id_takes_only_those(probe: Probe) -> None:
    broker = probe.broker()
    await broker.connect()
    from tessera.common.messaging.rabbit import declare_exchange

    await declare_exchange(broker, probe.topology)
    await broker.stop()
    exchange = await probe.channel.get_exchange(probe.topology.exchange)
    ids = []
    for _ in range(3):
        message_id = str(uuid.uuid4())
        await exchange.publish(
            aio_pika.Message(b"{}", message_id=message_id, type="probe.thing.happened"),
            routing_key="probe.thing.happened.v1",
        )
        ids.append(message_id)
    await probe.eventually(lambda: _holds(probe, probe.topology.unrouted, 3), what="kept")
    tap = await probe.tap("probe.thing.happened.v1")
    replayed = await replay_unrouted(probe.amqp_url, probe.topology, message_ids={ids[2]})
    assert [r.message_id for r in replayed] == [ids[2]]
    [arrived] = await probe.take_all(tap.name, expect=1)
    assert arrived.message_id == ids[2]
    assert arrived.routing_key == "probe.thing.happened.v1"
    await probe.eventually(lambda: _holds(probe, probe.topology.unrouted, 2), what="two left")


async def test_listing_shows_at_most_limit_dead_letters_in_order(probe: Probe) -> None:
    from tessera.common.messaging.dlq import list_dead_letters

    ids = await _dead_letters(probe, 3)
    listed = await list_dead_letters(probe.amqp_url, probe.topology, limit=2)
    assert [d.message_id for d in listed] == ids[:2]
    await probe.eventually(lambda: _holds(probe, probe.topology.dlq, 3), what="all left there")
