"""Fixtures of the applets service's integration tests: the app running in-process against
the real PostgreSQL and RabbitMQ, auth's events published to it as auth's relay would, and a
tap on the bus to read what the service publishes (the tokens an invitation mails, say).

``world`` is the test's cast: ``await world.person("Ada")`` registers a user (through
``auth.user.registered``, as auth would), ``world.headers(ada)`` signs their access token,
``await world.organisation(admin=ada)`` makes an organisation with its admin, and
``await world.grant(applet, ada, bob, "editor")`` invites and accepts through the API.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import pytest
from fastapi import FastAPI

from tessera.applets.app import MIGRATIONS, create_app
from tessera.applets.examples import example_applet
from tessera.applets.settings import Settings
from tessera.common.testing import Infra, make_settings, prepare_database
from tessera.common.testing.broker import eventually, publish_envelope
from tessera.common.testing.tokens import TokenMinter

WAIT_S = 10.0


@pytest.fixture(scope="session")
def applets_database(infra: Infra) -> None:
    prepare_database(make_settings(Settings, infra), MIGRATIONS)


@pytest.fixture
def settings(infra: Infra, applets_database: None) -> Settings:
    return make_settings(Settings, infra)


@pytest.fixture
def tokens() -> TokenMinter:
    return TokenMinter()


@pytest.fixture
async def app(settings: Settings, tokens: TokenMinter) -> AsyncIterator[FastAPI]:
    application = create_app(settings, key_source=tokens.key_source)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://applets") as c:
        yield c


class Bus:
    """What the applets service published during the test (a tap bound to ``applets.#``)."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self._queue = queue
        self.seen: list[dict[str, Any]] = []

    def _drain(self, found: list[dict[str, Any]]) -> None:
        self.seen.extend(found)

    async def _pull(self) -> None:
        while (message := await self._queue.get(no_ack=True, fail=False)) is not None:
            self.seen.append(json.loads(message.body))

    async def events(
        self,
        type_: str,
        *,
        where: Callable[[dict[str, Any]], bool] = lambda data: True,
        count: int = 1,
        timeout: float = WAIT_S,
    ) -> list[dict[str, Any]]:
        """The ``data`` of ``count`` events of ``type_`` matching ``where`` (waits for them)."""

        async def enough() -> list[dict[str, Any]]:
            await self._pull()
            found = [e["data"] for e in self.seen if e["type"] == type_ and where(e["data"])]
            return found if len(found) >= count else []

        found: list[dict[str, Any]] = await eventually(
            enough, timeout=timeout, what=f"{count} {type_} event(s)"
        )
        return found

    async def one(self, type_: str, **match: Any) -> dict[str, Any]:
        """The latest event of ``type_`` whose data has these values."""
        found = await self.events(
            type_, where=lambda d: all(str(d.get(k)) == str(v) for k, v in match.items())
        )
        return found[-1]

    async def none(self, type_: str, *, settle_s: float = 0.5, **match: Any) -> None:
        await asyncio.sleep(settle_s)
        await self._pull()
        found = [
            e for e in self.seen
            if e["type"] == type_ and all(str(e["data"].get(k)) == str(v) for k, v in match.items())
        ]  # fmt: skip
        assert not found, f"unexpected {type_}: {found}"


@pytest.fixture
async def bus(infra: Infra, app: FastAPI) -> AsyncIterator[Bus]:
    connection = await aio_pika.connect(infra.rabbitmq)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"tap.applets.{uuid.uuid4().hex[:12]}", durable=False)
        await queue.bind(infra.exchange, routing_key="applets.#")
        try:
            yield Bus(queue)
        finally:
            await queue.delete(if_unused=False, if_empty=False)


def auth_envelope(type_: str, data: dict[str, Any], subject: str) -> dict[str, Any]:
    """An event as auth's outbox relay publishes it."""
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "auth",
        "subject": subject,
        "data": data,
    }


@dataclass
class Person:
    id: uuid.UUID
    email: str
    name: str
    locale: str = "en"
    orgs: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    infra: Infra
    app: FastAPI
    client: httpx.AsyncClient
    tokens: TokenMinter
    bus: Bus

    async def query(self, sql: str, *args: Any) -> list[Any]:
        async with self.app.state.runtime.engine.connect() as connection:
            raw = await connection.get_raw_connection()
            return list(await raw.driver_connection.fetch(sql, *args))

    async def eventually_sql(self, sql: str, *args: Any) -> list[Any]:
        found: list[Any] = await eventually(
            lambda: self.query(sql, *args), timeout=WAIT_S, what=sql
        )
        return found

    async def publish(self, type_: str, data: dict[str, Any], subject: str) -> None:
        await publish_envelope(
            self.infra.rabbitmq, self.infra.exchange, auth_envelope(type_, data, subject)
        )

    async def person(self, name: str = "Ada", *, locale: str = "en") -> Person:
        """A registered user, known to the applets service (its projection has the row)."""
        who = Person(uuid.uuid4(), f"{name.lower()}-{uuid.uuid4().hex[:10]}@example.org", name,
                     locale)  # fmt: skip
        await self.publish(
            "auth.user.registered",
            {"user_id": str(who.id), "email": who.email, "full_name": name, "locale": locale,
             "verification_token": "t" * 30, "verification_expires_at": "2030-01-01T00:00:00Z"},
            str(who.id),
        )  # fmt: skip
        await eventually(
            lambda: self.query("SELECT 1 FROM users WHERE id = $1", who.id),
            timeout=WAIT_S, what=f"{name} in the users projection",
        )  # fmt: skip
        return who

    def headers(self, who: Person) -> dict[str, str]:
        return self.tokens.bearer(who.id, orgs=who.orgs)

    async def organisation(self, admin: Person, *, name: str = "Lab") -> uuid.UUID:
        """An organisation whose admin is ``admin`` (in the projection and in their token)."""
        org = uuid.uuid4()
        await self.publish(
            "auth.organisation.created",
            {"organisation_id": str(org), "name": f"{name} {org.hex[:6]}",
             "created_by": str(admin.id)},
            str(org),
        )  # fmt: skip
        await self.member(org, admin, "admin")
        return org

    async def member(self, org: uuid.UUID, who: Person, role: str) -> None:
        await self.publish(
            "auth.membership.granted",
            {"organisation_id": str(org), "user_id": str(who.id), "role": role},
            str(org),
        )
        await eventually(
            lambda: self.query(
                "SELECT 1 FROM memberships WHERE organisation_id = $1 AND user_id = $2 "
                "AND role = $3 AND revoked_at IS NULL", org, who.id, role),
            timeout=WAIT_S, what="the membership in the projection",
        )  # fmt: skip
        who.orgs[str(org)] = role

    async def applet(
        self, owner: Person, org: uuid.UUID, document: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = document or example_applet()
        response = await self.client.post(
            "/applets", json={**body, "organisation_id": str(org)}, headers=self.headers(owner)
        )
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def invite(
        self, applet_id: str, by: Person, email: str, role: str, **extra: Any
    ) -> tuple[dict[str, Any], str]:
        """An invitation and the token the mailer would send."""
        response = await self.client.post(
            f"/applets/{applet_id}/invitations",
            json={"email": email, "role": role, **extra},
            headers=self.headers(by),
        )
        assert response.status_code == 201, response.text
        invitation = response.json()
        event = await self.bus.one("applets.invitation.created", invitation_id=invitation["id"])
        return invitation, event["accept_token"]

    async def grant(
        self, applet_id: str, by: Person, to: Person, role: str, **extra: Any
    ) -> dict[str, Any]:
        """``to`` holds ``role`` on the applet: invited by ``by``, accepted through the API."""
        _, token = await self.invite(applet_id, by, to.email, role, **extra)
        accepted = await self.client.post(
            "/applets/invitations/accept", json={"token": token}, headers=self.headers(to)
        )
        assert accepted.status_code == 200, accepted.text
        result: dict[str, Any] = accepted.json()
        return result


@pytest.fixture
def world(infra: Infra, app: FastAPI, client: httpx.AsyncClient, tokens: TokenMinter,
          bus: Bus) -> World:  # fmt: skip
    return World(infra, app, client, tokens, bus)
