"""The mail server going away in the middle of a queue of emails and coming back: every email
arrives exactly once, none is lost, none is sent twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(120)

EMAILS = 500  # as the issue asks: an outage in the middle of 500 queued emails


@pytest.mark.mailer_settings(broker={"retry_delays_ms": [1000, 1000, 5000, 5000]})
async def test_emails_queued_while_the_mail_server_is_down_arrive_once_each(
    smtp: Any, publish: Any, new_event: Any, query: Any
) -> None:
    events = [new_event() for _ in range(EMAILS)]
    addresses = [e["data"]["email"] for e in events]
    ids = [uuid.UUID(e["id"]) for e in events]
    mine = "FROM deliveries WHERE event_id = ANY(:ids)"
    for event in events:
        await publish(event)

    deadline = time.monotonic() + 30
    while len(smtp.messages) < EMAILS // 5 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    smtp.stop()  # the server goes away with most of the queue still waiting
    stopped_at = len(smtp.messages)
    await asyncio.sleep(2.0)
    smtp.restart()

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        rows = await query(f"SELECT status, count(*) AS n {mine} GROUP BY status", ids=ids)
        if {r.status: r.n for r in rows}.get("sent", 0) >= EMAILS:
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)

    assert 0 < stopped_at < EMAILS, "the outage did not fall in the middle of the queue"
    received = Counter({a: len(smtp.to(a)) for a in addresses})
    assert [a for a, n in received.items() if n == 0] == [], "an email was lost"
    assert [a for a, n in received.items() if n > 1] == [], "an email was sent twice"
    statuses = await query(f"SELECT status, max(attempts) AS most {mine} GROUP BY status", ids=ids)
    assert [(r.status) for r in statuses] == ["sent"]
    assert statuses[0].most >= 2, "no email met the outage"
