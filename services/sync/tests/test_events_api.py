"""MISP's event routes over HTTP: events/add, view (and HEAD), edit, delete, publish,
unpublish and index answer as MISP does, with MISP's messages, roles and visibility rules,
and every creation, change and publication is announced through the outbox."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from tessera.common.testing.broker import take, tapped

from .conftest import Member, World

FORBIDDEN = "You do not have permission to use this functionality."


async def add(world: World, member: Member, **event: Any) -> dict[str, Any]:
    """``events/add`` of ``event`` (an info of its own unless given): the event answered."""
    body = {"info": f"event {uuid.uuid4().hex[:8]}", **event}
    added = await world.client.post("/sync/events/add", headers=member.headers, json=body)
    assert added.status_code == 200, added.text
    result: dict[str, Any] = added.json()["Event"]
    return result


async def announced(world: World, subject: str) -> list[str]:
    """The event types the outbox holds for an event (its uuid), oldest first."""
    rows = await world.query(
        "SELECT event_type FROM outbox WHERE payload->>'subject' = $1 ORDER BY id", subject
    )
    return [r["event_type"] for r in rows]


def as_role(world: World, member: Member, role: str) -> None:
    world.app.state.runtime.settings.roles.users[member.id] = role


# --- events/add -----------------------------------------------------------------------------


async def test_an_added_event_is_answered_as_events_view_shows_it(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)

    event = await add(
        world, ada, info="Phishing wave", threat_level_id="2", distribution=0,
        Attribute=[{"type": "ip-dst", "value": "198.51.100.1", "comment": "C2"},
                   {"type": "domain", "value": "evil.example"}],
        Object=[{"name": "file", "meta-category": "file", "Attribute": [
            {"type": "filename", "value": "a.exe", "object_relation": "filename"}]}],
    )  # fmt: skip
    viewed = await world.client.get(f"/sync/events/view/{event['id']}", headers=ada.headers)

    assert viewed.json() == {"Event": event}
    assert event["info"] == "Phishing wave"
    assert event["threat_level_id"] == "2"
    assert event["distribution"] == "0"
    assert event["attribute_count"] == "3"
    assert event["Org"]["uuid"] == str(org)
    assert event["Orgc"]["uuid"] == str(org)
    assert event["published"] is False
    assert [a["value"] for a in event["Attribute"]] == ["198.51.100.1", "evil.example"]
    assert event["Attribute"][0]["category"] == "Network activity"
    assert event["Object"][0]["Attribute"][0]["object_relation"] == "filename"
    assert abs(int(event["timestamp"]) - time.time()) < 60
    assert await announced(world, event["uuid"]) == ["sync.event.updated"]


async def test_a_user_adds_for_their_organisation_whatever_creator_they_name(
    world: World,
) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    peer = await world.member("Peer", await world.organisation("Peer"))
    as_role(world, peer, "sync_user")
    elsewhere = {"uuid": str(uuid.uuid4()), "name": f"Far away {uuid.uuid4().hex[:6]}"}

    claimed = await add(world, ada, Orgc=elsewhere)
    synced = await add(world, peer, Orgc=elsewhere)

    assert claimed["Orgc"]["uuid"] == str(org)
    assert synced["Orgc"]["uuid"] == elsewhere["uuid"]
    assert synced["Orgc"]["name"] == elsewhere["name"]
    assert synced["Org"]["uuid"] == str(peer.org)


async def test_an_existing_uuid_is_refused_with_the_location_of_the_event(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    event = await add(world, ada)

    again = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"info": "again", "uuid": event["uuid"]}
    )

    assert again.status_code == 404
    assert again.headers["location"] == f"/sync/events/{event['id']}"
    assert again.json()["message"] == (
        "Event already exists, if you would like to edit it, use the url in the location header."
    )
    assert again.json()["url"] == "/events/add"


async def test_blocklisted_events_and_creators_are_refused(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    blocked = uuid.uuid4()
    await world.query(
        "INSERT INTO event_blocklists (event_uuid, created_at) VALUES ($1, now())", blocked
    )
    peer = await world.member("Peer", await world.organisation("Peer"))
    as_role(world, peer, "sync_user")
    shunned = uuid.uuid4()
    await world.query(
        "INSERT INTO org_blocklists (org_uuid, created_at) VALUES ($1, now())", shunned
    )

    by_uuid = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"info": "x", "uuid": str(blocked)}
    )
    by_creator = await world.client.post(
        "/sync/events/add", headers=peer.headers,
        json={"info": "x", "Orgc": {"uuid": str(shunned), "name": "Shunned"}},
    )  # fmt: skip

    assert by_uuid.status_code == 403
    assert by_uuid.json()["message"] == "Event blocked by event blocklist."
    assert by_creator.status_code == 403
    assert by_creator.json()["message"] == "Event blocked by organisation blocklist."


async def test_an_invalid_event_is_refused_with_misps_save_fail_response(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)

    empty_info = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"Event": {"info": " ", "analysis": 7}}
    )
    published_empty = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"info": "x", "published": True}
    )
    not_json = await world.client.post(
        "/sync/events/add", headers=ada.headers | {"Content-Type": "application/json"},
        content=b"{nope",
    )  # fmt: skip

    assert empty_info.status_code == 403
    body = empty_info.json()
    assert body["saved"] is False
    assert body["name"] == body["message"] == "Could not add Event"
    assert body["url"] == "/events/add"
    assert body["errors"]["Event"]["analysis"] == [
        "Options : 0, 1, 2 (for Initial, Ongoing, Completed)"
    ]
    assert published_empty.status_code == 403
    assert published_empty.json()["errors"] == {
        "Event": "Received a published event that was empty. Event add process blocked."
    }
    assert not_json.status_code == 400


async def test_an_invalid_attribute_is_left_out_and_named_in_the_answer(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)

    added = await world.client.post(
        "/sync/events/add", headers=ada.headers,
        json={"info": "x", "Attribute": [{"type": "ip-dst", "value": "not an address"},
                                         {"type": "ip-dst", "value": "192.0.2.1"}]},
    )  # fmt: skip

    assert added.status_code == 200
    assert [a["value"] for a in added.json()["Event"]["Attribute"]] == ["192.0.2.1"]
    assert list(added.json()["errors"]) == ["Attribute.0.value"]


async def test_repeated_attributes_of_one_payload_are_collapsed(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)

    event = await add(
        world, ada,
        Attribute=[{"type": "ip-dst", "value": "192.0.2.1"},
                   {"type": "ip-dst", "value": "192.0.2.1"},
                   {"type": "ip-dst", "value": "192.0.2.1", "category": "Payload delivery"}],
    )  # fmt: skip

    assert [(a["category"], a["value"]) for a in event["Attribute"]] == [
        ("Network activity", "192.0.2.1"),
        ("Payload delivery", "192.0.2.1"),
    ]


async def test_read_only_users_cannot_add_and_users_add_unpublished(world: World) -> None:
    org = await world.organisation("Lab")
    reader = await world.member("Reader", org)
    as_role(world, reader, "read_only")
    ada = await world.member("Ada", org)
    boss = await world.member("Boss", org, role="admin")
    attribute = [{"type": "ip-dst", "value": "192.0.2.1"}]

    refused = await world.client.post(
        "/sync/events/add", headers=reader.headers, json={"info": "x"}
    )
    by_user = await add(world, ada, published=True, Attribute=attribute)
    by_publisher = await add(world, boss, published=True, Attribute=attribute)

    assert refused.status_code == 403
    assert refused.json()["message"] == FORBIDDEN
    assert by_user["published"] is False
    assert by_publisher["published"] is True
    assert int(by_publisher["publish_timestamp"]) > 0
    assert await announced(world, by_publisher["uuid"]) == [
        "sync.event.updated",
        "sync.event.published",
    ]


# --- events/view ----------------------------------------------------------------------------


async def test_another_organisation_does_not_see_an_event_of_your_organisation_only(
    world: World,
) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    eve = await world.member("Eve", await world.organisation("Other"))
    private = await add(world, ada, distribution=0)
    shared = await add(world, ada, distribution=1)

    for ident in (private["id"], private["uuid"]):
        viewed = await world.client.get(f"/sync/events/view/{ident}", headers=eve.headers)
        assert viewed.status_code == 404
        assert viewed.json()["message"] == "Invalid event"
    head = await world.client.head(f"/sync/events/view/{private['uuid']}", headers=eve.headers)
    edited = await world.client.post(
        f"/sync/events/edit/{private['id']}", headers=eve.headers, json={"info": "mine"}
    )
    deleted = await world.client.post(f"/sync/events/delete/{private['id']}", headers=eve.headers)
    index = await world.client.post(
        "/sync/events/index", headers=eve.headers,
        json={"eventid": [private["id"], shared["id"]]},
    )  # fmt: skip
    seen = await world.client.get(f"/sync/events/view/{shared['id']}", headers=eve.headers)

    assert head.status_code == 404
    assert edited.status_code == 404
    assert deleted.status_code == 404
    assert [e["uuid"] for e in index.json()] == [shared["uuid"]]
    assert seen.status_code == 200


async def test_an_event_is_viewed_by_id_uuid_with_misps_suffixes_and_aliases(
    world: World,
) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)

    paths = [
        f"/sync/events/view/{event['id']}",
        f"/sync/events/view/{event['uuid']}",
        f"/sync/events/view/{event['id']}.json",
        f"/sync/events/view/{event['id']}/noSightings:1",
        f"/sync/events/{event['id']}",
        f"/sync/events/{event['uuid']}.json",
    ]
    answers = [await world.client.get(path, headers=ada.headers) for path in paths]
    head = await world.client.head(f"/sync/events/view/{event['uuid']}", headers=ada.headers)
    nonsense = await world.client.get("/sync/events/view/nonsense", headers=ada.headers)

    assert [a.status_code for a in answers] == [200] * len(paths)
    assert {a.json()["Event"]["uuid"] for a in answers} == {event["uuid"]}
    assert head.status_code == 200
    assert head.content == b""
    assert nonsense.status_code == 404


async def test_deleted_attributes_show_only_when_asked_for(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada, Attribute=[
        {"type": "ip-dst", "value": "192.0.2.1"},
        {"type": "ip-dst", "value": "192.0.2.2", "deleted": True},
    ])  # fmt: skip
    url = f"/sync/events/view/{event['id']}"

    live = await world.client.get(url, headers=ada.headers)
    both = await world.client.get(f"{url}/deleted:1", headers=ada.headers)
    both_by_body = await world.client.post(url, headers=ada.headers, json={"deleted": [0, 1]})
    # what a pulling MISP asks (CakePHP's named array)
    both_as_pulled = await world.client.get(f"{url}/deleted[]:0/deleted[]:1", headers=ada.headers)
    only = await world.client.post(url, headers=ada.headers, json={"deleted": [1]})
    only_named = await world.client.get(f"{url}/deleted[]:1", headers=ada.headers)

    def values(answer: Any) -> list[str]:
        return [a["value"] for a in answer.json()["Event"]["Attribute"]]

    assert values(live) == ["192.0.2.1"]
    assert values(both) == values(both_by_body) == values(both_as_pulled)
    assert values(both) == ["192.0.2.1", "192.0.2.2"]
    assert values(only) == values(only_named) == ["192.0.2.2"]


async def test_deleted_parts_of_another_organisations_event_show_only_to_sync_users(
    world: World,
) -> None:
    """``Event::fetchEvent``: a user without the sync permission sees soft-deleted
    attributes and objects only in the events their organisation holds; a sync user (or a
    site admin) in any event they see, so deletions travel by pull."""
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada, distribution=3, Attribute=[
        {"type": "ip-dst", "value": "192.0.2.31"},
        {"type": "ip-dst", "value": "192.0.2.32", "deleted": True},
    ], Object=[{
        "name": "domain-ip", "meta-category": "network", "deleted": True,
        "Attribute": [{"type": "domain", "object_relation": "domain", "value": "gone.example"}],
    }])  # fmt: skip
    other = await world.organisation("Elsewhere")
    bob = await world.member("Bob", other, role="admin")  # an org admin: no sync permission
    sync = await world.member("Sync", other)
    as_role(world, sync, "sync_user")
    url = f"/sync/events/view/{event['id']}"

    def seen(answer: Any) -> tuple[list[str], int]:
        assert answer.status_code == 200, answer.text
        body = answer.json()["Event"]
        return [a["value"] for a in body["Attribute"]], len(body.get("Object") or [])

    owner = await world.client.get(f"{url}/deleted:1", headers=ada.headers)
    both = await world.client.get(f"{url}/deleted:1", headers=bob.headers)
    only = await world.client.get(f"{url}/deleted[]:1", headers=bob.headers)
    pulled = await world.client.get(f"{url}/deleted[]:0/deleted[]:1", headers=sync.headers)

    assert seen(owner) == (["192.0.2.31", "192.0.2.32"], 1)
    assert seen(both) == (["192.0.2.31"], 0)
    assert seen(only) == ([], 0)
    assert seen(pulled) == (["192.0.2.31", "192.0.2.32"], 1)


# --- events/edit ----------------------------------------------------------------------------


async def test_a_users_edit_merges_by_uuid_keeps_what_it_leaves_out_and_takes_the_time_of_it(
    world: World,
) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(
        world, ada, threat_level_id=1, timestamp=1_600_000_000,
        Attribute=[{"type": "ip-dst", "value": "192.0.2.1", "timestamp": 1_600_000_000},
                   {"type": "domain", "value": "a.example", "timestamp": 1_600_000_000}],
    )  # fmt: skip
    first, second = event["Attribute"]

    edited = await world.client.post(
        f"/sync/events/edit/{event['uuid']}", headers=ada.headers,
        json={"Event": {"info": "renamed", "timestamp": 1_500_000_000, "Attribute": [
            {"uuid": first["uuid"], "type": "ip-dst", "value": "192.0.2.1", "comment": "new"},
            second,
            {"type": "url", "value": "http://a.example/x"},
        ]}},
    )  # fmt: skip

    assert edited.status_code == 200, edited.text
    after = edited.json()["Event"]
    assert after["info"] == "renamed"
    assert after["threat_level_id"] == "1"  # left out: kept
    assert int(after["timestamp"]) > 1_600_000_000  # the time of the edit, not the one sent
    by_uuid = {a["uuid"]: a for a in after["Attribute"]}
    assert by_uuid[first["uuid"]]["comment"] == "new"
    assert int(by_uuid[first["uuid"]]["timestamp"]) == int(after["timestamp"])
    assert by_uuid[second["uuid"]]["timestamp"] == "1600000000"  # sent as it was: unchanged
    assert [a["value"] for a in after["Attribute"]][-1] == "http://a.example/x"
    assert await announced(world, event["uuid"]) == ["sync.event.updated"] * 2


async def test_only_the_creator_organisation_edits_and_read_only_users_do_not(
    world: World,
) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    reader = await world.member("Reader", org)
    as_role(world, reader, "read_only")
    eve = await world.member("Eve", await world.organisation("Other"))
    event = await add(world, ada, distribution=1)

    by_other = await world.client.post(
        f"/sync/events/edit/{event['id']}", headers=eve.headers, json={"info": "mine now"}
    )
    by_reader = await world.client.put(
        f"/sync/events/edit/{event['id']}", headers=reader.headers, json={"info": "mine now"}
    )

    assert by_other.status_code == 403
    assert by_other.json()["message"] == "You are not authorised to do that."
    assert by_reader.status_code == 403
    assert by_reader.json()["message"] == FORBIDDEN


async def test_a_sync_user_edit_must_be_newer_and_keeps_its_timestamps(world: World) -> None:
    peer = await world.member("Peer", await world.organisation("Peer"))
    as_role(world, peer, "sync_user")
    creator = {"uuid": str(uuid.uuid4()), "name": f"Remote {uuid.uuid4().hex[:6]}"}
    event = await add(world, peer, Orgc=creator, locked=True, timestamp=1_700_000_000,
                      Attribute=[{"type": "ip-dst", "value": "192.0.2.9",
                                  "timestamp": 1_700_000_000}])  # fmt: skip
    url = f"/sync/events/edit/{event['uuid']}"

    stale = await world.client.post(
        url, headers=peer.headers, json={"Event": {"info": "old", "timestamp": 1_700_000_000}}
    )
    newer = await world.client.post(
        url, headers=peer.headers,
        json={"Event": {"info": "newer", "timestamp": 1_700_000_100, "Attribute": [
            event["Attribute"][0] | {"comment": "updated", "timestamp": "1700000100"}]}},
    )  # fmt: skip

    assert stale.status_code == 403
    assert stale.json()["saved"] is False
    assert stale.json()["errors"] == (
        "Event could not be saved: Event in the request not newer than the local copy."
    )
    assert stale.json()["name"] == "Could not edit Event"
    assert newer.status_code == 200, newer.text
    after = newer.json()["Event"]
    assert after["info"] == "newer"
    assert after["timestamp"] == "1700000100"
    assert after["Attribute"][0]["comment"] == "updated"
    assert after["Attribute"][0]["timestamp"] == "1700000100"


async def test_filter_event_ids_for_push_asks_for_what_is_missing_or_older_and_locked(
    world: World,
) -> None:
    peer = await world.member("Peer", await world.organisation("Peer"))
    as_role(world, peer, "sync_user")
    ada = await world.member("Ada", await world.organisation("Lab"))
    creator = {"uuid": str(uuid.uuid4()), "name": f"Remote {uuid.uuid4().hex[:6]}"}
    synced = await add(world, peer, Orgc=creator, locked=True, timestamp=1_700_000_000,
                       Attribute=[{"type": "ip-dst", "value": "192.0.2.10"}])  # fmt: skip
    local = await add(world, ada, Attribute=[{"type": "ip-dst", "value": "192.0.2.11"}])
    deleted = await add(world, ada, Attribute=[{"type": "ip-dst", "value": "192.0.2.12"}])
    await world.client.post(f"/sync/events/delete/{deleted['uuid']}", headers=ada.headers)
    unknown = str(uuid.uuid4())

    def offer(event_uuid: str, timestamp: int) -> dict[str, Any]:
        return {"Event": {"uuid": event_uuid, "timestamp": timestamp}}

    url = "/sync/events/filterEventIdsForPush"
    asked = await world.client.post(url, headers=peer.headers, json=[
        offer(unknown, 1),
        offer(synced["uuid"], 1_700_000_000),  # as new here
        offer(local["uuid"], int(local["timestamp"]) + 60),  # made here: never overwritten
        offer(deleted["uuid"], 1),  # blocklisted: events/add would refuse it
    ])  # fmt: skip
    newer = await world.client.post(
        url, headers=peer.headers, json=[offer(synced["uuid"], 1_700_000_001)]
    )
    by_user = await world.client.post(url, headers=ada.headers, json=[offer(unknown, 1)])

    assert asked.status_code == 200, asked.text
    assert asked.json() == [unknown]
    assert newer.json() == [synced["uuid"]]  # locked and older here
    assert by_user.status_code == 403  # a sync user's route


# --- events/delete, publish, unpublish -------------------------------------------------------


async def test_a_deleted_event_is_gone_and_its_uuid_blocklisted(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}])

    deleted = await world.client.post(f"/sync/events/delete/{event['id']}", headers=ada.headers)
    viewed = await world.client.get(f"/sync/events/view/{event['id']}", headers=ada.headers)
    again = await world.client.post(
        "/sync/events/add", headers=ada.headers, json={"info": "back", "uuid": event["uuid"]}
    )

    assert deleted.json() == {
        "saved": True, "success": True, "name": "Event deleted.", "message": "Event deleted.",
        "url": f"/events/delete/{event['id']}", "id": event["id"],
    }  # fmt: skip
    assert viewed.status_code == 404
    assert again.status_code == 403
    assert again.json()["message"] == "Event blocked by event blocklist."
    [blocked] = await world.query(
        "SELECT event_info, comment FROM event_blocklists WHERE event_uuid = $1",
        uuid.UUID(event["uuid"]),
    )
    assert blocked["event_info"] == event["info"]
    assert blocked["comment"] == "Automatically blocked by deleting event"
    assert (await announced(world, event["uuid"]))[-1] == "sync.event.deleted"


async def test_a_deletion_reaches_the_bus_with_the_events_last_facts(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    event = await add(world, ada, info="to go")

    async with tapped(world.infra.rabbitmq, world.infra.exchange, "sync.event.deleted.#") as tap:
        deleted = await world.client.post(f"/sync/events/delete/{event['id']}", headers=ada.headers)
        [message] = await take(world.infra.rabbitmq, tap, expect=1, timeout=15)

    assert deleted.status_code == 200, deleted.text
    envelope = json.loads(message.body)
    assert envelope["subject"] == event["uuid"]
    assert envelope["data"] == {
        "event_id": int(event["id"]), "event_uuid": event["uuid"], "info": "to go",
        "orgc_uuid": str(org), "org_uuid": str(org), "source": "api",
    }  # fmt: skip


async def test_only_the_creator_organisation_deletes(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    eve = await world.member("Eve", await world.organisation("Other"))
    event = await add(world, ada, distribution=1)

    refused = await world.client.delete(f"/sync/events/delete/{event['uuid']}", headers=eve.headers)

    assert refused.status_code == 403
    assert refused.json()["saved"] is False
    assert refused.json()["errors"] == "Event was not deleted."


async def test_publishers_publish_and_users_do_not(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    boss = await world.member("Boss", org, role="admin")
    outsider = await world.member("Out", await world.organisation("Other"), role="admin")
    event = await add(
        world, ada, distribution=1, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}]
    )

    by_user = await world.client.post(f"/sync/events/publish/{event['id']}", headers=ada.headers)
    by_outsider = await world.client.post(
        f"/sync/events/publish/{event['id']}", headers=outsider.headers
    )
    published = await world.client.post(f"/sync/events/publish/{event['id']}", headers=boss.headers)
    after = (await world.client.get(f"/sync/events/view/{event['id']}", headers=ada.headers)).json()
    unpublished = await world.client.post(
        f"/sync/events/unpublish/{event['uuid']}", headers=ada.headers
    )
    finally_ = await world.client.get(f"/sync/events/view/{event['id']}", headers=ada.headers)

    assert by_user.status_code == 403
    assert by_user.json()["message"] == FORBIDDEN
    assert by_outsider.status_code == 405
    assert published.json() == {
        "saved": True, "success": True, "name": "Job queued", "message": "Job queued",
        "url": f"/events/publish/{event['id']}", "id": event["id"],
    }  # fmt: skip
    assert after["Event"]["published"] is True
    assert int(after["Event"]["publish_timestamp"]) >= int(event["timestamp"])
    assert after["Event"]["timestamp"] == event["timestamp"]  # publishing changes nothing else
    assert unpublished.json()["message"] == "Event unpublished."
    assert finally_.json()["Event"]["published"] is False
    assert await announced(world, event["uuid"]) == [
        "sync.event.updated", "sync.event.published", "sync.event.updated",
    ]  # fmt: skip


async def test_changes_reach_the_bus_with_the_events_facts(world: World) -> None:
    org = await world.organisation("Lab")
    boss = await world.member("Boss", org, role="admin")

    async with tapped(world.infra.rabbitmq, world.infra.exchange, "sync.event.#") as tap:
        event = await add(world, boss, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}])
        await world.client.post(f"/sync/events/publish/{event['id']}", headers=boss.headers)
        messages = await take(world.infra.rabbitmq, tap, expect=2, timeout=15)

    envelopes = [json.loads(m.body) for m in messages]
    mine = [e for e in envelopes if e["subject"] == event["uuid"]]
    assert [e["type"] for e in mine] == ["sync.event.updated", "sync.event.published"]
    assert mine[0]["data"]["event_id"] == int(event["id"])
    assert mine[0]["data"]["attribute_count"] == 1
    assert mine[0]["data"]["orgc_uuid"] == str(org)
    assert mine[0]["data"]["source"] == "api"


# --- events/index ---------------------------------------------------------------------------


async def test_the_minimal_index_is_what_a_pulling_server_reads(world: World) -> None:
    org = await world.organisation("Lab")
    boss = await world.member("Boss", org, role="admin")
    full = await add(
        world, boss, published=True, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}]
    )
    empty = await add(world, boss)

    index = await world.client.post(
        "/sync/events/index", headers=boss.headers,
        json={"minimal": True, "eventid": [full["id"], empty["id"]]},
    )  # fmt: skip

    assert index.json() == [
        {
            "id": full["id"],
            "timestamp": full["timestamp"],
            "sighting_timestamp": "0",
            "published": True,
            "uuid": full["uuid"],
            "orgc_uuid": str(org),
        }
    ]


async def test_the_index_filters_as_misp_does(world: World) -> None:
    org = await world.organisation("Lab")
    boss = await world.member("Boss", org, role="admin")
    marker = uuid.uuid4().hex[:10]
    one = await add(world, boss, info=f"{marker} alpha", published=True,
                    Attribute=[{"type": "domain", "value": f"{marker}.example"}])  # fmt: skip
    two = await add(world, boss, info=f"{marker} beta", threat_level_id=1)
    other = await world.member("Eve", await world.organisation("Other"))
    three = await add(world, other, info=f"{marker} gamma", distribution=1)

    async def ids(**filters: Any) -> list[str]:
        found = await world.client.post("/sync/events/index", headers=boss.headers, json=filters)
        assert found.status_code == 200, found.text
        return sorted(e["id"] for e in found.json())

    assert await ids(searchall=marker) == sorted([one["id"], two["id"], three["id"]])
    assert await ids(searchall=f"{marker}.example") == [one["id"]]
    assert await ids(eventinfo=f"{marker} b") == [two["id"]]
    assert await ids(searchall=marker, published=1) == [one["id"]]
    assert await ids(searchall=marker, org=str(org)) == sorted([one["id"], two["id"]])
    assert await ids(searchall=marker, org=f"!{org}") == [three["id"]]
    assert await ids(searchall=marker, threatlevel="1") == [two["id"]]
    assert await ids(eventid=f"{one['uuid']}|{two['id']}") == sorted([one["id"], two["id"]])
    assert await ids(searchall=marker, org="no such organisation") == []
    named = await world.client.get(
        f"/sync/events/index/searchall:{marker}/searchpublished:0", headers=boss.headers
    )
    assert sorted(e["id"] for e in named.json()) == sorted([two["id"], three["id"]])


async def test_the_index_pages_and_answers_unchanged_pages_with_304(world: World) -> None:
    org = await world.organisation("Lab")
    boss = await world.member("Boss", org, role="admin")
    marker = uuid.uuid4().hex[:10]
    made = [await add(world, boss, info=f"{marker} {n}") for n in range(3)]
    query = {"searchall": marker, "limit": 2, "page": 1}

    first = await world.client.post("/sync/events/index", headers=boss.headers, json=query)
    second = await world.client.post(
        "/sync/events/index", headers=boss.headers, json=query | {"page": 2}
    )
    unchanged = await world.client.post(
        "/sync/events/index", headers=boss.headers | {"If-None-Match": first.headers["etag"]},
        json=query,
    )  # fmt: skip
    await world.client.post(
        f"/sync/events/edit/{made[0]['id']}", headers=boss.headers, json={"info": f"{marker} x"}
    )
    changed = await world.client.post(
        "/sync/events/index", headers=boss.headers | {"If-None-Match": first.headers["etag"]},
        json=query,
    )  # fmt: skip

    assert [e["id"] for e in first.json()] == [made[0]["id"], made[1]["id"]]
    assert [e["id"] for e in second.json()] == [made[2]["id"]]
    assert first.headers["x-result-count"] == "3"
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert changed.status_code == 200
    assert changed.headers["etag"] != first.headers["etag"]
