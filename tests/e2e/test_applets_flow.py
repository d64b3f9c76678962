"""An owner builds an applet with every response type through the gateway, invites a manager
and a respondent (each mail arrives in the invitee's language), edits it into 1.0.1 while
1.0.0 stays readable, and the respondent sees only what a respondent may; the version
snapshots reach a queue bound the way the answers service binds its own."""

from __future__ import annotations

import asyncio
import functools
import json
import re
import uuid
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
from tessera_e2e_harness import Suite, wait_for

from tessera.applets.examples import EVERY_RESPONSE_TYPE, example_applet
from tessera.common.testing import Infra, run_sync

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e"), pytest.mark.timeout(240)]

PASSWORD = "a long enough passphrase"
TOKEN = re.compile(r"invitations/accept#token=([A-Za-z0-9_\-%]+)")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _register(client: httpx.Client, name: str, locale: str) -> dict[str, Any]:
    email = f"e2e-{name.lower()}-{uuid.uuid4().hex[:10]}@example.org"
    created = client.post(
        "/auth/register",
        json={"email": email, "password": PASSWORD, "full_name": name, "locale": locale},
    )
    assert created.status_code == 201, created.text
    tokens = client.post("/auth/login", json={"email": email, "password": PASSWORD}).json()
    return {"email": email, "tokens": tokens}


def _known_to_applets(infra: Infra, email: str) -> bool:
    """The applets service has projected the user's registration (auth's event): only then
    does an invitation speak the invitee's language (before, it speaks the inviter's)."""

    async def known() -> bool:
        conn = await asyncpg.connect(infra.postgres_admin, database=infra.database)
        try:
            found = await conn.fetchval(
                "SELECT 1 FROM applets.users WHERE email = lower($1)", email
            )
        finally:
            await conn.close()
        return found is not None

    return run_sync(known())


def _refreshed(client: httpx.Client, person: dict[str, Any]) -> str:
    """A new access token (its `orgs` claim now holds the organisation made since login)."""
    fresh = client.post(
        "/auth/token/refresh", json={"refresh_token": person["tokens"]["refresh_token"]}
    )
    assert fresh.status_code == 200, fresh.text
    person["tokens"] = fresh.json()
    return str(fresh.json()["access_token"])


def _invitation_token(suite: Suite, email: str, locale: str) -> str:
    """The accept token of the invitation mailed to ``email``, checking the mail is in the
    invitee's language with both parts."""

    def invitations() -> list[Any]:
        return [
            m
            for m in suite.smtp.to(email)
            if TOKEN.search(m.message.get_body(preferencelist=("plain",)).get_content())
        ]

    mails = wait_for(invitations, timeout=30, what=f"the invitation to {email}")
    assert len(mails) == 1
    message = mails[0].message
    assert message["Content-Language"] == locale
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    found = TOKEN.search(text)
    assert found is not None, text
    assert found.group(1) in html
    return found.group(1)


async def _bind_like_answers(infra: Infra, name: str) -> None:
    connection = await aio_pika.connect(infra.rabbitmq)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(infra.exchange, routing_key="applets.applet.version_published.v1")


async def _snapshots(infra: Infra, name: str, applet_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    connection = await aio_pika.connect(infra.rabbitmq)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(name)
        for _ in range(300):
            message = await queue.get(no_ack=True, fail=False)
            if message is None:
                if len(found) >= 2:
                    break
                await asyncio.sleep(0.1)
                continue
            envelope = json.loads(message.body)
            if envelope["data"]["applet_id"] == applet_id:
                found.append(envelope)
        await queue.delete(if_unused=False, if_empty=False)
    return found


def test_an_applet_is_built_shared_edited_and_answered_only_as_roles_allow(
    suite: Suite, infra: Infra
) -> None:
    queue = f"{infra.queue_prefix}e2e-answers-{uuid.uuid4().hex[:8]}.events"
    run_sync(_bind_like_answers(infra, queue))
    with httpx.Client(base_url=suite.gateway, timeout=30) as client:
        owner = _register(client, "Owner", "en")
        manager = _register(client, "Manon", "fr")
        respondent = _register(client, "Rosa", "es")
        org = client.post(
            "/auth/organisations",
            json={"name": f"Lab {uuid.uuid4().hex[:8]}"},
            headers=_bearer(owner["tokens"]["access_token"]),
        )
        assert org.status_code == 201, org.text
        token = _refreshed(client, owner)

        document = example_applet(org.json()["id"])
        document["activities"][0]["items"][5]["is_hidden"] = True  # 'diary'
        created = client.post("/applets", json=document, headers=_bearer(token))
        assert created.status_code == 201, created.text
        applet = created.json()
        types = {i["response_type"] for i in applet["activities"][0]["items"]}
        assert sorted(types) == EVERY_RESPONSE_TYPE
        path = f"/applets/{applet['id']}"

        for person, role, locale in ((manager, "manager", "fr"), (respondent, "respondent", "es")):
            email = person["email"]
            wait_for(functools.partial(_known_to_applets, infra, email), timeout=30,
                     what=f"{email} in the applets service's projection")  # fmt: skip
            invited = client.post(
                f"{path}/invitations",
                json={"email": person["email"], "role": role},
                headers=_bearer(token),
            )
            assert invited.status_code == 201, invited.text
            accept = _invitation_token(suite, person["email"], locale)
            accepted = client.post(
                "/applets/invitations/accept",
                json={"token": accept},
                headers=_bearer(person["tokens"]["access_token"]),
            )
            assert accepted.status_code == 200, accepted.text

        manager_token = manager["tokens"]["access_token"]
        edited = {k: v for k, v in applet.items() if k != "my_roles"}
        edited["display_name"] = "Daily wellbeing, revised"
        replaced = client.put(path, json=edited, headers=_bearer(manager_token))
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["version"] == "1.0.1"
        first = client.get(f"{path}/versions/1.0.0", headers=_bearer(token))
        assert first.status_code == 200
        assert first.json()["content"]["display_name"] == "Daily wellbeing"
        changes = client.get(f"{path}/versions/1.0.1/changes", headers=_bearer(token)).json()
        assert any("Daily wellbeing, revised" in line for line in changes["changes"])

        respondent_token = respondent["tokens"]["access_token"]
        concealed = client.get(path, headers=_bearer(respondent_token))
        assert concealed.status_code == 403
        assert client.post(f"{path}/publish", headers=_bearer(token)).status_code == 200
        seen = client.get(path, headers=_bearer(respondent_token))
        assert seen.status_code == 200
        assert seen.json()["my_roles"] == ["respondent"]
        assert seen.json()["version"] == "1.0.1"
        assert "diary" not in {i["name"] for i in seen.json()["activities"][0]["items"]}
        for forbidden in ("/roles", "/invitations", "/versions"):
            refused = client.get(f"{path}{forbidden}", headers=_bearer(respondent_token))
            assert refused.status_code == 403, forbidden
        stranger = _register(client, "Stranger", "en")
        unknown = client.get(path, headers=_bearer(stranger["tokens"]["access_token"]))
        assert unknown.status_code == 404

    snapshots = run_sync(_snapshots(infra, queue, applet["id"]))
    assert [s["data"]["applet_version"] for s in snapshots] == ["1.0.0", "1.0.1"]
    snapshot = snapshots[-1]["data"]["snapshot"]
    assert snapshot["display_name"] == "Daily wellbeing, revised"
    items = snapshot["activities"][0]["items"]
    assert {i["response_type"] for i in items} == set(EVERY_RESPONSE_TYPE)
    assert items[0]["response_values"]["options"][0] == {
        "text": "Never", "value": 0, "score": 0, "is_hidden": False,
    }  # fmt: skip
    assert snapshot["retention"] == {"period": "years", "amount": 2}
