"""Mailer use cases: render, record and send, in one transaction per event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import quote

from tessera.common.db import UnitOfWork
from tessera.common.messaging import Envelope, claim
from tessera.mailer.drivers import MailDriver
from tessera.mailer.events import UserRegistered
from tessera.mailer.models import Delivery, messaging
from tessera.mailer.rendering import Rendered, Renderer
from tessera.mailer.settings import Settings

__all__ = ["Mailer", "send_verification"]

CONSUMER = "mailer"


@dataclass(frozen=True)
class Mailer:
    settings: Settings
    renderer: Renderer
    driver: MailDriver


def _message(mailer: Mailer, *, to: str, rendered: Rendered, message_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mailer.settings.from_address
    msg["To"] = to
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    # after the body: set_content() drops every Content-* header set before it
    msg["Content-Language"] = rendered.locale
    return msg


async def send_verification(
    uow: UnitOfWork, mailer: Mailer, envelope: Envelope, event: UserRegistered
) -> bool:
    """Send the verification email once per event; False when it was already sent.

    The inbox claim, the delivery row and the SMTP hand-over share one transaction: an SMTP
    failure rolls the claim back so the retry sends again, and a redelivery after the
    commit finds the claim and sends nothing.
    """
    template = "verify_email"
    delivery_id = uuid.uuid5(envelope.id, template)
    link = (
        f"{mailer.settings.public_url.rstrip('/')}/verify-email"
        f"#token={quote(event.verification_token)}"
    )
    expires_at = envelope.data.get("verification_expires_at", "")
    rendered = mailer.renderer.render(
        template,
        event.locale,
        {
            "full_name": event.full_name,
            "email": event.email,
            "link": link,
            "expires": str(expires_at)[:16].replace("T", " ") + " UTC" if expires_at else "",
        },
    )
    message_id = f"<{delivery_id}@tessera>"
    async with uow:
        first = await claim(
            uow.session,
            messaging.inbox,
            event_id=envelope.id,
            consumer=CONSUMER,
            event_type=envelope.type,
        )
        if not first:
            return False
        uow.session.add(
            Delivery(
                id=delivery_id,
                event_id=envelope.id,
                event_type=envelope.type,
                template=template,
                locale=rendered.locale,
                recipient=event.email,
                subject=rendered.subject,
                message_id=message_id,
                status="sent",
                sent_at=datetime.now(UTC),
            )
        )
        await uow.session.flush()
        await mailer.driver.send(
            _message(mailer, to=event.email, rendered=rendered, message_id=message_id)
        )
        await uow.commit()
    return True
