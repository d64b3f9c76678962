"""MISP's separate sighting push between two Tessera sync instances: a push offers the
sightings of the events the peer has already (``filterSightingUuidsForPush``), sends only
those it lacks (``bulkSaveSightings``), under MISP's default sighting policy, and the peer
keeps each sighting once by its uuid."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest

from tessera.common.testing import Infra
from tessera.common.testing.broker import eventually
from tessera.sync.testing.fake_misp import Corpus, FakeMisp

from .conftest import Instance, InstanceWorld, Member, World, running_peer

SYNC_ORG = uuid.uuid4()
"""the peer's organisation whose users are sync users (the home instance's account there)"""


@pytest.fixture(scope="module")
def peer(infra: Infra) -> Iterator[Instance]:
    """A second sync instance where the users of ``SYNC_ORG`` are sync users."""
    with running_peer(infra, SYNC_ORG) as other:
        yield other


@pytest.fixture(autouse=True)
async def _push_off_afterwards(world: World) -> AsyncIterator[None]:
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


async def _event(client: httpx.AsyncClient, headers: dict[str, str], values: list[str]) -> Any:
    body = {
        "info": f"sighted {uuid.uuid4().hex[:6]}", "distribution": "3", "published": True,
        "Attribute": [{"type": "domain", "value": v, "distribution": "5"} for v in values],
    }  # fmt: skip
    added = await client.post("/sync/events/add", json=body, headers=headers)
    assert added.status_code == 200, added.text
    return added.json()["Event"]


async def _sight(world: World, headers: dict[str, str], attribute_uuid: str) -> str:
    sighted = await world.client.post(
        f"/sync/sightings/add/{attribute_uuid}", json={"source": "test"}, headers=headers
    )
    assert sighted.status_code == 200, sighted.text
    found: str = sighted.json()["Sighting"]["uuid"]
    return found


async def _push(world: World, headers: dict[str, str], server: int | str) -> dict[str, Any]:
    """A push job (of ``/sync/servers/push/{server}``, or of the path given), settled."""
    path = server if isinstance(server, str) else f"/sync/servers/push/{server}"
    return await _job(world, headers, path)


async def _job(world: World, headers: dict[str, str], path: str) -> dict[str, Any]:
    """The job ``path`` (a pull or a push) starts, once settled."""
    started = await world.client.get(path, headers=headers)
    assert started.status_code == 200, started.text

    async def done() -> dict[str, Any] | None:
        job = (await world.client.get(started.json()["url"], headers=headers)).json()
        return job if job["status"] in ("done", "failed") else None

    job: dict[str, Any] = await eventually(done, timeout=30, what="the job")
    return job


async def _sightings_there(there: InstanceWorld, event_uuid: str) -> list[Any]:
    return await there.query(
        "SELECT s.uuid, o.uuid AS org FROM sightings s JOIN events e ON e.id = s.event_id "
        "LEFT JOIN organisations o ON o.id = s.org_id WHERE e.uuid = $1",
        uuid.UUID(event_uuid),
    )


async def test_a_push_sends_the_peer_only_the_sightings_it_lacks_and_never_twice(
    world: World, there: InstanceWorld, peer: Instance
) -> None:
    admin, headers = await _admin(world)
    await world.organisation("Peer", SYNC_ORG)
    analyst = await world.member("Analyst", SYNC_ORG)  # of the peer's organisation, here
    event = await _event(world.client, headers, [f"s{uuid.uuid4().hex[:8]}.example"])
    attribute = event["Attribute"][0]["uuid"]
    first_sighting = await _sight(world, analyst.headers, attribute)
    account = await there.member("Sync", SYNC_ORG)
    added = await world.client.post(
        "/sync/servers/add",
        json={"name": "peer", "push": True, "push_sightings": True,
              "allow_private_addresses": True, "url": peer.url, "authkey": account.key,
              "Organisation": {"uuid": str(SYNC_ORG), "name": "Peer"},
              "push_rules": {"orgs": {"OR": [str(admin.org)]}}},
        headers=headers,
    )  # fmt: skip
    assert added.status_code == 200, added.text
    server_id = int(added.json()["Server"]["id"])

    first = await _push(world, headers, server_id)
    assert (first["pushed"], first["failed"], first["sightings"]) == (1, 0, 0), first
    assert {r["uuid"] for r in await _sightings_there(there, event["uuid"])} == {
        uuid.UUID(first_sighting)  # sent inside the event
    }

    await anyio.sleep(1.1)  # sighting timestamps are seconds: the new ones must be newer
    new = {await _sight(world, analyst.headers, attribute) for _ in range(2)}
    # the home organisation's own: MISP reads the sightings as the peer's organisation, which
    # neither holds the event nor made this one (Sightings_policy 0)
    home_sighting = await _sight(world, headers, attribute)

    second = await _push(world, headers, server_id)
    assert second["status"] == "done", second
    assert second["pushed"] == 0  # the peer has the event as new: skipped
    assert second["error"] is None, second
    assert second["sightings"] == 2, second  # the first one is there already: not sent
    received = await _sightings_there(there, event["uuid"])
    assert {r["uuid"] for r in received} == {uuid.UUID(u) for u in {first_sighting, *new}}
    assert uuid.UUID(home_sighting) not in {r["uuid"] for r in received}
    assert {r["org"] for r in received} == {SYNC_ORG}  # who saw them travels with them

    third = await _push(world, headers, server_id)
    assert (third["sightings"], third["error"]) == (0, None), third
    again = await _sightings_there(there, event["uuid"])
    assert sorted(r["uuid"] for r in again) == sorted(r["uuid"] for r in received)


async def test_without_push_sightings_the_peer_is_sent_no_sightings(
    world: World, there: InstanceWorld, peer: Instance
) -> None:
    admin, headers = await _admin(world)
    await world.organisation("Peer", SYNC_ORG)
    analyst = await world.member("Analyst", SYNC_ORG)
    event = await _event(world.client, headers, [f"n{uuid.uuid4().hex[:8]}.example"])
    account = await there.member("Sync", SYNC_ORG)
    added = await world.client.post(
        "/sync/servers/add",
        json={"name": "peer", "push": True, "allow_private_addresses": True, "url": peer.url,
              "authkey": account.key, "Organisation": {"uuid": str(SYNC_ORG), "name": "Peer"},
              "push_rules": {"orgs": {"OR": [str(admin.org)]}}},
        headers=headers,
    )  # fmt: skip
    server_id = int(added.json()["Server"]["id"])
    assert (await _push(world, headers, server_id))["pushed"] == 1
    await anyio.sleep(1.1)
    await _sight(world, analyst.headers, event["Attribute"][0]["uuid"])

    job = await _push(world, headers, server_id)

    assert job["sightings"] == 0, job
    assert await _sightings_there(there, event["uuid"]) == []


async def test_a_push_sends_a_misp_server_the_sightings_it_lacks_in_misps_shapes(
    world: World,
) -> None:
    admin, headers = await _admin(world)
    fake_org = await world.organisation("Fake's owner")
    analyst = await world.member("Analyst", fake_org)  # of the fake's organisation, here
    event = await _event(world.client, headers, [f"f{uuid.uuid4().hex[:8]}.example"])
    attribute = event["Attribute"][0]["uuid"]
    carried = await _sight(world, analyst.headers, attribute)
    with FakeMisp(Corpus(events=1, attributes=1)) as fake:
        added = await world.client.post(
            "/sync/servers/add",
            json={"name": "fake", "push": True, "push_sightings": True,
                  "allow_private_addresses": True, "url": fake.url, "authkey": fake.key,
                  "Organisation": {"uuid": str(fake_org), "name": "Fake"},
                  "push_rules": {"orgs": {"OR": [str(admin.org)]}}},
            headers=headers,
        )  # fmt: skip
        server_id = int(added.json()["Server"]["id"])
        first = await _push(world, headers, server_id)
        assert (first["pushed"], first["sightings"]) == (1, 0), first
        sent = fake.pushed[event["uuid"]].body["Attribute"][0]["Sighting"]
        assert [s["uuid"] for s in sent] == [carried]

        await anyio.sleep(1.1)
        new = await _sight(world, analyst.headers, attribute)
        fake.counters.reset()
        second = await _push(world, headers, server_id)
        third = await _push(world, headers, server_id)

    assert (second["sightings"], second["error"]) == (1, None), second
    received = fake.received_sightings[event["uuid"]]
    assert set(received) == {new}
    assert received[new]["attribute_uuid"] == attribute
    assert received[new]["Organisation"]["uuid"] == str(fake_org)
    assert fake.counters.requests["sightings/filterSightingUuidsForPush"] == 1
    assert fake.counters.requests["sightings/bulkSaveSightings"] == 1  # not the third time
    assert third["sightings"] == 0, third


async def test_sightings_made_here_go_back_to_the_server_the_event_was_pulled_from(
    world: World,
) -> None:
    _, headers = await _admin(world)
    fake_org = await world.organisation("Fake's owner")
    analyst = await world.member("Analyst", fake_org)
    corpus = Corpus(events=1, attributes=2, distributions=(3,), seed=random.randrange(2**31))
    with FakeMisp(corpus) as fake:
        added = await world.client.post(
            "/sync/servers/add",
            json={"name": "fake", "pull": True, "push": True, "push_sightings": True,
                  "allow_private_addresses": True, "url": fake.url, "authkey": fake.key,
                  "Organisation": {"uuid": str(fake_org), "name": "Fake"}},
            headers=headers,
        )  # fmt: skip
        server_id = int(added.json()["Server"]["id"])
        pulled = fake.event_uuid(0)
        pull = await _job(world, headers, f"/sync/servers/pull/{server_id}/{pulled}")
        assert pull["fetched"] == 1, pull
        viewed = await world.client.get(f"/sync/events/view/{pulled}", headers=headers)
        attribute = viewed.json()["Event"]["Attribute"][0]["uuid"]
        sighting = await _sight(world, analyst.headers, attribute)

        job = await _push(world, headers, f"/sync/servers/push/{server_id}/{pulled}")

    assert (job["pushed"], job["skipped"], job["sightings"]) == (0, 1, 1), job  # pass-along
    assert set(fake.received_sightings[pulled]) == {sighting}


def _sighting(attribute_uuid: str, **fields: Any) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()), "attribute_uuid": attribute_uuid, "type": "0",
        "date_sighting": "1700000000", "source": "elsewhere", **fields,
    }  # fmt: skip


async def test_the_routes_a_pushing_server_calls_answer_as_misp_does(
    there: InstanceWorld,
) -> None:
    sync = await there.member("Sync", SYNC_ORG)
    event = await _event(there.client, sync.headers, ["a.example", "b.example"])
    other = await _event(there.client, sync.headers, ["c.example"])
    attribute = event["Attribute"][0]["uuid"]
    reporter = str(uuid.uuid4())
    sightings = [
        _sighting(attribute, org_id="7", Organisation={"uuid": reporter, "name": "Reporter"}),
        _sighting(attribute, org_id="0"),  # no organisation (anonymised where it comes from)
        _sighting(other["Attribute"][0]["uuid"]),  # of another event: left out
        _sighting(attribute, source="nul\x00"),  # PostgreSQL's text cannot hold it: left out
    ]

    saved = await there.client.post(
        f"/sync/sightings/bulkSaveSightings/{event['uuid']}", json=sightings,
        headers=sync.headers,
    )  # fmt: skip
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"saved": True, "success": "2 sightings added."}
    again = await there.client.post(
        f"/sync/sightings/bulkSaveSightings/{event['id']}", json={"Sighting": sightings},
        headers=sync.headers,
    )  # fmt: skip
    assert again.json() == {"saved": False, "success": "No sightings added."}
    rows = await _sightings_there(there, event["uuid"])
    assert {r["uuid"]: r["org"] for r in rows} == {
        uuid.UUID(sightings[0]["uuid"]): uuid.UUID(reporter),
        uuid.UUID(sightings[1]["uuid"]): None,
    }
    stamp = await there.query("SELECT sighting_timestamp FROM events WHERE uuid = $1",
                              uuid.UUID(event["uuid"]))  # fmt: skip
    assert stamp[0]["sighting_timestamp"] > 1700000000  # moved on: saved now

    unknown = str(uuid.uuid4())
    known = await there.client.post(
        f"/sync/sightings/filterSightingUuidsForPush/{event['uuid']}",
        json=[sightings[0]["uuid"], sightings[2]["uuid"], unknown, "not a uuid"],
        headers=sync.headers,
    )
    assert known.status_code == 200, known.text
    assert known.json() == [sightings[0]["uuid"]]

    missing = await there.client.post(
        f"/sync/sightings/filterSightingUuidsForPush/{unknown}", json=[], headers=sync.headers
    )
    assert missing.status_code == 404
    assert missing.json()["message"] == "Event not found"
    refused = await there.client.post(
        f"/sync/sightings/bulkSaveSightings/{unknown}", json=sightings, headers=sync.headers
    )
    assert refused.status_code == 405
    assert refused.json()["message"] == "Event not found or not accessible by this user."


async def test_a_user_who_is_not_a_sync_user_saves_sightings_as_their_own_organisation(
    there: InstanceWorld,
) -> None:
    sync = await there.member("Sync", SYNC_ORG)
    event = await _event(there.client, sync.headers, ["d.example"])
    plain_org = await there.organisation("Plain")
    plain = await there.member("Plain", plain_org)
    offered = _sighting(
        event["Attribute"][0]["uuid"], org_id="7",
        Organisation={"uuid": str(uuid.uuid4()), "name": "Claimed"},
    )  # fmt: skip

    filtered = await there.client.post(
        f"/sync/sightings/filterSightingUuidsForPush/{event['uuid']}", json=[offered["uuid"]],
        headers=plain.headers,
    )  # fmt: skip
    saved = await there.client.post(
        f"/sync/sightings/bulkSaveSightings/{event['uuid']}", json=[offered],
        headers=plain.headers,
    )  # fmt: skip

    assert filtered.status_code == 403  # sync users only
    assert saved.json() == {"saved": True, "success": "1 sightings added."}
    rows = await _sightings_there(there, event["uuid"])
    assert [r["org"] for r in rows] == [plain_org]


async def test_a_sighting_added_here_moves_its_event_sighting_timestamp(
    there: InstanceWorld,
) -> None:
    sync = await there.member("Sync", SYNC_ORG)
    event = await _event(there.client, sync.headers, ["e.example"])
    before = await there.query(
        "SELECT sighting_timestamp FROM events WHERE uuid = $1", uuid.UUID(event["uuid"])
    )

    sighted = await there.client.post(
        f"/sync/sightings/add/{event['Attribute'][0]['uuid']}", json={}, headers=sync.headers
    )

    assert sighted.status_code == 200, sighted.text
    after = await there.query(
        "SELECT sighting_timestamp FROM events WHERE uuid = $1", uuid.UUID(event["uuid"])
    )
    assert before[0]["sighting_timestamp"] == 0
    assert after[0]["sighting_timestamp"] > 0  # what a push compares with a remote's
