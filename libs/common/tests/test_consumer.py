"""The consumer's retry path and dead-letter queue, against a real RabbitMQ.

Promises: a failing handler is retried after each configured delay and then dead-lettered
with its error; a message that can never succeed is dead-lettered at once; a failing
message does not hold up the ones behind it; nothing is ever dropped.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import TYPE_CHECKING, ClassVar

import pytest

from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.messaging.rabbit import (
    ATTEMPT,
    ERROR,
    FAILED_AT,
    ORIGINAL_KEY,
    PermanentError,
    last_attempt,
)

if TYPE_CHECKING:
    from conftest import Probe

pytestmark = pytest.mark.timeout(30)


class ThingHappened(Event):
    type: ClassVar[str] = "probe.thing.happened"
    version: ClassVar[int] = 1
    thing_id: uuid.UUID
    label: str


def _envelope(label: str) -> Envelope:
    return Envelope.wrap(
        ThingHappened(thing_id=uuid.uuid4(), label=label), producer="probe", subject=label
    )


async def _queues_drained(probe: Probe, *names: str) -> bool:
    return all([await probe.message_count(name) == 0 for name in names])


async def test_a_handler_knows_its_last_attempt(probe: Probe) -> None:
    seen: list[bool] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        seen.append(last_attempt())
        raise RuntimeError("fails every time")

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    async with probe.consuming(consumer):
        await probe.publish_envelope(_envelope("doomed"))
        await probe.take_all(probe.topology.dlq, expect=1)

    assert seen == [False] * (probe.topology.max_attempts - 1) + [True]
    assert last_attempt() is False  # outside a handler


async def test_handler_that_always_fails_is_tried_three_times_then_dead_lettered_while_others_flow(
    probe: Probe,
) -> None:
    timeline: list[str] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        timeline.append(event.label)
        if event.label == "poison":
            raise RuntimeError("smtp is on fire")

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    poison = _envelope("poison")
    async with probe.consuming(consumer):
        await probe.publish_envelope(poison)
        for n in range(3):
            await probe.publish_envelope(_envelope(f"fine-{n}"))
        [dead] = await probe.take_all(probe.topology.dlq, expect=1)
        retry_queues = [probe.topology.retry_queue(d) for d in probe.topology.retry_delays_ms]
        await probe.eventually(
            lambda: _queues_drained(probe, probe.topology.queue, *retry_queues),
            what="main and retry queues empty",
        )

    assert Counter(timeline) == {"poison": 3, "fine-0": 1, "fine-1": 1, "fine-2": 1}
    last_poison = max(i for i, label in enumerate(timeline) if label == "poison")
    assert all(timeline.index(f"fine-{n}") < last_poison for n in range(3)), timeline
    assert dead.message_id == str(poison.id)
    assert dead.body == poison.model_dump_json().encode()
    assert dead.headers[ATTEMPT] == 3
    assert "smtp is on fire" in str(dead.headers[ERROR])
    assert dead.headers[FAILED_AT]
    assert dead.headers[ORIGINAL_KEY] == "probe.thing.happened.v1"
    assert await probe.message_count(probe.topology.dlq) == 0


async def test_handler_that_fails_once_succeeds_on_its_retry_and_is_not_dead_lettered(
    probe: Probe,
) -> None:
    calls: list[int] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        calls.append(len(calls) + 1)
        if len(calls) == 1:
            raise ConnectionError("database blinked")
        async with probe.uow() as uow:
            await probe.apply_effect(uow.session, envelope.id)
            await uow.commit()

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    envelope = _envelope("flaky")
    async with probe.consuming(consumer):
        await probe.publish_envelope(envelope)
        await probe.eventually(lambda: probe.effect_count(envelope.id), what="effect applied")
        await probe.eventually(
            lambda: _queues_drained(probe, probe.topology.queue), what="main queue empty"
        )

    assert calls == [1, 2]
    assert await probe.message_count(probe.topology.dlq) == 0


async def test_permanent_error_goes_to_the_dlq_after_one_call(probe: Probe) -> None:
    calls: list[uuid.UUID] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        calls.append(envelope.id)
        raise PermanentError("template missing for locale xx")

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    envelope = _envelope("doomed")
    async with probe.consuming(consumer):
        await probe.publish_envelope(envelope)
        [dead] = await probe.take_all(probe.topology.dlq, expect=1)

    assert calls == [envelope.id]
    assert dead.message_id == str(envelope.id)
    assert dead.headers[ATTEMPT] == 1
    assert "template missing" in str(dead.headers[ERROR])


async def test_envelope_whose_data_fails_validation_goes_to_the_dlq_without_a_call(
    probe: Probe,
) -> None:
    calls: list[uuid.UUID] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        calls.append(envelope.id)

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    bad = Envelope(
        type="probe.thing.happened",
        version=1,
        producer="probe",
        subject="s",
        data={"thing_id": "not-a-uuid"},
    )
    async with probe.consuming(consumer):
        await probe.publish_envelope(bad)
        [dead] = await probe.take_all(probe.topology.dlq, expect=1)
        await probe.publish_envelope(_envelope("after"))
        await probe.eventually(lambda: len(calls) == 1, what="next message handled")

    assert dead.message_id == str(bad.id)
    assert dead.headers[ATTEMPT] == 1
    error = str(dead.headers[ERROR])
    assert "thing_id: uuid_parsing" in error, error
    assert "label: missing" in error, error
    assert "not-a-uuid" not in error, "the error quotes the event's data"
    assert bad.id not in calls


async def test_undecodable_body_goes_to_the_dlq_and_is_not_lost(probe: Probe) -> None:
    calls: list[uuid.UUID] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        calls.append(envelope.id)

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    async with probe.consuming(consumer):
        await probe.publish_raw(
            b"{not json at all", routing_key="probe.thing.happened.v1", message_id="garbage-1"
        )
        [dead] = await probe.take_all(probe.topology.dlq, expect=1)
        await probe.publish_envelope(_envelope("after"))
        await probe.eventually(lambda: len(calls) == 1, what="next message handled")

    assert dead.body == b"{not json at all"
    assert dead.message_id == "garbage-1"
    assert dead.headers[ATTEMPT] == 1
    assert "undecodable" in str(dead.headers[ERROR])


async def test_event_without_a_handler_goes_to_the_dlq(probe: Probe) -> None:
    consumer = probe.consumer()

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        raise AssertionError("not this one")

    consumer.on(ThingHappened, on_thing)
    unknown = Envelope(
        type="probe.thing.happened", version=7, producer="probe", subject="s", data={}
    )
    async with probe.consuming(consumer):
        await probe.publish_envelope(unknown, to_queue=probe.topology.queue)
        [dead] = await probe.take_all(probe.topology.dlq, expect=1)

    assert dead.message_id == str(unknown.id)
    assert "no handler for probe.thing.happened.v7" in str(dead.headers[ERROR])


async def test_rabbitmq_hands_the_consumer_no_more_than_the_prefetch_setting(
    probe: Probe,
) -> None:
    release = asyncio.Event()

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        await release.wait()

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    async with probe.consuming(consumer, prefetch=2):
        for n in range(5):
            await probe.publish_envelope(_envelope(f"held-{n}"))
        # two are delivered (one being handled, one waiting in this process), three stay ready
        await probe.eventually(
            lambda: _count_is(probe, probe.topology.queue, 3), what="3 ready messages"
        )
        await asyncio.sleep(0.3)
        assert await probe.message_count(probe.topology.queue) == 3
        release.set()
        await probe.eventually(
            lambda: _queues_drained(probe, probe.topology.queue), what="queue drained"
        )


async def _count_is(probe: Probe, queue: str, expected: int) -> bool:
    return await probe.message_count(queue) == expected


@pytest.mark.parametrize("prefetch", [1, 3])
async def test_a_consumer_handles_as_many_events_at_once_as_it_is_handed(
    probe: Probe, prefetch: int
) -> None:
    """Handlers run side by side, as many as the prefetch lets RabbitMQ hand over
    (``BROKER__PREFETCH``): a slow one (a sync pull downloading an event) holds up no other,
    and the prefetch bounds the work a process takes on."""
    running = 0
    most = 0
    release = asyncio.Event()

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    async with probe.consuming(consumer, prefetch=prefetch):
        for n in range(5):
            await probe.publish_envelope(_envelope(f"slow-{n}"))
        await probe.eventually(lambda: most >= prefetch, what=f"{prefetch} at once")
        await asyncio.sleep(0.3)  # one more than the prefetch would show now
        assert most == prefetch
        release.set()
        await probe.eventually(
            lambda: _queues_drained(probe, probe.topology.queue), what="queue drained"
        )
