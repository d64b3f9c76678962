"""Every email in each of the four languages: translated subject, both parts, the links built
from ``MAILER__PUBLIC_URL``, dates written for the locale — over real SMTP."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from babel import Locale

from tessera.common.testing.smtp import mime_parts
from tessera.mailer import catalogue
from tessera.mailer.rendering import TEMPLATES, format_when

from .conftest import PUBLIC_URL
from .test_account_mails import _envelope

pytestmark = pytest.mark.timeout(60)

LOCALES = ("en", "fr", "es", "fi")
# event type -> (template, path of the link it carries, the field holding its token, the
# field holding an instant the email states)
EMAILS = {
    "auth.email_verification.requested": (
        "verify_email", "verify-email", "verification_token", "verification_expires_at",
    ),
    "auth.password.recovery_requested": ("password_reset", "reset-password", "reset_token",
                                         "expires_at"),
    "auth.login_link.requested": ("login_link", "login-link", "login_token", "expires_at"),
    "auth.password.changed": ("password_changed", "forgot-password", None, None),
    "auth.account.locked": ("account_locked", "forgot-password", None, "locked_until"),
    "auth.account.deleted": ("account_deleted", None, None, None),
}  # fmt: skip


def _subject(template: str, locale: str) -> str:
    return " ".join((TEMPLATES / locale / f"{template}.subject.j2").read_text().split())


def test_every_template_exists_in_every_language() -> None:
    english = sorted(p.name for p in (TEMPLATES / "en").glob("*.j2"))
    declared = catalogue.templates()
    assert english == sorted(
        ["_words.j2", *(f"{t}.{part}.j2" for t in declared for part in ("subject", "txt", "html"))]
    )
    for locale in LOCALES:
        assert sorted(p.name for p in (TEMPLATES / locale).glob("*.j2")) == english, locale


@pytest.mark.parametrize("locale", LOCALES)
async def test_each_email_arrives_in_the_language_the_event_asks_for(
    locale: str, smtp: Any, publish: Any
) -> None:
    events = {t: _envelope(t, locale=locale, full_name="Zoë <b>Ødegaard</b>") for t in EMAILS}
    for event in events.values():
        await publish(event)

    for event_type, event in events.items():
        template, path, token_field, when_field = EMAILS[event_type]
        data = event["data"]
        message = (await smtp.wait_for(data["email"])).message
        text, html = mime_parts(message)

        assert message["Content-Language"] == locale
        assert message["Subject"] == _subject(template, locale)
        if locale != "en":
            assert message["Subject"] != _subject(template, "en"), "not translated"
        if path is not None:
            link = f"{PUBLIC_URL}/{path}"
            if token_field is not None:
                link += f"#token={data[token_field]}"
            assert link in text
            assert f'href="{link}"' in html
        assert "Zoë <b>Ødegaard</b>" in text  # the text part is plain text
        assert "Zoë &lt;b&gt;Ødegaard&lt;/b&gt;" in html  # the name cannot inject markup
        assert "<b>Ødegaard" not in html
        assert f'lang="{locale}"' in html
        if when_field is not None:
            written = format_when(datetime.fromisoformat(data[when_field]), Locale(locale))
            assert written in text, (event_type, written)
