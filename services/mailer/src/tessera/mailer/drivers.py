"""Ways to hand an email over: SMTP (aiosmtplib), ``.eml`` files, or the console (development).

A driver is handed an :class:`Outgoing` email, its bytes written out already, and either
returns (the server accepted it) or raises one of two errors; the delivery's next state
follows from which:

* :class:`TemporaryFailure` — connection refused or lost, a timeout, an SMTP 4xx, or a refusal
  that is about us rather than the recipient (authentication, our sender address): the event
  is retried with a growing delay, then dead-lettered with this cause;
* :class:`PermanentFailure` — the server refused this recipient or this message for good
  (SMTP 5xx to RCPT or DATA): the delivery fails at once and is not tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Protocol

import aiosmtplib
import structlog
from opentelemetry import trace

from tessera.mailer.settings import SmtpSettings

__all__ = [
    "ConsoleDriver",
    "DeliveryError",
    "FileDriver",
    "MailDriver",
    "Outgoing",
    "PermanentFailure",
    "SmtpDriver",
    "TemporaryFailure",
]

log = structlog.stdlib.get_logger(__name__)
tracer = trace.get_tracer("tessera.mailer.smtp")


class DeliveryError(Exception):
    """The message was not accepted; ``str()`` is the server's answer or the local cause."""


class TemporaryFailure(DeliveryError):
    """Worth trying again later."""


class PermanentFailure(DeliveryError):
    """Trying again cannot help: this recipient or message is refused."""


@dataclass(frozen=True)
class Outgoing:
    """One email as it goes on the wire: the envelope (a bare sender and recipient address)
    and the message (RFC 5322, CRLF line ends)."""

    sender: str
    recipient: str
    message_id: str
    data: bytes

    def parsed(self) -> EmailMessage:
        """The message read back, for drivers that show rather than send it."""
        return BytesParser(policy=policy.default).parsebytes(self.data)


class MailDriver(Protocol):
    async def send(self, mail: Outgoing) -> None: ...

    async def close(self) -> None: ...


class SmtpDriver:
    """One SMTP connection, reused for message after message (sends take turns on it).

    It is opened on the first send, checked with a NOOP when it has been idle for
    ``idle_check_s`` (servers drop idle clients), and opened again after any failure.
    """

    idle_check_s = 20.0

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._last_used = 0.0
        self._turn = asyncio.Lock()
        self.connections_opened = 0

    async def send(self, mail: Outgoing) -> None:
        """Hand ``mail`` to the server: MAIL, RCPT and DATA on the shared connection, which
        is held only for those (the message was written out before)."""
        s = self.settings
        # an address with non-ASCII characters needs the server's SMTPUTF8
        options = [] if (mail.sender + mail.recipient).isascii() else ["SMTPUTF8"]
        with tracer.start_as_current_span(
            "smtp send",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "server.address": s.host,
                "server.port": s.port,
                "network.protocol.name": "smtp",
            },
        ):
            async with self._turn:
                try:
                    client = await self._connection()
                    await client.sendmail(
                        mail.sender, [mail.recipient], mail.data, mail_options=options
                    )
                except aiosmtplib.SMTPException as exc:
                    await self._drop()
                    raise classify(exc) from exc
                except (OSError, TimeoutError) as exc:
                    await self._drop()
                    raise TemporaryFailure(f"{type(exc).__name__}: {exc}"[:500]) from exc
                self._last_used = time.monotonic()

    async def _connection(self) -> aiosmtplib.SMTP:
        client = self._client
        if client is not None and client.is_connected:
            if time.monotonic() - self._last_used < self.idle_check_s:
                return client
            try:
                await client.noop()
                return client
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                await self._drop()
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password else None,
            start_tls=s.security == "starttls",
            use_tls=s.security == "tls",
            timeout=s.timeout_s,
        )
        await client.connect()
        self._client = client
        self.connections_opened += 1
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    async def close(self) -> None:
        """Say QUIT and close (at shutdown)."""
        async with self._turn:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                with contextlib.suppress(Exception):
                    await client.quit()


def classify(exc: aiosmtplib.SMTPException) -> DeliveryError:
    """Which failure an SMTP error is: only a 5xx about the recipient or the message is
    permanent; authentication and sender refusals are our configuration's, not the address's."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)[:500]
        if codes and all(500 <= c < 600 for c in codes):
            return PermanentFailure(text)
        return TemporaryFailure(text)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        text = f"{exc.code} {exc.message}"[:500]
        return PermanentFailure(text) if 500 <= exc.code < 600 else TemporaryFailure(text)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return TemporaryFailure(f"{exc.code} {exc.message}"[:500])
    return TemporaryFailure(f"{type(exc).__name__}: {exc}"[:500])


class ConsoleDriver:
    """Writes the text part to the log; for a laptop without a mail catcher."""

    async def send(self, mail: Outgoing) -> None:
        message = mail.parsed()
        text = message.get_body(preferencelist=("plain",))
        log.info(
            "email_console",
            to=mail.recipient,
            subject=str(message["Subject"]),
            body=text.get_content() if text is not None else "",
        )

    async def close(self) -> None:
        return None


class FileDriver:
    """Writes each email as ``<Message-ID>.eml`` into a folder (a mail client opens it), for
    development and for systems that pick mail up from a spool. Written to a temporary name
    and renamed, so a reader never sees half an email; the same Message-ID overwrites."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, mail: Outgoing) -> None:
        name = re.sub(r"[^A-Za-z0-9@._-]", "", mail.message_id) or "message"
        try:
            await asyncio.to_thread(self._write, f"{name}.eml", mail.data)
        except OSError as exc:
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}"[:500]) from exc

    def _write(self, name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.directory / f".{name}.partial"
        partial.write_bytes(data)
        partial.replace(self.directory / name)

    async def close(self) -> None:
        return None
