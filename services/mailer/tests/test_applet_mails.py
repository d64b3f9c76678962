"""The applets emails over real SMTP: invitations (with an account, or to register first), an
accepted invitation, an ownership transfer offered and done — each in the recipient's
language, both parts, links from ``MAILER__PUBLIC_URL`` with the token in the fragment.

The envelopes are built as the applets service's outbox writes them (every field of its
schema in ``contracts/applets/``, not only those the mailer reads)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from babel import Locale

from tessera.common.testing.smtp import mime_parts
from tessera.mailer.rendering import format_when

from .conftest import PUBLIC_URL

pytestmark = pytest.mark.timeout(60)

LOCALES = ("en", "fr", "es", "fi")
REVIEWER = {"en": "a reviewer", "fr": "réviseur", "es": "revisor", "fi": "arvioija"}
INVITED = {
    "en": "You are invited to “{}” on Tessera",
    "fr": "Invitation à rejoindre « {} » sur Tessera",
    "es": "Invitación para unirse a «{}» en Tessera",
    "fi": "Kutsu Tessera-sovelmaan ”{}”",
}


def _address(who: str) -> str:
    return f"{who}-{uuid.uuid4().hex[:12]}@example.com"


def _token() -> str:
    return f"tok_{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"


def _envelope(event_type: str, **data: Any) -> dict[str, Any]:
    """An applets envelope of ``event_type`` v1 with all of its producer's fields; ``data``
    overrides (``None`` is sent as null)."""
    applet_id = str(uuid.uuid4())
    expires = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    body: dict[str, Any] = {
        "applets.invitation.created": {
            "invitation_id": str(uuid.uuid4()), "applet_id": applet_id,
            "applet_name": "Sleep diary", "email": _address("invitee"), "role": "reviewer",
            "locale": "en", "invitee_has_account": True, "invitee_name": "Ada Lovelace",
            "inviter_id": str(uuid.uuid4()), "inviter_name": "Grace Hopper",
            "accept_token": _token(), "expires_at": expires,
        },
        "applets.invitation.accepted": {
            "invitation_id": str(uuid.uuid4()), "applet_id": applet_id,
            "applet_name": "Sleep diary", "role": "reviewer", "user_id": str(uuid.uuid4()),
            "invitee_name": "Ada Lovelace", "invitee_email": _address("invitee"),
            "inviter_id": str(uuid.uuid4()), "inviter_email": _address("inviter"),
            "inviter_name": "Grace Hopper", "inviter_locale": "en",
        },
        "applets.ownership.transfer_requested": {
            "transfer_id": str(uuid.uuid4()), "applet_id": applet_id,
            "applet_name": "Sleep diary", "email": _address("taker"), "locale": "en",
            "recipient_has_account": True, "recipient_name": "Ada Lovelace",
            "owner_id": str(uuid.uuid4()), "owner_name": "Grace Hopper",
            "accept_token": _token(), "expires_at": expires,
        },
        "applets.ownership.transferred": {
            "applet_id": applet_id, "applet_name": "Sleep diary",
            "reason": "transfer_accepted", "previous_owner_id": str(uuid.uuid4()),
            "previous_owner_email": _address("giver"), "previous_owner_name": "Grace Hopper",
            "previous_owner_locale": "en", "new_owner_id": str(uuid.uuid4()),
            "new_owner_email": _address("taker"), "new_owner_name": "Ada Lovelace",
            "new_owner_locale": "en",
        },
    }["applets.invitation.created" if event_type.endswith("reissued") else event_type]  # fmt: skip
    body.update(data)
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "applets",
        "subject": applet_id,
        "data": body,
    }


def _written(iso: str, locale: str) -> str:
    return format_when(datetime.fromisoformat(iso), Locale.parse(locale))


@pytest.mark.parametrize("locale", LOCALES)
async def test_an_invitation_to_someone_with_an_account_links_to_accept_it(
    locale: str, smtp: Any, publish: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope("applets.invitation.created", locale=locale)
    data = event["data"]

    await publish(event)
    message = (await smtp.wait_for(data["email"])).message
    text, html = mime_parts(message)

    assert message["Content-Language"] == locale
    assert message["Subject"] == INVITED[locale].format("Sleep diary")
    link = f"{PUBLIC_URL}/invitations/accept#token={data['accept_token']}"
    assert link in text
    assert f'href="{link}"' in html
    assert "register" not in link
    for part in (text, html):
        assert "Grace Hopper" in part
        assert REVIEWER[locale] in part  # the role, in the invitee's language
        assert _written(data["expires_at"], locale) in part
        assert "Ada Lovelace" in part
    [row] = await wait_for_deliveries(event["id"])
    assert (row.template, row.status, row.locale) == ("invitation", "sent", locale)
    assert "Grace" not in row.subject  # the log keeps subjects: they name no person


@pytest.mark.parametrize("locale", LOCALES)
async def test_an_invitation_to_someone_without_an_account_asks_them_to_register_first(
    locale: str, smtp: Any, publish: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope(
        "applets.invitation.created",
        locale=locale,
        invitee_has_account=False,
        invitee_name=None,
        role="manager",
    )
    data = event["data"]

    await publish(event)
    message = (await smtp.wait_for(data["email"])).message
    text, html = mime_parts(message)

    link = f"{PUBLIC_URL}/register?next=/invitations/accept#token={data['accept_token']}"
    assert link in text
    assert f'href="{link}"' in html
    assert data["email"] in text  # the address the account must be created with
    assert _written(data["expires_at"], locale) in text
    english = "a manager"
    assert (english in text) == (locale == "en")
    [row] = await wait_for_deliveries(event["id"])
    assert row.template == "invitation_register"


async def test_a_reissued_invitation_mails_the_new_link(
    smtp: Any, publish: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope("applets.invitation.reissued", invitee_has_account=False)

    await publish(event)
    text, _ = mime_parts((await smtp.wait_for(event["data"]["email"])).message)

    assert f"accept#token={event['data']['accept_token']}" in text
    [row] = await wait_for_deliveries(event["id"])
    assert (row.template, row.event_type) == ("invitation_register", "applets.invitation.reissued")


async def test_names_and_titles_cannot_inject_markup_or_headers(
    smtp: Any, publish: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope(
        "applets.invitation.created",
        applet_name='<script>alert("x")</script>\r\nBcc: victim@example.com',
        inviter_name="<b>Mallory</b>",
        role="<i>boss</i>",
    )

    await publish(event)
    received = await smtp.wait_for(event["data"]["email"])
    text, html = mime_parts(received.message)

    assert "<script>" not in html
    assert "<b>Mallory" not in html
    assert "<i>boss" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;Mallory&lt;/b&gt;" in html
    assert "&lt;i&gt;boss&lt;/i&gt;" in html  # an unknown role is written as it is, escaped
    assert "<b>Mallory</b>" in text
    assert received.rcpt_tos == [event["data"]["email"]]
    assert received.message["Bcc"] is None
    assert "\n" not in received.message["Subject"]


@pytest.mark.parametrize("locale", ["fi", "es"])
async def test_an_accepted_invitation_tells_the_inviter_in_their_language(
    locale: str, smtp: Any, publish: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope("applets.invitation.accepted", inviter_locale=locale)
    data = event["data"]

    await publish(event)
    message = (await smtp.wait_for(data["inviter_email"])).message
    text, html = mime_parts(message)

    assert message["Content-Language"] == locale
    assert "Sleep diary" in message["Subject"]
    for part in (text, html):
        assert "Ada Lovelace" in part
        assert REVIEWER[locale] in part
    assert smtp.to(data["invitee_email"]) == []
    [row] = await wait_for_deliveries(event["id"])
    assert (row.template, str(row.user_id)) == ("invitation_accepted", data["inviter_id"])


async def test_an_accepted_invitation_whose_inviter_is_gone_sends_nothing_and_fails_nothing(
    smtp: Any, publish: Any, query: Any, deliveries: Any
) -> None:
    event = _envelope("applets.invitation.accepted", inviter_email=None, inviter_name=None)
    marker = _envelope("applets.invitation.accepted")

    await publish(event)
    await publish(marker)
    await smtp.wait_for(marker["data"]["inviter_email"])
    handled = await query(
        "SELECT consumer FROM inbox WHERE event_id = :id", id=uuid.UUID(event["id"])
    )

    # the claim is written only once the handler has returned: no error, no retry, no DLQ
    assert [r.consumer for r in handled] == ["mailer"]
    assert await deliveries(event["id"]) == []
    assert len(smtp.messages) == 1


@pytest.mark.parametrize(("locale", "has_account"), [("es", True), ("fr", False)])
async def test_an_ownership_transfer_offer_links_to_accepting_it(
    locale: str, has_account: bool, smtp: Any, publish: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope(
        "applets.ownership.transfer_requested", locale=locale, recipient_has_account=has_account
    )
    data = event["data"]

    await publish(event)
    message = (await smtp.wait_for(data["email"])).message
    text, html = mime_parts(message)

    page = "transfers/accept" if has_account else "register?next=/transfers/accept"
    link = f"{PUBLIC_URL}/{page}#token={data['accept_token']}"
    assert link in text
    assert f'href="{link}"' in html
    assert message["Content-Language"] == locale
    assert "Grace Hopper" in text
    assert "Sleep diary" in message["Subject"]
    assert _written(data["expires_at"], locale) in text
    [row] = await wait_for_deliveries(event["id"])
    assert row.template == "ownership_transfer_requested"


async def test_a_transferred_applet_tells_both_owners_each_in_their_language(
    smtp: Any, publish: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope(
        "applets.ownership.transferred", previous_owner_locale="fr", new_owner_locale="fi"
    )
    data = event["data"]

    await publish(event)
    given = (await smtp.wait_for(data["previous_owner_email"])).message
    taken = (await smtp.wait_for(data["new_owner_email"])).message
    given_text, _ = mime_parts(given)
    taken_text, taken_html = mime_parts(taken)

    assert (given["Content-Language"], taken["Content-Language"]) == ("fr", "fi")
    assert "Ada Lovelace a accepté votre transfert" in " ".join(given_text.split())
    assert "Hyväksyit siirron käyttäjältä Grace Hopper" in " ".join(taken_text.split())
    assert f"{PUBLIC_URL}/applets" in taken_text
    assert f'href="{PUBLIC_URL}/applets"' in taken_html
    rows = await wait_for_deliveries(event["id"], 2)
    assert {(r.template, str(r.user_id)) for r in rows} == {
        ("ownership_transferred_from_you", data["previous_owner_id"]),
        ("ownership_transferred_to_you", data["new_owner_id"]),
    }
    assert {r.status for r in rows} == {"sent"}


async def test_an_applet_whose_owner_was_deleted_tells_its_new_owner_why(
    smtp: Any, publish: Any, wait_for_deliveries: Any, deliveries: Any
) -> None:
    event = _envelope(
        "applets.ownership.transferred",
        reason="owner_deleted",
        previous_owner_email=None,
        previous_owner_name=None,
    )

    await publish(event)
    text, html = mime_parts((await smtp.wait_for(event["data"]["new_owner_email"])).message)

    for part in (text, html):
        flat = " ".join(part.split())
        assert "deleted their account" in flat
        assert "as an administrator of its organisation you became its owner" in flat
        assert "accepted" not in flat
    [row] = await wait_for_deliveries(event["id"])
    assert row.template == "ownership_transferred_to_you"
    assert len(smtp.messages) == 1
