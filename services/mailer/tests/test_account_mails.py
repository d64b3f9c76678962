"""The account mails (resent verification, password reset, login link, password changed):
each sent once per event over real SMTP, with its link built from ``MAILER__PUBLIC_URL``."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from babel import Locale

from tessera.common.testing.broker import eventually
from tessera.common.testing.smtp import mime_parts
from tessera.mailer.rendering import format_when
from tessera.mailer.service import ERASED

PUBLIC_URL = "https://app.tessera.test"
WAIT_S = 10.0


def _written(iso: str, locale: str = "en") -> str:
    """An instant as the email writes it for ``locale``."""
    return format_when(datetime.fromisoformat(iso), Locale.parse(locale))


def _envelope(event_type: str, **data: Any) -> dict[str, Any]:
    """An auth envelope of ``event_type`` v1 as auth's outbox writes it; ``data`` overrides."""
    user_id = str(uuid.uuid4())
    expires = (datetime.now(UTC) + timedelta(minutes=15)).isoformat()
    token = f"tok_{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = {
        "user_id": user_id,
        "email": f"user-{uuid.uuid4().hex[:12]}@example.com",
        "full_name": "Ada Lovelace",
        "locale": "en",
    }
    body |= {
        "auth.email_verification.requested": {
            "verification_token": token,
            "verification_expires_at": expires,
        },
        "auth.password.recovery_requested": {"reset_token": token, "expires_at": expires},
        "auth.login_link.requested": {"login_token": token, "expires_at": expires},
        "auth.password.changed": {},
        "auth.account.locked": {"locked_for_s": 60, "locked_until": expires},
        "auth.account.deleted": {},
        "auth.user.deleted": {},
    }[event_type]
    body.update(data)
    if event_type == "auth.user.deleted":
        body = {"user_id": body["user_id"]}
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "auth",
        "subject": user_id,
        "data": body,
    }


async def test_password_recovery_request_mails_the_reset_link(
    smtp: Any, publish: Any, query: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope("auth.password.recovery_requested", full_name="Grace Hopper")
    data = event["data"]

    await publish(event)
    received = await smtp.wait_for(data["email"])

    message = received.message
    assert received.rcpt_tos == [data["email"]]
    assert message["Subject"] == "Reset your Tessera password"
    text, html = mime_parts(message)
    link = f"{PUBLIC_URL}/reset-password#token={data['reset_token']}"
    assert link in text
    assert f'href="{link}"' in html
    assert "Grace Hopper" in text
    assert _written(data["expires_at"]) in text  # "December 3, 2026 6:05 PM UTC"
    assert "?token=" not in text + html
    row = (await wait_for_deliveries(event["id"]))[0]
    assert (row.template, row.event_type, row.status) == (
        "password_reset",
        "auth.password.recovery_requested",
        "sent",
    )
    assert row.message_id == message["Message-ID"]


async def test_login_link_request_mails_the_sign_in_link(
    smtp: Any, publish: Any, query: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope("auth.login_link.requested")
    data = event["data"]

    await publish(event)
    received = await smtp.wait_for(data["email"])

    assert received.message["Subject"] == "Your Tessera sign-in link"
    text, html = mime_parts(received.message)
    link = f"{PUBLIC_URL}/login-link#token={data['login_token']}"
    assert link in text
    assert f'href="{link}"' in html
    row = (await wait_for_deliveries(event["id"]))[0]
    assert row.template == "login_link"


async def test_password_changed_mail_warns_without_a_token_link(
    smtp: Any, publish: Any, query: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope("auth.password.changed", full_name="Ada <b>Lovelace</b>")
    data = event["data"]

    await publish(event)
    received = await smtp.wait_for(data["email"])

    assert received.message["Subject"] == "Your Tessera password was changed"
    text, html = mime_parts(received.message)
    assert "If this wasn't you" in text
    assert "If this wasn&#39;t you" in html or "If this wasn't you" in html
    assert f"{PUBLIC_URL}/forgot-password" in text
    assert "token=" not in text + html
    assert "Ada <b>Lovelace</b>" in text
    assert "&lt;b&gt;" in html  # the user-supplied name is escaped in HTML
    row = (await wait_for_deliveries(event["id"]))[0]
    assert row.template == "password_changed"


async def test_resent_verification_uses_the_verify_email_template(
    smtp: Any, publish: Any, query: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope("auth.email_verification.requested")
    data = event["data"]

    await publish(event)
    received = await smtp.wait_for(data["email"])

    assert received.message["Subject"] == "Confirm your email address for Tessera"
    text, html = mime_parts(received.message)
    link = f"{PUBLIC_URL}/verify-email#token={data['verification_token']}"
    assert link in text
    assert f'href="{link}"' in html
    row = (await wait_for_deliveries(event["id"]))[0]
    assert (row.template, row.event_type) == (
        "verify_email",
        "auth.email_verification.requested",
    )


@pytest.mark.parametrize(
    "event_type",
    [
        "auth.email_verification.requested",
        "auth.password.recovery_requested",
        "auth.login_link.requested",
        "auth.password.changed",
    ],
)
async def test_same_account_event_twice_sends_one_email(
    smtp: Any, publish: Any, query: Any, event_type: str, wait_for_deliveries: Any, deliveries: Any
) -> None:
    event = _envelope(event_type)
    email = event["data"]["email"]
    await publish(event)
    await smtp.wait_for(email)
    (await wait_for_deliveries(event["id"]))[0]

    await publish(event)  # a redelivery: same envelope, same id
    # the queue is consumed in order: once a later event is mailed, the duplicate was handled
    marker = _envelope(event_type)
    await publish(marker)
    await smtp.wait_for(marker["data"]["email"])
    await asyncio.sleep(0.3)

    assert len(smtp.to(email)) == 1
    assert len(await deliveries(event["id"])) == 1


async def test_each_reset_request_gets_its_own_email(smtp: Any, publish: Any) -> None:
    """Two requests are two events: the second mail carries the newer link."""
    first = _envelope("auth.password.recovery_requested")
    email = first["data"]["email"]
    second = _envelope(
        "auth.password.recovery_requested",
        user_id=first["data"]["user_id"],
        email=email,
    )

    await publish(first)
    await publish(second)
    deadline = time.monotonic() + WAIT_S
    while len(smtp.to(email)) < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)

    texts = [mime_parts(r.message)[0] for r in smtp.to(email)]
    assert len(texts) == 2
    assert any(second["data"]["reset_token"] in t for t in texts)
    assert any(first["data"]["reset_token"] in t for t in texts)


async def test_account_locked_mail_says_until_when_and_how_to_get_back_in(
    smtp: Any, publish: Any, query: Any, wait_for_deliveries: Any
) -> None:
    event = _envelope("auth.account.locked")
    data = event["data"]

    await publish(event)
    received = await smtp.wait_for(data["email"])

    assert received.message["Subject"] == "Your Tessera account is temporarily locked"
    text, html = mime_parts(received.message)
    assert _written(data["locked_until"]) in text
    assert f"{PUBLIC_URL}/forgot-password" in text
    assert f"{PUBLIC_URL}/forgot-password" in html
    row = (await wait_for_deliveries(event["id"]))[0]
    assert row.template == "account_locked"


async def test_deleting_the_account_erases_its_address_from_every_delivery(
    smtp: Any, publish: Any, query: Any, wait_for_deliveries: Any, deliveries: Any
) -> None:
    sent = _envelope("auth.password.changed")
    user_id = sent["data"]["user_id"]
    await publish(sent)
    await smtp.wait_for(sent["data"]["email"])
    row = (await wait_for_deliveries(sent["id"]))[0]
    assert str(row.user_id) == user_id
    assert row.recipient == sent["data"]["email"]

    deleted = {
        "id": str(uuid.uuid4()),
        "type": "auth.user.deleted",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "auth",
        "subject": user_id,
        "data": {"user_id": user_id},
    }
    await publish(deleted)

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        [row] = await deliveries(sent["id"])
        if row.recipient != sent["data"]["email"]:
            break
        await asyncio.sleep(0.05)
    assert row.recipient == "erased@deleted.invalid"
    everywhere = await query(
        "SELECT count(*) FROM deliveries WHERE recipient = :e", e=sent["data"]["email"]
    )
    assert everywhere[0][0] == 0


async def _handled(query: Any, event: dict[str, Any]) -> bool:
    """The mailer has handled ``event`` (its inbox claim is written once the handler returned)."""
    rows = await query("SELECT 1 FROM inbox WHERE event_id = :id", id=uuid.UUID(event["id"]))
    return bool(rows)


async def _recipients(query: Any, user_id: str, address: str) -> list[str]:
    rows = await query(
        "SELECT recipient FROM deliveries WHERE user_id = :u OR lower(recipient) = lower(:a)",
        u=uuid.UUID(user_id),
        a=address,
    )
    return sorted(r.recipient for r in rows)


@pytest.mark.parametrize("first", ["auth.user.deleted", "auth.account.deleted"])
async def test_the_goodbye_email_is_sent_once_and_its_address_erased_whichever_event_comes_first(
    first: str, smtp: Any, publish: Any, query: Any, wait_for_deliveries: Any
) -> None:
    earlier = _envelope("auth.password.changed")
    user_id, address = earlier["data"]["user_id"], earlier["data"]["email"]
    await publish(earlier)
    await wait_for_deliveries(earlier["id"])
    goodbye = _envelope("auth.account.deleted", user_id=user_id, email=address, locale="fr")
    deleted = _envelope("auth.user.deleted", user_id=user_id)
    second = deleted if first == "auth.account.deleted" else goodbye

    for event in (goodbye if first == "auth.account.deleted" else deleted, second):
        await publish(event)
        await eventually(lambda e=event: _handled(query, e), timeout=WAIT_S, what=event["type"])

    [received] = smtp.to(address)[1:]  # after the password-changed email, one goodbye
    text, html = mime_parts(received.message)
    assert received.message["Subject"] == "Votre compte Tessera a été supprimé"
    assert address in text
    assert "Ada Lovelace" in html
    assert await _recipients(query, user_id, address) == [ERASED, ERASED]
    [row] = await wait_for_deliveries(goodbye["id"])
    assert (row.template, row.status, row.recipient) == ("account_deleted", "sent", ERASED)


async def test_the_goodbye_erases_earlier_mail_to_the_address_but_not_a_new_account_s(
    smtp: Any, publish: Any, query: Any, wait_for_deliveries: Any
) -> None:
    """An email sent to the address without the user's id (an invitation) is erased too; one
    to an account registered with the freed address after the deletion is not."""
    address = f"user-{uuid.uuid4().hex[:12]}@example.com"
    invitation = {
        **_envelope("auth.password.changed"),
        "type": "applets.invitation.created",
        "producer": "applets",
        "data": {
            "invitation_id": str(uuid.uuid4()), "applet_id": str(uuid.uuid4()),
            "applet_name": "Sleep diary", "email": address.upper(), "role": "reviewer",
            "invitee_has_account": True, "inviter_id": str(uuid.uuid4()),
            "inviter_name": "Grace Hopper", "accept_token": "t" * 40,
            "expires_at": datetime.now(UTC).isoformat(),
        },
    }  # fmt: skip
    await publish(invitation)
    await wait_for_deliveries(invitation["id"])
    deleted_at = datetime.now(UTC)
    await asyncio.sleep(0.01)
    newcomer = _envelope("auth.email_verification.requested", email=address)
    await publish(newcomer)
    await wait_for_deliveries(newcomer["id"])

    goodbye = _envelope("auth.account.deleted", email=address)
    goodbye["occurred_at"] = deleted_at.isoformat()
    await publish(goodbye)
    await eventually(lambda: _handled(query, goodbye), timeout=WAIT_S, what="the goodbye")

    assert len(smtp.to(address)) == 3
    [kept] = await query(
        "SELECT recipient FROM deliveries WHERE event_id = :id", id=uuid.UUID(newcomer["id"])
    )
    assert kept.recipient == address
    for event in (invitation, goodbye):
        [row] = await query(
            "SELECT recipient FROM deliveries WHERE event_id = :id", id=uuid.UUID(event["id"])
        )
        assert row.recipient == ERASED, event["type"]


async def test_a_goodbye_the_server_refuses_still_leaves_no_address_behind(
    smtp: Any, publish: Any, query: Any
) -> None:
    goodbye = _envelope("auth.account.deleted")
    smtp.refuse_next(1, code=550)

    await publish(goodbye)

    async def erased() -> Any:
        rows = await query(
            "SELECT status, recipient FROM deliveries WHERE event_id = :id",
            id=uuid.UUID(goodbye["id"]),
        )
        return rows if rows and rows[0].status == "failed" and rows[0].recipient == ERASED else []

    [row] = await eventually(erased, timeout=WAIT_S, what="a failed, erased goodbye")
    assert smtp.messages == []
    assert row.recipient == ERASED
