"""Mailer use cases: render, record, send and record the outcome — never twice.

What is sent is declared in ``catalogue.py`` and ``mails/``; :func:`handler` makes the consumer
of one declaration, registered with ``transaction=False``: no transaction is open while the
mailer talks SMTP. :func:`deliver` does, for each email of the event:

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
the window: a lost sign-in or reset link locks a user out, a duplicate does not. At most the
deliveries in flight when the process died can fall in it (``BROKER__PREFETCH`` events, and
one from the quarantine). ``tests/test_delivery_states.py`` makes the window happen;
``tests/test_kill_mid_batch.py`` kills a mailer process mid-batch and counts it.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address
from email.utils import formataddr, formatdate, parseaddr
from typing import Any

import structlog
from sqlalchemy import and_, func, or_, update

from tessera.common.consumers import Handling
from tessera.common.db import driver_in_transaction
from tessera.common.messaging.rabbit import PermanentError
from tessera.mailer import models
from tessera.mailer.catalogue import Email, Mail, Occasion
from tessera.mailer.drivers import DeliveryError, MailDriver, Outgoing, PermanentFailure
from tessera.mailer.events import DeliveryFailed, UserDeleted
from tessera.mailer.models import Delivery
from tessera.mailer.rendering import Rendered, Renderer
from tessera.mailer.settings import Settings

__all__ = [
    "ERASED",
    "DeliveryRetry",
    "Mail",
    "Mailer",
    "deliver",
    "delivery_id",
    "erase_recipient",
    "forget_user",
    "handler",
    "send_once",
]

log = structlog.stdlib.get_logger(__name__)

FINISHED = frozenset({"sent", "failed", "suppressed", "limited"})
CRLF = "\r\n"


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


def _message(mailer: Mailer, *, to: str, rendered: Rendered, message_id: str) -> Outgoing:
    """The email as it goes on the wire: text and HTML alternatives, UTF-8, each part base64
    (76-character lines), CRLF line ends. Written out directly: ``email.mime`` and its
    generator cost half a millisecond an email here, more than the rest of building it.
    Every header value is checked for line breaks first (none may come from user input); the
    subject and the sender's name are RFC 2047 encoded-words."""
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
    sender = parseaddr(raw["From"])
    boundary = f"=_tessera_{uuid.uuid4().hex}"
    head = (
        f"From: {formataddr(sender, charset='utf-8')}\r\n"
        f"To: {to}\r\n"
        f"Subject: {Header(rendered.subject, 'utf-8').encode(linesep=CRLF)}\r\n"
        f"Date: {formatdate(localtime=False, usegmt=True)}\r\n"
        f"Message-ID: {message_id}\r\n"
        f"Content-Language: {rendered.locale}\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
    )
    parts = [head.encode()]
    for subtype, body in (("plain", rendered.text), ("html", rendered.html)):
        parts.append(
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n".encode()
        )
        parts.append(base64.encodebytes(body.encode()).replace(b"\n", b"\r\n"))
    parts.append(f"--{boundary}--\r\n".encode())
    return Outgoing(sender=sender[1], recipient=to, message_id=message_id, data=b"".join(parts))


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


async def _deliver_one(uow: Handling, mailer: Mailer, mail: Mail) -> _Unsent | None:
    envelope = uow.envelope
    did = delivery_id(envelope.id, mail.template, mail.to)
    message_id = f"<{did}@tessera>"
    rendered = mailer.renderer.render(mail.template, mail.locale, mail.context)
    invalid = _valid_address(mail.to)

    # 1. record and lease (one short transaction, on asyncpg: no outbox row to write); a
    # duplicate handled at the same moment elsewhere waits on the row's lock for the first
    # one's lease instead of failing, and a new delivery's limit is counted under the
    # recipient's lock (see models.record_delivery)
    limit = mailer.settings.recipient_limit
    async with uow.driver() as driver, driver.transaction():
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
        if status == "queued":
            status, attempts = await models.decide_delivery(
                driver, did, recipient=mail.to, limit=limit.limit, window_s=limit.window_s,
                lease_s=mailer.settings.delivery_lease_s,
            )  # fmt: skip
            if status != "sending":
                log.info("delivery_not_sent", delivery_id=str(did), status=status)
                return None
        else:
            if status == "sending":
                log.warning(
                    "delivery_outcome_unknown",
                    delivery_id=str(did),
                    message_id=message_id,
                    detail="a consumer died while sending it; sending again with its Message-ID",
                )
            attempts = await models.lease_delivery(driver, did, mailer.settings.delivery_lease_s)

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

    # 3. settle: one statement, committing on its own; a failure also suppresses the address
    # (when refused for good) and publishes its event, in one transaction
    permanent = isinstance(error, PermanentFailure)
    final = error is None or permanent or attempts >= mailer.max_attempts
    status = "sent" if error is None else ("failed" if final else "retrying")
    if status != "failed":
        async with uow.driver() as driver:
            await models.settle_delivery(
                driver, did, status, None if error is None else str(error)[:2000]
            )
        if error is None:
            return None
        log.warning(
            "delivery_retrying",
            delivery_id=str(did),
            attempts=attempts,
            permanent=permanent,
            error=str(error)[:500],
        )
        return _Unsent(final=False, text=f"email {did}: {error}")
    assert error is not None
    async with uow:
        driver = await driver_in_transaction(uow.session)
        await models.settle_delivery(driver, did, status, str(error)[:2000])
        if permanent and invalid is None:
            # the address hard-failed: later emails to it are not sent (until lifted)
            await models.suppress(driver, mail.to, str(error)[:2000], did)
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
    log.warning(
        "delivery_failed",
        delivery_id=str(did),
        attempts=attempts,
        permanent=permanent,
        error=str(error)[:500],
    )
    why = "refused" if permanent else f"still failing after {attempts} attempts"
    return _Unsent(final=True, text=f"email {did} {why}: {error}")


def handler(email: Email[Any]) -> Callable[[Handling, Any], Awaitable[None]]:
    """The consumer of ``email``'s events: compose the event's emails, :func:`deliver` them,
    then run the declaration's ``afterwards`` in a transaction of its own (also when a
    delivery is given back for a retry or failed: a retry sends from the event, never from
    the row). Registered with ``transaction=False``."""

    async def send(uow: Handling, event: Any) -> None:
        mailer = uow.get(Mailer)
        occasion = Occasion(mailer.settings.public_url, uow.envelope.occurred_at)
        try:
            await deliver(uow, email.compose(event, occasion))
        except Exception:
            await _afterwards(uow, email, event)
            raise
        await _afterwards(uow, email, event)

    send.__name__ = f"send_{email.templates[0]}"
    return send


async def _afterwards(uow: Handling, email: Email[Any], event: Any) -> None:
    if email.afterwards is not None:
        async with uow:
            await email.afterwards(uow, event)
            await uow.commit()


ERASED = "erased@deleted.invalid"


async def erase_recipient(
    uow: Handling,
    *,
    user_id: uuid.UUID,
    address: str | None = None,
    until: datetime | None = None,
) -> None:
    """Replace the recipient of every delivery of ``user_id`` with :data:`ERASED`; and, given
    the account's former ``address``, of every delivery to it recorded ``until`` the account
    was deleted (emails that went there without a user id: invitations, say), not those of
    an account registered with the freed address afterwards. In the caller's transaction."""
    which = Delivery.user_id == user_id
    if address is not None:
        to_address = func.lower(Delivery.recipient) == address.strip().lower()
        if until is not None:
            to_address = and_(to_address, Delivery.created_at <= until)
        which = or_(which, to_address)
    await uow.session.execute(update(Delivery).where(which).values(recipient=ERASED))


async def forget_user(uow: Handling, event: UserDeleted) -> None:
    """``auth.user.deleted``: erase the account's address from every delivery of it (the
    goodbye email of ``auth.account.deleted`` erases it after itself too, so whichever of the
    two events comes first, no delivery keeps the address)."""
    await erase_recipient(uow, user_id=event.user_id)
