"""MISP's event and organisation blocklists through their routes: who may manage them, MISP's
answers, and that what is listed stays out (and comes in again once taken off)."""

from __future__ import annotations

import uuid

import pytest

from .conftest import Member, World

HOST_ORG = uuid.uuid4()


async def _site_admin(world: World) -> dict[str, str]:
    admin = await world.member("Admin", await world.organisation("Home"), role="admin")
    return world.tokens.bearer(admin.id, roles=["superadmin"]) | {"Accept": "application/json"}


async def _added(world: World, member: Member, event_uuid: uuid.UUID) -> int:
    added = await world.client.post(
        "/sync/events/add", headers=member.headers,
        json={"info": "blocked?", "uuid": str(event_uuid)},
    )  # fmt: skip
    return added.status_code


async def test_a_listed_event_uuid_stays_out_until_taken_off(world: World) -> None:
    headers = await _site_admin(world)
    ada = await world.member("Ada", await world.organisation("Lab"))
    blocked, other = uuid.uuid4(), uuid.uuid4()

    listed = await world.client.post(
        "/sync/eventBlocklists/add", headers=headers,
        json={"uuids": [str(blocked), "not a uuid"], "comment": "noise", "event_info": "scan"},
    )  # fmt: skip
    twice = await world.client.post(
        "/sync/eventBlocklists/add", headers=headers,
        json={"EventBlocklist": {"uuids": f"{blocked}\n{other}"}},
    )  # fmt: skip
    refused = await _added(world, ada, blocked)
    index = await world.client.get("/sync/eventBlocklists/index", headers=headers)
    edited = await world.client.post(
        f"/sync/eventBlocklists/edit/{blocked}", headers=headers, json={"comment": "still noise"}
    )
    removed = await world.client.post(f"/sync/eventBlocklists/delete/{blocked}", headers=headers)
    removed_again = await world.client.post(
        f"/sync/eventBlocklists/delete/{blocked}", headers=headers
    )
    welcome = await _added(world, ada, blocked)

    assert listed.status_code == 200, listed.text
    assert listed.json() == {
        "result": {"successes": [str(blocked)], "fails": ["not a uuid"]},
        "message": "Done. Added 1 new entries to the blocklist. 1 entries could not be saved.",
    }
    assert twice.json()["result"] == {"successes": [str(other)], "fails": [str(blocked)]}
    assert refused == 403
    [entry] = [e for e in index.json() if e["event_uuid"] == str(blocked)]
    assert entry["comment"] == "noise"
    assert entry["event_info"] == "scan"
    assert edited.json()["EventBlocklist"]["comment"] == "still noise"
    assert edited.json()["EventBlocklist"]["event_info"] == "scan"  # not sent: kept
    assert removed.json()["message"] == "Blocklist entry removed"
    assert removed_again.status_code == 404
    assert welcome == 200


async def test_a_listed_organisation_creates_nothing_here(world: World) -> None:
    headers = await _site_admin(world)
    lab = await world.organisation("Lab")
    ada = await world.member("Ada", lab)

    listed = await world.client.post(
        "/sync/orgBlocklists/add", headers=headers, json={"uuids": [str(lab)], "org_name": "Lab"}
    )
    refused = await _added(world, ada, uuid.uuid4())
    [entry] = [
        e
        for e in (await world.client.get("/sync/orgBlocklists/index", headers=headers)).json()
        if e["org_uuid"] == str(lab)
    ]
    removed = await world.client.delete(
        f"/sync/orgBlocklists/delete/{entry['id']}", headers=headers
    )
    welcome = await _added(world, ada, uuid.uuid4())

    assert listed.json()["result"]["successes"] == [str(lab)]
    assert entry["org_name"] == "Lab"
    assert refused == 403
    assert removed.status_code == 200, removed.text
    assert welcome == 200


@pytest.mark.sync_settings(host_org_uuid=HOST_ORG)
async def test_who_manages_the_blocklists(world: World) -> None:
    await world.organisation("Host", HOST_ORG)
    host_user = await world.member("Hal", HOST_ORG)
    other_user = await world.member("Ola", await world.organisation("Other"))
    read_only = await world.member("Rob", HOST_ORG)
    world.app.state.runtime.settings.roles.users[read_only.id] = "read_only"
    wanted = {"uuids": [str(uuid.uuid4())]}

    by_host = await world.client.post(
        "/sync/eventBlocklists/add", headers=host_user.headers, json=wanted
    )
    by_other = await world.client.post(
        "/sync/eventBlocklists/add", headers=other_user.headers, json=wanted
    )
    index_by_other = await world.client.get(
        "/sync/eventBlocklists/index", headers=other_user.headers
    )
    by_read_only = await world.client.post(
        "/sync/eventBlocklists/add", headers=read_only.headers, json=wanted
    )
    orgs_by_host = await world.client.get("/sync/orgBlocklists/index", headers=host_user.headers)
    empty = await world.client.post(
        "/sync/eventBlocklists/add", headers=host_user.headers, json={"uuids": []}
    )

    assert by_host.status_code == 200, by_host.text
    assert by_other.status_code == index_by_other.status_code == 403
    assert by_read_only.status_code == 403
    assert orgs_by_host.status_code == 403  # the organisation blocklist: site admins only
    assert empty.status_code == 400
    assert empty.json()["errors"][0]["field"] == "uuids"
