"""The real PyMISP client, unchanged, against the sync service served by a real uvicorn
server: ``PyMISP("http://127.0.0.1:<port>/sync/", key)`` creates, edits, tags, sights,
publishes and deletes events, manages sharing groups, and every sample event of PyMISP's own tests
(``tests/data/misp``) goes in with ``add_event`` and comes back the same."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from tessera.sync.testing.pymisp_flows import lifecycle, objects, round_trip

from .conftest import World

DATA = Path(__file__).parent / "data" / "misp"
SAMPLES = sorted(DATA.glob("*.json"))


async def test_pymisp_creates_edits_tags_sights_publishes_and_deletes_an_event(
    world: World, served: str
) -> None:
    org = await world.organisation("PyMISP")
    admin = await world.member("Ada", org, role="admin")

    await asyncio.to_thread(lifecycle, served, admin.key)


async def test_pymisp_adds_updates_references_and_deletes_objects(
    world: World, served: str
) -> None:
    org = await world.organisation("PyMISP")
    ada = await world.member("Ada", org)

    await asyncio.to_thread(objects, served, ada.key)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
async def test_pymisps_sample_events_go_in_and_come_back_the_same(
    world: World, served: str, sample: Path
) -> None:
    org = await world.organisation("Samples")
    admin = await world.member("Sam", org, role="admin")

    await asyncio.to_thread(round_trip, served, admin.key, sample)


def _administers(url: str, key: str) -> None:
    """PyMISP's server and blocklist calls, as an administrator's script makes them."""
    from pymisp import MISPEventBlocklist, MISPServer, PyMISP

    misp = PyMISP(url, key, ssl=False)
    server = MISPServer()
    partner = {"uuid": str(uuid.uuid4()), "name": "Partner"}
    server.from_dict(name="Partner", url="https://misp.partner.example", authkey="k" * 40,
                     pull=True, Organisation=partner)  # fmt: skip
    added = misp.add_server(server, pythonify=True)
    assert isinstance(added, MISPServer), added
    added.name = "Partner CERT"
    added.pull = False
    updated = misp.update_server(added, pythonify=True)
    assert isinstance(updated, MISPServer), updated
    assert (updated.name, updated.pull) == ("Partner CERT", False)
    assert misp.delete_server(updated)["message"] == "Server deleted"
    assert all(s.id != updated.id for s in misp.servers(pythonify=True))

    blocked = str(uuid.uuid4())
    answer = misp.add_event_blocklist([blocked], comment="noise", event_info="a scan")
    assert answer["result"]["successes"] == [blocked], answer
    [entry] = [e for e in misp.event_blocklists(pythonify=True) if e.event_uuid == blocked]
    assert isinstance(entry, MISPEventBlocklist)
    entry.comment = "still noise"
    edited = misp.update_event_blocklist(entry, pythonify=True)
    assert isinstance(edited, MISPEventBlocklist), edited
    assert edited.comment == "still noise"
    assert "errors" in misp.add_event({"info": "back?", "uuid": blocked})
    assert misp.delete_event_blocklist(entry)["message"] == "Blocklist entry removed"
    org = str(uuid.uuid4())
    assert misp.add_organisation_blocklist([org], org_name="Gone")["result"]["fails"] == []
    [listed] = [o for o in misp.organisation_blocklists(pythonify=True) if o.org_uuid == org]
    assert misp.delete_organisation_blocklist(listed)["message"] == "Blocklist entry removed"


async def test_pymisp_manages_servers_and_blocklists(world: World, served: str) -> None:
    org = await world.organisation("Admins")
    admin = await world.member("Ada", org, role="admin")
    world.app.state.runtime.settings.roles.users[admin.id] = "admin"  # MISP's site admin

    await asyncio.to_thread(_administers, served, admin.key)


def _shares(url: str, owner_key: str, ally_key: str, ally_org: str, stranger_key: str) -> None:
    """PyMISP's sharing-group calls, unchanged: a group made, given an organisation and a
    server, used as an event's distribution, seen by its member and not by a stranger, and
    taken apart again."""
    from pymisp import MISPEvent, MISPSharingGroup, PyMISP

    owner = PyMISP(url, owner_key, ssl=False)
    ally = PyMISP(url, ally_key, ssl=False)
    stranger = PyMISP(url, stranger_key, ssl=False)
    group = MISPSharingGroup()
    group.name = f"Partners {uuid.uuid4().hex[:8]}"
    group.releasability = "the partners"
    made = owner.add_sharing_group(group, pythonify=True)
    assert isinstance(made, MISPSharingGroup), made
    assert made.name == group.name
    added = owner.add_org_to_sharing_group(made, ally_org)
    assert added["message"] == "Organisation added to the sharing group.", added
    assert "errors" in owner.add_org_to_sharing_group(made, ally_org)  # already in it
    fetched = owner.get_sharing_group(made, pythonify=True)
    assert isinstance(fetched, MISPSharingGroup), fetched
    assert {o.Organisation.uuid for o in fetched.sgorgs} >= {ally_org}
    fetched.description = "what we share with the partners"
    updated = owner.update_sharing_group(fetched, pythonify=True)
    assert isinstance(updated, MISPSharingGroup), updated
    assert updated.description == "what we share with the partners"
    assert owner.sharing_group_exists(made)
    assert ally.sharing_group_exists(made)
    assert not stranger.sharing_group_exists(made)
    assert [g.id for g in owner.sharing_groups(pythonify=True) if g.id == made.id] == [made.id]
    assert all(g.id != made.id for g in stranger.sharing_groups(pythonify=True))

    event = MISPEvent()
    event.info = "for the partners"
    event.distribution = 4
    event.sharing_group_id = made.id
    event.add_attribute("domain", "partners.example.org")
    shared = owner.add_event(event, pythonify=True)
    assert isinstance(shared, MISPEvent), shared
    assert ally.event_exists(shared)
    assert [e.id for e in ally.search(eventid=shared.id, pythonify=True)] == [shared.id]
    assert not stranger.event_exists(shared)
    assert stranger.search(eventid=shared.id, pythonify=True) == []

    removed = owner.remove_org_from_sharing_group(made, ally_org)
    assert removed["message"] == "Organisation removed from the sharing group.", removed
    assert not ally.event_exists(shared)
    assert "errors" in owner.delete_sharing_group(made)  # the event still names it
    owner.delete_event(shared)
    assert owner.delete_sharing_group(made)["message"] == "SharingGroup deleted"
    assert not owner.sharing_group_exists(made)


def _servers_of_a_group(url: str, admin_key: str) -> None:
    """``add_server_to_sharing_group`` and ``remove_server_from_sharing_group``: a server
    entry a site admin made, by its id."""
    from pymisp import MISPServer, MISPSharingGroup, PyMISP

    misp = PyMISP(url, admin_key, ssl=False)
    server = MISPServer()
    partner = {"uuid": str(uuid.uuid4()), "name": "P"}
    server.from_dict(name=f"Partner {uuid.uuid4().hex[:8]}", url="https://misp.partner.example",
                     authkey="k" * 40, Organisation=partner)  # fmt: skip
    added = misp.add_server(server, pythonify=True)
    assert isinstance(added, MISPServer), added
    group = MISPSharingGroup()
    group.name = f"Servers {uuid.uuid4().hex[:8]}"
    made = misp.add_sharing_group(group, pythonify=True)
    assert isinstance(made, MISPSharingGroup), made
    answer = misp.add_server_to_sharing_group(made, added, all_orgs=True)
    assert answer["message"] == "Server added to the sharing group.", answer
    viewed = misp.get_sharing_group(made)
    assert {(s["server_id"], s["all_orgs"]) for s in viewed["SharingGroupServer"]} == {
        ("0", False),
        (str(added.id), True),
    }
    answer = misp.remove_server_from_sharing_group(made, added)
    assert answer["message"] == "Server removed from the sharing group.", answer
    assert "errors" in misp.remove_server_from_sharing_group(made, added)
    assert misp.delete_sharing_group(made)["message"] == "SharingGroup deleted"


async def test_pymisp_manages_sharing_groups_that_events_are_shared_with(
    world: World, served: str
) -> None:
    owner = await world.member("Owner", await world.organisation("Lab"), role="admin")
    partner = await world.organisation("Partner")
    ally = await world.member("Ally", partner)
    stranger = await world.member("Stranger", await world.organisation("Out"))

    await asyncio.to_thread(_shares, served, owner.key, ally.key, str(partner), stranger.key)


async def test_pymisp_adds_and_removes_a_sharing_groups_servers(world: World, served: str) -> None:
    admin = await world.member("Ada", await world.organisation("Admins"), role="admin")
    world.app.state.runtime.settings.roles.users[admin.id] = "admin"  # MISP's site admin

    await asyncio.to_thread(_servers_of_a_group, served, admin.key)
