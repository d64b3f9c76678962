"""Mailer use cases: render, record and send, in one transaction per event."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import update

from tessera.common.db import UnitOfWork
from tessera.common.messaging import Envelope, claim
from tessera.mailer.drivers import MailDriver
from tessera.mailer.events import (
    AccountLocked,
    EmailVerificationRequested,
    LoginLinkRequested,
    PasswordChanged,
    PasswordRecoveryRequested,
    UserDeleted,
    UserRegistered,
)
from tessera.mailer.models import Delivery, messaging
from tessera.mailer.rendering import Rendered, Renderer
from tessera.mailer.settings import Settings

__all__ = [
    "Mail",
    "Mailer",
    "send_login_link",
    "send_once",
    "send_password_changed",
    "send_password_reset",
    "send_verification",
]

CONSUMER = "mailer"


class _Recipient(Protocol):
    @property
    def email(self) -> str: ...
    @property
    def full_name(self) -> str: ...


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


@dataclass(frozen=True)
class Mail:
    """One templated email: what to render, for whom, in which language."""

    template: str
    to: str
    locale: str
    context: dict[str, Any]
    user_id: uuid.UUID | None = None


async def send_once(uow: UnitOfWork, mailer: Mailer, envelope: Envelope, mail: Mail) -> bool:
    """Send ``mail`` once per event; False when this event was already handled.

    The inbox claim, the delivery row and the SMTP hand-over share one transaction: an SMTP
    failure rolls the claim back so the retry sends again, and a redelivery after the
    commit finds the claim and sends nothing.
    """
    delivery_id = uuid.uuid5(envelope.id, mail.template)
    rendered = mailer.renderer.render(mail.template, mail.locale, mail.context)
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
                user_id=mail.user_id,
                template=mail.template,
                locale=rendered.locale,
                recipient=mail.to,
                subject=rendered.subject,
                message_id=message_id,
                status="sent",
                sent_at=datetime.now(UTC),
            )
        )
        await uow.session.flush()
        await mailer.driver.send(
            _message(mailer, to=mail.to, rendered=rendered, message_id=message_id)
        )
        await uow.commit()
    return True


def _link(mailer: Mailer, path: str, token: str) -> str:
    """A link into the web app; the token rides in the fragment, which no server logs."""
    return f"{mailer.settings.public_url.rstrip('/')}/{path}#token={quote(token)}"


def _when(iso: str) -> str:
    """``2026-01-02T03:04:05+00:00`` as ``2026-01-02 03:04 UTC`` (empty stays empty)."""
    return iso[:16].replace("T", " ") + " UTC" if iso else ""


def _greeting(event: _Recipient) -> dict[str, Any]:
    return {"full_name": event.full_name, "email": event.email}


async def send_verification(
    uow: UnitOfWork,
    mailer: Mailer,
    envelope: Envelope,
    event: UserRegistered | EmailVerificationRequested,
) -> bool:
    """The "confirm your email address" mail, at registration and on each resend."""
    context = _greeting(event) | {
        "link": _link(mailer, "verify-email", event.verification_token),
        "expires": _when(event.verification_expires_at),
    }
    return await send_once(
        uow,
        mailer,
        envelope,
        Mail("verify_email", event.email, event.locale, context, event.user_id),
    )


async def send_password_reset(
    uow: UnitOfWork, mailer: Mailer, envelope: Envelope, event: PasswordRecoveryRequested
) -> bool:
    context = _greeting(event) | {
        "link": _link(mailer, "reset-password", event.reset_token),
        "expires": _when(event.expires_at),
    }
    return await send_once(
        uow,
        mailer,
        envelope,
        Mail("password_reset", event.email, event.locale, context, event.user_id),
    )


async def send_login_link(
    uow: UnitOfWork, mailer: Mailer, envelope: Envelope, event: LoginLinkRequested
) -> bool:
    context = _greeting(event) | {
        "link": _link(mailer, "login-link", event.login_token),
        "expires": _when(event.expires_at),
    }
    return await send_once(
        uow, mailer, envelope, Mail("login_link", event.email, event.locale, context, event.user_id)
    )


async def send_password_changed(
    uow: UnitOfWork, mailer: Mailer, envelope: Envelope, event: PasswordChanged
) -> bool:
    context = _greeting(event) | {
        "changed_at": _when(envelope.occurred_at.astimezone(UTC).isoformat()),
        "recover_url": f"{mailer.settings.public_url.rstrip('/')}/forgot-password",
    }
    return await send_once(
        uow,
        mailer,
        envelope,
        Mail("password_changed", event.email, event.locale, context, event.user_id),
    )


async def send_account_locked(
    uow: UnitOfWork, mailer: Mailer, envelope: Envelope, event: AccountLocked
) -> bool:
    """Too many wrong passwords: tell the owner, with the way out if it was not them."""
    context = _greeting(event) | {
        "locked_until": _when(event.locked_until),
        "recover_url": f"{mailer.settings.public_url.rstrip('/')}/forgot-password",
    }
    return await send_once(
        uow,
        mailer,
        envelope,
        Mail("account_locked", event.email, event.locale, context, event.user_id),
    )


ERASED = "erased@deleted.invalid"


async def forget_user(uow: UnitOfWork, envelope: Envelope, event: UserDeleted) -> bool:
    """An account was deleted: erase its address from every delivery, once per event."""
    async with uow:
        if not await claim(
            uow.session,
            messaging.inbox,
            event_id=envelope.id,
            consumer=CONSUMER,
            event_type=envelope.type,
        ):
            return False
        await uow.session.execute(
            update(Delivery).where(Delivery.user_id == event.user_id).values(recipient=ERASED)
        )
        await uow.commit()
    return True
