"""Three Tessera sync instances exchange a real event set as three MISP servers would
(PyMISP's ``tests/testlive_sync.py``: three instances, each with the other two's
organisations, a sync user for each and a server entry for each; its complex event pushed
from the first to the second and pulled from the second by the third), and end with exactly
the events, attributes, objects, tags, sightings and distribution levels MISP's rules give.

Who is who (an organisation has the same uuid on every instance, as MISP's sync
organisations have):

* A, "First org": makes the event set; its server entry for B pushes and pulls.
* B, "Second org": receives A's push, pulls from A, makes one event of its own.
* C, "Third org": pulls from B; its server entry for B pushes too (nothing goes back).

The expected tables below are written out by hand from MISP 2.5's rules
(``Event::__updateEventForSync``, ``Server::__updatePulledEventBeforeInsert``,
``Event::createEventConditions``, ``Event::_add``, ``Sighting`` policy 0); nothing in them is
computed by the code under test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx
import pytest

from tessera.common.testing import Infra
from tessera.common.testing.broker import eventually

from .conftest import Instance, InstanceWorld, running_instance

pytestmark = pytest.mark.timeout(300)

OA, OB, OC = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NAMES = {OA: "First org", OB: "Second org", OC: "Third org"}
SYNC_USER = {"admin": "sync_user", "member": "sync_user"}

# the events, by label; their uuids are chosen here so the tables can name them
E = {label: uuid.uuid4() for label in ("org", "community", "connected", "complex", "group_ab",
                                       "group_ac", "unpublished", "of_b")}  # fmt: skip
SG_AB, SG_AC = uuid.uuid4(), uuid.uuid4()
FILE_OBJECT = uuid.uuid4()


def _group(group: uuid.UUID, *orgs: uuid.UUID) -> dict[str, Any]:
    """A roaming sharing group of ``orgs`` (owned by the first), as a site admin sends it."""
    return {
        "uuid": str(group), "name": f"group {group.hex[:6]}", "roaming": True,
        "Organisation": {"uuid": str(orgs[0]), "name": NAMES[orgs[0]]},
        "SharingGroupOrg": [{"Organisation": {"uuid": str(o), "name": NAMES[o]}} for o in orgs],
    }  # fmt: skip


def _attribute(value: str, distribution: int, **extra: Any) -> dict[str, Any]:
    return {"type": "domain", "value": value, "distribution": str(distribution),
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, value)), **extra}  # fmt: skip


def _event(label: str, distribution: int, attributes: list[dict[str, Any]],
           **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"uuid": str(E[label]), "info": f"scenario: {label}", "distribution": str(distribution),
            "published": False, "Attribute": attributes, **extra}  # fmt: skip


# fmt: off
# --- the event set ------------------------------------------------------------------------------

COMPLEX = _event(
    "complex", 3,
    [
        _attribute("complex-d0.example", 0),
        _attribute("complex-d1.example", 1),
        _attribute("complex-d2.example", 2),
        _attribute("complex-d3.example", 3, Tag=[{"name": "tlp:green"}]),
        _attribute("complex-d4.example", 4, SharingGroup=_group(SG_AB, OA, OB)),
        _attribute("complex-d4-ac.example", 4, SharingGroup=_group(SG_AC, OA, OC)),
        _attribute("complex-d5.example", 5),
        _attribute("complex-deleted.example", 3),  # soft-deleted before publishing
    ],
    Tag=[
        {"name": "tlp:white"},
        {"name": "scenario:triage", "local": True},  # a local tag never leaves A
        {"name": "scenario:internal", "exportable": False},  # nor does a non-exportable one
    ],
    Object=[{
        "uuid": str(FILE_OBJECT), "name": "file", "meta-category": "file", "distribution": "2",
        "Attribute": [
            {"type": "filename", "object_relation": "filename", "value": "complex-testfile",
             "distribution": "0"},
            {"type": "md5", "object_relation": "md5", "distribution": "5",
             "value": "3c656da41f4645f77e3ec3281b63dd44"},
        ],
    }],
)  # fmt: skip
"""PyMISP's ``create_complex_event``, with an attribute of each distribution, a sharing
group's, a soft-deleted one, tags of each kind and a sighting (on ``complex-d3``)"""

EVENTS_OF_A = [
    _event("org", 0, [_attribute("org-d5.example", 5)]),
    _event("community", 1, [_attribute("community-d5.example", 5)]),
    _event("connected", 2, [_attribute("connected-d5.example", 5),
                            _attribute("connected-d2.example", 2)]),
    COMPLEX,
    _event("group_ab", 4, [_attribute("group-ab-d5.example", 5)],
           SharingGroup=_group(SG_AB, OA, OB)),
    _event("group_ac", 4, [_attribute("group-ac-d5.example", 5)],
           SharingGroup=_group(SG_AC, OA, OC)),
    _event("unpublished", 3, [_attribute("unpublished-d5.example", 5)]),
]
EVENT_OF_B = _event(
    "of_b", 2,
    [_attribute("b-d0.example", 0), _attribute("b-d1.example", 1),
     _attribute("b-d2.example", 2), _attribute("b-d5.example", 5)],
    Tag=[{"name": "tlp:green"}, {"name": "scenario:b-triage", "local": True}],
)  # fmt: skip


# --- what MISP's rules give -----------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """An event as an instance holds it: its distribution, holder (``org_id``), creator
    (``orgc_id``), ``locked``; its attributes ``{value: (distribution, deleted)}`` (an
    object's included), its objects' distributions, its tags ``(name, local)`` (the
    attributes' too), its sightings' organisations, and the sharing groups of what has
    distribution 4 (``{"event" or value: group uuid}``)."""

    distribution: int
    org: uuid.UUID
    orgc: uuid.UUID
    locked: bool
    attributes: dict[str, tuple[int, bool]]
    objects: dict[uuid.UUID, int] = field(default_factory=dict)
    tags: frozenset[tuple[str, bool]] = frozenset()
    sightings: tuple[uuid.UUID, ...] = ()
    groups: dict[str, uuid.UUID] = field(default_factory=dict)


MD5 = "3c656da41f4645f77e3ec3281b63dd44"
LIVE, DELETED = False, True

ON_A = {
    E["org"]: Held(0, OA, OA, False, {"org-d5.example": (5, LIVE)}),
    E["community"]: Held(1, OA, OA, False, {"community-d5.example": (5, LIVE)}),
    E["connected"]: Held(2, OA, OA, False, {"connected-d5.example": (5, LIVE),
                                            "connected-d2.example": (2, LIVE)}),
    E["complex"]: Held(
        3, OA, OA, False,
        {"complex-d0.example": (0, LIVE), "complex-d1.example": (1, LIVE),
         "complex-d2.example": (2, LIVE), "complex-d3.example": (3, LIVE),
         "complex-d4.example": (4, LIVE), "complex-d4-ac.example": (4, LIVE),
         "complex-d5.example": (5, LIVE), "complex-deleted.example": (3, DELETED),
         "complex-testfile": (0, LIVE), MD5: (5, LIVE)},
        {FILE_OBJECT: 2},
        frozenset({("tlp:white", False), ("scenario:triage", True), ("scenario:internal", False),
                   ("tlp:green", False)}),
        (OA,),
        {"complex-d4.example": SG_AB, "complex-d4-ac.example": SG_AC},
    ),
    E["group_ab"]: Held(4, OA, OA, False, {"group-ab-d5.example": (5, LIVE)},
                        groups={"event": SG_AB}),
    E["group_ac"]: Held(4, OA, OA, False, {"group-ac-d5.example": (5, LIVE)},
                        groups={"event": SG_AC}),
    E["unpublished"]: Held(3, OA, OA, False, {"unpublished-d5.example": (5, LIVE)}),
    # pulled from B (step 5): 2 → 1 and 1 → 0; 0 is B's alone, so is B's local tag; held by
    # A's organisation
    E["of_b"]: Held(1, OA, OB, True, {"b-d1.example": (0, LIVE), "b-d2.example": (1, LIVE),
                                      "b-d5.example": (5, LIVE)},
                    tags=frozenset({("tlp:green", False)})),
}
"""A made its events; it holds them all as made, and B's event as pulled"""

ON_B = {
    # pushed by A (step 2): held by A's sync account's organisation, created by A, locked;
    # 2 sent as 1; an attribute or object of 0 or 1 stays on A; the local and non-exportable
    # tags stay on A; the sighting travels (push_sightings)
    E["connected"]: Held(1, OA, OA, True, {"connected-d5.example": (5, LIVE),
                                           "connected-d2.example": (1, LIVE)}),
    E["complex"]: Held(
        3, OA, OA, True,
        {"complex-d2.example": (1, LIVE), "complex-d3.example": (3, LIVE),
         "complex-d4.example": (4, LIVE), "complex-d5.example": (5, LIVE),
         "complex-deleted.example": (3, DELETED), MD5: (5, LIVE)},
        {FILE_OBJECT: 1},
        frozenset({("tlp:white", False), ("tlp:green", False)}),
        (OA,),
        {"complex-d4.example": SG_AB},  # the A-C group's attribute does not admit B
    ),
    E["group_ab"]: Held(4, OA, OA, True, {"group-ab-d5.example": (5, LIVE)},
                        groups={"event": SG_AB}),
    # pulled from A (step 3), the one event A's push did not send that B's account sees
    # there: 1 → 0, held by B's organisation (the server entry's). The complex event is
    # not pulled again (B has it as new), so its attribute of 1 never reaches B either way.
    E["community"]: Held(0, OB, OA, True, {"community-d5.example": (5, LIVE)}),
    E["of_b"]: Held(2, OB, OB, False, {"b-d0.example": (0, LIVE), "b-d1.example": (1, LIVE),
                                       "b-d2.example": (2, LIVE), "b-d5.example": (5, LIVE)},
                    tags=frozenset({("tlp:green", False), ("scenario:b-triage", True)})),
}
"""org-only, sharing group A-C and unpublished events never left A"""

ON_C = {
    # pulled from B (step 4) with C's account there: what Third org sees on B, 1 → 0, 2 → 1,
    # held by C's organisation. B's community-only copy (now 0, B's) and the A-B group's
    # event and attribute are not seen; the sighting is A's, which policy 0 shows only to
    # the creator organisation; the soft-deleted attribute comes as deleted (a sync user
    # reads deleted parts)
    E["connected"]: Held(0, OC, OA, True, {"connected-d5.example": (5, LIVE),
                                           "connected-d2.example": (0, LIVE)}),
    E["complex"]: Held(
        3, OC, OA, True,
        {"complex-d2.example": (0, LIVE), "complex-d3.example": (3, LIVE),
         "complex-d5.example": (5, LIVE), "complex-deleted.example": (3, DELETED),
         MD5: (5, LIVE)},
        {FILE_OBJECT: 0},
        frozenset({("tlp:white", False), ("tlp:green", False)}),
    ),
    E["of_b"]: Held(1, OC, OB, True, {"b-d1.example": (0, LIVE), "b-d2.example": (1, LIVE),
                                      "b-d5.example": (5, LIVE)},
                    tags=frozenset({("tlp:green", False)})),
}
# fmt: on


# --- the three instances ----------------------------------------------------------------------


@dataclass
class Site:
    """One instance as the scenario drives it: its organisation, its site admin's headers,
    the keys of the sync accounts the other instances use there, its server entries."""

    org: uuid.UUID
    world: InstanceWorld
    admin: dict[str, str] = field(default_factory=dict)
    accounts: dict[uuid.UUID, str] = field(default_factory=dict)
    servers: dict[str, int] = field(default_factory=dict)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.world.client


@pytest.fixture(scope="module")
def instances(infra: Infra) -> Iterator[dict[str, Instance]]:
    """A, B and C: each its host organisation, the other two's users its sync users."""
    made = {}
    with (
        running_instance(infra, host_org_uuid=OA,
                         roles={"organisations": {str(OB): SYNC_USER, str(OC): SYNC_USER}}) as a,
        running_instance(infra, host_org_uuid=OB,
                         roles={"organisations": {str(OA): SYNC_USER, str(OC): SYNC_USER}}) as b,
        running_instance(infra, host_org_uuid=OC,
                         roles={"organisations": {str(OA): SYNC_USER, str(OB): SYNC_USER}}) as c,
    ):  # fmt: skip
        made = {"A": a, "B": b, "C": c}
        yield made


@pytest.fixture
async def sites(instances: dict[str, Instance]) -> AsyncIterator[dict[str, Site]]:
    hosts = {"A": OA, "B": OB, "C": OC}
    async with (
        httpx.AsyncClient(base_url=instances["A"].root, timeout=30) as a,
        httpx.AsyncClient(base_url=instances["B"].root, timeout=30) as b,
        httpx.AsyncClient(base_url=instances["C"].root, timeout=30) as c,
    ):
        clients = {"A": a, "B": b, "C": c}
        made = {n: Site(hosts[n], InstanceWorld.of(instances[n], clients[n])) for n in hosts}
        for site in made.values():
            for org, name in NAMES.items():  # MISP's sync organisations: the same uuids
                await site.world.publish(
                    "auth.organisation.created", {"organisation_id": str(org), "name": name},
                    str(org),
                )  # fmt: skip
            admin = await site.world.member("Admin", site.org, role="admin")
            site.admin = site.world.tokens.bearer(admin.id, roles=["superadmin"]) | {
                "Accept": "application/json"
            }
        # the sync accounts the other instances' server entries use (PyMISP's create_sync_user)
        made["A"].accounts[OB] = (await made["A"].world.member("Sync", OB)).key
        made["B"].accounts[OA] = (await made["B"].world.member("Sync", OA)).key
        made["B"].accounts[OC] = (await made["B"].world.member("Sync", OC)).key
        made["C"].accounts[OB] = (await made["C"].world.member("Sync", OB)).key
        # PyMISP's create_sync_server: pull allowed; push off (it would push on every
        # publication), turned on by _job for the push it starts
        await _link(made["A"], made["B"], instances["B"], "B", push_sightings=True)
        await _link(made["B"], made["A"], instances["A"], "A")
        await _link(made["C"], made["B"], instances["B"], "B")
        await _link(made["B"], made["C"], instances["C"], "C")
        yield made


async def _link(site: Site, remote: Site, instance: Instance, name: str, **extra: Any) -> None:
    """A server entry on ``site`` for ``remote``, with the key of ``site``'s account there
    and ``remote``'s host organisation as its organisation (MISP's ``servers/createSync``)."""
    added = await site.client.post(
        "/sync/servers/add",
        json={"name": name, "url": instance.url, "authkey": remote.accounts[site.org],
              "pull": True, "push": False, "allow_private_addresses": True,
              "Organisation": {"uuid": str(remote.org), "name": NAMES[remote.org]}, **extra},
        headers=site.admin,
    )  # fmt: skip
    assert added.status_code == 200, added.text
    site.servers[name] = int(added.json()["Server"]["id"])


# --- driving them -------------------------------------------------------------------------------


async def _add(site: Site, body: dict[str, Any]) -> dict[str, Any]:
    added = await site.client.post("/sync/events/add", json=body, headers=site.admin)
    assert added.status_code == 200, added.text
    assert "errors" not in added.json(), added.text
    event: dict[str, Any] = added.json()["Event"]
    return event


async def _publish(site: Site, event: uuid.UUID) -> None:
    published = await site.client.post(f"/sync/events/publish/{event}", headers=site.admin)
    assert published.status_code == 200, published.text


async def _push_flag(site: Site, server: str, on: bool) -> None:
    """MISP's server ``push`` setting (no ``servers/edit`` route here): while on, every
    publication on ``site`` pushes to ``server`` as well."""
    await site.world.query("UPDATE servers SET push = $2 WHERE id = $1", site.servers[server], on)


async def _job(site: Site, action: str, server: str, event: uuid.UUID | None = None) -> Any:
    """``servers/{push|pull}/{id}[/{event}]`` by the site admin, once its job has settled; a
    push turns the server's push on for as long as it is started, so that the scenario's own
    publications push nothing by themselves and each step moves only what it says."""
    path = f"/sync/servers/{action}/{site.servers[server]}" + (f"/{event}" if event else "")
    if action == "push":
        await _push_flag(site, server, True)
    try:
        started = await site.client.get(path, headers=site.admin)
    finally:
        if action == "push":
            await _push_flag(site, server, False)
    assert started.status_code == 200, started.text

    async def settled() -> Any:
        job = (await site.client.get(started.json()["url"], headers=site.admin)).json()
        return job if job["status"] in ("done", "failed") else None

    job = await eventually(settled, timeout=60, what=f"the {action} job")
    assert job["status"] == "done", job
    assert job["failed"] == 0, job
    return job


async def _held(site: Site, prefix: str = "scenario:") -> dict[uuid.UUID, Held]:
    """Every event ``site`` holds whose ``info`` starts with ``prefix`` (the events of this
    test, not the other's), read from its database."""
    q = site.world.query
    events = await q(
        "SELECT e.id, e.uuid, e.distribution, e.locked, o.uuid AS org, c.uuid AS orgc, "
        "g.uuid AS sg FROM events e JOIN organisations o ON o.id = e.org_id "
        "JOIN organisations c ON c.id = e.orgc_id "
        "LEFT JOIN sharing_groups g ON g.id = e.sharing_group_id WHERE e.info LIKE $1 || '%'",
        prefix,
    )
    attributes = await q(
        "SELECT a.event_id, a.value1, a.distribution, a.deleted, g.uuid AS sg FROM attributes a "
        "LEFT JOIN sharing_groups g ON g.id = a.sharing_group_id"
    )
    objects = await q("SELECT event_id, uuid, distribution FROM objects")
    tags = await q(
        "SELECT et.event_id, t.name, et.local FROM event_tags et JOIN tags t ON t.id = et.tag_id "
        "UNION ALL SELECT at.event_id, t.name, at.local FROM attribute_tags at "
        "JOIN tags t ON t.id = at.tag_id"
    )
    sightings = await q(
        "SELECT s.event_id, o.uuid FROM sightings s JOIN organisations o ON o.id = s.org_id"
    )
    return {
        e["uuid"]: Held(
            e["distribution"], e["org"], e["orgc"], e["locked"],
            {a["value1"]: (a["distribution"], a["deleted"])
             for a in attributes if a["event_id"] == e["id"]},
            {o["uuid"]: o["distribution"] for o in objects if o["event_id"] == e["id"]},
            frozenset((t["name"], t["local"]) for t in tags if t["event_id"] == e["id"]),
            tuple(s["uuid"] for s in sightings if s["event_id"] == e["id"]),
            ({"event": e["sg"]} if e["sg"] else {})
            | {a["value1"]: a["sg"] for a in attributes if a["event_id"] == e["id"] and a["sg"]},
        )
        for e in events
    }  # fmt: skip


async def _timestamps(site: Site) -> dict[uuid.UUID, int]:
    rows = await site.world.query("SELECT uuid, timestamp FROM events")
    return {r["uuid"]: r["timestamp"] for r in rows}


# --- the scenario -------------------------------------------------------------------------------


async def test_three_instances_end_with_what_misps_rules_give(sites: dict[str, Site]) -> None:
    """The instances are the module's: the jobs' counts below assume this test runs first
    among them (pytest's order; the other test's events are "chain:", never in the tables)."""
    a, b, c = sites["A"], sites["B"], sites["C"]

    # 1. A makes its event set (B one event): added unpublished, the complex event's
    # attribute soft-deleted and its d3 attribute sighted, then each but one published
    for body in EVENTS_OF_A:
        await _add(a, body)
    await _add(b, EVENT_OF_B)
    deleted = await a.client.post(
        f"/sync/attributes/delete/{uuid.uuid5(uuid.NAMESPACE_DNS, 'complex-deleted.example')}",
        headers=a.admin,
    )
    assert deleted.status_code == 200, deleted.text
    sighted = await a.client.post(
        "/sync/sightings/add",
        json={"uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, "complex-d3.example"))},
        headers=a.admin,
    )
    assert sighted.status_code == 200, sighted.text
    for label in E:
        if label not in ("unpublished", "of_b"):
            await _publish(a, E[label])
    await _publish(b, E["of_b"])

    # 2. A pushes to B: the connected, complex and A-B group events (org-only and
    # community-only stay, the A-C group does not admit B, unpublished is no candidate)
    pushed = await _job(a, "push", "B")
    assert (pushed["pushed"], pushed["skipped"]) == (3, 3), pushed

    # 3. B pulls from A: of what B's account sees there (community, connected, complex,
    # A-B group), only the community event is not here as new
    pulled = await _job(b, "pull", "A")
    assert (pulled["seen"], pulled["fetched"], pulled["skipped"]) == (4, 1, 3), pulled

    # 4. C pulls from B: what Third org's account sees there (connected, complex, B's own)
    pulled = await _job(c, "pull", "B")
    assert (pulled["seen"], pulled["fetched"]) == (3, 3), pulled

    # 5. A pulls from B: B's own event is new; A's own come back as new, so are skipped
    pulled = await _job(a, "pull", "B")
    assert (pulled["fetched"], pulled["skipped"]) == (1, pulled["seen"] - 1), pulled

    assert await _held(a) == ON_A
    assert await _held(b) == ON_B
    assert await _held(c) == ON_C

    # 6. an edit on A travels as a newer copy: pushed as an edit to B, pulled again by C
    await anyio.sleep(1.1)  # MISP's timestamps are seconds: the edit must be newer
    edited = await a.client.post(
        f"/sync/events/edit/{E['complex']}",
        json={"published": True, "Attribute": [_attribute("complex-later.example", 5)]},
        headers=a.admin,
    )
    assert edited.status_code == 200, edited.text
    pushed = await _job(a, "push", "B")
    assert pushed["pushed"] == 1, pushed  # the complex event; B's event went back: no
    again = await _job(a, "push", "B", E["complex"])
    assert (again["pushed"], again["skipped"]) == (0, 1), again  # B's copy is as new
    pulled = await _job(c, "pull", "B")
    assert pulled["fetched"] == 1, pulled
    later = {"complex-later.example": (5, LIVE)}
    on_a = ON_A | {E["complex"]: _with(ON_A[E["complex"]], later)}
    on_b = ON_B | {E["complex"]: _with(ON_B[E["complex"]], later)}
    on_c = ON_C | {E["complex"]: _with(ON_C[E["complex"]], later)}
    stamps = {n: await _timestamps(s) for n, s in sites.items()}
    assert stamps["B"][E["complex"]] == stamps["A"][E["complex"]] == stamps["C"][E["complex"]]

    # 7. nothing goes back where it came from: B's push to A and C's push to B send nothing,
    # A's pull from B fetches nothing, and every instance holds what it held
    back = await _job(b, "push", "A")
    assert back["pushed"] == 0, back
    back = await _job(c, "push", "B")
    assert (back["pushed"], back["skipped"]) == (0, back["seen"]), back
    back = await _job(a, "pull", "B")
    assert back["fetched"] == 0, back

    assert await _held(a) == on_a
    assert await _held(b) == on_b
    assert await _held(c) == on_c
    assert {n: await _timestamps(s) for n, s in sites.items()} == stamps


def _with(held: Held, attributes: dict[str, tuple[int, bool]]) -> Held:
    return Held(held.distribution, held.org, held.orgc, held.locked, held.attributes | attributes,
                held.objects, held.tags, held.sightings, held.groups)  # fmt: skip


async def test_a_publication_is_pushed_on_from_the_second_instance_to_the_third_stripped_again(
    sites: dict[str, Site],
) -> None:
    """PyMISP's ``test_complex_event_push_pull``: push on for A → B and B → C, A publishes its
    complex event, which A pushes to B and B, publishing what it received, on to C. B got 2
    as 1, so C gets neither that attribute nor the object (now 1): only what was 3 or
    inherits. C holds it for B's account's organisation, created by A."""
    a, b, c = sites["A"], sites["B"], sites["C"]
    chain = uuid.uuid4()
    value = {level: f"chain-d{level}.example" for level in (0, 1, 2, 3, 5)}
    await _push_flag(a, "B", True)
    await _push_flag(b, "C", True)
    try:
        await _add(a, {
            "uuid": str(chain), "info": "chain: complex", "distribution": "3", "published": True,
            "Attribute": [_attribute(value[level], level) for level in value],
            "Object": [{
                "name": "file", "meta-category": "file", "distribution": "2",
                "Attribute": [{"type": "md5", "object_relation": "md5", "distribution": "5",
                               "value": "3c656da41f4645f77e3ec3281b63dd45"}],
            }],
        })  # fmt: skip

        async def arrived() -> Any:
            return (await _held(c, "chain:")).get(chain)

        on_c = await eventually(arrived, timeout=60, what="the event on C")
    finally:
        await _push_flag(a, "B", False)
        await _push_flag(b, "C", False)

    on_b = (await _held(b, "chain:"))[chain]
    assert (on_b.distribution, on_b.org, on_b.orgc, on_b.locked) == (3, OA, OA, True)
    assert on_b.attributes == {
        value[2]: (1, LIVE), value[3]: (3, LIVE), value[5]: (5, LIVE),
        "3c656da41f4645f77e3ec3281b63dd45": (5, LIVE),
    }  # fmt: skip
    assert list(on_b.objects.values()) == [1]
    assert (on_c.distribution, on_c.org, on_c.orgc, on_c.locked) == (3, OB, OA, True)
    assert on_c.attributes == {value[3]: (3, LIVE), value[5]: (5, LIVE)}
    assert on_c.objects == {}
