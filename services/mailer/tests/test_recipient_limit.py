"""The per-recipient limit is one decision per address, however many consumers handle emails
to it at the same instant: four mailer apps compete on one queue for a burst of sign-in link
requests to six addresses, interleaved, and exactly ``limit`` are sent to each, the rest
recorded ``limited``. (Without the recipient's lock, some address got more in every one of
six runs.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from typing import Any

import aio_pika
import pytest
from sqlalchemy import text

from tessera.common.testing import Infra
from tessera.common.testing.broker import eventually
from tessera.common.testing.smtp import SmtpSink
from tessera.mailer.app import create_app
from tessera.mailer.settings import Settings as MailerSettings

from .test_account_mails import _envelope

pytestmark = pytest.mark.timeout(90)

LIMIT = 2
PER_ADDRESS = 8
ADDRESSES = 6
CONSUMERS = 4


async def _publish_burst(infra: Infra, envelopes: list[dict[str, Any]]) -> None:
    """All at once on one channel, as a relay flushing its outbox does."""
    connection = await aio_pika.connect(infra.rabbitmq)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(infra.exchange, ensure=True)
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        json.dumps(body).encode(),
                        message_id=body["id"],
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=f"{body['type']}.v1",
                    mandatory=True,
                )
                for body in envelopes
            )
        )


@pytest.mark.mailer_settings(
    recipient_limit={"limit": LIMIT, "window_s": 3600}, broker={"prefetch": 4}
)
async def test_emails_to_one_address_handled_at_once_by_several_consumers_stop_at_the_limit(
    mailer_settings: MailerSettings, smtp: SmtpSink, infra: Infra
) -> None:
    addresses = [f"target-{uuid.uuid4().hex[:10]}@example.com" for _ in range(ADDRESSES)]
    # interleaved, so each address's emails reach the consumers at the same moments
    burst = [
        _envelope("auth.login_link.requested", email=address)
        for _ in range(PER_ADDRESS)
        for address in addresses
    ]
    ids = [uuid.UUID(e["id"]) for e in burst]

    async with contextlib.AsyncExitStack() as stack:
        apps = [create_app(mailer_settings) for _ in range(CONSUMERS)]
        for app in apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        await _publish_burst(infra, burst)
        runtime = apps[0].state.runtime

        async def settled() -> Counter[tuple[str, str]]:
            async with runtime.sessions() as session:
                rows = (
                    await session.execute(
                        text("SELECT recipient, status FROM deliveries WHERE event_id = ANY(:ids)"),
                        {"ids": ids},
                    )
                ).all()
            found = Counter((r.recipient, r.status) for r in rows)
            done = len(rows) == len(burst) and not {"queued", "sending"} & {r.status for r in rows}
            return found if done else Counter()

        final = await eventually(settled, timeout=60, what=f"{len(burst)} settled deliveries")

    expected = Counter()
    for address in addresses:
        expected[(address, "sent")] = LIMIT
        expected[(address, "limited")] = PER_ADDRESS - LIMIT
    assert final == expected
    assert [len(smtp.to(a)) for a in addresses] == [LIMIT] * ADDRESSES


@pytest.mark.mailer_settings(recipient_limit={"limit": LIMIT, "window_s": 3600})
async def test_one_mailbox_written_in_other_capitals_is_one_recipient_for_the_limit(
    mailer_settings: MailerSettings, smtp: SmtpSink, infra: Infra
) -> None:
    local = f"target-{uuid.uuid4().hex[:10]}"
    spellings = [f"{local}@example.com", f"{local.upper()}@EXAMPLE.COM", f"{local}@Example.com"]
    burst = [_envelope("auth.login_link.requested", email=address) for address in spellings * 2]
    ids = [uuid.UUID(e["id"]) for e in burst]

    app = create_app(mailer_settings)
    async with app.router.lifespan_context(app):
        await _publish_burst(infra, burst)
        runtime = app.state.runtime

        async def settled() -> Counter[str]:
            async with runtime.sessions() as session:
                rows = (
                    await session.execute(
                        text("SELECT status FROM deliveries WHERE event_id = ANY(:ids)"),
                        {"ids": ids},
                    )
                ).all()
            done = len(rows) == len(burst) and not {"queued", "sending"} & {r.status for r in rows}
            return Counter(r.status for r in rows) if done else Counter()

        final = await eventually(settled, timeout=60, what=f"{len(burst)} settled deliveries")

    assert final == Counter({"sent": LIMIT, "limited": len(burst) - LIMIT})
