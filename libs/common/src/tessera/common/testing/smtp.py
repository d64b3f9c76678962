"""A real SMTP server for tests: aiosmtpd on a free local port, keeping what it accepts.

with SmtpSink() as smtp:
    settings = make_settings(MailerSettings, infra, smtp={"port": smtp.port, ...})
    ...
    received = await smtp.wait_for("ada@example.org")
    text, html = mime_parts(received.message)
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller

__all__ = ["Received", "SmtpSink", "mime_parts"]


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: Any = None
    """the client's (address, port): one value per SMTP connection"""


REFUSALS = {
    451: "451 4.3.0 Mailbox temporarily unavailable, try again later",
    550: "550 5.1.1 Mailbox does not exist",
}


class SmtpSink:
    """Stores every accepted message; can refuse the next few (451 by default, or 550), and
    can hold the next DATA until released, to look at the sender while it waits."""

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.refused = 0
        self._received: list[Received] = []
        self._refuse_next = 0
        self._refusal = REFUSALS[451]
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._gate.set()
        self.holding = threading.Event()
        self._controller: Controller | None = None

    # --- the aiosmtpd handler ------------------------------------------------------------------

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self._gate.is_set():
            self.holding.set()
            await asyncio.to_thread(self._gate.wait, 30.0)
        with self._lock:
            if self._refuse_next > 0:
                self._refuse_next -= 1
                self.refused += 1
                return self._refusal
            message = BytesParser(policy=policy.default).parsebytes(envelope.content)
            self._received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message, session.peer)
            )
        return "250 2.0.0 OK: queued"

    # --- the server ----------------------------------------------------------------------------

    def start(self) -> None:
        for attempt in range(5):
            port = _free_port(self.host)
            controller = Controller(self, hostname=self.host, port=port, ready_timeout=5.0)
            try:
                controller.start()
            except OSError:  # the port was taken between probing and binding
                if attempt == 4:
                    raise
                continue
            self._controller, self.port = controller, port
            return

    def restart(self) -> None:
        """Start again on the same port, after :meth:`stop` (a mail server back up)."""
        controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=5.0)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        self._gate.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- what a test reads ---------------------------------------------------------------------

    def refuse_next(self, count: int, *, code: int = 451) -> None:
        """Answer the next ``count`` DATA commands with ``code``: 451 (a temporary failure)
        or 550 (this mailbox does not exist)."""
        with self._lock:
            self._refuse_next = count
            self._refusal = REFUSALS[code]

    def hold(self) -> None:
        """Keep the next DATA waiting (``holding`` is set once one waits) until
        :meth:`release`."""
        self.holding.clear()
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    @property
    def connections(self) -> int:
        """How many SMTP connections delivered the messages accepted so far."""
        with self._lock:
            return len({r.peer for r in self._received})

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [r.message for r in self._received]

    def to(self, address: str) -> list[Received]:
        with self._lock:
            wanted = address.lower()
            return [r for r in self._received if wanted in (a.lower() for a in r.rcpt_tos)]

    async def wait_for(self, address: str, *, count: int = 1, timeout: float = 10.0) -> Received:
        """The first message for ``address`` once ``count`` have arrived (else fail)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"fewer than {count} email(s) for {address} within {timeout} s")


def mime_parts(message: EmailMessage) -> tuple[str, str]:
    """The text/plain and text/html bodies of a message (both must be there)."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None, "no text/plain part"
    assert html is not None, "no text/html part"
    return text.get_content(), html.get_content()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
