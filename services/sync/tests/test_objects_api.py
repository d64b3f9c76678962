"""MISP's object routes over HTTP: objects/add (checked against pymisp's templates, MISP's
``breakOnDuplicate``), view (and HEAD), edit (MISP's delta merge), delete (soft, then hard),
and objectReferences/add, view and delete; each change moving the event's timestamp,
unpublishing it and announcing it, and only by who may modify the event."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import Member, World
from .test_events_api import add, announced, as_role

DOMAIN_IP = {"name": "domain-ip", "meta-category": "network", "description": "a tuple",
             "template_uuid": "43b3b146-77eb-4931-b4cc-b66c60f28734",
             "template_version": "11"}  # fmt: skip
NO_PERMISSION = "You do not have permission to do that."


def domain_ip(*attributes: tuple[str, str, str], **fields: Any) -> dict[str, Any]:
    """A ``domain-ip`` object as PyMISP sends it: ``(relation, type, value)`` each."""
    return {"Object": DOMAIN_IP | fields | {"Attribute": [
        {"object_relation": r, "type": t, "value": v} for r, t, v in attributes]}}  # fmt: skip


async def add_object(world: World, member: Member, event: dict[str, Any], body: Any) -> Any:
    added = await world.client.post(
        f"/sync/objects/add/{event['id']}", headers=member.headers, json=body
    )
    assert added.status_code == 200, added.text
    return added.json()["Object"]


async def view_event(world: World, member: Member, event: dict[str, Any], path: str = "") -> Any:
    answer = await world.client.get(
        f"/sync/events/view/{event['id']}{path}", headers=member.headers
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["Event"]


async def refused(world: World, member: Member, event: dict[str, Any], body: Any) -> Any:
    answer = await world.client.post(
        f"/sync/objects/add/{event['uuid']}", headers=member.headers, json=body
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["saved"] is False
    assert answer.json()["name"] == "Could not add Object"
    return answer.json()["errors"]


# --- objects/add, view --------------------------------------------------------------------------


async def test_an_added_object_is_answered_with_its_attributes_and_changes_the_event(
    world: World,
) -> None:
    boss = await world.member("Boss", await world.organisation("Lab"), role="admin")
    event = await add(world, boss, published=True, timestamp=1_600_000_000,
                      Attribute=[{"type": "ip-dst", "value": "192.0.2.1"}])  # fmt: skip

    obj = await add_object(
        world, boss, event,
        domain_ip(("domain", "domain", "Evil.Example."), ("ip", "ip-dst", "198.51.100.7"),
                  comment="C2", name="renamed by the client"),
    )  # fmt: skip
    after = await view_event(world, boss, event)

    assert obj["name"] == "domain-ip"  # the template's, not the client's
    assert obj["template_version"] == "11"
    assert obj["comment"] == "C2"
    assert obj["event_id"] == event["id"]
    assert [(a["object_relation"], a["value"]) for a in obj["Attribute"]] == [
        ("domain", "evil.example"), ("ip", "198.51.100.7"),
    ]  # fmt: skip
    assert all(a["object_id"] == obj["id"] for a in obj["Attribute"])
    assert after["published"] is False
    assert int(after["timestamp"]) > 1_600_000_000
    assert after["attribute_count"] == "3"
    assert [o["uuid"] for o in after["Object"]] == [obj["uuid"]]
    assert await announced(world, event["uuid"]) == [
        "sync.event.updated", "sync.event.published", "sync.event.updated",
    ]  # fmt: skip


async def test_an_object_is_viewed_by_id_or_uuid_and_head_says_whether_it_exists(
    world: World,
) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)
    obj = await add_object(world, ada, event, domain_ip(("domain", "domain", "a.example")))

    by_id = await world.client.get(f"/sync/objects/view/{obj['id']}", headers=ada.headers)
    by_uuid = await world.client.get(f"/sync/objects/view/{obj['uuid']}.json", headers=ada.headers)
    exists = await world.client.head(f"/sync/objects/view/{obj['uuid']}", headers=ada.headers)
    missing = await world.client.head(f"/sync/objects/view/{uuid.uuid4()}", headers=ada.headers)
    unknown = await world.client.get("/sync/objects/view/99999999", headers=ada.headers)

    assert by_id.status_code == 200, by_id.text
    assert by_id.json() == by_uuid.json()
    shown = by_id.json()["Object"]
    assert shown["Event"] == {"id": event["id"], "info": event["info"],
                              "org_id": event["org_id"], "orgc_id": event["orgc_id"]}  # fmt: skip
    assert [a["value"] for a in shown["Attribute"]] == ["a.example"]
    assert shown["ObjectReference"] == []
    assert (exists.status_code, missing.status_code) == (200, 404)
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "Invalid object."


async def test_a_bad_object_is_refused_naming_the_field_and_nothing_is_saved(
    world: World,
) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)

    unknown_relation = await refused(world, ada, event, domain_ip(
        ("domain", "domain", "a.example"), ("colour", "text", "red")))  # fmt: skip
    bad_value = await refused(world, ada, event, domain_ip(("ip", "ip-dst", "not an address")))
    none_of = await refused(world, ada, event, domain_ip(("port", "port", "443")))
    twice = await refused(world, ada, event, domain_ip(
        ("hostname", "hostname", "a.example"), ("hostname", "hostname", "b.example")))  # fmt: skip
    empty = await refused(world, ada, event, {"Object": DOMAIN_IP | {"Attribute": []}})
    no_relation = await refused(world, ada, event, {"Object": DOMAIN_IP | {
        "Attribute": [{"type": "domain", "value": "a.example"}]}})  # fmt: skip
    no_template = await refused(world, ada, event, {"name": "thing", "Attribute": [
        {"object_relation": "x", "type": "text", "value": "y"}]})  # fmt: skip
    after = await view_event(world, ada, event)

    assert list(unknown_relation) == ["Attribute.1.object_relation"]
    assert "colour" in unknown_relation["Attribute.1.object_relation"][0]
    assert list(bad_value) == ["Attribute.0.value"]
    assert list(none_of) == ["Attribute"]
    assert none_of["Attribute"][0].startswith("Could not save the object as it requires")
    assert list(twice) == ["Attribute.1.object_relation"]
    assert empty == {"Attribute": ["Could not save the object as no attributes were set."]}
    assert list(no_relation) == ["Attribute.0.object_relation"]
    assert list(no_template) == ["template"]
    assert after.get("Object", []) == []
    assert after["attribute_count"] == "0"


async def test_an_object_of_a_template_unknown_here_is_saved_as_it_came(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)
    template = str(uuid.uuid4())

    obj = await add_object(world, ada, event, {
        "name": "in-house", "meta-category": "misc", "description": "ours",
        "template_uuid": template, "template_version": 3,
        "Attribute": [{"object_relation": "anything", "type": "text", "value": "kept"}],
    })  # fmt: skip

    assert (obj["name"], obj["template_uuid"], obj["template_version"]) == (
        "in-house", template, "3")  # fmt: skip
    assert obj["Attribute"][0]["object_relation"] == "anything"


async def test_break_on_duplicate_refuses_a_copy_of_a_live_object(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)
    body = domain_ip(("domain", "domain", "a.example"), ("ip", "ip-dst", "192.0.2.1"))
    first = await add_object(world, ada, event, body)

    copy = await world.client.post(
        f"/sync/objects/add/{event['id']}/breakOnDuplicate:1", headers=ada.headers, json=body
    )
    allowed = await world.client.post(
        f"/sync/objects/add/{event['id']}", headers=ada.headers, json=body
    )

    assert copy.status_code == 403
    assert first["uuid"] in copy.json()["errors"]["value"][0]
    assert allowed.status_code == 200, allowed.text


# --- objects/edit ------------------------------------------------------------------------------


async def test_an_edit_changes_adds_and_deletes_attributes_by_uuid(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada, timestamp=1_600_000_000)
    obj = await add_object(world, ada, event, domain_ip(
        ("domain", "domain", "a.example"), ("ip", "ip-dst", "192.0.2.1")))  # fmt: skip
    domain, ip = obj["Attribute"]
    await world.query("UPDATE events SET timestamp = 1600000000, published = true")

    edited = await world.client.post(
        f"/sync/objects/edit/{obj['uuid']}", headers=ada.headers,
        json={"Object": {"comment": "still active", "name": "ignored", "Attribute": [
            {"uuid": domain["uuid"], "object_relation": "domain", "type": "domain",
             "value": "b.example"},
            {"object_relation": "port", "type": "port", "value": "443"},
        ]}},
    )  # fmt: skip
    after = await view_event(world, ada, event, "/deleted:1")

    assert edited.status_code == 200, edited.text
    shown = edited.json()["Object"]
    assert (shown["comment"], shown["name"]) == ("still active", "domain-ip")
    assert {(a["object_relation"], a["value"]) for a in shown["Attribute"]} == {
        ("domain", "b.example"), ("port", "443")}  # fmt: skip
    assert next(a for a in shown["Attribute"] if a["uuid"] == domain["uuid"])
    [stored] = after["Object"]
    gone = next(a for a in stored["Attribute"] if a["uuid"] == ip["uuid"])
    assert gone["deleted"] is True
    assert after["published"] is False
    assert int(after["timestamp"]) > 1_600_000_000
    assert after["attribute_count"] == "2"


async def test_a_bad_edit_is_refused_naming_the_field_and_changes_nothing(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)
    obj = await add_object(world, ada, event, domain_ip(("domain", "domain", "a.example")))
    [domain] = obj["Attribute"]

    bad_value = await world.client.post(
        f"/sync/objects/edit/{obj['id']}", headers=ada.headers,
        json={"comment": "x", "Attribute": [
            {"uuid": domain["uuid"], "object_relation": "domain", "value": "b.example"},
            {"object_relation": "ip", "type": "ip-dst", "value": "999.1.1.1"}]},
    )  # fmt: skip
    unknown = await world.client.post(
        f"/sync/objects/edit/{obj['id']}", headers=ada.headers,
        json={"Attribute": [{"object_relation": "shoe-size", "type": "text", "value": "9"}]},
    )  # fmt: skip
    viewed = await world.client.get(f"/sync/objects/view/{obj['id']}", headers=ada.headers)

    assert bad_value.status_code == 403
    assert bad_value.json()["name"] == "Could not edit Object"
    assert list(bad_value.json()["errors"]) == ["Attribute.1.value"]
    assert list(unknown.json()["errors"]) == ["Attribute.0.object_relation"]
    assert viewed.json()["Object"]["comment"] == ""
    assert [a["value"] for a in viewed.json()["Object"]["Attribute"]] == ["a.example"]


# --- objectReferences --------------------------------------------------------------------------


async def test_references_go_to_an_object_or_an_attribute_of_the_event(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada, Attribute=[{"type": "ip-dst", "value": "192.0.2.9"}])
    other = await add(world, ada, Attribute=[{"type": "ip-dst", "value": "192.0.2.10"}])
    source = await add_object(world, ada, event, domain_ip(("domain", "domain", "a.example")))
    target = await add_object(world, ada, event, domain_ip(("domain", "domain", "b.example")))
    [attribute] = event["Attribute"]
    await world.query("UPDATE events SET timestamp = 1600000000, published = true")

    to_object = await world.client.post(
        "/sync/objectReferences/add", headers=ada.headers,
        json={"object_uuid": source["uuid"], "referenced_uuid": target["uuid"],
              "relationship_type": "resolves-to", "comment": "DNS"},
    )  # fmt: skip
    to_attribute = await world.client.post(
        f"/sync/objectReferences/add/{source['id']}", headers=ada.headers,
        json={"ObjectReference": {"referenced_uuid": attribute["uuid"],
                                  "relationship_type": "connects-to"}},
    )  # fmt: skip
    elsewhere = await world.client.post(
        f"/sync/objectReferences/add/{source['id']}", headers=ada.headers,
        json={"referenced_uuid": other["Attribute"][0]["uuid"], "relationship_type": "x"},
    )  # fmt: skip
    nowhere = await world.client.post(
        f"/sync/objectReferences/add/{source['id']}", headers=ada.headers,
        json={"referenced_uuid": str(uuid.uuid4())},
    )  # fmt: skip
    malformed = await world.client.post(
        f"/sync/objectReferences/add/{source['id']}", headers=ada.headers,
        json={"referenced_uuid": "not a uuid"},
    )  # fmt: skip
    viewed = await world.client.get(f"/sync/objects/view/{source['uuid']}", headers=ada.headers)
    after = await view_event(world, ada, event)

    assert to_object.status_code == 200, to_object.text
    reference = to_object.json()["ObjectReference"]
    assert reference["object_uuid"] == reference["source_uuid"] == source["uuid"]
    assert (reference["referenced_type"], reference["referenced_id"]) == ("1", target["id"])
    assert (reference["relationship_type"], reference["comment"]) == ("resolves-to", "DNS")
    assert to_attribute.json()["ObjectReference"]["referenced_type"] == "0"
    assert to_attribute.json()["ObjectReference"]["referenced_id"] == attribute["id"]
    assert elsewhere.status_code == 404
    assert elsewhere.json()["message"].startswith("Invalid target. Target has to be within")
    assert (nowhere.status_code, nowhere.json()["message"]) == (404, "Invalid target.")
    assert malformed.status_code == 403
    assert list(malformed.json()["errors"]) == ["referenced_uuid"]
    assert [r["referenced_uuid"] for r in viewed.json()["Object"]["ObjectReference"]] == [
        target["uuid"], attribute["uuid"]]  # fmt: skip
    [shown] = [o for o in after["Object"] if o["uuid"] == source["uuid"]]
    assert len(shown["ObjectReference"]) == 2
    assert after["published"] is False
    assert int(after["timestamp"]) > 1_600_000_000


async def test_a_reference_is_viewed_then_deleted_soft_then_hard(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)
    source = await add_object(world, ada, event, domain_ip(("domain", "domain", "a.example")))
    target = await add_object(world, ada, event, domain_ip(("domain", "domain", "b.example")))
    added = await world.client.post(
        f"/sync/objectReferences/add/{source['uuid']}", headers=ada.headers,
        json={"referenced_uuid": target["uuid"], "relationship_type": "resolves-to"},
    )  # fmt: skip
    reference = added.json()["ObjectReference"]

    viewed = await world.client.get(
        f"/sync/objectReferences/view/{reference['uuid']}", headers=ada.headers
    )
    soft = await world.client.post(
        f"/sync/objectReferences/delete/{reference['id']}", headers=ada.headers
    )
    kept = await world.client.get(
        f"/sync/objectReferences/view/{reference['id']}", headers=ada.headers
    )
    shown = await world.client.get(f"/sync/objects/view/{source['id']}", headers=ada.headers)
    hard = await world.client.post(
        f"/sync/objectReferences/delete/{reference['uuid']}/true", headers=ada.headers
    )
    gone = await world.client.get(
        f"/sync/objectReferences/view/{reference['id']}", headers=ada.headers
    )

    assert viewed.json()["ObjectReference"]["id"] == reference["id"]
    assert soft.json()["message"] == "ObjectReference deleted"
    assert soft.json()["saved"] is True
    assert kept.json()["ObjectReference"]["deleted"] is True
    assert shown.json()["Object"]["ObjectReference"] == []
    assert hard.status_code == 200, hard.text
    assert (gone.status_code, gone.json()["message"]) == (404, "Invalid object reference.")


# --- objects/delete ----------------------------------------------------------------------------


async def test_delete_is_soft_then_hard(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)
    obj = await add_object(world, ada, event, domain_ip(
        ("domain", "domain", "a.example"), ("ip", "ip-dst", "192.0.2.1")))  # fmt: skip
    pointing = await add_object(world, ada, event, domain_ip(("domain", "domain", "b.example")))
    await world.client.post(
        f"/sync/objectReferences/add/{pointing['id']}", headers=ada.headers,
        json={"referenced_uuid": obj["uuid"], "relationship_type": "related-to"},
    )  # fmt: skip
    await world.query("UPDATE events SET timestamp = 1600000000, published = true")

    soft = await world.client.post(f"/sync/objects/delete/{obj['uuid']}", headers=ada.headers)
    live = await view_event(world, ada, event)
    everything = await view_event(world, ada, event, "/deleted:1")
    still = await world.client.get(f"/sync/objects/view/{obj['id']}", headers=ada.headers)
    hard = await world.client.post(
        f"/sync/objects/delete/{obj['id']}", headers=ada.headers, json={"hard": 1}
    )
    rows = await world.query(
        "SELECT (SELECT count(*) FROM objects WHERE uuid = $1) AS objects, "
        "(SELECT count(*) FROM attributes a JOIN objects o ON o.id = a.object_id "
        "WHERE o.uuid = $1) AS attributes, "
        "(SELECT count(*) FROM object_references WHERE referenced_uuid = $1) AS refs",
        uuid.UUID(obj["uuid"]),
    )
    exists = await world.client.head(f"/sync/objects/view/{obj['id']}", headers=ada.headers)

    assert soft.status_code == 200, soft.text
    assert soft.json() == {"saved": True, "success": True, "name": "Object deleted",
                           "message": "Object deleted", "id": event["id"],
                           "url": f"/objects/delete/{event['id']}"}  # fmt: skip
    assert [o["uuid"] for o in live["Object"]] == [pointing["uuid"]]
    assert live["Object"][0]["ObjectReference"] == []
    assert live["published"] is False
    assert int(live["timestamp"]) > 1_600_000_000
    assert live["attribute_count"] == "1"
    [deleted] = [o for o in everything["Object"] if o["uuid"] == obj["uuid"]]
    assert deleted["deleted"] is True
    assert all(a["deleted"] for a in deleted["Attribute"])
    assert still.json()["Object"]["deleted"] is True
    assert hard.status_code == 200, hard.text
    assert dict(rows[0]) == {"objects": 0, "attributes": 0, "refs": 0}
    assert exists.status_code == 404
    assert await announced(world, event["uuid"]) == ["sync.event.updated"] * 6


# --- who may -----------------------------------------------------------------------------------


async def test_another_organisation_may_see_but_not_change_and_a_private_event_is_not_found(
    world: World,
) -> None:
    org = await world.organisation("Lab")
    ada = await world.member("Ada", org)
    reader = await world.member("Reader", org)
    as_role(world, reader, "read_only")
    eve = await world.member("Eve", await world.organisation("Other"))
    shared = await add(world, ada, distribution=1)
    private = await add(world, ada, distribution=0)
    body = domain_ip(("domain", "domain", "a.example"))
    obj = await add_object(world, ada, shared, body)
    other = await add_object(world, ada, shared, body)
    hidden_obj = await add_object(world, ada, private, body)
    reference = (await world.client.post(
        f"/sync/objectReferences/add/{obj['id']}", headers=ada.headers,
        json={"referenced_uuid": other["uuid"]},
    )).json()["ObjectReference"]  # fmt: skip

    by_other = await world.client.post(
        f"/sync/objects/add/{shared['id']}", headers=eve.headers, json=body
    )
    into_hidden = await world.client.post(
        f"/sync/objects/add/{private['id']}", headers=eve.headers, json=body
    )
    by_reader = await world.client.post(
        f"/sync/objects/add/{shared['id']}", headers=reader.headers, json=body
    )
    seen = await world.client.get(f"/sync/objects/view/{obj['id']}", headers=eve.headers)
    unseen = await world.client.get(f"/sync/objects/view/{hidden_obj['id']}", headers=eve.headers)
    edited = await world.client.post(
        f"/sync/objects/edit/{obj['id']}", headers=eve.headers, json={"comment": "mine"}
    )
    deleted = await world.client.post(f"/sync/objects/delete/{obj['id']}", headers=eve.headers)
    referenced = await world.client.post(
        f"/sync/objectReferences/add/{obj['id']}", headers=eve.headers,
        json={"referenced_uuid": other["uuid"]},
    )  # fmt: skip
    unreferenced = await world.client.post(
        f"/sync/objectReferences/delete/{reference['id']}", headers=eve.headers
    )
    still = await world.client.get(f"/sync/objects/view/{obj['id']}", headers=ada.headers)

    assert (by_other.status_code, by_other.json()["message"]) == (403, NO_PERMISSION)
    assert (into_hidden.status_code, into_hidden.json()["message"]) == (404, "Invalid event")
    assert (by_reader.status_code, by_reader.json()["message"]) == (
        403, "You don't have permissions to create objects.")  # fmt: skip
    assert seen.status_code == 200
    assert unseen.status_code == 404
    assert edited.status_code == 403
    assert deleted.status_code == 403
    assert (referenced.status_code, referenced.json()["message"]) == (404, "Invalid object.")
    assert unreferenced.status_code == 403
    assert still.json()["Object"]["comment"] == ""
    assert still.json()["Object"]["deleted"] is False
    assert len(still.json()["Object"]["ObjectReference"]) == 1


async def test_a_body_that_is_no_object_is_refused_not_an_error(world: World) -> None:
    ada = await world.member("Ada", await world.organisation("Lab"))
    event = await add(world, ada)
    obj = await add_object(world, ada, event, domain_ip(("domain", "domain", "a.example")))

    answers = [
        await world.client.post(f"/sync/objects/add/{event['id']}", headers=ada.headers,
                                json=body)
        for body in ([1, 2], "text", {"Object": "x"}, {"Attribute": "x", "name": "n"},
                     {"Object": {"name": 5, "Attribute": [None, 3]}})
    ] + [
        await world.client.post(f"/sync/objects/edit/{obj['id']}", headers=ada.headers,
                                json=body)
        for body in ([1], {"Attribute": [None, "x"]}, {"distribution": "nine"},
                     {"Attribute": {"uuid": "nope", "value": 1}})
    ] + [
        await world.client.post("/sync/objectReferences/add", headers=ada.headers, json=body)
        for body in ([1], {"object_uuid": 5}, {"object_uuid": obj["uuid"]})
    ]  # fmt: skip

    assert all(400 <= a.status_code < 500 for a in answers), [a.text for a in answers]
