"""MISP's tag and sighting routes over HTTP: tags/index, attachTagToObject and
removeTagFromObject (global tags are the creator's and change the event, local ones change
nothing), sightings/add (by attribute or by value, only what the caller sees) and
listSightings (MISP's default sighting policy)."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import World
from .test_events_api import FORBIDDEN, add, announced, as_role


def tag_name() -> str:
    return f"test:{uuid.uuid4().hex[:10]}"


async def view(world: World, member: Any, event: dict[str, Any]) -> dict[str, Any]:
    answer = await world.client.get(f"/sync/events/view/{event['id']}", headers=member.headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()["Event"]
    return result


async def test_the_tag_index_lists_tags_by_name_with_what_the_caller_sees(world: World) -> None:
    boss = await world.member("Boss", await world.organisation("Lab"), role="admin")
    eve = await world.member("Eve", await world.organisation("Other"))
    name = tag_name()
    await add(
        world,
        boss,
        distribution=0,
        Tag=[{"name": name}],
        Attribute=[{"type": "ip-dst", "value": "192.0.2.1", "Tag": [{"name": name}]}],
    )
    await add(world, boss, distribution=1, Tag=[{"name": name}])

    mine = await world.client.get(f"/sync/tags/index/searchall:{name[5:]}", headers=boss.headers)
    theirs = await world.client.get(
        "/sync/tags/index", headers=eve.headers, params={"searchall": name}
    )

    [tag] = mine.json()["Tag"]
    assert tag["name"] == name
    assert tag["count"] == 2
    assert tag["attribute_count"] == 1
    assert tag["exportable"] is True
    assert tag["colour"].startswith("#")
    assert isinstance(tag["id"], str)
    assert [(t["count"], t["attribute_count"]) for t in theirs.json()["Tag"]] == [(1, 0)]


async def test_a_global_tag_is_attached_and_removed_by_the_creator_and_changes_the_event(
    world: World,
) -> None:
    boss = await world.member("Boss", await world.organisation("Lab"), role="admin")
    event = await add(world, boss, timestamp=1_600_000_000)
    name = tag_name()

    attached = await world.client.post(
        "/sync/tags/attachTagToObject",
        headers=boss.headers,
        json={"uuid": event["uuid"], "tag": name},
    )
    tagged = await view(world, boss, event)
    twice = await world.client.post(
        "/sync/tags/attachTagToObject",
        headers=boss.headers,
        json={"uuid": event["uuid"], "tag": name},
    )
    removed = await world.client.post(
        "/sync/tags/removeTagFromObject",
        headers=boss.headers,
        json={"uuid": event["uuid"], "tag": name},
    )
    untagged = await view(world, boss, event)

    tag_id = tagged["Tag"][0]["id"]
    message = f"Global tag {name}({tag_id}) successfully attached to Event({event['id']})."
    assert attached.json() == {
        "saved": True, "success": True, "name": message, "message": message,
        "url": "/tags/attachTagToObject",
    }  # fmt: skip
    assert int(tagged["timestamp"]) > 1_600_000_000
    assert "already has the requested tag attached" in twice.json()["message"]
    assert removed.json()["message"] == (
        f"Global tag {name} ({tag_id}) successfully removed from Event({event['id']})."
    )
    assert "Tag" not in untagged
    assert await announced(world, event["uuid"]) == ["sync.event.updated"] * 3


async def test_a_local_tag_changes_nothing_else_and_others_may_add_it(world: World) -> None:
    boss = await world.member("Boss", await world.organisation("Lab"), role="admin")
    other = await world.member("Other", await world.organisation("Other"), role="admin")
    event = await add(world, boss, distribution=1, timestamp=1_600_000_000)
    name = tag_name()

    global_by_other = await world.client.post(
        "/sync/tags/attachTagToObject", headers=other.headers,
        json={"uuid": event["uuid"], "tag": name},
    )  # fmt: skip
    local_by_other = await world.client.post(
        "/sync/tags/attachTagToObject", headers=other.headers,
        json={"uuid": event["uuid"], "tag": name, "local": 1},
    )  # fmt: skip
    after = await view(world, boss, event)

    assert global_by_other.status_code == 403
    assert global_by_other.json()["message"].startswith("Cannot alter the tags of this data")
    assert local_by_other.json()["message"].startswith(f"Local tag {name}(")
    assert after["timestamp"] == "1600000000"
    assert after["Tag"][0]["local"] is True
    assert await announced(world, event["uuid"]) == ["sync.event.updated"]


async def test_an_attribute_is_tagged_by_its_uuid(world: World) -> None:
    boss = await world.member("Boss", await world.organisation("Lab"), role="admin")
    event = await add(world, boss, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}])
    attribute = event["Attribute"][0]
    name = tag_name()

    attached = await world.client.post(
        "/sync/tags/attachTagToObject", headers=boss.headers,
        json={"uuid": attribute["uuid"], "tag": name},
    )  # fmt: skip
    viewed = await world.client.get(
        f"/sync/attributes/view/{attribute['id']}", headers=boss.headers
    )

    assert attached.json()["message"].endswith(
        f"successfully attached to Attribute({attribute['id']})."
    )
    assert [t["name"] for t in viewed.json()["Attribute"]["Tag"]] == [name]
    assert int(viewed.json()["Attribute"]["timestamp"]) >= int(attribute["timestamp"])


async def test_tagging_refusals_speak_misps_words(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    reader = await world.member("Reader", org)
    as_role(world, reader, "read_only")
    event = await add(world, ada)

    unknown = await world.client.post(
        "/sync/tags/attachTagToObject", headers=ada.headers,
        json={"uuid": event["uuid"], "tag": tag_name()},
    )  # fmt: skip
    no_target = await world.client.post(
        "/sync/tags/attachTagToObject", headers=ada.headers,
        json={"uuid": str(uuid.uuid4()), "tag": "tlp:white"},
    )  # fmt: skip
    by_reader = await world.client.post(
        "/sync/tags/attachTagToObject", headers=reader.headers,
        json={"uuid": event["uuid"], "tag": "tlp:white"},
    )  # fmt: skip
    not_attached = await world.client.post(
        "/sync/tags/removeTagFromObject", headers=ada.headers,
        json={"uuid": event["uuid"], "tag": 1},
    )  # fmt: skip

    assert unknown.status_code == 403
    assert unknown.json()["saved"] is False
    assert unknown.json()["errors"] == (
        'Failed to attach 1 tags. Reasons: {"0":"Tag not found and insufficient privileges to '
        'create it."}'
    )
    assert no_target.status_code == 404
    assert no_target.json()["message"] == "Invalid Target."
    assert by_reader.status_code == 403
    assert by_reader.json()["message"] == FORBIDDEN
    assert not_attached.status_code in (404, 405)


# --- sightings ------------------------------------------------------------------------------


async def test_an_attribute_is_sighted_by_id_or_uuid(world: World) -> None:
    lab = await world.organisation("Lab")
    ada = await world.member("Ada", lab)
    event = await add(world, ada, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}])
    attribute = event["Attribute"][0]

    by_id = await world.client.post(
        f"/sync/sightings/add/{attribute['id']}", headers=ada.headers,
        json={"source": "sensor", "type": "1", "timestamp": 1_700_000_000},
    )  # fmt: skip
    by_uuid = await world.client.post(
        "/sync/sightings/add", headers=ada.headers, json={"uuid": attribute["uuid"]}
    )
    viewed = await view(world, ada, event)

    sighting = by_id.json()["Sighting"]
    assert sighting["attribute_id"] == attribute["id"]
    assert sighting["event_id"] == event["id"]
    assert sighting["source"] == "sensor"
    assert sighting["type"] == "1"
    assert sighting["date_sighting"] == "1700000000"
    assert by_uuid.json()["Sighting"]["type"] == "0"
    assert len(viewed["Attribute"][0]["Sighting"]) == 2
    assert viewed["timestamp"] == event["timestamp"]


async def test_a_value_is_sighted_on_every_attribute_the_caller_sees(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    eve = await world.member("Eve", await world.organisation("Other"))
    value = f"{uuid.uuid4().hex[:12]}.example"
    shared = await add(world, ada, distribution=1, Attribute=[{"type": "domain", "value": value}])
    private = await add(world, ada, distribution=0, Attribute=[{"type": "domain", "value": value}])
    own = await add(world, eve, distribution=0, Attribute=[{"type": "domain", "value": value}])

    sighted = await world.client.post(
        "/sync/sightings/add", headers=eve.headers, json={"value": value}
    )
    nothing = await world.client.post(
        "/sync/sightings/add", headers=eve.headers, json={"value": "never.example"}
    )

    assert sighted.status_code == 200
    counts = await world.query(
        "SELECT e.uuid::text AS uuid, count(s.id) AS n FROM events e "
        "LEFT JOIN sightings s ON s.event_id = e.id WHERE e.uuid = ANY($1::uuid[]) GROUP BY e.uuid",
        [uuid.UUID(e["uuid"]) for e in (shared, private, own)],
    )
    assert {r["uuid"]: r["n"] for r in counts} == {
        shared["uuid"]: 1, private["uuid"]: 0, own["uuid"]: 1,
    }  # fmt: skip
    assert nothing.status_code == 404
    assert nothing.json()["message"] == (
        "Could not add the Sighting. Reason: No valid attributes found that match the criteria."
    )


async def test_sightings_are_listed_as_misps_policy_shows_them(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    eve = await world.member("Eve", await world.organisation("Other"))
    mallory = await world.member("Mallory", await world.organisation("Third"))
    event = await add(
        world, ada, distribution=1, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}]
    )
    attribute = event["Attribute"][0]
    for member in (ada, eve, mallory):
        added = await world.client.post(
            f"/sync/sightings/add/{attribute['uuid']}", headers=member.headers, json={}
        )
        assert added.status_code == 200, added.text

    def orgs(answer: Any) -> list[str]:
        return sorted(s["Organisation"]["name"].split()[0] for s in answer.json())

    creator = await world.client.post(
        "/sync/sightings/listSightings", headers=ada.headers,
        json={"id": attribute["id"], "context": "attribute"},
    )  # fmt: skip
    other = await world.client.get(
        f"/sync/sightings/listSightings/{event['id']}/event", headers=eve.headers
    )
    invalid = await world.client.get(
        f"/sync/sightings/listSightings/{event['id']}/galaxy", headers=eve.headers
    )

    assert orgs(creator) == ["Lab", "Other", "Third"]
    assert orgs(other) == ["Other"]
    assert set(creator.json()[0]["Sighting"]) >= {
        "id",
        "attribute_id",
        "event_id",
        "org_id",
        "date_sighting",
        "uuid",
        "source",
        "type",
    }
    assert invalid.status_code == 400


async def test_an_expiration_replaces_the_organisations_previous_one_and_readers_do_not_sight(
    world: World,
) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    reader = await world.member("Reader", org)
    as_role(world, reader, "read_only")
    event = await add(world, ada, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}])
    attribute = event["Attribute"][0]

    for _ in range(2):
        await world.client.post(
            f"/sync/sightings/add/{attribute['id']}", headers=ada.headers, json={"type": 2}
        )
    refused = await world.client.post(
        f"/sync/sightings/add/{attribute['id']}", headers=reader.headers, json={}
    )
    listed = await world.client.get(
        f"/sync/sightings/listSightings/{attribute['id']}", headers=ada.headers
    )

    assert [s["Sighting"]["type"] for s in listed.json()] == ["2"]
    assert refused.status_code == 403
    assert refused.json()["message"] == FORBIDDEN


async def test_a_pulling_server_reads_an_events_sightings_with_rest_search(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    peer = await world.member("Peer", await world.organisation("Peer"))
    as_role(world, peer, "sync_user")
    event = await add(
        world, ada, distribution=1, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}]
    )
    attribute = event["Attribute"][0]
    for moment in (1_000_000_000, None):  # long ago, and now
        body = {} if moment is None else {"timestamp": moment}
        await world.client.post(
            f"/sync/sightings/add/{attribute['id']}", headers=ada.headers, json=body
        )

    everything = await world.client.post(
        "/sync/sightings/restSearch/event", headers=ada.headers,
        json={"returnFormat": "json", "last": 0, "includeUuid": True, "uuid": [event["uuid"]]},
    )  # fmt: skip
    recent = await world.client.post(
        "/sync/sightings/restSearch/event", headers=ada.headers, json={"id": event["id"]}
    )
    by_peer = await world.client.post(
        "/sync/sightings/restSearch/attribute", headers=peer.headers,
        json={"uuid": attribute["uuid"], "last": 0},
    )  # fmt: skip
    no_id = await world.client.post(
        "/sync/sightings/restSearch/event", headers=ada.headers, json={}
    )

    found = [s["Sighting"] for s in everything.json()["response"]]
    assert found[0]["date_sighting"] == "1000000000"
    assert len(found) == 2
    assert found[0]["attribute_uuid"] == attribute["uuid"]
    assert found[0]["event_uuid"] == event["uuid"]
    assert found[0]["value"] == "192.0.2.1"
    assert found[0]["Organisation"]["name"].startswith("Lab")
    assert len(recent.json()["response"]) == 1  # 30 days unless said
    assert by_peer.json() == {"response": []}  # another organisation's sightings: hidden
    assert no_id.status_code == 400
