"""The verification email: sent once per ``auth.user.registered`` event, over real SMTP."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from tessera.common.messaging.dlq import DeadLetter, list_dead_letters
from tessera.common.messaging.rabbit import Topology
from tessera.common.testing import Infra
from tessera.common.testing.smtp import mime_parts

PUBLIC_URL = "https://app.tessera.test"
WAIT_S = 10.0


async def _wait_for_dead_letter(infra: Infra, topology: Topology, message_id: str) -> DeadLetter:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for letter in await list_dead_letters(infra.rabbitmq, topology, limit=1000):
            if letter.message_id == message_id:
                return letter
        await asyncio.sleep(0.1)
    raise AssertionError(f"{message_id} did not reach {topology.dlq} within {WAIT_S} s")


async def test_user_registered_event_sends_the_verification_email(
    smtp: Any,
    publish: Any,
    new_event: Any,
    query: Any,
    mailer_settings: Any,
    wait_for_deliveries: Any,
) -> None:
    event = new_event(full_name="Ada Lovelace")
    data = event["data"]

    await publish(event)
    received = await smtp.wait_for(data["email"])

    message = received.message
    assert received.rcpt_tos == [data["email"]]
    assert message["To"] == data["email"]
    assert message["From"] == mailer_settings.from_address
    assert message["Subject"] == "Confirm your email address for Tessera"
    assert message["Content-Language"] == "en"
    assert message["Date"]
    message_id = message["Message-ID"]
    assert message_id
    assert message_id.startswith("<")
    assert message_id.endswith(">")
    assert "@" in message_id
    assert message.is_multipart()
    assert message.get_content_type() == "multipart/alternative"
    text, html = mime_parts(message)
    link = f"{PUBLIC_URL}/verify-email#token={data['verification_token']}"
    assert link in text
    assert f'href="{link}"' in html
    assert "Ada Lovelace" in text
    assert "Ada Lovelace" in html
    # the token never travels as a query parameter, which servers and proxies log
    assert "?token=" not in text + html

    [row] = await wait_for_deliveries(event["id"])
    assert row.status == "sent"
    assert row.recipient == data["email"]
    assert row.subject == message["Subject"]
    assert row.message_id == message_id
    assert row.template == "verify_email"
    assert row.event_type == "auth.user.registered"
    assert row.locale == "en"
    assert row.sent_at is not None


async def test_html_part_escapes_the_user_supplied_name(
    smtp: Any, publish: Any, new_event: Any
) -> None:
    event = new_event(full_name='<script>alert("x")</script> Eve')

    await publish(event)
    received = await smtp.wait_for(event["data"]["email"])

    text, html = mime_parts(received.message)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert '<script>alert("x")</script> Eve' in text


async def test_same_event_twice_sends_one_email(
    smtp: Any, publish: Any, new_event: Any, query: Any, wait_for_deliveries: Any, deliveries: Any
) -> None:
    event = new_event()
    email = event["data"]["email"]
    await publish(event)
    await smtp.wait_for(email)
    await wait_for_deliveries(event["id"])

    await publish(event)  # a redelivery: same envelope, same id
    # the queue is consumed in order, one message at a time: once a later event has been
    # mailed, the duplicate before it has been handled too
    marker = new_event()
    await publish(marker)
    await smtp.wait_for(marker["data"]["email"])
    await asyncio.sleep(0.5)

    assert len(smtp.to(email)) == 1
    assert len(await deliveries(event["id"])) == 1
    inbox = await query(
        "SELECT consumer FROM inbox WHERE event_id = :id", id=uuid.UUID(event["id"])
    )
    assert [r.consumer for r in inbox] == ["mailer"]


async def test_temporary_smtp_failure_is_retried_and_mails_once(
    smtp: Any, publish: Any, new_event: Any, query: Any, wait_for_deliveries: Any, deliveries: Any
) -> None:
    smtp.refuse_next(1)  # 451 to the first DATA, then accept
    event = new_event()
    email = event["data"]["email"]

    await publish(event)
    received = await smtp.wait_for(email)

    assert smtp.refused == 1
    rows = await wait_for_deliveries(event["id"])
    await asyncio.sleep(0.5)  # longer than a retry delay: no second attempt follows
    assert len(smtp.to(email)) == 1
    assert len(await deliveries(event["id"])) == 1
    assert rows[0].status == "sent"
    assert rows[0].message_id == received.message["Message-ID"]


async def test_event_with_invalid_data_goes_to_the_dlq_and_sends_nothing(
    smtp: Any,
    publish: Any,
    new_event: Any,
    query: Any,
    infra: Infra,
    topology: Topology,
    deliveries: Any,
) -> None:
    event = new_event(email=None)  # no address to mail
    marker = new_event()

    await publish(event)
    letter = await _wait_for_dead_letter(infra, topology, event["id"])
    await publish(marker)
    await smtp.wait_for(marker["data"]["email"])  # the consumer is still alive and well

    assert topology.dlq == f"{infra.queue_prefix}mailer.events.dlq"
    assert json.loads(letter.body) == event  # nothing lost: the message as published
    assert letter.routing_key == "auth.user.registered.v1"
    assert "email" in letter.error
    assert letter.attempts == 1  # not retried: no retry can fix bad data
    assert letter.failed_at
    assert len(await deliveries(event["id"])) == 0
    assert len(smtp.to(marker["data"]["email"])) == 1
    assert (
        await query("SELECT event_id FROM inbox WHERE event_id = :id", id=uuid.UUID(event["id"]))
        == []
    )


async def test_undecodable_message_goes_to_the_dlq(
    publish: Any, infra: Infra, topology: Topology, new_event: Any
) -> None:
    event = new_event()
    broken = {"id": event["id"], "type": "auth.user.registered", "version": 1, "nonsense": 1}

    await publish(broken, routing_key="auth.user.registered.v1")
    letter = await _wait_for_dead_letter(infra, topology, event["id"])

    assert "undecodable" in letter.error
    assert json.loads(letter.body) == broken


async def test_unknown_locale_falls_back_to_english(
    smtp: Any, publish: Any, new_event: Any, query: Any, wait_for_deliveries: Any
) -> None:
    event = new_event(locale="xx-YY")

    await publish(event)
    received = await smtp.wait_for(event["data"]["email"])

    assert received.message["Content-Language"] == "en"
    assert received.message["Subject"] == "Confirm your email address for Tessera"
    text, _ = mime_parts(received.message)
    assert "Welcome to Tessera" in text
    [row] = await wait_for_deliveries(event["id"])
    assert row.locale == "en"


async def test_regional_locale_uses_its_language_templates(
    smtp: Any, publish: Any, new_event: Any
) -> None:
    """``en-GB`` has no templates of its own and is served by ``en``."""
    event = new_event(locale="en-GB")

    await publish(event)
    received = await smtp.wait_for(event["data"]["email"])

    assert received.message["Content-Language"] == "en"
