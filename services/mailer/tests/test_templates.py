"""Previews of every email for superadmins: the list of templates and their languages, and
one rendered with sample data, whole or one part as a mail client shows it."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from .conftest import PUBLIC_URL
from .test_locales import LOCALES

EVERY_TEMPLATE = {
    "verify_email", "password_reset", "login_link", "password_changed", "account_locked",
    "account_deleted", "invitation", "invitation_register", "invitation_accepted",
    "ownership_transfer_requested", "ownership_transferred_from_you",
    "ownership_transferred_to_you",
}  # fmt: skip


async def test_the_templates_are_listed_with_their_languages(
    client: httpx.AsyncClient, superadmin: dict[str, str], tokens: Any
) -> None:
    listed = await client.get("/mail/templates", headers=superadmin)
    someone = await client.get("/mail/templates", headers=tokens.bearer(uuid.uuid4()))

    assert someone.status_code == 403
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == len(EVERY_TEMPLATE) == 12
    assert {t["name"] for t in body["items"]} == EVERY_TEMPLATE
    assert all(t["locales"] == sorted(LOCALES) for t in body["items"])
    page = (await client.get("/mail/templates?limit=2&offset=11", headers=superadmin)).json()
    assert (len(page["items"]), page["total"]) == (1, 12)


async def test_a_preview_renders_one_email_in_the_language_asked_for(
    client: httpx.AsyncClient, superadmin: dict[str, str], tokens: Any
) -> None:
    whole = await client.get(
        "/mail/templates/login_link/preview", params={"locale": "fi"}, headers=superadmin
    )
    html = await client.get(
        "/mail/templates/login_link/preview",
        params={"locale": "fi", "part": "html"},
        headers=superadmin,
    )
    text = await client.get(
        "/mail/templates/login_link/preview", params={"part": "text"}, headers=superadmin
    )
    regional = await client.get(
        "/mail/templates/verify_email/preview", params={"locale": "es-MX"}, headers=superadmin
    )

    preview = whole.json()
    assert preview["locale"] == "fi"
    assert preview["subject"]
    assert f"{PUBLIC_URL}/login-link#token=sample-token" in preview["text"]
    assert html.headers["content-type"].startswith("text/html")
    assert html.headers["content-language"] == "fi"
    assert html.text == preview["html"]
    assert 'lang="fi"' in html.text
    assert text.headers["content-type"].startswith("text/plain")
    assert "Ada Lovelace" in text.text
    assert regional.json()["locale"] == "es"
    denied = await client.get(
        "/mail/templates/login_link/preview", headers=tokens.bearer(uuid.uuid4())
    )
    assert denied.status_code == 403


async def test_a_preview_of_an_unknown_template_or_part_is_refused_by_name(
    client: httpx.AsyncClient, superadmin: dict[str, str]
) -> None:
    missing = await client.get("/mail/templates/nothing/preview", headers=superadmin)
    bad_part = await client.get(
        "/mail/templates/login_link/preview", params={"part": "pdf"}, headers=superadmin
    )

    assert (missing.status_code, missing.json()["code"]) == (404, "template_not_found")
    assert bad_part.status_code == 422
    assert bad_part.json()["errors"][0]["field"] == "part"
