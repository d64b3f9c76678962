"""MISP's attribute routes over HTTP: attributes/add (one or a list, MISP's duplicate rule
and ``breakOnDuplicate``), view, edit and delete (soft, and hard for site admins), each change
moving the event's timestamp, unpublishing it and announcing it."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import World
from .test_events_api import FORBIDDEN, add, announced, as_role

SIMILAR = "A similar attribute already exists for this event."
NO_PERMISSION = "You do not have permission to do that."


async def view(world: World, member: Any, event: dict[str, Any], path: str = "") -> Any:
    answer = await world.client.get(
        f"/sync/events/view/{event['id']}{path}", headers=member.headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["Event"]


async def test_an_added_attribute_is_answered_with_its_tags_and_changes_the_event(
    world: World,
) -> None:
    boss = await world.member("Boss", await world.organisation("Lab"), role="admin")
    event = await add(world, boss, published=True, timestamp=1_600_000_000,
                      Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}])  # fmt: skip

    added = await world.client.post(
        f"/sync/attributes/add/{event['id']}", headers=boss.headers,
        json={"type": "ip-src", "value": "192.0.2.7", "comment": "egress",
              "Tag": [{"name": f"sighted:{uuid.uuid4().hex[:6]}"}]},
    )  # fmt: skip
    after = await view(world, boss, event)

    assert added.status_code == 200, added.text
    body = added.json()
    assert set(body) == {"Attribute", "AttributeTag"}
    attribute = body["Attribute"]
    assert attribute["value"] == attribute["value1"] == "192.0.2.7"
    assert attribute["value2"] == ""
    assert attribute["event_id"] == event["id"]
    assert attribute["category"] == "Network activity"
    assert attribute["to_ids"] is True
    assert body["AttributeTag"][0]["Tag"]["name"].startswith("sighted:")
    assert after["published"] is False
    assert int(after["timestamp"]) > 1_600_000_000
    assert after["attribute_count"] == "2"
    assert await announced(world, event["uuid"]) == [
        "sync.event.updated", "sync.event.published", "sync.event.updated",
    ]  # fmt: skip


async def test_an_attribute_repeating_a_live_one_is_refused_or_updates_it(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada, Attribute=[{"type": "ip-dst", "value": "192.0.2.1",
                                              "timestamp": 1_600_000_000}])  # fmt: skip
    existing = event["Attribute"][0]
    url = f"/sync/attributes/add/{event['id']}"

    refused = await world.client.post(
        url, headers=ada.headers, json={"type": "ip-dst", "value": "192.0.2.1"}
    )
    updated = await world.client.post(
        f"{url}/breakOnDuplicate:0", headers=ada.headers,
        json={"type": "ip-dst", "value": "192.0.2.1", "comment": "again"},
    )  # fmt: skip

    assert refused.status_code == 403
    assert refused.json()["saved"] is False
    assert refused.json()["name"] == "Could not add Attribute"
    assert refused.json()["url"] == "/attributes/add"
    assert refused.json()["errors"] == {"value": [SIMILAR]}
    assert updated.status_code == 200, updated.text
    assert updated.json()["Attribute"]["uuid"] == existing["uuid"]
    assert updated.json()["Attribute"]["comment"] == "again"
    assert int(updated.json()["Attribute"]["timestamp"]) > 1_600_000_000
    assert len((await view(world, ada, event))["Attribute"]) == 1


async def test_a_list_is_saved_attribute_by_attribute(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada, Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}])

    added = await world.client.post(
        f"/sync/attributes/add/{event['id']}.json", headers=ada.headers,
        json=[{"type": "ip-dst", "value": "192.0.2.1"},   # repeats a live one
              {"type": "ip-dst", "value": "192.0.2.5"},
              {"type": "ip-dst", "value": "192.0.2.5"},   # repeats one of the payload
              {"type": "ip-dst", "value": "nope"},        # invalid
              {"type": "domain", "value": "b.example"}],
    )  # fmt: skip

    assert added.status_code == 200, added.text
    body = added.json()
    assert [a["value"] for a in body["Attribute"]] == ["192.0.2.5", "b.example"]
    assert body["errors"]["attribute_0"] == {"value": [SIMILAR]}
    assert list(body["errors"]["attribute_3"]) == ["value"]
    assert set(body["errors"]) == {"attribute_0", "attribute_3"}


async def test_a_value_list_is_one_attribute_per_value(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)

    added = await world.client.post(
        f"/sync/attributes/add/{event['uuid']}", headers=ada.headers,
        json={"Attribute": {"type": "domain", "value": ["a.example", "b.example"]}},
    )  # fmt: skip

    assert [a["value"] for a in added.json()["Attribute"]] == ["a.example", "b.example"]


async def test_only_the_creator_organisation_adds_and_a_private_event_is_not_found(
    world: World,
) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    reader = await world.member("Reader", org)
    as_role(world, reader, "read_only")
    eve = await world.member("Eve", await world.organisation("Other"))
    shared = await add(world, ada, distribution=1)
    private = await add(world, ada, distribution=0)
    attribute = {"type": "ip-dst", "value": "192.0.2.1"}

    by_other = await world.client.post(
        f"/sync/attributes/add/{shared['id']}", headers=eve.headers, json=attribute
    )
    hidden = await world.client.post(
        f"/sync/attributes/add/{private['id']}", headers=eve.headers, json=attribute
    )
    by_reader = await world.client.post(
        f"/sync/attributes/add/{shared['id']}", headers=reader.headers, json=attribute
    )

    assert by_other.status_code == 403
    assert by_other.json()["message"] == NO_PERMISSION
    assert hidden.status_code == 404
    assert hidden.json()["message"] == "Invalid event"
    assert by_reader.status_code == 403
    assert by_reader.json()["message"] == FORBIDDEN


async def test_an_edit_keeps_what_it_leaves_out_and_refuses_a_repeat(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada, Attribute=[
        {"type": "ip-dst", "value": "192.0.2.1", "comment": "kept", "to_ids": False},
        {"type": "ip-dst", "value": "192.0.2.2"},
    ])  # fmt: skip
    first, second = event["Attribute"]

    edited = await world.client.post(
        f"/sync/attributes/edit/{first['uuid']}", headers=ada.headers,
        json={"Attribute": {"value": "192.0.2.3"}},
    )  # fmt: skip
    repeat = await world.client.put(
        f"/sync/attributes/edit/{second['id']}", headers=ada.headers, json={"value": "192.0.2.3"}
    )
    viewed = await world.client.get(f"/sync/attributes/view/{first['id']}", headers=ada.headers)

    assert edited.status_code == 200, edited.text
    shown = edited.json()["Attribute"]
    assert shown["value"] == "192.0.2.3"
    assert shown["comment"] == "kept"
    assert shown["to_ids"] is False
    assert "value1" not in shown
    assert viewed.json() == edited.json()
    assert repeat.status_code == 403
    assert repeat.json()["errors"] == {"value": [SIMILAR]}
    assert repeat.json()["name"] == "Could not edit Attribute"


async def test_another_organisation_neither_edits_nor_sees_private_attributes(
    world: World,
) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    eve = await world.member("Eve", await world.organisation("Other"))
    shared = await add(
        world,
        ada,
        distribution=1,
        Attribute=[
            {"type": "ip-dst", "value": "192.0.2.1"},
            {"type": "ip-dst", "value": "192.0.2.2", "distribution": 0},
        ],
    )
    visible, private = shared["Attribute"]

    edited = await world.client.post(
        f"/sync/attributes/edit/{visible['id']}", headers=eve.headers, json={"comment": "x"}
    )
    deleted = await world.client.post(
        f"/sync/attributes/delete/{visible['id']}", headers=eve.headers
    )
    seen = await world.client.get(f"/sync/attributes/view/{private['uuid']}", headers=eve.headers)
    event = await world.client.get(f"/sync/events/view/{shared['id']}", headers=eve.headers)

    assert edited.status_code == 403
    assert edited.json()["message"] == NO_PERMISSION
    assert deleted.status_code == 403
    assert seen.status_code == 404
    assert seen.json()["message"] == "Invalid attribute"
    assert [a["uuid"] for a in event.json()["Event"]["Attribute"]] == [visible["uuid"]]


async def test_a_sync_users_attribute_edit_must_be_newer(world: World) -> None:
    peer = await world.member("Peer", await world.organisation("Peer"))
    as_role(world, peer, "sync_user")
    event = await add(world, peer, Attribute=[{"type": "ip-dst", "value": "192.0.2.1",
                                               "timestamp": 1_700_000_000}])  # fmt: skip
    attribute = event["Attribute"][0]

    stale = await world.client.post(
        f"/sync/attributes/edit/{attribute['uuid']}", headers=peer.headers,
        json={"comment": "stale", "timestamp": 1_700_000_000},
    )  # fmt: skip
    newer = await world.client.post(
        f"/sync/attributes/edit/{attribute['uuid']}", headers=peer.headers,
        json={"comment": "newer", "timestamp": 1_700_000_050},
    )  # fmt: skip

    assert stale.status_code == 405
    assert stale.json()["message"] == (
        "Attribute could not be saved: Attribute in the request not newer than the local copy."
    )
    assert newer.json()["Attribute"]["timestamp"] == "1700000050"


async def test_delete_is_soft_and_hard_only_for_site_admins(world: World) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    event = await add(
        world,
        ada,
        Attribute=[
            {"type": "ip-dst", "value": "192.0.2.1"},
            {"type": "ip-dst", "value": "192.0.2.2"},
        ],
    )
    soft, hard = event["Attribute"]

    deleted = await world.client.post(f"/sync/attributes/delete/{soft['id']}", headers=ada.headers)
    again = await world.client.post(f"/sync/attributes/delete/{soft['id']}", headers=ada.headers)
    hard_by_user = await world.client.post(
        f"/sync/attributes/delete/{hard['id']}/1", headers=ada.headers
    )
    live = await view(world, ada, event)
    everything = await view(world, ada, event, "/deleted:1")
    admin = world.tokens.bearer(ada.id, roles=["superadmin"]) | {"Accept": "application/json"}
    hard_by_admin = await world.client.post(
        f"/sync/attributes/delete/{hard['uuid']}", headers=admin, json={"hard": 1}
    )
    after = await view(world, ada, event, "/deleted:1")

    assert deleted.json() == {"message": "Attribute deleted."}
    assert again.status_code == 404
    assert hard_by_user.status_code == 403
    assert [a["uuid"] for a in live["Attribute"]] == [hard["uuid"]]
    assert live["attribute_count"] == "1"
    assert {a["uuid"]: a["deleted"] for a in everything["Attribute"]} == {
        soft["uuid"]: True, hard["uuid"]: False,
    }  # fmt: skip
    assert hard_by_admin.json() == {"message": "Attribute deleted."}
    assert [a["uuid"] for a in after["Attribute"]] == [soft["uuid"]]
