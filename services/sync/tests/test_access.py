"""MISP's access rules by distribution: who sees an event and what inside it, who may edit
it, what a pull or a push does to distributions, and what may be pushed at all. The tables
are written out from MISP's behaviour, not derived from the code; the last tests check the
SQL predicates select exactly what the pure rules allow, against a real PostgreSQL."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tessera.sync.access import (
    RemoteServer,
    SharingGroupView,
    element_filter,
    event_filter,
    may_edit_event,
    may_push_element,
    may_push_event,
    may_see_element,
    may_see_event,
    may_use_sharing_group,
    pulled_distribution,
    pushed_distribution,
    received_distribution,
)
from tessera.sync.viewer import MispRole, Viewer

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# organisations
OWNER, OTHER, REMOTE, MEMBER, ADMINS = 1, 2, 3, 4, 5
HOST = OWNER  # MISP.host_org_id


def viewer(org_id: int, role: MispRole = MispRole.user) -> Viewer:
    return Viewer(
        user_id=100 + org_id,
        user_uuid=uuid.uuid4(),
        email=f"user@org{org_id}.example",
        org_id=org_id,
        org_uuid=uuid.uuid4(),
        org_name=f"Org {org_id}",
        role=role,
    )


VIEWERS = {
    "owner": viewer(OWNER),  # of the organisation holding the event
    "other": viewer(OTHER),  # another organisation on this instance
    "sync": viewer(REMOTE, MispRole.sync_user),  # a remote server's account
    "member": viewer(MEMBER),  # of an organisation in the sharing groups
    "admin": viewer(ADMINS, MispRole.admin),  # site admin, in no sharing group
}

# sharing groups
MEMBERS = SharingGroupView(
    id=10, org_id=OWNER, org_ids=frozenset({OWNER, MEMBER}), server_ids=frozenset({0})
)
ALL_LOCAL_ORGS = SharingGroupView(
    id=11,
    org_id=OTHER,
    org_ids=frozenset({OTHER}),
    server_ids=frozenset({0}),
    all_orgs_server_ids=frozenset({0}),
)
OWNED_BY_OTHER = SharingGroupView(  # its owner is not among its organisations
    id=12, org_id=OTHER, org_ids=frozenset({MEMBER}), server_ids=frozenset({0})
)
WITH_REMOTE = SharingGroupView(
    id=13, org_id=OWNER, org_ids=frozenset({OWNER, REMOTE}), server_ids=frozenset({0, 7})
)
SHARING_GROUPS = [MEMBERS, ALL_LOCAL_ORGS, OWNED_BY_OTHER, WITH_REMOTE]

YES, NO = True, False

#: an event of OWNER: distribution, sharing group -> owner, other, sync, member, admin
EVENTS = [
    ("0 your organisation", 0, None, (YES, NO, NO, NO, YES)),
    ("1 this community", 1, None, (YES, YES, YES, YES, YES)),
    ("2 connected communities", 2, None, (YES, YES, YES, YES, YES)),
    ("3 all communities", 3, None, (YES, YES, YES, YES, YES)),
    ("4 group of owner and member", 4, MEMBERS, (YES, NO, NO, YES, YES)),
    ("4 group open to all local orgs", 4, ALL_LOCAL_ORGS, (YES, YES, YES, YES, YES)),
    ("4 group owned by other, not a member", 4, OWNED_BY_OTHER, (YES, NO, NO, YES, YES)),
    ("4 group with the remote's org", 4, WITH_REMOTE, (YES, NO, YES, NO, YES)),
    ("4 unknown sharing group", 4, None, (YES, NO, NO, NO, YES)),
    ("5 inherit, not an event's level", 5, None, (YES, NO, NO, NO, YES)),
]

#: an attribute (object, report) in an event of OWNER everyone sees (distribution 3)
ELEMENTS = [
    ("0 your organisation", 0, None, (YES, NO, NO, NO, YES)),
    ("1 this community", 1, None, (YES, YES, YES, YES, YES)),
    ("2 connected communities", 2, None, (YES, YES, YES, YES, YES)),
    ("3 all communities", 3, None, (YES, YES, YES, YES, YES)),
    ("4 group of owner and member", 4, MEMBERS, (YES, NO, NO, YES, YES)),
    ("4 group open to all local orgs", 4, ALL_LOCAL_ORGS, (YES, YES, YES, YES, YES)),
    ("4 group owned by other, not a member", 4, OWNED_BY_OTHER, (YES, NO, NO, YES, YES)),
    ("4 group with the remote's org", 4, WITH_REMOTE, (YES, NO, YES, NO, YES)),
    ("4 unknown sharing group", 4, None, (YES, NO, NO, NO, YES)),
    ("5 inherit event", 5, None, (YES, YES, YES, YES, YES)),
]


def cases(table: list[Any]) -> list[Any]:
    return [
        pytest.param(distribution, group, who, expected[i], id=f"{name} / {who}")
        for name, distribution, group, expected in table
        for i, who in enumerate(VIEWERS)
    ]


# --- seeing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("distribution", "group", "who", "expected"), cases(EVENTS))
def test_who_sees_an_event_by_its_distribution(
    distribution: int, group: SharingGroupView | None, who: str, expected: bool
) -> None:
    seen = may_see_event(VIEWERS[who], org_id=OWNER, distribution=distribution, sharing_group=group)
    assert seen is expected


@pytest.mark.parametrize(("distribution", "group", "who", "expected"), cases(ELEMENTS))
def test_who_sees_an_attribute_of_a_visible_event_by_its_own_distribution(
    distribution: int, group: SharingGroupView | None, who: str, expected: bool
) -> None:
    v = VIEWERS[who]
    assert may_see_event(v, org_id=OWNER, distribution=3, sharing_group=None)
    seen = may_see_element(v, event_org_id=OWNER, distribution=distribution, sharing_group=group)
    assert seen is expected


def test_an_all_communities_event_with_a_private_attribute_shows_it_to_its_org_only() -> None:
    seen = {
        who: may_see_event(v, org_id=OWNER, distribution=3, sharing_group=None)
        and may_see_element(v, event_org_id=OWNER, distribution=0, sharing_group=None)
        for who, v in VIEWERS.items()
    }
    assert seen == {"owner": YES, "other": NO, "sync": NO, "member": NO, "admin": YES}


def test_an_inheriting_attribute_follows_its_sharing_group_event() -> None:
    seen = {
        who: may_see_event(v, org_id=OWNER, distribution=4, sharing_group=MEMBERS)
        and may_see_element(v, event_org_id=OWNER, distribution=5, sharing_group=None)
        for who, v in VIEWERS.items()
    }
    assert seen == {"owner": YES, "other": NO, "sync": NO, "member": YES, "admin": YES}


def test_an_open_attribute_stays_hidden_in_an_event_kept_to_its_organisation() -> None:
    other = VIEWERS["other"]
    assert may_see_element(other, event_org_id=OWNER, distribution=3, sharing_group=None)
    assert not may_see_event(other, org_id=OWNER, distribution=0, sharing_group=None)


def test_the_organisation_holding_the_event_sees_all_its_elements_not_the_creator() -> None:
    # a pulled event: held by OTHER here (org_id), created by OWNER elsewhere (orgc_id)
    assert may_see_element(VIEWERS["other"], event_org_id=OTHER, distribution=0, sharing_group=None)
    assert not may_see_element(
        VIEWERS["owner"], event_org_id=OTHER, distribution=0, sharing_group=None
    )


def test_owning_a_sharing_group_lets_one_use_it_but_not_see_its_data() -> None:
    other = VIEWERS["other"]
    assert may_use_sharing_group(other, OWNED_BY_OTHER)
    assert not may_see_event(other, org_id=OWNER, distribution=4, sharing_group=OWNED_BY_OTHER)
    assert may_use_sharing_group(VIEWERS["member"], OWNED_BY_OTHER)
    assert may_use_sharing_group(VIEWERS["admin"], OWNED_BY_OTHER)
    assert not may_use_sharing_group(VIEWERS["sync"], OWNED_BY_OTHER)
    assert may_use_sharing_group(VIEWERS["sync"], ALL_LOCAL_ORGS)


def test_a_sharing_group_cannot_flag_all_orgs_on_a_server_it_does_not_list() -> None:
    with pytest.raises(ValueError, match="all_orgs"):
        SharingGroupView(id=1, org_id=OWNER, all_orgs_server_ids=frozenset({0}))


# --- editing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "orgc_id", "locked", "expected"),
    [
        pytest.param(viewer(OWNER), OWNER, NO, YES, id="user of the creator org"),
        pytest.param(viewer(OWNER), OWNER, YES, YES, id="locked does not stop the creator"),
        pytest.param(viewer(OWNER, MispRole.publisher), OWNER, NO, YES, id="publisher"),
        pytest.param(viewer(OWNER, MispRole.read_only), OWNER, NO, NO, id="read only"),
        pytest.param(viewer(OTHER), OWNER, NO, NO, id="user of another org"),
        pytest.param(viewer(OTHER), OWNER, YES, NO, id="locked opens nothing to users"),
        pytest.param(viewer(OTHER, MispRole.org_admin), OWNER, YES, NO, id="org admin of other"),
        pytest.param(viewer(OWNER), OTHER, YES, NO, id="holding a pulled copy is not creating"),
        pytest.param(viewer(REMOTE, MispRole.sync_user), OWNER, YES, YES, id="sync user, locked"),
        pytest.param(viewer(REMOTE, MispRole.sync_user), OWNER, NO, NO, id="sync user, local"),
        pytest.param(viewer(REMOTE, MispRole.sync_user), REMOTE, NO, YES, id="sync user, own"),
        pytest.param(viewer(ADMINS, MispRole.admin), OWNER, NO, YES, id="site admin"),
    ],
)
def test_who_may_edit_an_event(user: Viewer, orgc_id: int, locked: bool, expected: bool) -> None:
    assert may_edit_event(user, orgc_id=orgc_id, locked=locked) is expected


# --- pull and push rewrites ---------------------------------------------------------------------

#: distribution -> (pulled from a server, pulled from an internal server)
PULLED = {0: (0, 0), 1: (0, 1), 2: (1, 2), 3: (3, 3), 4: (4, 4), 5: (5, 5)}
#: distribution -> (pushed to a server, pushed to an internal server)
PUSHED = {0: (0, 0), 1: (1, 1), 2: (1, 2), 3: (3, 3), 4: (4, 4), 5: (5, 5)}


@pytest.mark.parametrize(("distribution", "expected"), PULLED.items())
def test_a_pull_narrows_community_levels_by_one_unless_the_server_is_internal(
    distribution: int, expected: tuple[int, int]
) -> None:
    assert pulled_distribution(distribution, internal=False) == expected[0]
    assert pulled_distribution(distribution, internal=True) == expected[1]


@pytest.mark.parametrize(("distribution", "expected"), PUSHED.items())
def test_a_push_sends_connected_communities_as_this_community_unless_internal(
    distribution: int, expected: tuple[int, int]
) -> None:
    assert pushed_distribution(distribution, internal=False) == expected[0]
    assert pushed_distribution(distribution, internal=True) == expected[1]


def test_what_arrives_with_a_sharing_group_not_stored_is_kept_to_the_organisation() -> None:
    assert received_distribution(4, sharing_group_resolved=False) == 0
    assert received_distribution(4, sharing_group_resolved=True) == 4
    for other_level in (0, 1, 2, 3, 5):
        assert received_distribution(other_level, sharing_group_resolved=False) == other_level


def test_only_an_internal_link_of_the_host_organisation_keeps_distributions() -> None:
    internal = RemoteServer(id=8, org_id=HOST, remote_org_id=OTHER, internal=True)
    assert internal.keeps_distribution_on_pull(host_org_id=HOST)
    assert not internal.keeps_distribution_on_pull(host_org_id=None)
    elsewhere = RemoteServer(id=8, org_id=OTHER, remote_org_id=HOST, internal=True)
    assert not elsewhere.keeps_distribution_on_pull(host_org_id=HOST)
    not_internal = RemoteServer(id=8, org_id=HOST, remote_org_id=HOST)
    assert not not_internal.keeps_distribution_on_pull(host_org_id=HOST)


# servers pushed to: a remote community, an internal one of the host org, an internal other
REMOTE_SERVER = RemoteServer(id=7, org_id=HOST, remote_org_id=REMOTE)
INTERNAL_HOST = RemoteServer(id=8, org_id=HOST, remote_org_id=HOST, internal=True)
INTERNAL_OTHER = RemoteServer(id=9, org_id=HOST, remote_org_id=OTHER, internal=True)

ROAMING = SharingGroupView(id=20, org_id=OWNER, org_ids=frozenset({REMOTE}), roaming=True)
NO_SERVERS = SharingGroupView(id=21, org_id=OWNER, org_ids=frozenset({REMOTE}))
ONLY_HERE = SharingGroupView(
    id=22, org_id=OWNER, org_ids=frozenset({REMOTE}), server_ids=frozenset({0})
)
REMOTE_ALL_ORGS = SharingGroupView(
    id=23,
    org_id=OWNER,
    org_ids=frozenset({OWNER}),
    server_ids=frozenset({0, 7}),
    all_orgs_server_ids=frozenset({7}),
)

#: event distribution, sharing group -> to REMOTE_SERVER, INTERNAL_HOST, INTERNAL_OTHER
PUSHABLE_EVENTS = [
    ("0 your organisation", 0, None, (NO, YES, NO)),
    ("1 this community", 1, None, (NO, YES, NO)),
    ("2 connected communities", 2, None, (YES, YES, YES)),
    ("3 all communities", 3, None, (YES, YES, YES)),
    ("4 server and remote org listed", 4, WITH_REMOTE, (YES, YES, NO)),
    ("4 roaming, remote org listed", 4, ROAMING, (YES, NO, NO)),
    ("4 no servers listed, not roaming", 4, NO_SERVERS, (NO, NO, NO)),
    ("4 server not listed", 4, ONLY_HERE, (NO, NO, NO)),
    ("4 server all orgs, remote org not listed", 4, REMOTE_ALL_ORGS, (NO, YES, NO)),
    ("4 unknown sharing group", 4, None, (NO, NO, NO)),
    ("5 not an event's level", 5, None, (NO, NO, NO)),
]

#: element distribution, sharing group -> to REMOTE_SERVER, INTERNAL_HOST, INTERNAL_OTHER
PUSHABLE_ELEMENTS = [
    ("0 your organisation", 0, None, (NO, YES, YES)),
    ("1 this community", 1, None, (NO, YES, YES)),
    ("2 connected communities", 2, None, (YES, YES, YES)),
    ("3 all communities", 3, None, (YES, YES, YES)),
    ("4 server and remote org listed", 4, WITH_REMOTE, (YES, YES, YES)),
    ("4 roaming, remote org listed", 4, ROAMING, (YES, YES, YES)),
    ("4 no servers listed, not roaming", 4, NO_SERVERS, (YES, YES, YES)),
    ("4 server not listed", 4, ONLY_HERE, (NO, YES, YES)),
    ("4 server all orgs, remote org not listed", 4, REMOTE_ALL_ORGS, (YES, YES, YES)),
    ("4 unknown sharing group", 4, None, (NO, YES, YES)),
    ("5 inherit event", 5, None, (YES, YES, YES)),
]
PUSH_TARGETS = {
    "remote": REMOTE_SERVER,
    "internal host": INTERNAL_HOST,
    "internal other": INTERNAL_OTHER,
}


def push_cases(table: list[Any]) -> list[Any]:
    return [
        pytest.param(distribution, group, target, expected[i], id=f"{name} / {target}")
        for name, distribution, group, expected in table
        for i, target in enumerate(PUSH_TARGETS)
    ]


@pytest.mark.parametrize(
    ("distribution", "group", "target", "expected"), push_cases(PUSHABLE_EVENTS)
)
def test_which_events_may_be_pushed_to_which_server(
    distribution: int, group: SharingGroupView | None, target: str, expected: bool
) -> None:
    pushed = may_push_event(
        distribution, sharing_group=group, server=PUSH_TARGETS[target], host_org_id=HOST
    )
    assert pushed is expected


@pytest.mark.parametrize(
    ("distribution", "group", "target", "expected"), push_cases(PUSHABLE_ELEMENTS)
)
def test_which_elements_of_a_pushed_event_go_with_it(
    distribution: int, group: SharingGroupView | None, target: str, expected: bool
) -> None:
    pushed = may_push_element(distribution, sharing_group=group, server=PUSH_TARGETS[target])
    assert pushed is expected


def test_private_events_go_nowhere_without_a_host_organisation() -> None:
    assert not may_push_event(0, sharing_group=None, server=INTERNAL_HOST, host_org_id=None)


# --- SQL --------------------------------------------------------------------------------------


def test_a_site_admin_is_filtered_by_nothing() -> None:
    admin = VIEWERS["admin"]
    assert event_filter(admin, first_param=1) == ("TRUE", [])
    assert element_filter(admin, alias="a", first_param=1) == ("TRUE", [])


def test_the_filters_number_their_parameters_from_first_param() -> None:
    sql, params = event_filter(VIEWERS["member"], alias="ev", first_param=3)
    assert "$3" in sql
    assert "$1" not in sql
    assert "ev.org_id" in sql
    assert params == [MEMBER]


@pytest.mark.parametrize("alias", ["e; DROP TABLE events", "e.x", "", "1e"])
def test_the_filters_refuse_anything_but_an_identifier_as_alias(alias: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        event_filter(VIEWERS["member"], alias=alias, first_param=1)
    with pytest.raises(ValueError, match="identifier"):
        element_filter(VIEWERS["member"], alias=alias, first_param=1)


@pytest.fixture
async def schema() -> AsyncIterator[tuple[asyncpg.Connection, str]]:
    """A schema of its own with the columns the rules read, dropped afterwards."""
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    name = f"access_{uuid.uuid4().hex[:12]}"
    try:
        await conn.execute(f"""
            CREATE SCHEMA {name};
            CREATE TABLE {name}.sharing_group_orgs (
                sharing_group_id bigint NOT NULL, org_id bigint NOT NULL);
            CREATE TABLE {name}.sharing_group_servers (
                sharing_group_id bigint NOT NULL, server_id bigint NOT NULL,
                all_orgs boolean NOT NULL DEFAULT false);
            CREATE TABLE {name}.events (
                id bigint PRIMARY KEY, org_id bigint NOT NULL,
                distribution smallint NOT NULL, sharing_group_id bigint);
            CREATE TABLE {name}.attributes (
                id bigint PRIMARY KEY, event_id bigint NOT NULL,
                distribution smallint NOT NULL, sharing_group_id bigint);
        """)
        yield conn, name
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await conn.close()


async def test_the_sql_filters_select_exactly_what_the_rules_allow(
    schema: tuple[asyncpg.Connection, str],
) -> None:
    conn, name = schema
    groups: dict[int | None, SharingGroupView | None] = {g.id: g for g in SHARING_GROUPS}
    groups[None] = None
    groups[99] = None  # a sharing group id that names no group
    await conn.executemany(
        f"INSERT INTO {name}.sharing_group_orgs VALUES ($1, $2)",
        [(g.id, o) for g in SHARING_GROUPS for o in g.org_ids],
    )
    await conn.executemany(
        f"INSERT INTO {name}.sharing_group_servers VALUES ($1, $2, $3)",
        [(g.id, s, s in g.all_orgs_server_ids) for g in SHARING_GROUPS for s in g.server_ids],
    )
    # every level with every group (a group left behind on other levels must not matter)
    levels = list(itertools.product(range(6), groups))
    events = [
        (event_id, org, distribution, group)
        for event_id, (org, (distribution, group)) in enumerate(
            itertools.product((OWNER, OTHER), levels), start=1
        )
    ]
    attributes = [
        (attribute_id, event[0], distribution, group)
        for attribute_id, (event, (distribution, group)) in enumerate(
            itertools.product(events, levels), start=1
        )
    ]
    await conn.executemany(f"INSERT INTO {name}.events VALUES ($1, $2, $3, $4)", events)
    await conn.executemany(f"INSERT INTO {name}.attributes VALUES ($1, $2, $3, $4)", attributes)
    event_org = {event_id: org for event_id, org, _, _ in events}

    for who, v in VIEWERS.items():
        where, params = event_filter(v, alias="e", first_param=1, schema=name)
        rows = await conn.fetch(f"SELECT e.id FROM {name}.events e WHERE {where}", *params)
        visible_events = {
            event_id
            for event_id, org, distribution, group in events
            if may_see_event(v, org_id=org, distribution=distribution, sharing_group=groups[group])
        }
        assert {r["id"] for r in rows} == visible_events, who

        element, element_params = element_filter(
            v, alias="a", event_alias="e", first_param=len(params) + 1, schema=name
        )
        rows = await conn.fetch(
            f"SELECT a.id FROM {name}.attributes a JOIN {name}.events e ON e.id = a.event_id"
            f" WHERE {where} AND {element}",
            *params,
            *element_params,
        )
        visible_attributes = {
            attribute_id
            for attribute_id, event_id, distribution, group in attributes
            if event_id in visible_events
            and may_see_element(
                v,
                event_org_id=event_org[event_id],
                distribution=distribution,
                sharing_group=groups[group],
            )
        }
        assert {r["id"] for r in rows} == visible_attributes, who
