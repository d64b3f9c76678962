"""The outbox row by row: no row can jam the relay, no transaction waits on the broker.

Promises: a row that cannot be published gets its own attempts and growing delays and is
parked after ``max_attempts`` while the rows around it go out; parked rows are counted and
sent again on request; the relay claims rows in a short transaction, skipping rows another
relay holds, publishes outside any transaction and takes over rows whose lease ran out;
sent rows are purged on their own schedule, whatever else fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pytest
from sqlalchemy import insert, text, update
from typer.testing import CliRunner

from tessera.common.cli import service_cli
from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.messaging.outbox import (
    OutboxRelay,
    list_outbox,
    outbox_stats,
    retry_outbox,
)
from tessera.common.messaging.rabbit import BrokerPublisher, declare_exchange

if TYPE_CHECKING:
    from conftest import Probe, TcpProxy

pytestmark = pytest.mark.timeout(60)


class ThingHappened(Event):
    type: ClassVar[str] = "probe.thing.happened"
    version: ClassVar[int] = 1
    thing_id: uuid.UUID


async def _commit(probe: Probe, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    async with probe.uow() as uow:
        for thing_id in ids:
            uow.publish(ThingHappened(thing_id=thing_id), subject=str(thing_id))
        await uow.commit()
    return ids


async def _insert_row(probe: Probe, **overrides: Any) -> int:
    """A row as a producer (an older or buggy one) could have written it."""
    envelope = Envelope.wrap(ThingHappened(thing_id=uuid.uuid4()), producer="probe", subject="x")
    values = {
        "event_id": envelope.id,
        "event_type": envelope.type,
        "routing_key": envelope.routing_key,
        "payload": envelope.model_dump(mode="json"),
        "headers": {},
    } | overrides
    t = probe.tables.outbox
    async with probe.engine.begin() as conn:
        return int(await conn.scalar(insert(t).values(**values).returning(t.c.id)))


async def _row(probe: Probe, row_id: int) -> Any:
    return next(row for row in await probe.outbox_rows() if row.id == row_id)


async def test_one_unpublishable_row_does_not_hold_up_the_hundred_behind_it(probe: Probe) -> None:
    tap = await probe.tap()
    # an AMQP routing key is at most 255 bytes: this one (255 characters) can never be sent
    bad = await _insert_row(probe, routing_key="é" * 200)
    good = await _commit(probe, 100)
    started = time.monotonic()
    async with probe.relaying(batch_size=200, max_attempts=3, retry_base_s=0.2):
        messages = await probe.take_all(tap.name, expect=100, timeout=10.0)
        elapsed = time.monotonic() - started

        async def parked() -> Any:
            row = await _row(probe, bad)
            return row if row.parked_at is not None else None

        row = await probe.eventually(parked, timeout=10.0, what="the bad row parked")

    assert elapsed < 5.0, f"the good rows took {elapsed:.1f} s"
    assert sorted(Envelope.model_validate_json(m.body).subject for m in messages) == sorted(
        str(i) for i in good
    )
    assert row.attempts == 3
    assert row.sent_at is None
    assert "255 bytes" in row.last_error
    stats = await outbox_stats(probe.engine, probe.tables.outbox)
    assert (stats.pending, stats.parked) == (0, 1)
    [listed] = await list_outbox(probe.engine, probe.tables.outbox, parked=True)
    assert listed.id == bad
    assert await list_outbox(probe.engine, probe.tables.outbox, parked=False) == []


async def test_a_failing_row_waits_longer_after_each_attempt(probe: Probe) -> None:
    bad = await _insert_row(probe, routing_key="é" * 200)
    tries: list[float] = []

    def timing(publish: Any) -> Any:
        async def timed(row: Any) -> None:
            tries.append(time.monotonic())
            await publish(row)

        return timed

    async with probe.relaying(
        poll_interval=0.05, max_attempts=4, retry_base_s=0.2, publish_wrapper=timing
    ):
        await probe.eventually(lambda: len(tries) >= 4, timeout=10.0, what="four attempts")

        async def parked() -> bool:
            return (await _row(probe, bad)).parked_at is not None

        await probe.eventually(parked, what="parked after the fourth")

    gaps = [b - a for a, b in itertools.pairwise(tries)]
    # 0.2 s, 0.4 s, 0.8 s (±10 % jitter, plus up to one poll interval)
    assert gaps[0] >= 0.17, gaps
    assert gaps[1] >= 0.35, gaps
    assert gaps[2] >= 0.7, gaps
    assert len(tries) == 4, "a parked row was tried again"


async def test_outbox_retry_sends_a_parked_row_again_with_fresh_attempts(probe: Probe) -> None:
    tap = await probe.tap()
    row_id = await _insert_row(probe)
    t = probe.tables.outbox
    async with probe.engine.begin() as conn:  # parked earlier, while the broker refused it
        await conn.execute(
            update(t).where(t.c.id == row_id).values(attempts=10, parked_at=text("now()"))
        )
    async with probe.relaying(poll_interval=0.1):
        await asyncio.sleep(0.5)
        assert await probe.message_count(tap.name) == 0, "a parked row was sent by itself"
        assert await retry_outbox(probe.engine, t) == 1
        [message] = await probe.take_all(tap.name, expect=1)

        async def sent() -> Any:
            row = await _row(probe, row_id)
            return row if row.sent_at is not None else None

        row = await probe.eventually(sent, what="the row marked sent")
    assert str(row.event_id) == message.message_id
    assert (row.attempts, row.parked_at) == (0, None)
    assert await retry_outbox(probe.engine, t) == 0, "nothing is parked any more"


async def test_a_row_whose_request_id_is_not_a_short_ascii_id_is_still_published(
    probe: Probe,
) -> None:
    tap = await probe.tap()
    # written before request ids were checked: 128 "é" cannot be an AMQP correlation id
    row_id = await _insert_row(probe, headers={"x-request-id": "é" * 128})
    async with probe.relaying():
        [message] = await probe.take_all(tap.name, expect=1)

        async def sent() -> Any:
            row = await _row(probe, row_id)
            return row if row.sent_at is not None else None

        row = await probe.eventually(sent, what="the row marked sent")
    assert message.correlation_id == str(row.event_id)
    assert "x-request-id" not in (message.headers or {})


async def test_claiming_skips_rows_another_relay_holds_instead_of_waiting(probe: Probe) -> None:
    await _commit(probe, 5)
    rows = await probe.outbox_rows()
    relay = OutboxRelay(probe.engine, probe.outbox, _accept_all)
    other = probe.engine_copy()
    async with other.connect() as conn:
        transaction = await conn.begin()  # another relay, mid-claim, holds the first row
        await conn.execute(
            text("SELECT id FROM outbox WHERE id = :id FOR UPDATE"), {"id": rows[0].id}
        )
        drained = await asyncio.wait_for(relay.drain_once(), timeout=5.0)
        await transaction.rollback()

    assert (drained.claimed, drained.sent) == (4, 4)
    assert (await _row(probe, rows[0].id)).sent_at is None


async def _accept_all(row: Any) -> None:
    return None


async def test_rows_of_a_relay_that_died_after_claiming_are_taken_over_when_the_lease_ends(
    probe: Probe,
) -> None:
    await _commit(probe, 3)
    dead = OutboxRelay(probe.engine, probe.outbox, _accept_all, lease_s=0.5)
    assert len(await dead._claim()) == 3  # claimed, then the process died before publishing
    survivor = OutboxRelay(probe.engine, probe.outbox, _accept_all, lease_s=0.5)

    assert (await survivor.drain_once()).claimed == 0, "leased rows were taken at once"
    await asyncio.sleep(0.6)
    assert (await survivor.drain_once()).sent == 3
    assert all(row.sent_at is not None for row in await probe.outbox_rows())


async def test_no_transaction_stays_open_while_the_broker_never_answers(
    probe: Probe, rabbitmq_proxy: tuple[TcpProxy, str]
) -> None:
    proxy, proxied = rabbitmq_proxy
    # the service's one engine, as small as it gets: the relay and the writes share it
    engine = probe.engine_copy_with(pool_size=1, max_overflow=0, pool_timeout=2.0)
    tries = Counter[str]()
    broker = probe.broker(proxied)
    await broker.connect()
    await declare_exchange(broker, probe.topology)

    async def counting(row: Any) -> None:
        tries["publish"] += 1
        await BrokerPublisher(broker, probe.topology.exchange, timeout=3.0)(row)

    relay = OutboxRelay(engine, probe.outbox, counting, poll_interval=0.1, max_backoff=0.5)
    task = asyncio.create_task(relay.run())
    try:
        proxy.stall()  # RabbitMQ takes the bytes and never answers
        await _commit(probe, 1)
        await probe.eventually(lambda: tries["publish"] >= 1, what="a publish in flight")

        idle_in_transaction: list[int] = []
        for n in range(10):  # ten writes over ~2 s while the publish waits for its confirm
            started = time.monotonic()
            async with probe.uow_on(engine) as uow:
                thing_id = uuid.uuid4()
                uow.publish(ThingHappened(thing_id=thing_id), subject=f"write-{n}")
                await uow.commit()
            assert time.monotonic() - started < 1.0, "a write waited for the relay"
            idle_in_transaction.append(await _idle_in_transaction(probe))
            await asyncio.sleep(0.2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await proxy.stop()
        with contextlib.suppress(Exception):
            await broker.stop()

    assert idle_in_transaction == [0] * 10
    pending = await outbox_stats(probe.engine, probe.tables.outbox)
    assert (pending.pending, pending.parked) == (11, 0)
    assert all(row.attempts == 0 for row in await probe.outbox_rows())


async def _idle_in_transaction(probe: Probe) -> int:
    async with probe.admin() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2 "
                "AND state = 'idle in transaction'",
                probe.infra.database,
                "tessera_probe",
            )
        )


async def test_sent_rows_are_purged_on_their_own_schedule_while_a_row_keeps_failing(
    probe: Probe,
) -> None:
    t = probe.tables.outbox
    await _commit(probe, 3)
    async with probe.engine.begin() as conn:  # sent two hours ago
        await conn.execute(update(t).values(sent_at=text("now() - interval '2 hours'")))
    recent = await _insert_row(probe)
    async with probe.engine.begin() as conn:
        await conn.execute(update(t).where(t.c.id == recent).values(sent_at=text("now()")))
    await _insert_row(probe, routing_key="é" * 200)  # fails on every attempt

    async with probe.relaying(
        purge_interval_s=0.2, retention_s=3600, max_attempts=1000, retry_base_s=0.05
    ):

        async def purged() -> bool:
            return len(await probe.outbox_rows()) == 2

        await probe.eventually(purged, timeout=5.0, what="old sent rows purged")

    remaining = await probe.outbox_rows()
    assert sorted(row.sent_at is None for row in remaining) == [False, True]
    assert recent in {row.id for row in remaining}


async def test_service_cli_lists_pending_and_parked_rows_and_retries_the_parked(
    probe: Probe, tmp_path: Path
) -> None:
    await _commit(probe, 2)
    parked = await _insert_row(probe)
    t = probe.tables.outbox
    async with probe.engine.begin() as conn:
        await conn.execute(
            update(t)
            .where(t.c.id == parked)
            .values(attempts=10, parked_at=text("now()"), last_error="PublishError(NO_ROUTE)")
        )
    cli = service_cli(
        probe.settings_cls,
        migrations_dir=tmp_path,
        app_factory="tessera.probe.app:create_app_from_env",
        default_port=8999,
    )
    env = {"PROBE__DATABASE__URL": probe.settings.database.url.get_secret_value()}
    runner = CliRunner()

    # the commands call asyncio.run(): run them off this test's event loop
    listed = await asyncio.to_thread(runner.invoke, cli, ["outbox", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    document = json.loads(listed.stdout)
    assert (document["pending"], document["parked"]) == (2, 1)
    assert len(document["rows"]) == 3
    only_parked = await asyncio.to_thread(
        runner.invoke, cli, ["outbox", "list", "--parked", "--json"], env=env
    )
    [row] = json.loads(only_parked.stdout)["rows"]
    assert (row["id"], row["attempts"], row["last_error"]) == (parked, 10, "PublishError(NO_ROUTE)")

    refused = await asyncio.to_thread(runner.invoke, cli, ["outbox", "retry"], env=env)
    assert refused.exit_code == 2
    retried = await asyncio.to_thread(
        runner.invoke, cli, ["outbox", "retry", "--id", str(parked)], env=env
    )
    assert retried.exit_code == 0, retried.output
    assert "1 parked row(s)" in retried.output
    stats = await outbox_stats(probe.engine, t)
    assert (stats.pending, stats.parked) == (3, 0)
    assert (await _row(probe, parked)).attempts == 0


async def test_the_oldest_due_rows_are_claimed_first_when_more_are_due_than_a_batch(
    probe: Probe,
) -> None:
    t = probe.tables.outbox
    ids = [await _insert_row(probe) for _ in range(3)]
    async with probe.engine.begin() as conn:  # the newest row has been due the longest
        for row_id, minutes in zip(ids, (1, 2, 3), strict=True):
            await conn.execute(
                update(t)
                .where(t.c.id == row_id)
                .values(next_attempt_at=text(f"now() - interval '{minutes} minutes'"))
            )
    relay = OutboxRelay(probe.engine, probe.outbox, _accept_all, batch_size=2)
    claimed = await relay._claim()
    assert [row.id for row in claimed] == sorted(ids[1:]), "not the two due the longest"


async def test_a_short_ascii_request_id_travels_as_the_correlation_id(probe: Probe) -> None:
    tap = await probe.tap()
    row_id = await _insert_row(probe, headers={"x-request-id": "req-42.a:b"})
    async with probe.relaying():
        [message] = await probe.take_all(tap.name, expect=1)
    row = await _row(probe, row_id)
    assert message.correlation_id == "req-42.a:b"
    assert (message.headers or {})["x-request-id"] == "req-42.a:b"
    assert message.message_id == str(row.event_id)
