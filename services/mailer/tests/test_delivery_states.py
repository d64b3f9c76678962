"""A delivery's life, over real SMTP: no transaction held while the server talks, one
connection for many emails, temporary and permanent failures, and the one window.

Each test runs the mailer's lifespan against this run's database and broker names and an
aiosmtpd server of its own (``smtp``); the retry delays are the test settings' 200 and 400 ms.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tessera.common.messaging.rabbit import Topology
from tessera.common.testing import Infra
from tessera.common.testing.broker import take, tapped
from tessera.mailer.service import delivery_id

from .test_verification_mail import _wait_for_dead_letter

pytestmark = pytest.mark.timeout(60)

STATE = "status, attempts, last_error, lease_until, sent_at, message_id"


async def _state(query: Any, event: dict[str, Any]) -> Any:
    rows = await query(
        f"SELECT {STATE} FROM deliveries WHERE event_id = :id", id=uuid.UUID(event["id"])
    )
    return rows[0] if rows else None


async def _settled(query: Any, event: dict[str, Any], status: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await _state(query, event)
        if row is not None and row.status == status:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"delivery of {event['id']} not {status}: {await _state(query, event)}")


async def _failures(infra: Infra, tap: str, subject: str) -> list[Any]:
    """The ``mailer.delivery.failed`` envelopes about delivery ``subject`` that reached the bus."""
    messages = await take(infra.rabbitmq, tap, expect=1)
    envelopes = [json.loads(m.body) for m in messages]
    return [e for e in envelopes if e["subject"] == subject]


async def test_no_transaction_is_open_while_the_mail_server_takes_the_message(
    smtp: Any, publish: Any, new_event: Any, query: Any, infra: Infra
) -> None:
    event = new_event()
    smtp.hold()
    await publish(event)
    assert await asyncio.to_thread(smtp.holding.wait, 10.0), "the email never reached DATA"
    held_since = datetime.now(UTC)
    await asyncio.sleep(0.3)

    url = make_url(infra.postgres_admin).set(database=infra.database)
    admin = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        samples = []
        for _ in range(5):
            samples.append(
                await admin.fetch(
                    "SELECT pid, state, xact_start FROM pg_stat_activity "
                    "WHERE application_name = 'tessera-mailer' AND xact_start < $1",
                    held_since,
                )
            )
            await asyncio.sleep(0.1)
        during = await _state(query, event)
    finally:
        await admin.close()
        smtp.release()

    assert all(s == [] for s in samples), f"a transaction spans the SMTP exchange: {samples}"
    assert during.status == "sending"
    assert during.lease_until is not None
    await smtp.wait_for(event["data"]["email"])
    sent = await _settled(query, event, "sent")
    assert sent.lease_until is None
    assert sent.attempts == 1


async def test_emails_in_a_row_share_one_smtp_connection(
    smtp: Any, publish: Any, new_event: Any, query: Any
) -> None:
    events = [new_event() for _ in range(6)]
    for event in events:
        await publish(event)
    for event in events:
        await smtp.wait_for(event["data"]["email"])

    assert smtp.connections == 1, "one connection per email"
    for event in events:
        await _settled(query, event, "sent")


async def test_a_permanent_refusal_fails_at_once_and_says_so_on_the_bus(
    smtp: Any, publish: Any, new_event: Any, query: Any, infra: Infra, topology: Topology
) -> None:
    event = new_event()
    smtp.refuse_next(1, code=550)

    async with tapped(infra.rabbitmq, infra.exchange, "mailer.delivery.failed.v1") as tap:
        await publish(event)
        row = await _settled(query, event, "failed")
        await asyncio.sleep(0.8)  # longer than both retry delays: nothing is tried again
        did = delivery_id(uuid.UUID(event["id"]), "verify_email", event["data"]["email"])
        [failed] = await _failures(infra, tap, str(did))

    assert smtp.refused == 1
    assert smtp.to(event["data"]["email"]) == []
    row = await _state(query, event)
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error.startswith("550")
    letter = await _wait_for_dead_letter(infra, topology, event["id"])
    assert "refused: 550" in letter.error  # kept for POST /mail/deliveries/{id}/retry
    assert letter.attempts == 1
    assert failed["type"] == "mailer.delivery.failed"
    assert failed["data"]["permanent"] is True
    assert failed["data"]["event_id"] == event["id"]
    assert failed["data"]["recipient"] == event["data"]["email"]
    assert "550" in failed["data"]["reason"]


async def test_an_address_no_server_could_take_fails_without_talking_smtp(
    smtp: Any, publish: Any, new_event: Any, query: Any
) -> None:
    event = new_event(email="no-at-sign.example.com")
    await publish(event)

    row = await _settled(query, event, "failed")
    assert row.last_error == "invalid recipient address"
    assert smtp.messages == []
    assert smtp.refused == 0


async def test_a_temporary_failure_that_lasts_fails_the_delivery_and_dead_letters_the_event(
    smtp: Any,
    publish: Any,
    new_event: Any,
    query: Any,
    infra: Infra,
    topology: Topology,
) -> None:
    event = new_event()
    smtp.refuse_next(100)  # 451, every time

    async with tapped(infra.rabbitmq, infra.exchange, "mailer.delivery.failed.v1") as tap:
        await publish(event)
        letter = await _wait_for_dead_letter(infra, topology, event["id"])
        row = await _settled(query, event, "failed")
        did = delivery_id(uuid.UUID(event["id"]), "verify_email", event["data"]["email"])
        [failed] = await _failures(infra, tap, str(did))

    assert smtp.refused == topology.max_attempts == 3
    assert row.attempts == 3
    assert row.last_error.startswith("451")
    assert json.loads(letter.body) == event
    assert "still failing after 3 attempts" in letter.error
    assert failed["data"]["permanent"] is False


async def test_a_temporary_failure_is_retried_as_the_same_delivery(
    smtp: Any, publish: Any, new_event: Any, query: Any
) -> None:
    event = new_event()
    smtp.refuse_next(1)

    await publish(event)
    received = await smtp.wait_for(event["data"]["email"])
    row = await _settled(query, event, "sent")

    assert row.attempts == 2
    assert row.last_error.startswith("451")  # what the first attempt met
    assert received.message["Message-ID"] == row.message_id


async def _leave_sending(query_engine: Any, event: dict[str, Any], lease_until: datetime) -> str:
    """The row a consumer leaves when it dies while the server is taking the email."""
    data = event["data"]
    did = delivery_id(uuid.UUID(event["id"]), "verify_email", data["email"])
    async with query_engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO deliveries (id, event_id, event_type, template, locale, recipient, "
            "subject, message_id, status, attempts, lease_until, created_at, updated_at) "
            "VALUES ($1, $2, $3, 'verify_email', 'en', $4, 's', $5, 'sending', 1, $6, now(), "
            "now())",
            (did, uuid.UUID(event["id"]), event["type"], data["email"], f"<{did}@tessera>",
             lease_until),
        )  # fmt: skip
    return f"<{did}@tessera>"


async def test_the_window_a_consumer_that_died_while_sending_is_followed_by_one_resend(
    smtp: Any, publish: Any, new_event: Any, query: Any, runtime: Any
) -> None:
    """The documented window: the first consumer may have had its email accepted; the next
    one sends it again once the lease is over, with the same Message-ID, and says so."""
    event = new_event()
    message_id = await _leave_sending(
        runtime.engine, event, datetime.now(UTC) - timedelta(seconds=1)
    )

    await publish(event)  # RabbitMQ's redelivery of the unacknowledged event
    received = await smtp.wait_for(event["data"]["email"])
    row = await _settled(query, event, "sent")

    assert received.message["Message-ID"] == message_id
    assert row.attempts == 2
    assert len(smtp.to(event["data"]["email"])) == 1


async def test_a_delivery_another_consumer_is_sending_waits_for_its_lease(
    smtp: Any, publish: Any, new_event: Any, query: Any, runtime: Any
) -> None:
    event = new_event()
    lease_ends = datetime.now(UTC) + timedelta(seconds=0.4)
    await _leave_sending(runtime.engine, event, lease_ends)

    await publish(event)
    received = await smtp.wait_for(event["data"]["email"])

    assert datetime.now(UTC) >= lease_ends, "sent while another consumer held the lease"
    assert len(smtp.to(event["data"]["email"])) == 1
    assert received is not None


async def test_a_delivery_already_sent_is_never_sent_again(
    smtp: Any, publish: Any, new_event: Any, query: Any, runtime: Any
) -> None:
    event = new_event()
    await publish(event)
    await smtp.wait_for(event["data"]["email"])
    await _settled(query, event, "sent")
    # the inbox claim gone too (a replay restored from a backup, say): the row still decides
    async with runtime.engine.begin() as conn:
        await conn.exec_driver_sql(
            "DELETE FROM inbox WHERE event_id = $1", (uuid.UUID(event["id"]),)
        )

    await publish(event)
    marker = new_event()
    await publish(marker)
    await smtp.wait_for(marker["data"]["email"])
    await asyncio.sleep(0.3)

    assert len(smtp.to(event["data"]["email"])) == 1
