"""The helpers every service's tests use do what they say (they are code too)."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from typing import TYPE_CHECKING, ClassVar

import pytest

from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.security import TokenVerifier, Unauthorized
from tessera.common.settings import JwtSettings
from tessera.common.testing.broker import publish_envelope, queue_depth, take
from tessera.common.testing.smtp import SmtpSink, mime_parts
from tessera.common.testing.tokens import TokenMinter

if TYPE_CHECKING:
    from conftest import Probe


class Pinged(Event):
    type: ClassVar[str] = "probe.ping.sent"
    version: ClassVar[int] = 1
    n: int


async def test_minted_tokens_verify_with_the_minters_keys_and_no_others() -> None:
    minter, other = TokenMinter(), TokenMinter()
    user = uuid.uuid4()
    principal = await TokenVerifier(JwtSettings(), minter.key_source).verify(
        minter.token(user, roles=["superadmin"], orgs={"o-1": "admin"})
    )
    assert (principal.user_id, principal.is_superadmin, principal.orgs) == (
        user,
        True,
        {"o-1": "admin"},
    )
    with pytest.raises(Unauthorized):
        await TokenVerifier(JwtSettings(), other.key_source).verify(minter.token(user))


async def test_published_envelope_reaches_a_bound_queue_and_is_taken(probe: Probe) -> None:
    await probe.tap("#")  # declares the exchange as the kernel does
    exchange = await probe.channel.get_exchange(probe.topology.exchange)
    queue = await probe.channel.declare_queue(f"{probe.topology.queue_prefix}pings")
    await queue.bind(exchange, routing_key="probe.ping.sent.v1")
    try:
        envelope = Envelope.wrap(Pinged(n=7), producer="probe", subject="s")
        await publish_envelope(probe.amqp_url, probe.topology.exchange, envelope)
        assert await queue_depth(probe.amqp_url, queue.name) == 1
        [message] = await take(probe.amqp_url, queue.name, expect=1)
    finally:
        await queue.delete(if_unused=False, if_empty=False)
    assert Envelope.model_validate_json(message.body).data == {"n": 7}


async def test_smtp_sink_keeps_what_it_accepts_and_refuses_on_request() -> None:
    with SmtpSink() as smtp:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = "a@x.test", "b@x.test", "hi"
        message.set_content("plain")
        message.add_alternative("<p>html</p>", subtype="html")
        smtp.refuse_next(1)
        with smtplib.SMTP("127.0.0.1", smtp.port) as client:
            with pytest.raises(smtplib.SMTPDataError):
                client.send_message(message)
            client.send_message(message)
        received = await smtp.wait_for("B@x.test")
    assert smtp.refused == 1
    text, html = mime_parts(received.message)
    assert (text.strip(), html.strip()) == ("plain", "<p>html</p>")
