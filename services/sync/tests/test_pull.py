"""Pulling from a remote MISP (the fake one, on 127.0.0.1, allowed for the test): the minimal
index first, nothing downloaded that is blocklisted or here already as new, MISP's rules for
what comes in, a job whose progress says what happened."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tessera.common.testing.broker import eventually, take, tapped
from tessera.sync.service import pull
from tessera.sync.testing.fake_misp import Corpus, FakeMisp, make_event

from .conftest import Member, World


@pytest.fixture
def fake() -> Iterator[FakeMisp]:
    # a seed of its own: events of other tests (same database) are not this test's
    corpus = Corpus(events=12, attributes=20, distributions=(0, 1, 2, 3), orgs=2, sightings=2,
                    seed=random.randrange(2**31))  # fmt: skip
    with FakeMisp(corpus) as running:
        yield running


async def _admin(world: World) -> tuple[Member, dict[str, str]]:
    org = await world.organisation("Home")
    admin = await world.member("Admin", org, role="admin")
    return admin, world.tokens.bearer(admin.id, roles=["superadmin"]) | {
        "Accept": "application/json"
    }


async def _server(
    world: World, headers: dict[str, str], fake: FakeMisp, **extra: Any
) -> dict[str, Any]:
    added = await world.client.post(
        "/sync/servers/add",
        json={"name": "fake", "url": fake.url, "authkey": fake.key, "pull": True,
              "allow_private_addresses": True,
              "Organisation": {"uuid": str(uuid.uuid4()), "name": "Remote"}, **extra},
        headers=headers,
    )  # fmt: skip
    assert added.status_code == 200, added.text
    server: dict[str, Any] = added.json()["Server"]
    assert fake.key not in added.text  # the key is never answered
    return server


async def _pulled(world: World, headers: dict[str, str], path: str) -> dict[str, Any]:
    started = await world.client.get(path, headers=headers)
    assert started.status_code == 200, started.text
    job_url = started.json()["url"]

    async def done() -> dict[str, Any] | None:
        job = (await world.client.get(job_url, headers=headers)).json()
        return job if job["status"] in ("done", "failed") else None

    job: dict[str, Any] = await eventually(done, timeout=30, what="the pull job")
    return job


async def test_a_pull_brings_published_events_in_as_misp_rewrites_them(
    world: World, fake: FakeMisp
) -> None:
    admin, headers = await _admin(world)
    server = await _server(world, headers, fake)

    tested = await world.client.post(
        f"/sync/servers/testConnection/{server['id']}", headers=headers
    )
    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")

    assert tested.json()["status"] == 1
    assert job["status"] == "done", job
    assert job["seen"] == 12
    assert job["fetched"] == 12
    assert job["failed"] == 0
    rows = await world.query(
        "SELECT e.uuid, e.distribution, e.locked, e.org_id, e.attribute_count, o.uuid AS orgc, "
        "e.source_server_id "
        "FROM events e JOIN organisations o ON o.id = e.orgc_id WHERE e.uuid = ANY($1::uuid[])",
        [uuid.UUID(u) for u in fake.uuids()],
    )
    assert len(rows) == 12
    by_uuid = {str(r["uuid"]): r for r in rows}
    for n in range(12):
        row = by_uuid[fake.event_uuid(n)]
        sent = (0, 1, 2, 3)[n % 4]
        assert row["distribution"] == {0: 0, 1: 0, 2: 1, 3: 3}[sent]  # 1->0, 2->1 on pull
        assert row["locked"] is True
        assert row["org_id"] == int(server["org_id"])  # Org: the server's organisation
        assert row["source_server_id"] == int(server["id"])  # never pushed back there
        assert str(row["orgc"]) != str(admin.org)  # Orgc: the creator, kept
        assert row["attribute_count"] > 0
    sightings = await world.query(
        "SELECT count(*) AS n FROM sightings s JOIN events e ON e.id = s.event_id "
        "WHERE e.uuid = $1", uuid.UUID(fake.event_uuid(0)),
    )  # fmt: skip
    assert sightings[0]["n"] == 2


async def test_pulling_again_downloads_only_what_changed(world: World, fake: FakeMisp) -> None:
    _, headers = await _admin(world)
    server = await _server(world, headers, fake)
    await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")
    fake.counters.reset()

    unchanged = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")
    assert unchanged["status"] == "done"
    assert unchanged["fetched"] == 0
    assert sum(fake.counters.views.values()) == 0
    assert fake.counters.not_modified == 1  # the index's ETag

    changed = [fake.event_uuid(1), fake.event_uuid(5)]
    fake.bump(changed)
    fake.counters.reset()
    again = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")

    assert again["fetched"] == 2
    assert again["skipped"] == 10
    assert set(fake.counters.views) == set(changed)


async def test_a_blocklisted_event_is_never_downloaded(world: World, fake: FakeMisp) -> None:
    _, headers = await _admin(world)
    server = await _server(world, headers, fake)
    blocked = fake.event_uuid(3)
    await world.query(
        "INSERT INTO event_blocklists (event_uuid, event_info, created_at) VALUES ($1, '', now())",
        uuid.UUID(blocked),
    )

    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")

    assert job["skipped"] == 1
    assert blocked not in fake.counters.views
    assert not await world.query("SELECT 1 FROM events WHERE uuid = $1", uuid.UUID(blocked))


HOST_ORG = uuid.UUID("5f6a1c2e-0000-4000-8000-0000000a0057")


@pytest.mark.sync_settings(host_org_uuid=HOST_ORG)
async def test_an_internal_server_of_the_host_organisation_keeps_distribution_levels(
    world: World, fake: FakeMisp
) -> None:
    """MISP's ``internal``: only a link from the host organisation to itself; any other
    server asked to be internal is saved as not internal, and its data rewritten."""
    await world.organisation("Host", HOST_ORG)
    admin = await world.member("Admin", HOST_ORG, role="admin")
    headers = world.tokens.bearer(admin.id, roles=["superadmin"]) | {"Accept": "application/json"}
    partner = await _server(world, headers, fake, internal=True)
    own = await _server(
        world, headers, fake, internal=True, Organisation={"uuid": str(HOST_ORG), "name": "Host"}
    )

    job = await _pulled(world, headers, f"/sync/servers/pull/{own['id']}")

    assert (partner["internal"], own["internal"]) == (False, True)
    assert job["status"] == "done", job
    rows = await world.query(
        "SELECT uuid, distribution FROM events WHERE uuid = ANY($1::uuid[])",
        [uuid.UUID(u) for u in fake.uuids()],
    )
    kept = {str(r["uuid"]): r["distribution"] for r in rows}
    assert kept == {fake.event_uuid(n): (0, 1, 2, 3)[n % 4] for n in range(12)}


async def test_an_event_pulled_by_uuid_from_a_blocklisted_organisation_is_not_stored(
    world: World, fake: FakeMisp
) -> None:
    """Asked for by uuid, the event skips the index (where organisations are filtered): its
    creator is checked once it is downloaded, and the item counts as skipped, not fetched."""
    import httpx

    shunned, event_uuid = uuid.uuid4(), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=fake.url, headers={"Authorization": fake.key}) as misp:
        added = await misp.post("/events/add", json={"Event": {
            "uuid": event_uuid, "info": "shunned", "published": True, "distribution": 3,
            "timestamp": "1700000000", "Orgc": {"uuid": str(shunned), "name": "Shunned"},
            "Attribute": [{"type": "domain", "value": "shunned.example"}],
        }})  # fmt: skip
    assert added.status_code == 200, added.text
    await world.query(
        "INSERT INTO org_blocklists (org_uuid, created_at) VALUES ($1, now())", shunned
    )
    _, headers = await _admin(world)
    server = await _server(world, headers, fake)

    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}/{event_uuid}")

    assert job["status"] == "done", job
    assert (job["skipped"], job["fetched"], job["total"]) == (1, 0, 0)
    assert not await world.query("SELECT 1 FROM events WHERE uuid = $1", uuid.UUID(event_uuid))
    assert not await world.query("SELECT 1 FROM organisations WHERE uuid = $1", shunned)


async def test_a_pull_never_overwrites_an_event_made_here(world: World, fake: FakeMisp) -> None:
    """A remote copy of an event made here (unlocked) that is newer there — a remote admin
    edited what it received — fails that item as MISP's pull does ("Blocked an edit to an
    event that was created locally") and leaves the event as it was: not replaced, not
    locked, not marked as pulled from that server."""
    import httpx

    admin, headers = await _admin(world)
    server = await _server(world, headers, fake)
    made = await world.client.post(
        "/sync/events/add",
        json={"info": "made here", "distribution": "3", "published": True,
              "Attribute": [{"type": "domain", "value": "made-here.example"}]},
        headers=admin.headers,
    )  # fmt: skip
    assert made.status_code == 200, made.text
    event_uuid = made.json()["Event"]["uuid"]
    await world.query("UPDATE events SET timestamp = 1600000000 WHERE uuid = $1",
                      uuid.UUID(event_uuid))  # fmt: skip
    async with httpx.AsyncClient(base_url=fake.url, headers={"Authorization": fake.key}) as misp:
        edited_there = await misp.post("/events/add", json={"Event": {
            "uuid": event_uuid, "info": "edited there", "published": True, "distribution": 3,
            "timestamp": "1700000000", "Orgc": {"uuid": str(admin.org), "name": "Home"},
            "Attribute": [{"type": "domain", "value": "edited-there.example"}],
        }})  # fmt: skip
    assert edited_there.status_code == 200, edited_there.text

    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}/{event_uuid}")

    assert job["status"] == "done", job
    assert (job["failed"], job["fetched"]) == (1, 0), job
    assert "Blocked an edit to an event that was created locally" in job["error"]
    here = await world.query(
        "SELECT id, info, locked, timestamp, source_server_id FROM events WHERE uuid = $1",
        uuid.UUID(event_uuid),
    )
    assert [(r["info"], r["locked"], r["timestamp"], r["source_server_id"]) for r in here] == [
        ("made here", False, 1600000000, None)
    ]
    values = await world.query("SELECT value1 FROM attributes WHERE event_id = $1", here[0]["id"])
    assert [r["value1"] for r in values] == ["made-here.example"]


async def test_a_bad_priority_or_technique_is_a_problem_naming_the_field(
    world: World, fake: FakeMisp
) -> None:
    _, headers = await _admin(world)
    server = await _server(world, headers, fake)

    saved = await world.client.post(
        "/sync/servers/add",
        json={"name": "x", "url": fake.url, "authkey": "k", "priority": "high"},
        headers=headers,
    )
    pulled = await world.client.get(f"/sync/servers/pull/{server['id']}/soon", headers=headers)

    assert saved.status_code == 403, saved.text
    assert [e["field"] for e in saved.json()["errors"]] == ["priority"]
    assert pulled.status_code == 400, pulled.text
    assert [e["field"] for e in pulled.json()["errors"]] == ["technique"]


async def test_only_site_admins_manage_servers_and_a_pull_needs_the_pull_flag(
    world: World, fake: FakeMisp
) -> None:
    org = await world.organisation("Home")
    user = await world.member("User", org)
    _, headers = await _admin(world)
    server = await _server(world, headers, fake, pull=False)

    refused = await world.client.post(
        "/sync/servers/add", json={"name": "x", "url": fake.url, "authkey": "k"},
        headers=user.headers,
    )  # fmt: skip
    listed = await world.client.get("/sync/servers/index", headers=headers)
    disabled = await world.client.get(f"/sync/servers/pull/{server['id']}", headers=headers)

    assert refused.status_code == 403
    assert any(s["Server"]["id"] == server["id"] for s in listed.json())
    assert all(fake.key not in str(s) for s in listed.json())
    assert disabled.status_code == 403


async def test_a_large_event_is_pulled_a_batch_at_a_time(world: World) -> None:
    settings = world.app.state.runtime.settings
    settings.stream_events_over_bytes = 64 * 1024  # spool and stream anything over 64 KB
    settings.pull_batch_size = 500
    corpus = Corpus(
        events=1, attributes=5, huge=3000, deleted_every=10, seed=random.randrange(2**31)
    )
    with FakeMisp(corpus) as fake:
        _, headers = await _admin(world)
        server = await _server(world, headers, fake)

        tap = "sync.event.published.v1"
        async with tapped(world.infra.rabbitmq, world.infra.exchange, tap) as queue:
            job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")
            published = await take(world.infra.rabbitmq, queue, expect=2)

        huge = fake.event_uuid(1)
    assert job["fetched"] == 2, job
    assert job["bytes"] > 64 * 1024
    [row] = await world.query(
        "SELECT e.attribute_count, (SELECT count(*) FROM attributes a WHERE a.event_id = e.id) "
        "AS stored, (SELECT count(*) FROM attributes a WHERE a.event_id = e.id AND NOT deleted) "
        "AS live FROM events e WHERE e.uuid = $1",
        uuid.UUID(huge),
    )
    served = make_event(1, attributes=3000, deleted_every=10, seed=corpus.seed)["Event"][
        "Attribute"
    ]
    distinct = {(a["type"], a["category"], a["value"]) for a in served}
    assert row["stored"] == len(distinct)  # MISP's rule: one type, category and value
    assert sum(a["deleted"] for a in served) == 300  # soft deletions carried, not counted
    assert row["attribute_count"] == row["live"] < row["stored"]
    told = [json.loads(m.body)["data"] for m in published]
    [announced] = [d for d in told if d["event_uuid"] == huge]
    assert announced["attribute_count"] == row["attribute_count"]  # live, not rows written


def test_every_organisation_an_event_names_is_settled_before_its_transaction() -> None:
    """``_organisations`` lists what ``settle_parties`` commits first (the creator, sharing
    groups' owners and members, sightings' organisations): one left out would be created
    inside the event's transaction again, and every concurrent event naming it would wait."""
    from tessera.sync.service.pull import _organisations
    from tessera.sync.wire import parse_event

    raw = make_event(3, attributes=6, seed=11)
    body = raw["Event"]
    creator = {"uuid": str(uuid.uuid4()), "name": "Creator"}
    owner = {"uuid": str(uuid.uuid4()), "name": "Owner"}
    member = {"uuid": str(uuid.uuid4()), "name": "Member"}
    seer = {"uuid": str(uuid.uuid4()), "name": "Seer"}
    body["Orgc"] = creator
    body["distribution"] = 4
    body["SharingGroup"] = {
        "uuid": str(uuid.uuid4()),
        "name": "Group",
        "Organisation": owner,
        "SharingGroupOrg": [{"extend": False, "Organisation": member}],
    }
    body["Attribute"][0]["Sighting"] = [
        {"uuid": str(uuid.uuid4()), "date_sighting": "1700000000", "Organisation": seer}
    ]
    event = parse_event(raw, drop_invalid=True)

    named = {str(org.uuid) for org in _organisations(event)}

    assert {creator["uuid"], owner["uuid"], member["uuid"], seer["uuid"]} <= named


async def test_a_pull_whose_delivery_died_before_the_index_is_finished_by_the_redelivery(
    world: World, fake: FakeMisp
) -> None:
    """The first delivery marked the job running and died (the message comes back): the job
    is not left running for ever, the redelivery reads the index and pulls."""
    from tessera.common.testing.broker import publish_envelope

    _, headers = await _admin(world)
    server = await _server(world, headers, fake)
    job_id = uuid.uuid4()
    await world.query(
        "INSERT INTO jobs (id, kind, server_id, status, created_at, started_at) "
        "VALUES ($1, 'pull', $2, 'running', now(), now())",
        job_id, int(server["id"]),
    )  # fmt: skip
    await publish_envelope(world.infra.rabbitmq, world.infra.exchange, {
        "id": str(uuid.uuid4()), "type": "sync.pull.requested", "version": 1,
        "occurred_at": "2026-12-05T10:00:00+00:00", "producer": "sync", "subject": str(job_id),
        "data": {"job_id": str(job_id), "server_id": int(server["id"])},
    })  # fmt: skip

    async def done() -> dict[str, Any] | None:
        job = (await world.client.get(f"/sync/jobs/{job_id}", headers=headers)).json()
        return job if job["status"] in ("done", "failed") else None

    job = await eventually(done, timeout=30, what="the resumed pull")

    assert job["status"] == "done", job
    assert job["fetched"] == job["total"] == 12


async def test_a_key_sealed_under_another_server_key_fails_the_job_and_the_test_not_the_service(
    world: World, fake: FakeMisp
) -> None:
    """``SYNC__SERVER_KEY`` changed since the server was added: its key no longer opens. The
    connection test says so (MISP's status 3) and a pull ends ``failed`` naming it, instead
    of a 500 and a job left running while its message is retried into the DLQ."""
    from tessera.sync.crypto import KeyBox

    _, headers = await _admin(world)
    server = await _server(world, headers, fake)
    other = KeyBox("another server key, of another deployment").seal(fake.key)
    await world.query("UPDATE servers SET authkey = $2 WHERE id = $1", int(server["id"]), other)

    tested = await world.client.post(
        f"/sync/servers/testConnection/{server['id']}", headers=headers
    )
    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")

    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == 3
    assert "SYNC__SERVER_KEY" in tested.json()["message"]
    assert job["status"] == "failed", job
    assert "SYNC__SERVER_KEY" in job["error"]


async def test_a_pulled_part_names_its_sharing_group_by_the_group_it_carries_never_by_id(
    world: World, fake: FakeMisp
) -> None:
    """A remote's ``sharing_group_id`` is its own numbering: an attribute shared with a group
    the event does not carry falls back to the organisation (``captureSGForElement``), one
    whose ``SharingGroup`` comes along gets that group, found or created here by uuid."""
    import httpx

    group = {
        "uuid": str(uuid.uuid4()), "name": f"Group {uuid.uuid4().hex[:6]}", "releasability": "",
        "Organisation": {"uuid": str(uuid.uuid4()), "name": f"Owner {uuid.uuid4().hex[:6]}"},
        "SharingGroupOrg": [],
    }  # fmt: skip
    event_uuid = str(uuid.uuid4())
    bare, carried = str(uuid.uuid4()), str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=fake.url, headers={"Authorization": fake.key}) as misp:
        added = await misp.post("/events/add", json={"Event": {
            "uuid": event_uuid, "info": "groups", "published": True, "distribution": 3,
            "timestamp": "1700000000",
            "Orgc": {"uuid": str(uuid.uuid4()), "name": f"Creator {uuid.uuid4().hex[:6]}"},
            "Attribute": [
                {"uuid": bare, "type": "domain", "value": "bare.example", "distribution": 4,
                 "sharing_group_id": "1"},
                {"uuid": carried, "type": "domain", "value": "carried.example",
                 "distribution": 4, "sharing_group_id": "7", "SharingGroup": group},
            ],
        }})  # fmt: skip
    assert added.status_code == 200, added.text
    _, headers = await _admin(world)
    server = await _server(world, headers, fake)

    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}/{event_uuid}")

    assert job["status"] == "done", job
    rows = await world.query(
        "SELECT a.uuid, a.distribution, a.sharing_group_id, g.uuid AS group_uuid "
        "FROM attributes a LEFT JOIN sharing_groups g ON g.id = a.sharing_group_id "
        "WHERE a.uuid = ANY($1::uuid[])",
        [uuid.UUID(bare), uuid.UUID(carried)],
    )
    found = {str(r["uuid"]): r for r in rows}
    assert found[bare]["distribution"] == 0
    assert found[bare]["sharing_group_id"] is None
    assert found[carried]["distribution"] == 4
    assert str(found[carried]["group_uuid"]) == group["uuid"]


async def test_pull_rules_reach_the_remote_as_misp_sends_them(world: World, fake: FakeMisp) -> None:
    """``{"orgs": {"NOT": [x]}}`` goes out as ``org: ["!x"]`` (``filterRuleToParameter``):
    the remote leaves that creator's events out of the index, so they are never fetched."""
    from tessera.sync.testing import fake_misp

    left_out = fake_misp._creator(fake.corpus.seed, 0).uuid
    _, headers = await _admin(world)
    server = await _server(world, headers, fake,
                           pull_rules={"orgs": {"OR": [], "NOT": [left_out]}})  # fmt: skip

    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")

    assert job["status"] == "done", job
    assert job["seen"] == job["fetched"] == 6  # of 12, two creators taking turns
    pulled = await world.query(
        "SELECT count(*) AS n FROM events e JOIN organisations o ON o.id = e.orgc_id "
        "WHERE o.uuid = $1::uuid",
        left_out,
    )
    assert pulled[0]["n"] == 0


async def test_servers_edit_changes_only_what_is_sent_and_keeps_the_key_unless_given(
    world: World, fake: FakeMisp
) -> None:
    org = await world.organisation("Home")
    user = await world.member("User", org)
    _, headers = await _admin(world)
    server = await _server(world, headers, fake, pull=False, internal=True)
    url = f"/sync/servers/edit/{server['id']}"
    await world.query("UPDATE servers SET index_etag = 'W/\"x\"' WHERE id = $1", int(server["id"]))

    renamed = await world.client.post(
        url, headers=headers,
        json={"Server": {"name": "renamed", "pull": True, "authkey": "",
                         "pull_rules": {"tags": {"OR": ["tlp:white"], "NOT": []}}}},
    )  # fmt: skip
    hinted = await world.client.post(url, headers=headers, json=renamed.json()["Server"])
    tested = await world.client.post(
        f"/sync/servers/testConnection/{server['id']}", headers=headers
    )
    moved = await world.client.put(url, headers=headers, json={"url": fake.url + "/"})
    rekeyed = await world.client.post(url, headers=headers, json={"authkey": "not the key"})
    tested_again = await world.client.post(
        f"/sync/servers/testConnection/{server['id']}", headers=headers
    )
    bad = await world.client.post(url, headers=headers, json={"url": "ftp://x", "name": " "})
    refused = await world.client.post(url, headers=user.headers, json={"name": "mine"})
    missing = await world.client.post("/sync/servers/edit/999999999", headers=headers, json={})

    assert renamed.status_code == 200, renamed.text
    edited = renamed.json()["Server"]
    assert edited["name"] == "renamed"
    assert edited["pull"] is True
    assert edited["push"] is False  # not sent: unchanged
    assert edited["url"] == fake.url
    assert json.loads(edited["pull_rules"]) == {"tags": {"OR": ["tlp:white"], "NOT": []}}
    assert edited["internal"] is False  # the remote is not the host organisation
    assert hinted.status_code == 200, hinted.text  # what PyMISP's update_server sends back
    assert tested.json()["status"] == 1  # neither the empty key nor the hint replaced the key
    assert moved.json()["Server"]["url"] == fake.url + "/"
    [row] = await world.query("SELECT index_etag, authkey FROM servers WHERE id = $1",
                              int(server["id"]))  # fmt: skip
    assert row["index_etag"] is None  # another URL: the old index's ETag means nothing
    assert "not the key" not in str(row["authkey"])  # sealed, as on add
    assert rekeyed.status_code == 200
    assert tested_again.json()["status"] == 3  # the remote refuses the new key
    assert bad.status_code == 403
    assert {e["field"] for e in bad.json()["errors"]} == {"name", "url"}
    assert refused.status_code == 403
    assert missing.status_code == 404


async def test_a_deleted_server_is_gone_and_its_jobs_stay(world: World, fake: FakeMisp) -> None:
    org = await world.organisation("Home")
    user = await world.member("User", org)
    _, headers = await _admin(world)
    server = await _server(world, headers, fake)
    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")
    brought = await world.query(
        "SELECT id FROM events WHERE source_server_id = $1", int(server["id"])
    )

    refused = await world.client.post(f"/sync/servers/delete/{server['id']}", headers=user.headers)
    deleted = await world.client.post(f"/sync/servers/delete/{server['id']}", headers=headers)
    again = await world.client.post(f"/sync/servers/delete/{server['id']}", headers=headers)
    listed = await world.client.get("/sync/servers/index", headers=headers)
    pulled = await world.client.get(f"/sync/servers/pull/{server['id']}", headers=headers)
    kept = await world.client.get(f"/sync/jobs/{job['id']}", headers=headers)

    assert refused.status_code == 403
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["message"] == "Server deleted"
    assert again.status_code == 404
    assert all(s["Server"]["id"] != server["id"] for s in listed.json())
    assert pulled.status_code == 404
    assert kept.json()["status"] == "done"
    assert kept.json()["server_id"] is None
    assert brought  # the pull brought events from it...
    kept_events = await world.query(
        "SELECT source_server_id FROM events WHERE id = ANY($1::bigint[])",
        [r["id"] for r in brought],
    )
    assert [r["source_server_id"] for r in kept_events] == [None] * len(brought)  # ...they stay


async def test_an_unforeseen_failure_is_counted_in_the_job_once_retries_are_spent(
    world: World, fake: FakeMisp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection: a bug in writing one event (every attempt raises). The item is
    retried, then counted as failed with its reason, and the job ends: it does not stay
    ``running`` with an event in the dead-letter queue and nothing said."""
    _, headers = await _admin(world)
    server = await _server(world, headers, fake)
    doomed = fake.event_uuid(3)  # distribution 3: pulled
    attempts: list[str] = []
    start = pull.PulledWriter.start

    async def broken(self: pull.PulledWriter, event: Any) -> bool:
        if str(event.uuid) == doomed:
            attempts.append(doomed)
            raise RuntimeError("a bug")
        return await start(self, event)

    monkeypatch.setattr(pull.PulledWriter, "start", broken)
    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")

    assert job["status"] == "done", job
    assert job["failed"] == 1
    assert job["fetched"] == job["total"] - 1
    assert job["error"] == f"{doomed}: internal error (RuntimeError), see the sync service's log"
    assert len(attempts) == world.app.state.runtime.topology.max_attempts


async def test_an_unforeseen_failure_of_a_jobs_first_step_fails_the_job(
    world: World, fake: FakeMisp, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = await _admin(world)
    server = await _server(world, headers, fake)

    def broken(index: Any) -> Any:
        raise KeyError("a bug")

    monkeypatch.setattr(pull, "_entries", broken)
    job = await _pulled(world, headers, f"/sync/servers/pull/{server['id']}")

    assert job["status"] == "failed", job
    assert job["error"] == "internal error (KeyError), see the sync service's log"
