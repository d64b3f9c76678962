"""What a failed message leaves behind for the people who have to act on it.

Promises: each retry and the final dead-lettering are logged under their own event names with
the consumer, attempt, delay, queue and a bounded error text, and counted by outcome and
type; the copy in the DLQ is persistent, keeps its type, content type and correlation id,
carries a bounded error, an aware timestamp and the original routing key, and none of
RabbitMQ's own bookkeeping headers; a message that came back unacknowledged is quarantined
(logged and counted) and keeps its original routing key through what follows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aio_pika
import aiormq
import pytest
import structlog
from pydantic import BaseModel, ValidationError

from tessera.common import metrics
from tessera.common.messaging.envelope import Envelope
from tessera.common.messaging.rabbit import (
    ATTEMPT,
    ERROR,
    FAILED_AT,
    ORIGINAL_KEY,
    QUARANTINED,
    EventConsumer,
    PermanentError,
    describe_validation_error,
)

from .test_consumer import ThingHappened, _envelope  # the same event and envelopes

if TYPE_CHECKING:
    from conftest import Probe

pytestmark = pytest.mark.timeout(30)

BOOKKEEPING = ("x-death", "x-first-death", "x-last-death")


def _bookkeeping(headers: dict[str, Any]) -> list[str]:
    """RabbitMQ's headers on a copy taken from the DLQ that are not the DLQ's own (a quorum
    queue sets ``x-delivery-count`` on each delivery, 0 for the first)."""
    found = [k for k in headers if k.startswith(BOOKKEEPING)]
    return found + (["x-delivery-count"] if headers.get("x-delivery-count", 0) != 0 else [])


def _consumed(event_type: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "tessera_events_consumed_total",
        {"service": "probe", "event_type": event_type, "outcome": outcome},
    )
    return value or 0.0


async def test_retries_and_the_dead_letter_are_logged_counted_and_recorded_in_full(
    probe: Probe,
) -> None:
    delays = probe.topology.retry_delays_ms
    error = "smtp is on fire " + "x" * 2_000  # longer than any record keeps

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        raise RuntimeError(error)

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    envelope = _envelope("poison")
    kind = f"probe.thing.{uuid.uuid4().hex[:8]}"  # the AMQP type: this test's own label
    before = {o: _consumed(kind, o) for o in ("retried", "dead_lettered")}
    with structlog.testing.capture_logs() as logs:
        async with probe.consuming(consumer):
            await probe.publish_envelope(envelope, message_type=kind, correlation_id="req-42")
            [dead] = await probe.take_all(probe.topology.dlq, expect=1)

    retries = [e for e in logs if e["event"] == "event_retry"]
    assert [(e["attempt"], e["retry_in_ms"]) for e in retries] == [
        (n + 1, delay) for n, delay in enumerate(delays)
    ]
    [died] = [e for e in logs if e["event"] == "event_dead_lettered"]
    assert died["dlq"] == probe.topology.dlq
    assert died["attempt"] == len(delays) + 1
    for entry in [*retries, died]:
        assert entry["consumer"] == "probe"
        assert entry["message_id"] == str(envelope.id)
        assert entry["error"].startswith("RuntimeError('smtp is on fire")
        assert len(entry["error"]) == 500
    assert _consumed(kind, "retried") - before["retried"] == len(delays)
    assert _consumed(kind, "dead_lettered") - before["dead_lettered"] == 1

    assert dead.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert dead.type == kind
    assert dead.content_type == "application/json"
    assert dead.correlation_id == "req-42"
    assert dead.headers[ATTEMPT] == len(delays) + 1
    assert len(str(dead.headers[ERROR])) == 1000
    assert dead.headers[ORIGINAL_KEY] == "probe.thing.happened.v1"
    failed_at = datetime.fromisoformat(str(dead.headers[FAILED_AT]))
    assert failed_at.utcoffset() is not None, "an unambiguous instant"
    # the copies went through retry queues, so RabbitMQ's own x-death was on what came back
    assert not _bookkeeping(dead.headers), dead.headers


async def test_a_message_that_came_back_unacknowledged_is_quarantined_and_keeps_its_key(
    probe: Probe,
) -> None:
    seen: list[str] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        seen.append(event.label)
        raise PermanentError("no use retrying")

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    envelope = _envelope("came back")
    kind = f"probe.thing.{uuid.uuid4().hex[:8]}"
    before = _consumed(kind, "quarantined")
    with structlog.testing.capture_logs() as logs:
        async with probe.consuming(consumer):
            # as RabbitMQ delivers a quorum queue's message that was in flight when a
            # consumer died: counted (the header is what a quorum queue sets)
            await probe.publish_envelope(
                envelope, message_type=kind, headers={"x-delivery-count": 1}
            )
            [dead] = await probe.take_all(probe.topology.dlq, expect=1)

    assert seen == ["came back"], "handled once, from the quarantine queue"
    [quarantined] = [e for e in logs if e["event"] == "event_quarantined"]
    assert quarantined["consumer"] == "probe"
    assert quarantined["message_id"] == str(envelope.id)
    assert quarantined["delivery_count"] == 1
    assert _consumed(kind, "quarantined") - before == 1
    # what it was published with, not the quarantine queue it was moved through
    assert dead.headers[ORIGINAL_KEY] == "probe.thing.happened.v1"
    assert QUARANTINED not in dead.headers, "the mark is for the quarantine queue only"
    assert not _bookkeeping(dead.headers), dead.headers


async def test_undecodable_message_without_a_type_is_counted_as_unknown(probe: Probe) -> None:
    consumer = probe.consumer()
    consumer.on(ThingHappened, _never)
    before = _consumed("unknown", "dead_lettered")
    async with probe.consuming(consumer):
        await probe.publish_raw(b"not json", routing_key="probe.thing.happened.v1")
        await probe.take_all(probe.topology.dlq, expect=1)
    assert _consumed("unknown", "dead_lettered") - before == 1


async def _never(envelope: Envelope, event: ThingHappened) -> None:
    raise AssertionError("an undecodable message reaches no handler")


async def test_forward_to_a_queue_that_does_not_exist_raises_instead_of_vanishing(
    probe: Probe,
) -> None:
    message = SimpleNamespace(
        body=b"{}",
        message_id="m-1",
        content_type=None,
        correlation_id=None,
        raw_message=SimpleNamespace(type="probe.thing.happened"),
    )
    broker = probe.broker()
    await broker.connect()
    try:
        missing = f"{probe.topology.queue}.missing"
        with pytest.raises(Exception) as raised:
            await EventConsumer._republish(broker, message, queue=missing, headers={})
        assert "NO_ROUTE" in repr(raised.value) or "returned" in repr(raised.value).lower()

        # and to one that exists: persistent, JSON unless said otherwise, an id always
        target = await probe.channel.declare_queue(exclusive=True)
        message.message_id = None
        await EventConsumer._republish(broker, message, queue=target.name, headers={"k": "v"})
        got = await target.get(no_ack=True, timeout=5)
    finally:
        await broker.stop()
    assert got.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert got.content_type == "application/json"
    assert uuid.UUID(str(got.message_id))
    assert got.type == "probe.thing.happened"
    assert got.headers == {"k": "v"}


# --- the error text ---------------------------------------------------------------------------


class _Inner(BaseModel):
    count: int


class _Outer(BaseModel):
    inner: _Inner
    names: list[int]


def _error(model: type[BaseModel], data: Any) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return raised.value


def test_validation_error_text_names_nested_fields_and_types_only() -> None:
    text = describe_validation_error(_error(_Outer, {"inner": {"count": "many"}, "names": ["a"]}))
    assert text == "2 error(s): inner.count: int_parsing; names.0: int_parsing"


def test_validation_error_of_the_whole_value_is_at_the_root() -> None:
    assert describe_validation_error(_error(_Inner, "a string")) == "1 error(s): <root>: model_type"


def test_validation_error_text_lists_ten_errors_and_counts_them_all() -> None:
    text = describe_validation_error(_error(_Outer, {"inner": {}, "names": ["x"] * 12}))
    assert text.startswith("13 error(s): inner.count: missing; names.0: int_parsing")
    assert text.count("; ") == 9, text


async def test_declare_topology_refuses_a_main_queue_of_an_older_release_with_the_fix(
    probe: Probe,
) -> None:
    from tessera.common.messaging.rabbit import declare_topology

    await probe.channel.declare_queue(
        probe.topology.queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    broker = probe.broker()
    await broker.connect()
    try:
        with pytest.raises(RuntimeError) as raised:
            await declare_topology(broker, probe.topology, ["probe.thing.happened.v1"])
    finally:
        await broker.stop()
    message = str(raised.value)
    assert f"rabbitmqctl delete_queue {probe.topology.queue}" in message
    assert "older release" in message
    assert isinstance(raised.value.__cause__, aiormq.exceptions.ChannelPreconditionFailed)


# --- the topology a service declares ----------------------------------------------------------


def test_topology_takes_its_delays_and_limit_from_the_settings() -> None:
    from tessera.common.messaging.rabbit import Topology
    from tessera.common.settings import BrokerSettings

    settings = BrokerSettings(retry_delays_ms=[10, 20, 40, 80], delivery_limit=7, queue_prefix="p.")
    topology = Topology.for_service("svc", settings)
    assert topology.retry_delays_ms == (10, 20, 40, 80)
    assert topology.delivery_limit == 7
    assert topology.max_attempts == 5
    assert topology.queue == "p.svc.events"


def test_main_and_quarantine_queues_dead_letter_to_the_dlq_after_their_limits() -> None:
    from tessera.common.messaging.rabbit import Topology

    topology = Topology(service="svc", delivery_limit=4)
    expected = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "svc.events.dlq",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    main = topology.main_queue()
    quarantine = topology.quarantine_queue()
    assert main.name == "svc.events"
    assert main.arguments == {**expected, "x-delivery-limit": 20, "x-queue-type": "quorum"}
    assert quarantine.arguments == {**expected, "x-delivery-limit": 4, "x-queue-type": "quorum"}
    assert Topology(service="svc", delivery_limit=10).main_delivery_limit == 40


def test_a_retry_queue_holds_a_message_for_its_delay_then_gives_it_back() -> None:
    from tessera.common.messaging.rabbit import Topology

    waiting = Topology(service="svc").waiting_queue(5_000)
    assert waiting.name == "svc.events.retry.5000ms"
    assert waiting.arguments == {
        "x-message-ttl": 5_000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "svc.events",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-queue-type": "quorum",
    }


@pytest.mark.parametrize(
    ("redelivered", "headers", "expected"),
    [
        (False, {}, False),
        (False, {"x-delivery-count": 0}, False),
        (False, {"x-delivery-count": 1}, True),
        (False, {"x-delivery-count": "not a number"}, False),
        (True, {}, True),
        (None, {}, False),  # a transport without the flag
    ],
)
def test_what_counts_as_coming_back_unacknowledged(
    redelivered: bool | None, headers: dict[str, Any], expected: bool
) -> None:
    from tessera.common.messaging.rabbit import _redelivered

    raw = SimpleNamespace() if redelivered is None else SimpleNamespace(redelivered=redelivered)
    assert _redelivered(raw, headers) is expected


async def test_a_handler_runs_with_the_event_in_its_log_context_and_is_timed(probe: Probe) -> None:
    context: list[dict[str, Any]] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        context.append(dict(structlog.contextvars.get_contextvars()))

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    envelope = _envelope("fine")
    with structlog.testing.capture_logs() as logs:
        async with probe.consuming(consumer):
            await probe.publish_envelope(envelope)
            await probe.eventually(lambda: _true(bool(context)), what="handled")
            await probe.eventually(
                lambda: _true(any(e["event"] == "event_handled" for e in logs)), what="logged"
            )

    assert context[0]["event_id"] == str(envelope.id)
    assert context[0]["event_type"] == "probe.thing.happened"
    [handled] = [e for e in logs if e["event"] == "event_handled"]
    assert handled["consumer"] == "probe"
    assert isinstance(handled["duration_ms"], float)
    assert 0 <= handled["duration_ms"] < 5_000
    assert round(handled["duration_ms"], 2) == handled["duration_ms"]


async def _true(value: bool) -> bool:
    return value


def test_the_subscribers_describe_the_queues_and_the_quarantine_takes_one_at_a_time() -> None:
    from faststream.rabbit import RabbitBroker

    from tessera.common.messaging.rabbit import Topology, new_broker

    consumer = EventConsumer(Topology(service="svc", retry_delays_ms=(1_000, 5_000)))
    consumer.on(ThingHappened, _never)
    broker: RabbitBroker = new_broker("amqp://guest:guest@127.0.0.1:5672/", prefetch=16)
    consumer.subscribe(broker)
    subscribers = {s.queue.name: s for s in broker.subscribers}
    main, quarantine = subscribers["svc.events"], subscribers["svc.events.quarantine"]

    main_spec = next(iter(main.schema().values()))
    assert main_spec.description == (
        "Events consumed by svc: probe.thing.happened.v1. Envelope JSON (id, type, version, "
        "occurred_at, producer, subject, data); retried after [1000, 5000] ms, then "
        "svc.events.dlq."
    )
    assert main.schema().keys() == {"svc.events:consume"}
    assert main.specification.include_in_schema is True
    assert quarantine.specification.include_in_schema is False
    assert quarantine.schema().keys() == {"svc.events.quarantine:consume"}
    channel = quarantine.channel
    assert (channel.prefetch_count, channel.on_return_raises) == (1, True)
    assert main.channel is None, "the broker's default channel, with its prefetch"


def test_a_new_broker_keeps_the_middlewares_and_options_it_is_given() -> None:
    from faststream import BaseMiddleware

    from tessera.common.messaging.rabbit import new_broker

    class Marker(BaseMiddleware):
        pass

    broker = new_broker(
        "amqp://guest:guest@127.0.0.1:5672/", prefetch=3, middlewares=[Marker], graceful_timeout=7.5
    )
    assert Marker in broker.middlewares
    assert broker.config.graceful_timeout == 7.5
    manager = broker.config.broker_config.channel_manager
    channel = manager._ChannelManagerImpl__default_channel  # what the subscribers consume on
    assert (channel.prefetch_count, channel.on_return_raises) == (3, True)


async def test_the_unrouted_exchange_and_queue_survive_a_broker_restart(probe: Probe) -> None:
    from tessera.common.messaging.rabbit import declare_exchange

    broker = probe.broker()
    await broker.connect()
    try:
        await declare_exchange(broker, probe.topology)
    finally:
        await broker.stop()
    # declaring again as durable is refused (PRECONDITION_FAILED) if they were not
    connection = await aio_pika.connect(probe.amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_exchange(
            probe.topology.unrouted, aio_pika.ExchangeType.FANOUT, durable=True
        )
        await channel.declare_queue(
            probe.topology.unrouted, durable=True, arguments={"x-queue-type": "quorum"}
        )
