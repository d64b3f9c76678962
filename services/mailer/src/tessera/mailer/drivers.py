"""Ways to hand an email over: SMTP (aiosmtplib) or the console (development)."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import structlog
from opentelemetry import trace

from tessera.mailer.settings import SmtpSettings

__all__ = ["ConsoleDriver", "MailDriver", "SmtpDriver"]

log = structlog.stdlib.get_logger(__name__)
tracer = trace.get_tracer("tessera.mailer.smtp")


class MailDriver(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class SmtpDriver:
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        with tracer.start_as_current_span(
            "smtp send",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "server.address": s.host,
                "server.port": s.port,
                "network.protocol.name": "smtp",
            },
        ):
            await aiosmtplib.send(
                message,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password.get_secret_value() if s.password else None,
                start_tls=s.security == "starttls",
                use_tls=s.security == "tls",
                timeout=s.timeout_s,
            )


class ConsoleDriver:
    """Writes the text part to the log; for a laptop without a mail catcher."""

    async def send(self, message: EmailMessage) -> None:
        body = message.get_body(preferencelist=("plain",))
        log.info(
            "email_console",
            to=message["To"],
            subject=message["Subject"],
            body=body.get_content() if body is not None else "",
        )
