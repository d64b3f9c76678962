"""The real PyMISP client, unchanged, against the sync service served by a real uvicorn
server: ``PyMISP("http://127.0.0.1:<port>/sync/", key)`` creates, edits, tags, sights,
publishes and deletes events, and every sample event of PyMISP's own tests
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
