"""Pushing, as MISP does it, between two Tessera sync instances (each its own database and
exchange, the receiver behind uvicorn) and to the fake MISP: which events go (published,
distribution, push rules, never back where they came from), what the receiver ends with
(MISP's distribution rewrite, locked, held by the pushing server's organisation), and a job
whose counts say what happened ("not newer" is skipped, not failed)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest

from tessera.common.testing import Infra
from tessera.common.testing.broker import eventually, publish_envelope
from tessera.sync.service.events import NOT_NEWER
from tessera.sync.testing.fake_misp import Corpus, FakeMisp

from .conftest import Instance, InstanceWorld, Member, World, auth_envelope, running_peer

SYNC_ORG = uuid.uuid4()
"""the peer's organisation whose users are sync users (the home instance's account there)"""


@pytest.fixture(scope="module")
def peer(infra: Infra) -> Iterator[Instance]:
    """A second sync instance where the users of ``SYNC_ORG`` are sync users."""
    with running_peer(infra, SYNC_ORG) as other:
        yield other


@pytest.fixture(autouse=True)
async def _push_off_afterwards(world: World) -> AsyncIterator[None]:
    """Every publication pushes to the servers with ``push`` on: the servers a test added
    stop pushing when it ends, so the next tests' events go nowhere they did not ask."""
    yield
    await world.query("UPDATE servers SET push = false WHERE push")


@pytest.fixture
async def there(peer: Instance) -> AsyncIterator[InstanceWorld]:
    async with httpx.AsyncClient(base_url=peer.root, timeout=30) as client:
        yield InstanceWorld.of(peer, client)


async def _admin(world: World) -> tuple[Member, dict[str, str]]:
    org = await world.organisation("Home")
    admin = await world.member("Admin", org, role="admin")
    bearer = world.tokens.bearer(admin.id, roles=["superadmin"])
    return admin, bearer | {"Accept": "application/json"}


async def _server(world: World, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    added = await world.client.post(
        "/sync/servers/add",
        json={"name": "peer", "push": True, "allow_private_addresses": True, **fields},
        headers=headers,
    )
    assert added.status_code == 200, added.text
    server: dict[str, Any] = added.json()["Server"]
    return server


async def _peer_server(
    world: World, there: InstanceWorld, peer: Instance, headers: dict[str, str], **fields: Any
) -> tuple[dict[str, Any], Member]:
    account = await there.member("Sync", SYNC_ORG)
    server = await _server(
        world, headers, url=peer.url, authkey=account.key,
        Organisation={"uuid": str(SYNC_ORG), "name": "Peer"}, **fields,
    )  # fmt: skip
    return server, account


async def _job(world: World, headers: dict[str, str], path: str) -> dict[str, Any]:
    started = await world.client.get(path, headers=headers)
    assert started.status_code == 200, started.text
    assert started.json()["message"].startswith("Push queued for background execution.")
    return await _settled(world, headers, started.json()["url"])


async def _push_jobs(
    world: World, headers: dict[str, str], event_uuid: str
) -> list[dict[str, Any]]:
    """Every push job of the event (a publication queues its own with it, in its
    transaction), oldest first, each settled."""
    rows = await world.query(
        "SELECT id FROM jobs WHERE kind = 'push' AND event_uuid = $1 ORDER BY created_at, id",
        uuid.UUID(event_uuid),
    )
    return [await _settled(world, headers, f"/sync/jobs/{row['id']}") for row in rows]


async def _settled(world: World, headers: dict[str, str], url: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        job = (await world.client.get(url, headers=headers)).json()
        return job if job["status"] in ("done", "failed") else None

    job: dict[str, Any] = await eventually(done, timeout=30, what="the push job")
    return job


def _attribute(value: str, distribution: int) -> dict[str, Any]:
    return {"type": "domain", "value": value, "distribution": str(distribution)}


async def _event(
    world: World, headers: dict[str, str], distribution: int, *, published: bool = True,
    attributes: list[dict[str, Any]] | None = None, tags: list[str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    body = {
        "info": f"pushed? {uuid.uuid4().hex[:6]}", "distribution": str(distribution),
        "published": published,
        "Attribute": attributes or [_attribute(f"d{random.randrange(10**9)}.example", 5)],
        "Tag": [{"name": t} for t in tags or []],
    }  # fmt: skip
    added = await world.client.post("/sync/events/add", json=body, headers=headers)
    assert added.status_code == 200, added.text
    event: dict[str, Any] = added.json()["Event"]
    return event


async def _received(there: InstanceWorld, event_uuid: str) -> Any:
    rows = await there.query(
        "SELECT e.id, e.distribution, e.locked, e.published, o.uuid AS org, c.uuid AS orgc "
        "FROM events e JOIN organisations o ON o.id = e.org_id "
        "JOIN organisations c ON c.id = e.orgc_id WHERE e.uuid = $1",
        uuid.UUID(event_uuid),
    )
    return rows[0] if rows else None


async def test_a_push_sends_what_misp_would_and_the_receiver_keeps_it_as_misp_does(
    world: World, there: InstanceWorld, peer: Instance
) -> None:
    admin, headers = await _admin(world)
    values = {level: f"level{level}-{uuid.uuid4().hex[:8]}.example" for level in range(6)}
    shared = await _event(
        world, headers, 2,
        attributes=[_attribute(values[level], level) for level in (0, 1, 2, 3, 5)],
    )  # fmt: skip
    sighted = await world.client.post(
        "/sync/sightings/add", json={"value": values[3]}, headers=headers
    )
    assert sighted.status_code == 200, sighted.text
    org_only = await _event(world, headers, 0)
    community = await _event(world, headers, 1)
    unpublished = await _event(world, headers, 3, published=False)
    red = await _event(world, headers, 3, tags=["tlp:red"])
    # added once the events are published (no publication pushed them); the push rules keep
    # other tests' events (same database) out of this push
    server, _ = await _peer_server(
        world, there, peer, headers, push_sightings=True,
        push_rules={"orgs": {"OR": [str(admin.org)]}, "tags": {"NOT": ["tlp:red"]}},
    )  # fmt: skip

    job = await _job(world, headers, f"/sync/servers/push/{server['id']}")

    assert job["kind"] == "push"
    assert job["status"] == "done", job
    assert job["pushed"] == 1
    assert job["failed"] == 0, job
    assert job["total"] == 1
    assert job["bytes"] > 0
    assert job["seen"] == job["pushed"] + job["skipped"]
    received = await _received(there, shared["uuid"])
    assert received is not None
    assert received["distribution"] == 1  # connected communities is sent as community only
    assert received["locked"] is True
    assert received["published"] is True
    assert received["org"] == SYNC_ORG  # held by the pushing server's account there
    assert received["orgc"] == admin.org  # created by the home organisation
    attributes = await there.query(
        "SELECT value1, distribution FROM attributes WHERE event_id = $1", received["id"]
    )
    assert {r["value1"]: r["distribution"] for r in attributes} == {
        values[2]: 1, values[3]: 3, values[5]: 5,  # 0 and 1 stay home
    }  # fmt: skip
    sightings = await there.query(
        "SELECT count(*) AS n FROM sightings WHERE event_id = $1", received["id"]
    )
    assert sightings[0]["n"] == 1  # push_sightings: the event carries its sightings
    for kept in (org_only, community, unpublished, red):
        assert await _received(there, kept["uuid"]) is None

    again = await _job(world, headers, f"/sync/servers/push/{server['id']}")
    assert again["pushed"] == 0  # the peer has it as new: filterEventIdsForPush says so
    assert again["total"] == 0
    assert again["status"] == "done"


async def test_a_newer_copy_is_sent_as_an_edit_and_an_older_one_is_skipped_not_failed(
    world: World, there: InstanceWorld, peer: Instance
) -> None:
    _, headers = await _admin(world)
    event = await _event(world, headers, 3)
    server, _ = await _peer_server(world, there, peer, headers)  # after: nothing pushed yet
    first = await _job(world, headers, f"/sync/servers/push/{server['id']}/{event['uuid']}")
    assert (first["pushed"], first["failed"]) == (1, 0), first

    await anyio.sleep(1.1)  # MISP's timestamps are seconds: the edit must be newer
    edited = await world.client.post(
        f"/sync/events/edit/{event['uuid']}",
        json={"published": True, "Attribute": [_attribute("added-later.example", 5)]},
        headers=headers,
    )
    assert edited.status_code == 200, edited.text
    # published again by the edit: pushed again, as an edit of the peer's copy
    *_, second = await _push_jobs(world, headers, event["uuid"])
    assert second["id"] != first["id"]
    assert (second["pushed"], second["failed"]) == (1, 0), second
    again = await _job(world, headers, f"/sync/servers/push/{server['id']}/{event['id']}")
    assert (again["total"], again["pushed"]) == (0, 0)  # the peer has it as new
    received = await _received(there, event["uuid"])
    values = await there.query("SELECT value1 FROM attributes WHERE event_id = $1", received["id"])
    assert "added-later.example" in {r["value1"] for r in values}

    # the step that sends an event, for one the peer has as new already (its copy changed
    # after the remote answered filterEventIdsForPush): MISP's 403 "not newer", no failure
    job_id = uuid.uuid4()
    await world.query(
        "INSERT INTO jobs (id, kind, server_id, status, seen, total, created_at) "
        "VALUES ($1, 'push', $2, 'running', 1, 1, $3)",
        job_id, int(server["id"]), datetime.now(UTC),
    )  # fmt: skip
    item = auth_envelope(
        "sync.push_item.requested",
        {"job_id": str(job_id), "server_id": int(server["id"]), "event_uuid": event["uuid"]},
        event["uuid"],
    )
    item["producer"] = "sync"
    await publish_envelope(world.infra.rabbitmq, world.infra.exchange, item)
    job = await _settled(world, headers, f"/sync/jobs/{job_id}")
    assert job["status"] == "done", job
    assert (job["pushed"], job["skipped"], job["failed"]) == (0, 1, 0), job
    refused = await there.client.post(
        f"/sync/events/edit/{event['uuid']}",
        json={"Event": {"uuid": event["uuid"], "timestamp": event["timestamp"]}},
        headers=(await there.member("Sync", SYNC_ORG)).headers,
    )
    assert refused.status_code == 403
    assert refused.json()["errors"] == NOT_NEWER


async def test_an_event_is_never_pushed_back_to_the_server_it_was_pulled_from(
    world: World,
) -> None:
    _, headers = await _admin(world)
    corpus = Corpus(events=2, attributes=3, distributions=(3,), seed=random.randrange(2**31))
    ours = await _event(world, headers, 3)  # published before the server is added: not pushed
    with FakeMisp(corpus) as fake:
        server = await _server(
            world, headers, url=fake.url, authkey=fake.key, pull=True,
            Organisation={"uuid": str(uuid.uuid4()), "name": "Fake"},
        )  # fmt: skip
        pulled = fake.event_uuid(0)
        started = await world.client.get(
            f"/sync/servers/pull/{server['id']}/{pulled}", headers=headers
        )
        assert (await _settled(world, headers, started.json()["url"]))["fetched"] == 1
        fake.delete([pulled])  # gone there: its filter would ask for it again
        fake.counters.reset()

        back = await _job(world, headers, f"/sync/servers/push/{server['id']}/{pulled}")
        other = await _job(world, headers, f"/sync/servers/push/{server['id']}/{ours['uuid']}")

        assert (back["pushed"], back["skipped"], back["failed"]) == (0, 1, 0), back
        # that push only: the pulled event, published here, queued none for its server
        assert [job["id"] for job in await _push_jobs(world, headers, pulled)] == [back["id"]]
        assert fake.counters.requests["events/filterEventIdsForPush"] == 1  # ours only
        assert (other["pushed"], other["failed"]) == (1, 0), other
        assert fake.counters.pushes["added"] == 1
        sent = fake.pushed[ours["uuid"]].body
        assert sent["locked"] is True
        assert "Org" not in sent
        assert "orgc_id" not in sent


async def test_a_published_event_is_pushed_to_every_push_server_but_the_one_it_came_from(
    world: World, there: InstanceWorld, peer: Instance
) -> None:
    admin, headers = await _admin(world)
    server, _ = await _peer_server(world, there, peer, headers, pull=True)
    corpus = Corpus(events=1, attributes=1, seed=random.randrange(2**31))
    with FakeMisp(corpus) as fake:
        other = await _server(
            world, headers, name="fake", url=fake.url, authkey=fake.key,
            Organisation={"uuid": str(uuid.uuid4()), "name": "Fake"},
        )  # fmt: skip
        servers = {int(server["id"]), int(other["id"])}
        added = await _event(world, headers, 3)  # events/add with published
        draft = await _event(world, headers, 3, published=False)
        assert await _push_jobs(world, headers, draft["uuid"]) == []
        published = await world.client.post(f"/sync/events/publish/{draft['id']}",
                                             headers=headers)  # fmt: skip
        assert published.status_code == 200, published.text
        assert published.json()["message"] == "Job queued"

        for event in (added, draft):  # no servers/push: the publication queued the jobs
            jobs = await _push_jobs(world, headers, event["uuid"])
            assert {job["server_id"] for job in jobs} == servers
            for job in jobs:
                assert (job["status"], job["pushed"], job["failed"]) == ("done", 1, 0), job
                assert job["requested_by"] == str(admin.id)
            received = await _received(there, event["uuid"])
            assert received is not None
            assert (received["published"], received["locked"]) == (True, True)
            assert event["uuid"] in fake.pushed

        # an event of the peer's, pulled from it (published there): pushed on, never back
        author_org = await there.organisation("Peer's own")
        author = await there.member("Author", author_org, role="admin")
        theirs = await _event(there, author.headers, 3)
        started = await world.client.get(
            f"/sync/servers/pull/{server['id']}/{theirs['uuid']}", headers=headers
        )
        assert (await _settled(world, headers, started.json()["url"]))["fetched"] == 1
        [job] = await _push_jobs(world, headers, theirs["uuid"])
        assert job["server_id"] == int(other["id"])
        assert (job["pushed"], job["failed"]) == (1, 0), job
        assert fake.pushed[theirs["uuid"]].body["locked"] is True
        back = await _received(there, theirs["uuid"])
        assert (back["locked"], back["org"]) == (False, author_org)  # the peer's, untouched

        # what may not leave: no job at all (distribution 0 here; the peer's push is off)
        await world.query("UPDATE servers SET push = false WHERE id = $1", int(server["id"]))
        private = await _event(world, headers, 0)
        shared = await _event(world, headers, 3)
        assert await _push_jobs(world, headers, private["uuid"]) == []
        assert [job["server_id"] for job in await _push_jobs(world, headers, shared["uuid"])] == [
            int(other["id"])
        ]


async def test_a_push_needs_the_push_flag_and_a_site_admin(world: World) -> None:
    admin, headers = await _admin(world)
    server = await _server(world, headers, url="http://127.0.0.1:9/", authkey="k" * 40, push=False)
    member = await world.member("Ada", admin.org)

    disabled = await world.client.get(f"/sync/servers/push/{server['id']}", headers=headers)
    refused = await world.client.post(f"/sync/servers/push/{server['id']}", headers=member.headers)
    unknown = await world.client.get("/sync/servers/push/999999999", headers=headers)
    nonsense = await world.client.get(
        f"/sync/servers/push/{server['id']}/{uuid.uuid4()}", headers=headers
    )

    assert disabled.status_code == 403
    assert disabled.json()["code"] == "push_disabled"
    assert refused.status_code == 403
    assert unknown.status_code == 404
    assert nonsense.status_code == 400  # no such event here
    assert nonsense.json()["code"] == "unknown_technique"
