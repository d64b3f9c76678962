"""Mailer use cases: render, record, send and record the outcome — never twice.

Each mail-sending handler is registered with ``transaction=False``: no transaction is open
while the mailer talks SMTP. :func:`deliver` does, for each email of the event:

1. *record and lease* — one short transaction inserts the delivery (``queued``; its id and
   Message-ID are derived from the event id, the template and the recipient, so a redelivered
   event, or a second replica handling a duplicate of it, finds the same row) and, under the
   row's lock, leases it (``sending``, ``lease_until``) unless it is settled already (nothing
   to do), leased by someone else right now (the event is retried later), or new and to a
   suppressed address or a recipient past the limit (``suppressed``, ``limited``: not sent);
2. *send* — outside any transaction;
3. *record the outcome* — ``sent``; or ``retrying`` and the event is retried; or ``failed``,
   at once for a permanent refusal (the address is then suppressed), or after the last retry.
   A failed delivery publishes ``mailer.delivery.failed`` and its event is dead-lettered with
   the cause, where ``POST /mail/deliveries/{id}/retry`` finds it.

**The one window.** If the process dies after the server accepted an email and before step 3
committed (or the database refused the outcome), the row stays ``sending``. The event was not
acknowledged, so RabbitMQ delivers it again; once the lease has run out
(``MAILER__DELIVERY_LEASE_S``) the email is sent a second time, with the same Message-ID
(mail clients and servers that deduplicate by Message-ID show it once), and
``delivery_outcome_unknown`` is logged with the delivery id. Resending is the chosen side of
the window: a lost sign-in or reset link locks a user out, a duplicate does not.
``tests/test_delivery_states.py`` makes the window happen and counts it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import Header
from email.headerregistry import Address
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, parseaddr
from typing import Any, Protocol
from urllib.parse import quote

import structlog
from sqlalchemy import update

from tessera.common.consumers import Handling
from tessera.common.db import driver_in_transaction
from tessera.common.messaging.rabbit import PermanentError
from tessera.mailer import models
from tessera.mailer.drivers import DeliveryError, MailDriver, PermanentFailure
from tessera.mailer.events import (
    AccountLocked,
    DeliveryFailed,
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
    "MAIL_TEMPLATES",
    "DeliveryRetry",
    "Mail",
    "Mailer",
    "deliver",
    "sample_context",
    "send_login_link",
    "send_once",
    "send_password_changed",
    "send_password_reset",
    "send_verification",
]

log = structlog.stdlib.get_logger(__name__)

FINISHED = frozenset({"sent", "failed", "suppressed", "limited"})


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

    @property
    def max_attempts(self) -> int:
        """Deliveries of one event: the first, then one per retry delay (the transport's)."""
        return len(self.settings.broker.retry_delays_ms) + 1


class DeliveryRetry(Exception):
    """Some email of the event must be tried again: the transport retries the event."""


def _message(mailer: Mailer, *, to: str, rendered: Rendered, message_id: str) -> Message:
    """The email: text and HTML alternatives, UTF-8. Built with ``email.mime`` (the
    ``compat32`` policy), which takes headers as given where ``EmailMessage`` parses each one
    (a millisecond an email, most of what building it cost); so every header value here is
    checked for line breaks first: none may come from user input."""
    raw = {
        "From": mailer.settings.from_address,
        "To": to,
        "Subject": rendered.subject,
        "Message-ID": message_id,
        "Content-Language": rendered.locale,
    }
    for key, value in raw.items():
        if "\r" in value or "\n" in value:
            raise PermanentFailure(f"{key} would carry a line break")
    msg = MIMEMultipart("alternative")
    msg["From"] = formataddr(parseaddr(raw["From"]), charset="utf-8")
    msg["To"] = to
    msg["Subject"] = Header(rendered.subject, "utf-8")  # type: ignore[assignment]  # typeshed: str only
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id
    msg["Content-Language"] = rendered.locale
    msg.attach(MIMEText(rendered.text, "plain", "utf-8"))
    msg.attach(MIMEText(rendered.html, "html", "utf-8"))
    return msg


@dataclass(frozen=True)
class Mail:
    """One templated email: what to render, for whom, in which language."""

    template: str
    to: str
    locale: str
    context: dict[str, Any]
    user_id: uuid.UUID | None = None


def delivery_id(event_id: uuid.UUID, template: str, recipient: str) -> uuid.UUID:
    """The same for every delivery of one event's email to one address."""
    return uuid.uuid5(event_id, f"{template}\n{recipient.strip().lower()}")


def _valid_address(address: str) -> str | None:
    """Why ``address`` cannot be mailed, or None (no header ever takes a newline from it)."""
    if any(c in address for c in "\r\n\0") or len(address) > 320:
        return "invalid recipient address"
    try:
        parsed = Address(addr_spec=address.strip())
    except (ValueError, IndexError):
        return "invalid recipient address"
    if not parsed.username or "." not in parsed.domain:
        return "invalid recipient address"
    return None


async def send_once(uow: Handling, mail: Mail) -> None:
    """Deliver ``mail`` for the event being handled (see :func:`deliver`)."""
    await deliver(uow, [mail])


async def deliver(uow: Handling, mails: list[Mail]) -> None:
    """Record, send and settle each of ``mails``. Then, if one failed, the event goes to the
    DLQ with the cause (``POST /mail/deliveries/{id}/retry`` replays it from there); if one
    must be tried again, the transport retries the event (the others are settled)."""
    mailer = uow.get(Mailer)
    failed: list[str] = []
    retry: list[str] = []
    for mail in mails:
        outcome = await _deliver_one(uow, mailer, mail)
        if outcome is not None:
            (failed if outcome.final else retry).append(outcome.text)
    if failed:
        raise PermanentError("; ".join(failed)[:1000])
    if retry:
        raise DeliveryRetry("; ".join(retry)[:1000])


@dataclass(frozen=True)
class _Unsent:
    final: bool
    text: str


async def _blocked(driver: Any, mailer: Mailer, did: uuid.UUID, to: str) -> tuple[str, str] | None:
    """``(status, why)`` when this new delivery must not be sent: a suppressed address, or
    a recipient past the limit."""
    limit = mailer.settings.recipient_limit
    since, recent = await models.blocking(
        driver, delivery_id=did, recipient=to, window_s=limit.window_s
    )
    if since is not None:
        return "suppressed", f"address suppressed since {since:%Y-%m-%d}"
    if recent >= limit.limit:
        return "limited", f"{recent} emails to this address in the last {limit.window_s} s"
    return None


async def _deliver_one(uow: Handling, mailer: Mailer, mail: Mail) -> _Unsent | None:
    envelope = uow.envelope
    did = delivery_id(envelope.id, mail.template, mail.to)
    message_id = f"<{did}@tessera>"
    rendered = mailer.renderer.render(mail.template, mail.locale, mail.context)
    invalid = _valid_address(mail.to)

    # 1. record and lease (one short transaction); a duplicate handled at the same moment
    # elsewhere waits on the row's lock for the first one's lease instead of failing
    async with uow:
        driver = await driver_in_transaction(uow.session)
        row = await models.record_delivery(
            driver,
            {
                "id": did, "event_id": envelope.id, "event_type": envelope.type,
                "user_id": mail.user_id, "template": mail.template, "locale": rendered.locale,
                "recipient": mail.to, "subject": rendered.subject, "message_id": message_id,
            },
        )  # fmt: skip
        status = row["status"]
        if status in FINISHED:
            log.info("delivery_already_settled", delivery_id=str(did), status=status)
            return None
        if status == "sending" and row["leased"]:
            return _Unsent(final=False, text=f"delivery {did} is being sent by another consumer")
        if status == "queued" and (blocked := await _blocked(driver, mailer, did, mail.to)):
            await models.mark_delivery(driver, did, *blocked)
            await uow.commit()
            log.info("delivery_not_sent", delivery_id=str(did), status=blocked[0])
            return None
        if status == "sending":
            log.warning(
                "delivery_outcome_unknown",
                delivery_id=str(did),
                message_id=message_id,
                detail="a consumer died while sending it; sending again with its Message-ID",
            )
        attempts = await models.lease_delivery(driver, did, mailer.settings.delivery_lease_s)
        await uow.commit()

    # 2. send, no transaction open
    error: DeliveryError | None
    if invalid is not None:
        error = PermanentFailure(invalid)
    else:
        try:
            message = _message(mailer, to=mail.to, rendered=rendered, message_id=message_id)
            await mailer.driver.send(message)
            error = None
        except DeliveryError as exc:
            error = exc

    # 3. settle
    permanent = isinstance(error, PermanentFailure)
    final = error is None or permanent or attempts >= mailer.max_attempts
    status = "sent" if error is None else ("failed" if final else "retrying")
    async with uow:
        driver = await driver_in_transaction(uow.session)
        await models.settle_delivery(
            driver, did, status, None if error is None else str(error)[:2000]
        )
        if permanent and invalid is None:
            # the address hard-failed: later emails to it are not sent (until lifted)
            await models.suppress(driver, mail.to, str(error)[:2000], did)
        if status == "failed" and error is not None:
            uow.publish(
                DeliveryFailed(
                    delivery_id=did,
                    event_id=envelope.id,
                    event_type=envelope.type,
                    template=mail.template,
                    recipient=mail.to,
                    user_id=mail.user_id,
                    permanent=permanent,
                    reason=str(error)[:500],
                ),
                subject=str(did),
            )
        await uow.commit()
    if error is None:
        return None
    log.warning(
        "delivery_failed" if final else "delivery_retrying",
        delivery_id=str(did),
        attempts=attempts,
        permanent=permanent,
        error=str(error)[:500],
    )
    if status == "failed":
        why = "refused" if permanent else f"still failing after {attempts} attempts"
        return _Unsent(final=True, text=f"email {did} {why}: {error}")
    return _Unsent(final=False, text=f"email {did}: {error}")


def _link(mailer: Mailer, path: str, token: str) -> str:
    """A link into the web app; the token rides in the fragment, which no server logs."""
    return f"{mailer.settings.public_url.rstrip('/')}/{path}#token={quote(token)}"


def _when(iso: str) -> datetime | str:
    """An event's ISO 8601 instant as a datetime, which the renderer writes for the email's
    locale (an empty or unreadable value stays a string, written as it is)."""
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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


def sample_context(mailer: Mailer, template: str) -> dict[str, Any]:
    """What a template is rendered with in a preview: the fields its event would give."""
    now = datetime.now(UTC)
    base = mailer.settings.public_url.rstrip("/")
    greeting = {"full_name": "Ada Lovelace", "email": "ada@example.org"}
    samples: dict[str, dict[str, Any]] = {
        "verify_email": {"link": _link(mailer, "verify-email", "sample-token"),
                         "expires": now + timedelta(days=1)},
        "password_reset": {"link": _link(mailer, "reset-password", "sample-token"),
                           "expires": now + timedelta(minutes=15)},
        "login_link": {"link": _link(mailer, "login-link", "sample-token"),
                       "expires": now + timedelta(minutes=15)},
        "password_changed": {"changed_at": now, "recover_url": f"{base}/forgot-password"},
        "account_locked": {"locked_until": now + timedelta(minutes=5),
                           "recover_url": f"{base}/forgot-password"},
    }  # fmt: skip
    return greeting | samples[template]


MAIL_TEMPLATES = (
    "verify_email",
    "password_reset",
    "login_link",
    "password_changed",
    "account_locked",
)
"""Every email the mailer sends (the names of its templates)."""
