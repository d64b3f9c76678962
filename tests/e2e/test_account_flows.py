"""Account flows through the gateway, with the real mailer: the token a user acts on is the one
read from the email, never from a database or an outbox."""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage

import httpx
import pytest
from tessera_e2e_harness import Suite, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(240)]

PASSWORD = "a long enough passphrase"
NEW_PASSWORD = "another long passphrase 7"


def _mail(suite: Suite, email: str, subject: str) -> EmailMessage:
    def found() -> EmailMessage | None:
        return next(
            (r.message for r in suite.smtp.to(email) if r.message["Subject"] == subject), None
        )

    mail: EmailMessage = wait_for(found, timeout=30, what=f"{subject!r} to {email}")
    return mail


def _token(mail: EmailMessage, path: str) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    text = part.get_content()
    match = re.search(rf"http://\S+/{path}#token=([\w\-%]+)", text)
    assert match is not None, text
    return match.group(1)


def test_recover_reset_login_link_and_password_changed_mails(suite: Suite) -> None:
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.org"
    with httpx.Client(base_url=suite.gateway, timeout=10) as client:
        created = client.post(
            "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Ada E2E"}
        )
        assert created.status_code == 201, created.text
        old_session = client.post("/auth/login", json={"email": email, "password": PASSWORD})
        old_access = old_session.json()["access_token"]

        # recovery: the link in the mail resets the password and ends the old session
        assert client.post("/auth/password/recover", json={"email": email}).status_code == 202
        reset_token = _token(_mail(suite, email, "Reset your Tessera password"), "reset-password")
        reset = client.post(
            "/auth/password/reset", json={"token": reset_token, "new_password": NEW_PASSWORD}
        )
        assert reset.status_code == 204, reset.text
        replay = client.post(
            "/auth/password/reset", json={"token": reset_token, "new_password": PASSWORD}
        )
        assert replay.status_code == 400
        me = client.get("/auth/me", headers={"Authorization": f"Bearer {old_access}"})
        assert me.status_code == 401
        _mail(suite, email, "Your Tessera password was changed")
        login = client.post("/auth/login", json={"email": email, "password": NEW_PASSWORD})
        assert login.status_code == 200, login.text

        # passwordless: the login link in the mail gives tokens and verifies the address
        assert client.post("/auth/login-link", json={"email": email}).status_code == 202
        login_token = _token(_mail(suite, email, "Your Tessera sign-in link"), "login-link")
        tokens = client.post("/auth/login-link/consume", json={"token": login_token})
        assert tokens.status_code == 200, tokens.text
        me = client.get(
            "/auth/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"}
        )
        assert me.status_code == 200, me.text
        assert me.json()["email_verified"] is True
