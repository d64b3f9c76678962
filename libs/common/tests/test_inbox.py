"""The idempotent inbox: an event's effect is applied once, however often it is delivered.

The event id is claimed in the same transaction as the handler's effect, so a redelivery
finds the claim and does nothing, and a failed attempt (rolled back) leaves no claim behind.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, ClassVar

import pytest
from sqlalchemy import select

from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.messaging.inbox import claim

if TYPE_CHECKING:
    from conftest import Probe

pytestmark = pytest.mark.timeout(30)


class ThingHappened(Event):
    type: ClassVar[str] = "probe.thing.happened"
    version: ClassVar[int] = 1
    thing_id: uuid.UUID


async def _claim(probe: Probe, event_id: uuid.UUID, *, consumer: str = "probe") -> bool:
    async with probe.uow() as uow:
        claimed = await claim(
            uow.session,
            probe.tables.inbox,
            event_id=event_id,
            consumer=consumer,
            event_type="probe.thing.happened",
        )
        await uow.commit()
    return claimed


async def test_claiming_the_same_event_twice_is_true_then_false(probe: Probe) -> None:
    event_id = uuid.uuid4()

    assert await _claim(probe, event_id) is True
    assert await _claim(probe, event_id) is False
    assert await _claim(probe, uuid.uuid4()) is True


async def test_each_consumer_claims_an_event_for_itself(probe: Probe) -> None:
    event_id = uuid.uuid4()

    assert await _claim(probe, event_id, consumer="probe.mail") is True
    assert await _claim(probe, event_id, consumer="probe.stats") is True
    assert await _claim(probe, event_id, consumer="probe.mail") is False


async def test_a_claim_rolled_back_with_its_failed_effect_lets_the_redelivery_apply_it(
    probe: Probe,
) -> None:
    event_id = uuid.uuid4()

    async def failing_handler() -> None:
        async with probe.uow() as uow:
            assert await claim(
                uow.session,
                probe.tables.inbox,
                event_id=event_id,
                consumer="probe",
                event_type="probe.thing.happened",
            )
            await probe.apply_effect(uow.session, event_id)
            raise RuntimeError("handler failed after claiming")

    with pytest.raises(RuntimeError, match="after claiming"):
        await failing_handler()

    assert await _claim(probe, event_id) is True
    assert await probe.effect_count(event_id) is None


async def test_concurrent_claims_of_one_event_let_only_one_proceed(probe: Probe) -> None:
    event_id = uuid.uuid4()
    async with probe.uow() as first:
        assert await claim(
            first.session,
            probe.tables.inbox,
            event_id=event_id,
            consumer="probe",
            event_type="probe.thing.happened",
        )
        second = asyncio.create_task(_claim(probe, event_id))
        await asyncio.sleep(0.3)
        assert not second.done(), "the second claim did not wait for the first transaction"
        await first.commit()

    assert await asyncio.wait_for(second, 5.0) is False


async def test_same_envelope_delivered_twice_applies_its_effect_once(probe: Probe) -> None:
    handled: list[uuid.UUID] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        try:
            async with probe.uow() as uow:
                if not await claim(
                    uow.session,
                    probe.tables.inbox,
                    event_id=envelope.id,
                    consumer="probe",
                    event_type=envelope.type,
                ):
                    return
                await probe.apply_effect(uow.session, envelope.id)
                await uow.commit()
        finally:
            handled.append(envelope.id)

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    thing_id = uuid.uuid4()
    envelope = Envelope.wrap(ThingHappened(thing_id=thing_id), producer="probe", subject="t")
    async with probe.consuming(consumer):
        await probe.publish_envelope(envelope)
        await probe.publish_envelope(envelope)
        await probe.eventually(lambda: len(handled) >= 2, what="both deliveries handled")

    assert handled == [envelope.id, envelope.id]
    assert await probe.effect_count(envelope.id) == 1
    async with probe.engine.connect() as conn:
        inbox = probe.tables.inbox
        rows = (await conn.execute(select(inbox).where(inbox.c.event_id == envelope.id))).all()
    assert [(r.consumer, r.event_type) for r in rows] == [("probe", "probe.thing.happened")]
    assert await probe.message_count(probe.topology.dlq) == 0


async def test_a_handler_of_its_own_transactions_claims_with_its_effect(probe: Probe) -> None:
    """``transaction=False`` handlers claim in their effect's transaction (``uow.claim()``):
    the claim commits with the effect or not at all, and a second delivery's claim is
    refused."""
    from tessera.common.consumers import Handling

    envelope = Envelope.wrap(ThingHappened(thing_id=uuid.uuid4()), producer="probe", subject="t")

    def handling() -> Handling:
        return Handling(probe.sessions, envelope=envelope, outbox=None, resources={},
                        inbox=probe.tables.inbox, consumer="probe.own")  # fmt: skip

    failed = handling()
    async with failed:
        assert await failed.claim() is True
        # leaves without committing: the effect failed, the claim goes with it
    first = handling()
    async with first:
        claimed_first = await first.claim()
        await first.commit()
    again = handling()
    async with again:
        claimed_again = await again.claim()

    assert claimed_first is True
    assert claimed_again is False
    assert await _claim(probe, envelope.id, consumer="probe.own") is False
