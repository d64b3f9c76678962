"""The file driver: each email an ``.eml`` file a mail client opens, named by its Message-ID."""

from __future__ import annotations

import asyncio
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

from tessera.common.testing import Infra, make_settings
from tessera.common.testing.broker import publish_envelope
from tessera.common.testing.smtp import mime_parts
from tessera.mailer.app import create_app
from tessera.mailer.settings import Settings as MailerSettings

from .conftest import PUBLIC_URL, user_registered


async def test_the_file_driver_writes_each_email_once_as_an_eml_file(
    infra: Infra, mailer_database: None, tmp_path: Path
) -> None:
    settings = make_settings(
        MailerSettings, infra, driver="file", file_directory=tmp_path, public_url=PUBLIC_URL
    )
    event = user_registered(locale="fi")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await publish_envelope(infra.rabbitmq, infra.exchange, event)
        await publish_envelope(infra.rabbitmq, infra.exchange, event)  # redelivered
        deadline = time.monotonic() + 10
        while not list(tmp_path.glob("*.eml")) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)

    [written] = list(tmp_path.glob("*.eml"))
    assert list(tmp_path.glob(".*")) == [], "a partial file was left behind"
    message = BytesParser(policy=policy.default).parsebytes(written.read_bytes())
    assert written.name == message["Message-ID"].strip("<>") + ".eml"
    assert message["To"] == event["data"]["email"]
    assert message["Content-Language"] == "fi"
    text, html = mime_parts(message)
    link = f"{PUBLIC_URL}/verify-email#token={event['data']['verification_token']}"
    assert link in text
    assert link in html
