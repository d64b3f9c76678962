"""What RabbitMQ may not lose or loop on, against a real broker.

Promises: a message that kills its consumer is dead-lettered after the delivery limit, with
its cause, and the messages prefetched with it are handled; an event no queue is bound to
is kept in the unrouted queue and replayed once a queue is bound; a forward the broker
returns is never counted as done (the message comes back and ends in the DLQ); errors in
logs and DLQ headers never quote an event's data; a replayed dead letter keeps its trace
and correlation id.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import aio_pika
import pytest
import structlog
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider

from tessera.common.messaging.dlq import (
    list_dead_letters,
    list_unrouted,
    replay_dead_letters,
    replay_unrouted,
)
from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.messaging.outbox import OutboxRelay
from tessera.common.messaging.rabbit import ERROR, BrokerPublisher

if TYPE_CHECKING:
    from conftest import Probe

pytestmark = pytest.mark.timeout(90)

PROGRAM = Path(__file__).with_name("programs") / "crashing_consumer.py"


class ThingHappened(Event):
    type: ClassVar[str] = "probe.thing.happened"
    version: ClassVar[int] = 1
    thing_id: uuid.UUID
    label: str


def _envelope(label: str) -> Envelope:
    return Envelope.wrap(
        ThingHappened(thing_id=uuid.uuid4(), label=label), producer="probe", subject=label
    )


# --- a message that kills its consumer -------------------------------------------------------


@pytest.mark.timeout(200)
async def test_message_that_kills_its_consumer_is_dead_lettered_after_the_limit_and_others_flow(
    probe: Probe, tmp_path: Path
) -> None:
    record = tmp_path / "handled.txt"
    record.touch()
    spec = dataclasses.asdict(probe.topology)
    env = {**os.environ, "AMQP_URL": probe.amqp_url}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(PROGRAM), json.dumps(spec), str(record)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    process = start()
    await probe.eventually(
        lambda: process.stdout is not None and b"consuming" in process.stdout.readline(),
        timeout=30.0,
        what="the consumer up (topology declared)",
    )
    crash = _envelope("crash")
    await probe.publish_envelope(crash)  # first: every fine one is prefetched behind it
    fine = [f"fine-{n}" for n in range(5)]
    for label in fine:
        await probe.publish_envelope(_envelope(label))

    crashes = 0
    last_crash = time.monotonic()
    # each crash costs a process start (seconds on a loaded machine), and each extra copy
    # of the poison (see below) delivery_limit + 1 more crashes before the innocent ones
    # queued behind it in quarantine are handled: the loop ends as soon as all is settled
    deadline = time.monotonic() + 150.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            assert process.returncode == 17, process.stdout.read() if process.stdout else ""
            crashes += 1
            last_crash = time.monotonic()
            process = start()
        handled = set(record.read_text().split())
        settled = (
            handled >= set(fine)
            and await probe.message_count(probe.topology.dlq) >= 1
            and await probe.message_count(probe.topology.queue) == 0
            and await probe.message_count(probe.topology.quarantine) == 0
        )
        if settled and time.monotonic() - last_crash > 1.5:  # and no copy still in flight
            break
        await asyncio.sleep(0.2)
    process.terminate()
    process.wait(timeout=10)

    letters = await list_dead_letters(probe.amqp_url, probe.topology)
    where = {
        "crashes": crashes,
        "settled": time.monotonic() < deadline,
        "queue": await probe.message_count(probe.topology.queue),
        "quarantine": await probe.message_count(probe.topology.quarantine),
        "dead letters": [letter.message_id for letter in letters],
    }  # a failure says where the missing one is (seen once, under load, with 60 s allowed:
    # most likely still in quarantine behind copies of the poison when time ran out)
    assert set(record.read_text().split()) == set(fine), f"one behind the poison was lost: {where}"
    # a crash between moving the poison to quarantine and acking its main-queue copy brings
    # that copy back, to be quarantined again: each such crash makes one more copy, each
    # dead-lettered like the first (nothing lost, nothing innocent in the DLQ). Under load the
    # window is hit more often (4 copies in one CI run); the crash count below bounds them.
    assert len(letters) >= 1, letters
    for letter in letters:
        assert letter.message_id == str(crash.id)
        assert "delivery_limit" in letter.error, letter.error
        assert letter.routing_key == "probe.thing.happened.v1"
    # each copy: delivery_limit + 1 deliveries in quarantine (one more was seen once, when
    # RabbitMQ handed it out before counting the dead consumer's return), plus the main queue
    limit, copies = probe.topology.delivery_limit, len(letters)
    assert copies * (limit + 1) + 1 <= crashes <= copies * (limit + 2) + 1, (crashes, copies)
    assert await probe.message_count(probe.topology.queue) == 0
    assert await probe.message_count(probe.topology.quarantine) == 0


# --- nothing unroutable is lost --------------------------------------------------------------


async def test_event_no_queue_is_bound_to_is_kept_and_replayed_once_a_queue_is_bound(
    probe: Probe,
) -> None:
    async with probe.uow() as uow:
        uow.publish(ThingHappened(thing_id=uuid.uuid4(), label="early"), subject="early")
        await uow.commit()
    [row] = await probe.outbox_rows()
    async with probe.relaying():
        await probe.eventually(
            lambda: _count_is(probe, probe.topology.unrouted, 1), what="kept as unrouted"
        )

    [kept] = await list_unrouted(probe.amqp_url, probe.topology)
    assert kept.message_id == str(row.event_id)
    assert kept.routing_key == "probe.thing.happened.v1"
    assert (await probe.outbox_rows())[0].sent_at is not None

    tap = await probe.tap("probe.thing.happened.v1")  # the consumer that came later
    [replayed] = await replay_unrouted(probe.amqp_url, probe.topology)
    [message] = await probe.take_all(tap.name, expect=1)
    assert replayed.message_id == message.message_id == str(row.event_id)
    assert message.routing_key == "probe.thing.happened.v1"
    assert await probe.message_count(probe.topology.unrouted) == 0


async def _delete_exchange(url: str, name: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        await (await connection.channel()).exchange_delete(name)


async def test_publish_that_the_broker_returns_fails_the_row_instead_of_counting_as_sent(
    probe: Probe,
) -> None:
    # an exchange without an alternate exchange and without bindings returns everything
    channel = probe.channel
    bare = f"{probe.topology.exchange}.bare"
    # (auto_delete removes only an exchange that had bindings: this one is deleted by hand)
    await channel.declare_exchange(bare, aio_pika.ExchangeType.TOPIC, auto_delete=True)
    probe._cleanups.append(lambda: _delete_exchange(probe.amqp_url, bare))
    async with probe.uow() as uow:
        uow.publish(ThingHappened(thing_id=uuid.uuid4(), label="x"), subject="x")
        await uow.commit()
    broker = probe.broker()
    await broker.connect()
    try:
        relay = OutboxRelay(probe.engine, probe.outbox, BrokerPublisher(broker, bare))
        drained = await relay.drain_once()
    finally:
        await broker.stop()

    assert (drained.sent, drained.failed) == (0, 1)
    [row] = await probe.outbox_rows()
    assert row.sent_at is None
    assert row.attempts == 1
    assert "NO_ROUTE" in row.last_error


async def test_forward_the_broker_returns_is_retried_until_the_message_reaches_the_dlq(
    probe: Probe,
) -> None:
    calls: list[str] = []

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        calls.append(event.label)
        raise RuntimeError("handler bug")

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    envelope = _envelope("unlucky")
    async with probe.consuming(consumer):
        # the first retry queue is gone: forwarding there is returned by RabbitMQ
        first_retry = probe.topology.retry_queue(probe.topology.retry_delays_ms[0])
        await probe.channel.queue_delete(first_retry)
        await probe.publish_envelope(envelope)
        [dead] = await probe.take_all(probe.topology.dlq, expect=1, timeout=20.0)

    assert dead.message_id == str(envelope.id)
    # given back after each failed forward, so RabbitMQ's delivery limit ended the loop
    assert len(calls) >= probe.topology.delivery_limit, calls
    assert dead.headers["x-first-death-reason"] == "delivery_limit"


# --- secrets ---------------------------------------------------------------------------------


class TokenMailed(Event):
    type: ClassVar[str] = "probe.token.mailed"
    version: ClassVar[int] = 1
    email: str
    token: str
    expires_in_s: int


async def test_invalid_event_with_a_token_leaves_it_out_of_logs_and_dlq_headers(
    probe: Probe,
) -> None:
    secret = "tok_" + uuid.uuid4().hex
    consumer = probe.consumer()

    async def on_token(envelope: Envelope, event: TokenMailed) -> None:
        raise AssertionError("invalid data reaches no handler")

    consumer.on(TokenMailed, on_token)
    bad = Envelope(
        type="probe.token.mailed",
        version=1,
        producer="probe",
        subject="s",
        data={"email": "ada@example.org", "token": secret, "expires_in_s": "in a while"},
    )
    with structlog.testing.capture_logs() as logs:
        async with probe.consuming(consumer):
            await probe.publish_envelope(bad)
            [dead] = await probe.take_all(probe.topology.dlq, expect=1)

    error = str(dead.headers[ERROR])
    assert "expires_in_s: int_parsing" in error, error
    assert secret not in error
    assert "in a while" not in error
    assert logs, "nothing was logged"
    assert secret not in repr(logs)
    assert "in a while" not in repr(logs)


# --- replay keeps the trace ------------------------------------------------------------------


async def test_replayed_dead_letter_keeps_its_trace_and_correlation_id(probe: Probe) -> None:
    provider = TracerProvider()
    with provider.get_tracer("probe-tests").start_as_current_span("use case") as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
        traceparent = f"00-{trace_id}-{format(span.get_span_context().span_id, '016x')}-01"

    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        raise RuntimeError("still broken")

    consumer = probe.consumer()
    consumer.on(ThingHappened, on_thing)
    envelope = _envelope("traced")
    async with probe.consuming(
        consumer, middlewares=[RabbitTelemetryMiddleware(tracer_provider=provider)]
    ):
        await probe.publish_envelope(
            envelope, headers={"traceparent": traceparent}, correlation_id="req-42"
        )
        await probe.eventually(
            lambda: _count_is(probe, probe.topology.dlq, 1), timeout=20.0, what="dead letter"
        )
    [replayed] = await replay_dead_letters(probe.amqp_url, probe.topology)
    [message] = await probe.take_all(probe.topology.queue, expect=1)

    assert replayed.message_id == message.message_id == str(envelope.id)
    assert message.correlation_id == "req-42"
    assert str((message.headers or {})["traceparent"]).split("-")[1] == trace_id
    assert ERROR not in (message.headers or {})


async def _count_is(probe: Probe, queue: str, expected: int) -> bool:
    return await probe.message_count(queue) == expected


async def test_admin_cli_lists_and_replays_unrouted_events(probe: Probe) -> None:
    from typer.testing import CliRunner

    from tessera.common.cli import admin

    async with probe.uow() as uow:
        uow.publish(ThingHappened(thing_id=uuid.uuid4(), label="early"), subject="early")
        await uow.commit()
    [row] = await probe.outbox_rows()
    async with probe.relaying():
        await probe.eventually(
            lambda: _count_is(probe, probe.topology.unrouted, 1), what="kept as unrouted"
        )
    env = {
        "TESSERA__BROKER__URL": probe.amqp_url,
        "TESSERA__BROKER__EXCHANGE": probe.topology.exchange,
        "TESSERA__BROKER__UNROUTED": probe.topology.unrouted,
    }
    runner = CliRunner()
    listed = await asyncio.to_thread(runner.invoke, admin, ["unrouted", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [
        {
            "message_id": str(row.event_id),
            "event_type": "probe.thing.happened",
            "routing_key": "probe.thing.happened.v1",
        }
    ]
    # the peeked message goes back when the CLI's channel closes (asynchronously, for a
    # quorum queue): it is there again, not necessarily at the instant the command returns
    await probe.eventually(
        lambda: _count_is(probe, probe.topology.unrouted, 1), what="listing left it there"
    )

    tap = await probe.tap("probe.thing.happened.v1")
    replayed = await asyncio.to_thread(
        runner.invoke, admin, ["unrouted", "replay", "--all"], env=env
    )
    assert replayed.exit_code == 0, replayed.output
    [message] = await probe.take_all(tap.name, expect=1)
    assert message.message_id == str(row.event_id)


async def test_exchange_of_an_older_release_is_refused_with_the_fix_and_upgraded_by_it(
    probe: Probe,
) -> None:
    from typer.testing import CliRunner

    from tessera.common.cli import admin
    from tessera.common.messaging.rabbit import declare_exchange

    await probe.channel.declare_exchange(  # as an older release declared it: no alternate
        probe.topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    broker = probe.broker()
    await broker.connect()
    try:
        with pytest.raises(RuntimeError, match="tessera-admin broker upgrade-exchange"):
            await declare_exchange(broker, probe.topology)
    finally:
        await broker.stop()

    env = {
        "TESSERA__BROKER__URL": probe.amqp_url,
        "TESSERA__BROKER__EXCHANGE": probe.topology.exchange,
        "TESSERA__BROKER__UNROUTED": probe.topology.unrouted,
    }
    upgraded = await asyncio.to_thread(
        CliRunner().invoke, admin, ["broker", "upgrade-exchange"], env=env
    )
    assert upgraded.exit_code == 0, upgraded.output
    await probe.publish_envelope(_envelope("after the upgrade"))  # no queue bound: kept
    await probe.eventually(
        lambda: _count_is(probe, probe.topology.unrouted, 1), what="kept as unrouted"
    )
