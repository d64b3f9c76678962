"""The catalogue of emails: every declaration is consumed, previewable in every language, and
two declarations cannot claim the same event or template. No servers needed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from tessera.common.messaging import Event
from tessera.mailer import catalogue
from tessera.mailer.catalogue import Email, Mail, Occasion
from tessera.mailer.handlers import consumer
from tessera.mailer.rendering import Renderer

from .test_locales import LOCALES

OCCASION = Occasion("https://app.tessera.test", datetime(2026, 12, 3, 18, 5, tzinfo=UTC))


def test_every_declared_event_has_a_consumer() -> None:
    declared = {e.routing_key() for email in catalogue.emails() for e in email.on}

    assert declared <= set(consumer.routing_keys)
    assert "auth.user.registered.v1" in declared


@pytest.mark.parametrize("template", catalogue.templates())
def test_each_template_is_composed_by_its_samples_and_renders_in_every_language(
    template: str,
) -> None:
    mail = catalogue.find_template(template, OCCASION)
    assert mail is not None
    renderer = Renderer()
    for locale in LOCALES:
        rendered = renderer.render(template, locale, mail.context)
        assert rendered.locale == locale
        assert "{" not in rendered.subject + rendered.text, "a placeholder was left"
        assert f'lang="{locale}"' in rendered.html


def test_samples_compose_only_the_templates_their_email_declares() -> None:
    for email in catalogue.emails():
        composed = {
            m.template
            for s in email.samples(OCCASION.occurred_at)
            for m in email.compose(s, OCCASION)
        }
        assert composed == set(email.templates), email.templates


def test_an_unknown_template_has_no_sample() -> None:
    assert catalogue.find_template("no_such_email", OCCASION) is None


class _Ping(Event):
    type: ClassVar[str] = "test.ping.happened"
    version: ClassVar[int] = 1

    email: str


def _ping(template: str) -> Email[Any]:
    def compose(event: _Ping, at: Occasion) -> list[Mail]:
        return [Mail(template, event.email, "en", {})]

    return Email(on=(_Ping,), templates=(template,), compose=compose, samples=lambda now: [])


def test_an_event_declared_by_two_emails_is_refused() -> None:
    with pytest.raises(ValueError, match=r"test\.ping\.happened\.v1"):
        catalogue.checked((_ping("one"), _ping("two")))


def test_a_template_declared_twice_is_refused() -> None:
    other = _ping("one")
    twin = Email(on=(_Other,), templates=("one",), compose=other.compose, samples=other.samples)
    with pytest.raises(ValueError, match="one"):
        catalogue.checked((other, twin))


class _Other(_Ping):
    type: ClassVar[str] = "test.other.happened"
