"""The transactional outbox and its relay, against real Postgres and RabbitMQ.

Promises: an event is written with the state change or not at all; the relay is woken by
the commit (not by its poll); nothing is lost while RabbitMQ is unreachable; relays of
several replicas share the rows and publish each event once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import func, select

from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.messaging.outbox import OutboxRelay
from tessera.common.messaging.rabbit import BrokerPublisher

if TYPE_CHECKING:
    from conftest import Probe, TcpProxy

pytestmark = pytest.mark.timeout(60)


class ThingHappened(Event):
    type: ClassVar[str] = "probe.thing.happened"
    version: ClassVar[int] = 2
    thing_id: uuid.UUID
    label: str = "x"


async def _commit_events(probe: Probe, count: int = 1) -> list[uuid.UUID]:
    """Commit ``count`` events (with their effect rows) in one unit of work."""
    ids = [uuid.uuid4() for _ in range(count)]
    async with probe.uow() as uow:
        for thing_id in ids:
            await probe.apply_effect(uow.session, thing_id)
            uow.publish(ThingHappened(thing_id=thing_id), subject=str(thing_id))
        await uow.commit()
    return ids


async def _effect_rows(probe: Probe) -> int:
    async with probe.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(probe.effects)) or 0)


# --- atomicity -------------------------------------------------------------------------------


async def test_unit_of_work_left_without_commit_writes_no_event_and_no_state(probe: Probe) -> None:
    thing_id = uuid.uuid4()
    async with probe.uow() as uow:
        await probe.apply_effect(uow.session, thing_id)
        uow.publish(ThingHappened(thing_id=thing_id), subject=str(thing_id))
        await uow.session.flush()

    assert await probe.outbox_rows() == []
    assert await _effect_rows(probe) == 0


async def test_unit_of_work_that_raises_writes_no_event_and_no_state(probe: Probe) -> None:
    thing_id = uuid.uuid4()

    async def use_case() -> None:
        async with probe.uow() as uow:
            await probe.apply_effect(uow.session, thing_id)
            uow.publish(ThingHappened(thing_id=thing_id), subject=str(thing_id))
            raise RuntimeError("use case failed")

    with pytest.raises(RuntimeError, match="use case failed"):
        await use_case()

    assert await probe.outbox_rows() == []
    assert await _effect_rows(probe) == 0


async def test_rolled_back_events_are_not_written_by_a_later_commit(probe: Probe) -> None:
    dropped, kept = uuid.uuid4(), uuid.uuid4()
    async with probe.uow() as uow:
        uow.publish(ThingHappened(thing_id=dropped), subject=str(dropped))
        await uow.rollback()
        uow.publish(ThingHappened(thing_id=kept), subject=str(kept))
        await uow.commit()

    rows = await probe.outbox_rows()
    assert [row.payload["subject"] for row in rows] == [str(kept)]


async def test_committed_event_is_one_outbox_row_with_envelope_key_and_trace_context(
    probe: Probe,
) -> None:
    tracer = TracerProvider().get_tracer("probe-tests")
    thing_id = uuid.uuid4()
    with tracer.start_as_current_span("use case") as span:
        async with probe.uow() as uow:
            await probe.apply_effect(uow.session, thing_id)
            uow.publish(ThingHappened(thing_id=thing_id, label="hi"), subject=str(thing_id))
            await uow.commit()
    trace_id = format(span.get_span_context().trace_id, "032x")
    span_id = format(span.get_span_context().span_id, "016x")

    [row] = await probe.outbox_rows()
    envelope = Envelope.model_validate(row.payload)
    assert row.event_id == envelope.id
    assert (envelope.type, envelope.version) == ("probe.thing.happened", 2)
    assert (envelope.producer, envelope.subject) == ("probe", str(thing_id))
    assert envelope.data == {"thing_id": str(thing_id), "label": "hi"}
    assert row.event_type == "probe.thing.happened"
    assert row.routing_key == "probe.thing.happened.v2"
    version, row_trace_id, parent_id, flags = row.headers["traceparent"].split("-")
    assert (version, row_trace_id, parent_id) == ("00", trace_id, span_id)
    assert int(flags, 16) & 1, "sampled flag lost"
    assert (row.sent_at, row.attempts, row.last_error) == (None, 0, None)
    assert await _effect_rows(probe) == 1


async def test_event_committed_outside_any_span_carries_no_trace_context(probe: Probe) -> None:
    await _commit_events(probe)

    [row] = await probe.outbox_rows()
    assert "traceparent" not in row.headers


# --- relay -----------------------------------------------------------------------------------


async def test_relay_is_woken_by_the_commit_and_marks_the_row_sent(probe: Probe) -> None:
    tap = await probe.tap("probe.thing.happened.v2")
    async with probe.relaying(poll_interval=30.0):
        await asyncio.sleep(0.2)  # the relay has drained the empty outbox and is waiting
        started = time.monotonic()
        [thing_id] = await _commit_events(probe)
        [message] = await probe.take_all(tap.name, expect=1, timeout=5.0)
        elapsed = time.monotonic() - started

        assert elapsed < 2.0, f"the relay waited for its poll ({elapsed:.2f} s)"
        [row] = await probe.eventually(
            lambda: _sent_rows(probe), timeout=2.0, what="outbox row marked sent"
        )

    envelope = Envelope.model_validate_json(message.body)
    assert envelope.id == row.event_id
    assert envelope.subject == str(thing_id)
    assert message.message_id == str(row.event_id)
    assert message.routing_key == "probe.thing.happened.v2"
    assert message.type == "probe.thing.happened"
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2  # persistent
    assert row.attempts == 0
    assert "data" not in row.payload, "a sent row keeps no event data (it may carry a token)"
    assert row.payload["id"] == str(row.event_id)
    assert row.payload["subject"] == str(thing_id)
    assert row.event_type == "probe.thing.happened"


async def _sent_rows(probe: Probe) -> list[Any]:
    rows = await probe.outbox_rows()
    return rows if rows and all(row.sent_at is not None for row in rows) else []


async def test_relay_continues_the_trace_of_the_commit_on_the_bus(probe: Probe) -> None:
    provider = TracerProvider()
    tap = await probe.tap()
    with provider.get_tracer("probe-tests").start_as_current_span("use case") as span:
        await _commit_events(probe)
    trace_id = format(span.get_span_context().trace_id, "032x")

    broker = probe.broker()
    broker.add_middleware(RabbitTelemetryMiddleware(tracer_provider=provider))
    await broker.connect()
    try:
        relay = OutboxRelay(
            probe.engine, probe.outbox, BrokerPublisher(broker, probe.topology.exchange)
        )
        assert (await relay.drain_once()).sent == 1
    finally:
        await broker.stop()

    [message] = await probe.take_all(tap.name, expect=1)
    traceparent = str(message.headers["traceparent"])
    assert traceparent.split("-")[1] == trace_id


# --- RabbitMQ unreachable --------------------------------------------------------------------


async def test_event_committed_while_rabbitmq_is_unreachable_is_delivered_once_it_is_back(
    probe: Probe, rabbitmq_proxy: tuple[TcpProxy, str]
) -> None:
    tap = await probe.tap()
    proxy, proxied = rabbitmq_proxy
    tries = Counter[str]()
    try:
        async with probe.relaying(
            url=proxied,
            poll_interval=0.2,
            max_backoff=0.5,
            publish_timeout=1.0,
            publish_wrapper=_counting(tries, "publish"),
        ):
            await proxy.stop()  # RabbitMQ is now unreachable for the relay
            [thing_id] = await _commit_events(probe)
            await probe.eventually(lambda: tries["publish"] >= 3, timeout=15.0, what="3 tries")

            [row] = await probe.outbox_rows()
            assert row.sent_at is None
            assert (row.attempts, row.parked_at) == (0, None), "an outage is not the row's fault"
            assert await probe.message_count(tap.name) == 0

            await proxy.start()  # same port: the relay's broker reconnects by itself
            [message] = await probe.take_all(tap.name, expect=1, timeout=15.0)
            [row] = await probe.eventually(lambda: _sent_rows(probe), timeout=5.0, what="row sent")
    finally:
        if proxy.server is not None:
            await proxy.stop()

    assert Envelope.model_validate_json(message.body).subject == str(thing_id)
    assert row.event_id == uuid.UUID(message.message_id)


def _counting(counter: Counter[str], name: str) -> Any:
    def wrap(publish: Any) -> Any:
        async def counted(row: Any) -> None:
            counter[name] += 1
            await publish(row)

        return counted

    return wrap


# --- replicas --------------------------------------------------------------------------------


async def test_two_relays_draining_one_outbox_publish_each_event_exactly_once(
    probe: Probe,
) -> None:
    tap = await probe.tap()
    ids: list[uuid.UUID] = []
    for _ in range(4):
        ids += await _commit_events(probe, 50)
    published_by: Counter[str] = Counter()

    def counting(name: str) -> Any:
        def wrap(publish: Any) -> Any:
            async def counted(row: Any) -> None:
                await publish(row)
                published_by[name] += 1

            return counted

        return wrap

    second_engine = probe.engine_copy()
    for engine in (probe.engine, second_engine):  # both replicas connected before they race
        async with engine.connect():
            pass
    async with (
        probe.relaying(batch_size=10, publish_wrapper=counting("a")),
        probe.relaying(engine=second_engine, batch_size=10, publish_wrapper=counting("b")),
    ):
        messages = await probe.take_all(tap.name, expect=200, timeout=20.0)
        await probe.eventually(lambda: _sent_rows(probe), what="every row sent")
        await asyncio.sleep(0.3)  # a duplicate, if any, would arrive now
        messages += await probe.take_all(tap.name, expect=0)

    deliveries = Counter(str(m.message_id) for m in messages)
    assert set(deliveries) == {str(row.event_id) for row in await probe.outbox_rows()}
    assert len(deliveries) == 200
    assert max(deliveries.values()) == 1, "an event was published twice"
    assert sorted(Envelope.model_validate(json.loads(m.body)).subject for m in messages) == sorted(
        str(i) for i in ids
    )
    assert published_by["a"] > 0, dict(published_by)
    assert published_by["b"] > 0, dict(published_by)
    assert published_by["a"] + published_by["b"] == 200
