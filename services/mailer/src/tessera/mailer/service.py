"""Mailer use cases: render, record and send, in the unit of work of the event.

Each runs inside the kernel's claimed unit of work (:class:`~tessera.common.consumers.Handling`):
the inbox claim, the delivery row and the SMTP hand-over share one transaction, so an SMTP
failure rolls the claim back and the retry sends again, and a redelivery after the commit
finds the claim and sends nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import update

from tessera.common.consumers import Handling
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
from tessera.mailer.models import Delivery
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


async def send_once(uow: Handling, mail: Mail) -> None:
    """Record and send ``mail`` for the event being handled (one per event and template)."""
    mailer = uow.get(Mailer)
    envelope = uow.envelope
    delivery_id = uuid.uuid5(envelope.id, mail.template)
    rendered = mailer.renderer.render(mail.template, mail.locale, mail.context)
    message_id = f"<{delivery_id}@tessera>"
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
    await mailer.driver.send(_message(mailer, to=mail.to, rendered=rendered, message_id=message_id))


def _link(mailer: Mailer, path: str, token: str) -> str:
    """A link into the web app; the token rides in the fragment, which no server logs."""
    return f"{mailer.settings.public_url.rstrip('/')}/{path}#token={quote(token)}"


def _when(iso: str) -> str:
    """``2026-01-02T03:04:05+00:00`` as ``2026-01-02 03:04 UTC`` (empty stays empty)."""
    return iso[:16].replace("T", " ") + " UTC" if iso else ""


def _greeting(event: _Recipient) -> dict[str, Any]:
    return {"full_name": event.full_name, "email": event.email}


async def send_verification(
    uow: Handling, event: UserRegistered | EmailVerificationRequested
) -> None:
    """The "confirm your email address" mail, at registration and on each resend."""
    mailer = uow.get(Mailer)
    context = _greeting(event) | {
        "link": _link(mailer, "verify-email", event.verification_token),
        "expires": _when(event.verification_expires_at),
    }
    await send_once(uow, Mail("verify_email", event.email, event.locale, context, event.user_id))


async def send_password_reset(uow: Handling, event: PasswordRecoveryRequested) -> None:
    mailer = uow.get(Mailer)
    context = _greeting(event) | {
        "link": _link(mailer, "reset-password", event.reset_token),
        "expires": _when(event.expires_at),
    }
    await send_once(uow, Mail("password_reset", event.email, event.locale, context, event.user_id))


async def send_login_link(uow: Handling, event: LoginLinkRequested) -> None:
    mailer = uow.get(Mailer)
    context = _greeting(event) | {
        "link": _link(mailer, "login-link", event.login_token),
        "expires": _when(event.expires_at),
    }
    await send_once(uow, Mail("login_link", event.email, event.locale, context, event.user_id))


async def send_password_changed(uow: Handling, event: PasswordChanged) -> None:
    mailer = uow.get(Mailer)
    context = _greeting(event) | {
        "changed_at": _when(uow.envelope.occurred_at.astimezone(UTC).isoformat()),
        "recover_url": f"{mailer.settings.public_url.rstrip('/')}/forgot-password",
    }
    await send_once(
        uow, Mail("password_changed", event.email, event.locale, context, event.user_id)
    )


async def send_account_locked(uow: Handling, event: AccountLocked) -> None:
    """Too many wrong passwords: tell the owner, with the way out if it was not them."""
    mailer = uow.get(Mailer)
    context = _greeting(event) | {
        "locked_until": _when(event.locked_until),
        "recover_url": f"{mailer.settings.public_url.rstrip('/')}/forgot-password",
    }
    await send_once(uow, Mail("account_locked", event.email, event.locale, context, event.user_id))


ERASED = "erased@deleted.invalid"


async def forget_user(uow: Handling, event: UserDeleted) -> None:
    """An account was deleted: erase its address from every delivery."""
    await uow.session.execute(
        update(Delivery).where(Delivery.user_id == event.user_id).values(recipient=ERASED)
    )
