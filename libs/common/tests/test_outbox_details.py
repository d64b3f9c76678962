"""The outbox's arithmetic and housekeeping, exactly.

Promises: a failing row's delay doubles from the base up to the cap with at most ±10 %
jitter; the relay's own backoff doubles from a quarter of its poll interval up to its cap; a
relay stopped while publishing hands its leases back and no one else's, and one stopped while
settling still marks what it published; sent rows are purged
in chunks, all of those past retention and none other; the stats count pending and parked
rows apart and age only the pending ones; the listing and ``outbox retry`` touch exactly the
rows they name.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import text

from tessera.common.messaging.outbox import (
    OutboxRelay,
    OutboxStats,
    list_outbox,
    outbox_stats,
    retry_outbox,
)

from .test_outbox_rows import ThingHappened, _insert_row  # the same event and rows

if TYPE_CHECKING:
    from conftest import Probe

pytestmark = pytest.mark.timeout(60)


def _relay(**options: Any) -> OutboxRelay:
    async def publish(row: Any) -> None:
        return None

    return OutboxRelay(None, None, publish, **options)  # type: ignore[arg-type]


def test_a_failing_row_waits_twice_as_long_each_time_with_a_little_jitter_up_to_the_cap() -> None:
    relay = _relay(retry_base_s=1.0, retry_max_s=100.0)
    for attempts in range(1, 8):
        expected = min(2 ** (attempts - 1), 100)
        ratios = [relay.retry_delay(attempts) / expected for _ in range(500)]
        assert 0.9 <= min(ratios) < 0.95, (attempts, min(ratios))
        assert 1.05 < max(ratios) <= 1.1, (attempts, max(ratios))
    assert 90 <= relay.retry_delay(30) <= 110


def test_the_relay_backs_off_from_a_quarter_poll_doubling_to_its_cap() -> None:
    relay = _relay(poll_interval=1.0, max_backoff=5.0)
    steps = [0.0]
    for _ in range(6):
        steps.append(relay._grow(steps[-1]))
    assert steps == [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 5.0]


def test_stats_are_reported_under_their_documented_names() -> None:
    stats = OutboxStats(pending=2, parked=1, oldest_pending_age_s=1.5)
    assert stats.as_dict() == {"pending": 2, "parked": 1, "oldest_pending_age_s": 1.5}


async def _sql(probe: Probe, statement: str, **params: Any) -> list[Any]:
    async with probe.engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def _mine_and_theirs(probe: Probe) -> tuple[int, int]:
    """A due row, and a row another relay holds (its lease runs half a minute more)."""
    mine, theirs = await _insert_row(probe), await _insert_row(probe)
    await _sql(
        probe,
        "UPDATE outbox SET next_attempt_at = now() + interval '30 seconds' WHERE id = :i",
        i=theirs,
    )
    return mine, theirs


async def test_a_relay_stopped_while_publishing_hands_back_its_leases_only(probe: Probe) -> None:
    mine, theirs = await _mine_and_theirs(probe)
    started = asyncio.Event()

    async def publish(row: Any) -> None:
        started.set()
        await asyncio.sleep(3600)

    relay = OutboxRelay(probe.engine, probe.outbox, publish, lease_s=60)
    task = asyncio.create_task(relay.drain_once())
    await asyncio.wait_for(started.wait(), 10)
    [(leased,)] = await _sql(
        probe, "SELECT next_attempt_at > now() FROM outbox WHERE id = :i", i=mine
    )
    assert leased, "claimed with a lease"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    rows = {
        r.id: r
        for r in await _sql(
            probe, "SELECT id, attempts, next_attempt_at <= now() AS due FROM outbox"
        )
    }
    assert (rows[mine].due, rows[mine].attempts) == (True, 0), "handed back uncounted"
    assert not rows[theirs].due, "the other relay's lease is left alone"


async def test_purge_removes_every_row_past_retention_chunk_by_chunk_and_no_other(
    probe: Probe,
) -> None:
    old = [await _insert_row(probe) for _ in range(5)]
    await _sql(
        probe,
        "UPDATE outbox SET sent_at = now() - interval '2 hours' WHERE id = ANY(:ids)",
        ids=old,
    )
    recent = await _insert_row(probe)
    await _sql(
        probe, "UPDATE outbox SET sent_at = now() - interval '10 minutes' WHERE id = :i", i=recent
    )
    unsent = await _insert_row(probe)
    relay = OutboxRelay(probe.engine, probe.outbox, _relay().publish, retention_s=3600)
    assert await relay.purge_sent(chunk=2) == 5
    left = {r.id for r in await _sql(probe, "SELECT id FROM outbox")}
    assert left == {recent, unsent}
    assert await relay.purge_sent(chunk=2) == 0


async def test_stats_age_only_pending_rows_and_count_parked_apart(probe: Probe) -> None:
    pending = await _insert_row(probe)
    parked = await _insert_row(probe)
    await _insert_row(probe, sent_at=None)
    await _sql(
        probe,
        "UPDATE outbox SET created_at = now() - interval '100 seconds' WHERE id = :i",
        i=pending,
    )
    await _sql(
        probe,
        "UPDATE outbox SET created_at = now() - interval '1000 seconds', parked_at = now()"
        " WHERE id = :i",
        i=parked,
    )
    sent = await _insert_row(probe)
    await _sql(
        probe,
        "UPDATE outbox SET sent_at = now(), created_at = now() - interval '5000 seconds'"
        " WHERE id = :i",
        i=sent,
    )
    stats = await outbox_stats(probe.engine, probe.tables.outbox)
    assert (stats.pending, stats.parked) == (2, 1)
    age = stats.oldest_pending_age_s
    assert isinstance(age, float)
    assert 100 <= age < 110, age
    assert round(age, 3) == age


async def test_an_empty_outbox_has_no_oldest_row(probe: Probe) -> None:
    stats = await outbox_stats(probe.engine, probe.tables.outbox)
    assert stats == OutboxStats(pending=0, parked=0, oldest_pending_age_s=None)


async def test_listing_shows_unsent_rows_oldest_first_filtered_and_limited(probe: Probe) -> None:
    ids = [await _insert_row(probe) for _ in range(3)]
    await _sql(probe, "UPDATE outbox SET parked_at = now() WHERE id = :i", i=ids[1])
    sent = await _insert_row(probe)
    await _sql(probe, "UPDATE outbox SET sent_at = now() WHERE id = :i", i=sent)
    t = probe.tables.outbox
    assert [r.id for r in await list_outbox(probe.engine, t)] == ids
    assert [r.id for r in await list_outbox(probe.engine, t, limit=2)] == ids[:2]
    assert [r.id for r in await list_outbox(probe.engine, t, parked=True)] == [ids[1]]
    assert [r.id for r in await list_outbox(probe.engine, t, parked=False)] == [ids[0], ids[2]]


async def test_retry_makes_parked_rows_due_now_and_leaves_pending_ones_as_they_are(
    probe: Probe,
) -> None:
    parked = await _insert_row(probe)
    pending = await _insert_row(probe)
    await _sql(
        probe,
        "UPDATE outbox SET parked_at = now(), attempts = 10,"
        " next_attempt_at = now() + interval '1 hour' WHERE id = :i",
        i=parked,
    )
    await _sql(
        probe,
        "UPDATE outbox SET attempts = 3, next_attempt_at = now() + interval '1 hour' WHERE id = :i",
        i=pending,
    )
    assert await retry_outbox(probe.engine, probe.tables.outbox) == 1
    rows = {
        r.id: r
        for r in await _sql(
            probe, "SELECT id, attempts, parked_at, next_attempt_at <= now() AS due FROM outbox"
        )
    }
    assert (rows[parked].attempts, rows[parked].parked_at, rows[parked].due) == (0, None, True)
    assert (rows[pending].attempts, rows[pending].due) == (3, False)


async def test_the_request_that_caused_an_event_is_stored_with_its_row(probe: Probe) -> None:
    import structlog

    with structlog.contextvars.bound_contextvars(request_id="req-7f3k"):
        row = probe.outbox.row_for(ThingHappened(thing_id=uuid.uuid4()), subject="x")
    assert row["headers"]["x-request-id"] == "req-7f3k"
    assert (
        "x-request-id"
        not in probe.outbox.row_for(ThingHappened(thing_id=uuid.uuid4()), subject="x")["headers"]
    ), "no request, no id"


async def test_one_pass_reports_what_it_sent_failed_and_parked(probe: Probe) -> None:
    good, bad = await _insert_row(probe), await _insert_row(probe)

    async def publish(row: Any) -> None:
        if row.id == bad:
            raise ValueError("this row cannot be published")

    relay = OutboxRelay(probe.engine, probe.outbox, publish, max_attempts=2, retry_base_s=0.01)
    first = await relay.drain_once()
    assert (first.claimed, first.sent, first.failed, first.parked, first.released) == (
        2,
        1,
        1,
        0,
        0,
    )
    await _sql(probe, "UPDATE outbox SET next_attempt_at = now() WHERE id = :i", i=bad)
    second = await relay.drain_once()
    assert (second.claimed, second.sent, second.failed, second.parked) == (1, 0, 1, 1)
    [(payload,)] = await _sql(probe, "SELECT payload FROM outbox WHERE id = :i", i=good)
    assert "data" not in payload, "a sent row keeps no data (it may hold a token)"
    assert payload["type"] == "probe.thing.happened"


async def test_a_published_row_is_the_envelope_with_its_ids_type_and_own_headers(
    probe: Probe,
) -> None:
    import json

    tap = await probe.tap()
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    good = await _insert_row(
        probe,
        headers={
            "traceparent": trace,
            "tracestate": "vendor=stored",
            "x-request-id": "req-1",
            "x-k": "v",
        },
    )
    bad = await _insert_row(probe, headers={"x-request-id": "é" * 100})
    async with probe.relaying():
        messages = await probe.take_all(tap.name, expect=2)
    rows = {r.id: r for r in await probe.outbox_rows()}
    by_id = {m.message_id: m for m in messages}

    first = by_id[str(rows[good].event_id)]
    assert first.type == "probe.thing.happened"
    assert first.routing_key == "probe.thing.happened.v1"
    assert first.content_type == "application/json"
    assert first.delivery_mode == 2
    assert first.correlation_id == "req-1"
    headers = dict(first.headers or {})
    assert (headers.get("x-k"), headers.get("x-request-id")) == ("v", "req-1")
    # the stored context is the parent of the publish, never copied as it is
    assert headers.get("traceparent") != trace
    assert headers.get("tracestate") != "vendor=stored"
    envelope = json.loads(first.body)
    assert (envelope["type"], envelope["id"]) == ("probe.thing.happened", str(rows[good].event_id))
    # the stored jsonb's text as PostgreSQL renders it (", " and ": ", its own key order):
    # the relay never parses and encodes an event again (an applet's is half a megabyte)
    assert first.body.decode() == json.dumps(envelope)

    second = by_id[str(rows[bad].event_id)]
    assert second.correlation_id == str(rows[bad].event_id), "the event's id, not the header"
    assert "x-request-id" not in dict(second.headers or {})


async def test_each_failed_row_is_recorded_and_logged_on_its_own(probe: Probe) -> None:
    import structlog

    good, bad1, bad2 = await _insert_row(probe), await _insert_row(probe), await _insert_row(probe)
    errors = {bad1: "first " + "x" * 3000, bad2: "second"}

    async def publish(row: Any) -> None:
        if row.id in errors:
            raise ValueError(errors[row.id])

    relay = OutboxRelay(probe.engine, probe.outbox, publish, max_attempts=2, retry_base_s=60)
    with structlog.testing.capture_logs() as logs:
        first = await relay.drain_once()
        await _sql(probe, "UPDATE outbox SET next_attempt_at = now() WHERE id <> :i", i=good)
        second = await relay.drain_once()
    assert (first.failed, first.parked, second.failed, second.parked) == (2, 0, 2, 2)

    rows = {r.id: r for r in await probe.outbox_rows()}
    assert rows[good].sent_at is not None
    assert (rows[bad1].attempts, rows[bad2].attempts) == (2, 2)
    assert len(rows[bad1].last_error) == 2000
    assert rows[bad2].last_error == "ValueError('second')"
    failed = [e for e in logs if e["event"] == "outbox_row_failed"]
    parked = [e for e in logs if e["event"] == "outbox_row_parked"]
    assert {e["row_id"] for e in failed} == {e["row_id"] for e in parked} == {bad1, bad2}
    assert {e["log_level"] for e in failed} == {"warning"}
    assert {e["log_level"] for e in parked} == {"error"}
    for entry in failed + parked:
        row = rows[entry["row_id"]]
        assert entry["event_id"] == str(row.event_id)
        assert entry["event_type"] == "probe.thing.happened"
        assert entry["error"].startswith("ValueError(")
        assert len(entry["error"]) <= 500
    assert {e["attempts"] for e in failed} == {1}
    assert {e["attempts"] for e in parked} == {2}
    assert len(next(e for e in failed if e["row_id"] == bad1)["error"]) == 500


class _SlowToSettle(OutboxRelay):
    """A relay whose settle starts, then takes a moment: a stop can land inside it."""

    settling = asyncio.Event()

    async def _settle(self, **rows: Any) -> int:
        self.settling.set()
        await asyncio.sleep(0.3)
        return await super()._settle(**rows)


async def test_a_relay_stopped_while_settling_still_marks_what_it_published_as_sent(
    probe: Probe,
) -> None:
    row_id = await _insert_row(probe)
    published: list[int] = []

    async def publish(row: Any) -> None:
        published.append(row.id)

    relay = _SlowToSettle(probe.engine, probe.outbox, publish)
    relay.settling = asyncio.Event()
    task = asyncio.create_task(relay.drain_once())
    await asyncio.wait_for(relay.settling.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert published == [row_id]
    [row] = await _sql(probe, "SELECT sent_at FROM outbox WHERE id = :i", i=row_id)
    assert row.sent_at is not None, "published, then stopped: it would go out a second time"


async def test_rows_released_for_an_unavailable_broker_leave_other_leases_alone(
    probe: Probe,
) -> None:
    from tessera.common.messaging.outbox import BrokerUnavailable

    mine, theirs = await _mine_and_theirs(probe)

    async def publish(row: Any) -> None:
        raise BrokerUnavailable("ConnectionError: refused")

    drained = await OutboxRelay(probe.engine, probe.outbox, publish).drain_once()
    assert (drained.claimed, drained.released, drained.failed) == (1, 1, 0)
    rows = {
        r.id: r
        for r in await _sql(
            probe, "SELECT id, attempts, next_attempt_at <= now() AS due FROM outbox"
        )
    }
    assert (rows[mine].due, rows[mine].attempts) == (True, 0)
    assert rows[theirs].due is False


class _Flaky(OutboxRelay):
    """A relay whose passes fail as told first: True is an error, a Drain is returned."""

    def __init__(self, *args: Any, script: list[Any], **options: Any) -> None:
        super().__init__(*args, **options)
        self.script = script
        self.passes = 0

    async def drain_once(self) -> Any:
        self.passes += 1
        if self.script:
            step = self.script.pop(0)
            if step is True:
                raise ConnectionError("database blinked")
            return step
        return await super().drain_once()


async def test_the_relay_backs_off_after_failures_resets_after_success_and_never_stops(
    probe: Probe,
) -> None:
    import structlog

    from tessera.common.messaging.outbox import Drain

    ids = [await _insert_row(probe) for _ in range(4)]
    script: list[Any] = [True, Drain(claimed=1, released=1), Drain(), True]
    relay = _Flaky(
        probe.engine,
        probe.outbox,
        _relay().publish,
        script=script,
        poll_interval=0.2,
        max_backoff=1.0,
        batch_size=2,
    )
    with structlog.testing.capture_logs() as logs:
        await _run_until_sent(probe, relay, ids)
    trouble = [
        (e["event"], e["retry_in_s"])
        for e in logs
        if e["event"] in ("outbox_relay_failed", "outbox_broker_unavailable")
    ]
    assert trouble == [
        ("outbox_relay_failed", 0.05),  # a quarter of the poll interval
        ("outbox_broker_unavailable", 0.1),  # doubled
        ("outbox_relay_failed", 0.05),  # a pass that worked reset it
    ]
    failed = next(e for e in logs if e["event"] == "outbox_relay_failed")
    assert failed["error"] == "ConnectionError('database blinked')"
    unavailable = next(e for e in logs if e["event"] == "outbox_broker_unavailable")
    assert unavailable["released"] == 1


async def test_a_full_batch_is_followed_by_the_next_at_once_not_after_the_poll(
    probe: Probe,
) -> None:
    ids = [await _insert_row(probe) for _ in range(6)]  # no commit woke the relay: only polls
    relay = OutboxRelay(
        probe.engine, probe.outbox, _relay().publish, batch_size=2, poll_interval=30
    )
    await _run_until_sent(probe, relay, ids)  # within 3 s: three batches in a row


async def test_purging_goes_on_after_a_failure_and_logs_both(probe: Probe) -> None:
    import structlog

    old = await _insert_row(probe)
    await _sql(probe, "UPDATE outbox SET sent_at = now() - interval '2 hours' WHERE id = :i", i=old)
    calls: list[int] = []

    class Purging(OutboxRelay):
        async def purge_sent(self, *, chunk: int = 5_000) -> int:
            calls.append(1)
            if len(calls) == 1:
                raise ConnectionError("database blinked")
            return await super().purge_sent(chunk=chunk)

    relay = Purging(probe.engine, probe.outbox, _relay().publish, purge_interval_s=0.05)
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(relay._purge_forever())
        try:
            await probe.eventually(
                lambda: _true(any(e["event"] == "outbox_purged" for e in logs)), what="purged"
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    [failed] = [e for e in logs if e["event"] == "outbox_purge_failed"]
    assert failed["error"] == "ConnectionError('database blinked')"
    [purged] = [e for e in logs if e["event"] == "outbox_purged"]
    assert purged["rows"] == 1


async def _true(value: bool) -> bool:
    return value


async def _run_until_sent(probe: Probe, relay: OutboxRelay, ids: list[int]) -> None:
    """Run ``relay`` until every row of ``ids`` is sent (3 s at most), then stop it."""
    task = asyncio.create_task(relay.run())
    try:

        async def all_sent() -> bool:
            rows = await probe.outbox_rows()
            return all(r.sent_at is not None for r in rows if r.id in ids)

        await probe.eventually(all_sent, timeout=3.0, what="every row sent")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
