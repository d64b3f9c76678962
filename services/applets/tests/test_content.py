"""The applet document: created and replaced whole, patched, read back, versioned, listed,
deleted and duplicated, against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import asyncpg
import pytest

from tessera.applets.examples import EVERY_RESPONSE_TYPE, example_applet
from tessera.applets.schemas import AppletOut

from .conftest import World


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    """What a PUT takes back: the answer without its metadata."""
    return copy.deepcopy({k: v for k, v in doc.items() if k not in ("my_roles",)})


async def test_an_applet_with_every_response_type_reads_back_as_it_was_sent(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)

    got = await world.client.get(f"/applets/{created['id']}", headers=world.headers(ada))
    assert got.status_code == 200
    AppletOut.model_validate(got.json())  # the documented shape
    document = got.json()
    assert document["version"] == "1.0.0"
    assert document["my_roles"] == ["manager", "owner"]  # an organisation admin, and owner
    items = document["activities"][0]["items"]
    assert sorted({i["response_type"] for i in items}) == EVERY_RESPONSE_TYPE
    assert len(EVERY_RESPONSE_TYPE) == 22
    sent = example_applet()["activities"][0]["items"]
    for item, original in zip(items, sent, strict=True):
        assert item["name"] == original["name"]
        assert item["response_type"] == original["response_type"]
        assert item["order"] == sent.index(original)
        uuid.UUID(item["id"])
    mood = items[0]
    assert mood["response_values"]["options"][2] == {
        "text": "Often",
        "value": 2,
        "score": 2,
        "alert": "Reported often",
        "is_hidden": False,
    }  # fmt: skip  (a field without a value is left out)
    assert document["flows"][0]["activities"] == ["Daily check", "Weekly review"]
    assert document["flows"][0]["activity_ids"] == [a["id"] for a in document["activities"]]

    event = await world.bus.one("applets.applet.version_published", applet_id=created["id"])
    assert event["applet_version"] == "1.0.0"
    assert event["previous_version"] is None
    snapshot_items = event["snapshot"]["activities"][0]["items"]
    assert [i["id"] for i in snapshot_items] == [i["id"] for i in items]
    assert snapshot_items[2]["response_values"]["scores"] == [0, 1, 2, 3, 4]
    assert event["snapshot"]["retention"] == {"period": "years", "amount": 2}


async def test_replacing_keeps_the_ids_sent_back_and_publishes_the_next_version(
    world: World,
) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)
    document = _content(created)
    diary = document["activities"][0]["items"][5]  # nothing refers to it
    document["activities"][0]["items"][5] = {**diary, "name": "journal"}
    document["activities"][0]["items"].append(
        {"name": "added", "question": {"en": "New?"}, "response_type": "text"}
    )

    replaced = await world.client.put(
        f"/applets/{created['id']}", json=document, headers=world.headers(ada)
    )

    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["etag"] == '"1.0.1"'
    body = replaced.json()
    assert body["version"] == "1.0.1"
    items = body["activities"][0]["items"]
    assert items[5]["id"] == diary["id"]
    assert items[5]["name"] == "journal"
    assert items[-1]["name"] == "added"
    assert items[-1]["id"] not in {i["id"] for i in created["activities"][0]["items"]}
    event = await world.bus.one("applets.applet.version_published", applet_version="1.0.1",
                                applet_id=created["id"])  # fmt: skip
    assert event["previous_version"] == "1.0.0"
    changes = await world.client.get(
        f"/applets/{created['id']}/versions/1.0.1/changes", headers=world.headers(ada)
    )
    assert changes.status_code == 200
    assert (
        "Item 'diary' of activity 'Daily check' renamed to 'journal'" in changes.json()["changes"]
    )
    assert any("'added'" in line and "added" in line for line in changes.json()["changes"])


async def test_the_earlier_version_stays_readable_and_unchanged_after_an_edit(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)
    edited = _content(created) | {"display_name": "Renamed"}
    assert (await world.client.put(f"/applets/{created['id']}", json=edited,
                                   headers=world.headers(ada))).status_code == 200  # fmt: skip

    first = await world.client.get(
        f"/applets/{created['id']}/versions/1.0.0", headers=world.headers(ada)
    )
    second = await world.client.get(
        f"/applets/{created['id']}/versions/1.0.1", headers=world.headers(ada)
    )
    listed = await world.client.get(
        f"/applets/{created['id']}/versions", headers=world.headers(ada)
    )

    assert first.json()["content"]["display_name"] == "Daily wellbeing"
    assert second.json()["content"]["display_name"] == "Renamed"
    assert [v["version"] for v in listed.json()["items"]] == ["1.0.1", "1.0.0"]
    assert listed.json()["total"] == 2
    missing = await world.client.get(
        f"/applets/{created['id']}/versions/9.9.9", headers=world.headers(ada)
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "version_not_found"


async def test_a_published_version_cannot_be_changed_even_in_the_database(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)
    applet_id = uuid.UUID(created["id"])
    for statement in (
        "UPDATE versions SET content = '{}' WHERE applet_id = $1",
        "DELETE FROM versions WHERE applet_id = $1",
    ):
        with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="never changes"):
            await world.query(statement, applet_id)


async def test_sending_the_same_content_again_makes_no_new_version(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)

    again = await world.client.put(
        f"/applets/{created['id']}", json=_content(created), headers=world.headers(ada)
    )

    assert again.status_code == 200
    assert again.json()["version"] == "1.0.0"
    versions = await world.query(
        "SELECT version FROM versions WHERE applet_id = $1", uuid.UUID(created["id"])
    )
    assert [v["version"] for v in versions] == ["1.0.0"]


async def test_patch_changes_the_applets_own_fields_as_a_new_version(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)

    patched = await world.client.patch(
        f"/applets/{created['id']}",
        json={"display_name": "Evening", "about": {"fr": "Une étude"}},
        headers=world.headers(ada),
    )

    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["version"], body["display_name"], body["about"]) == (
        "1.0.1", "Evening", {"fr": "Une étude"},
    )  # fmt: skip
    assert body["activities"] == created["activities"]
    nulled = await world.client.patch(
        f"/applets/{created['id']}", json={"display_name": None}, headers=world.headers(ada)
    )
    assert nulled.status_code == 422


async def test_a_condition_on_a_later_item_names_the_activity_the_item_and_the_field(
    world: World,
) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    document = example_applet(str(org))
    items = document["activities"][0]["items"]
    items[1]["conditional_logic"]["conditions"][0]["item"] = "energy"  # after 'feelings'

    response = await world.client.post("/applets", json=document, headers=world.headers(ada))

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["activity"] == "Daily check"
    assert error["item"] == "feelings"
    assert error["field"] == "activities.0.items.1.conditional_logic.conditions.0.item"
    assert "earlier" in error["message"]


async def test_an_operator_that_does_not_fit_the_referred_type_is_refused(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    document = example_applet(str(org))
    condition = document["activities"][0]["items"][1]["conditional_logic"]["conditions"][0]
    condition["type"] = "GREATER_THAN"  # on a single select
    condition["payload"] = {"value": 1}

    response = await world.client.post("/applets", json=document, headers=world.headers(ada))

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"].endswith("conditions.0.type")
    assert "EQUAL_TO_OPTION" in error["message"]


async def test_a_score_on_an_unscored_item_is_refused(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    document = example_applet(str(org))
    report = document["activities"][0]["scores_and_reports"]["reports"][0]
    report["items_score"].append("notes")

    response = await world.client.post("/applets", json=document, headers=world.headers(ada))

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "activities.0.scores_and_reports.reports.0.items_score.2"
    assert error["activity"] == "Daily check"


async def test_a_wrong_value_of_a_response_type_names_the_activity_and_the_item(
    world: World,
) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    document = example_applet(str(org))
    document["activities"][0]["items"][2]["response_values"]["max_value"] = -5  # the slider

    response = await world.client.post("/applets", json=document, headers=world.headers(ada))

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors[0]["activity"] == "Daily check"
    assert errors[0]["item"] == "energy"
    assert errors[0]["field"].startswith("activities.0.items.2.slider.response_values")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["activities"][0]["items"][0].update(response_type="dial"), "items.0"),
        (lambda d: d["activities"][0]["items"][4].update(response_values={"x": 1}), "items.4"),
        (lambda d: d["activities"][0]["items"][0]["config"].update(colour=True), "items.0"),
        (lambda d: d["activities"][0].update(name=""), "activities.0.name"),
        (lambda d: d.update(retention={"period": "days"}), "retention"),
        (lambda d: d.update(image="javascript:alert(1)"), "image"),
    ],
)
async def test_bad_documents_are_422_naming_the_field(
    world: World, change: Any, field: str
) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    document = example_applet(str(org))
    change(document)

    response = await world.client.post("/applets", json=document, headers=world.headers(ada))

    assert response.status_code == 422, response.text
    assert any(field in e["field"] for e in response.json()["errors"]), response.json()


async def test_ids_of_another_applets_parts_are_refused(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    first = await world.applet(ada, org)
    second = await world.applet(ada, org)
    stolen = copy.deepcopy(_content(second))
    stolen["activities"][0]["items"][0]["id"] = first["activities"][0]["items"][0]["id"]

    response = await world.client.put(
        f"/applets/{second['id']}", json=stolen, headers=world.headers(ada)
    )

    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "activities.0.items.0.id"
    assert error["type"] == "foreign_id"


async def test_an_applet_stays_in_its_organisation(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    other = await world.organisation(ada)
    created = await world.applet(ada, org)

    moved = await world.client.put(
        f"/applets/{created['id']}",
        json=_content(created) | {"organisation_id": str(other)},
        headers=world.headers(ada),
    )

    assert moved.status_code == 422
    assert moved.json()["errors"][0]["field"] == "organisation_id"


async def test_only_members_create_applets_in_an_organisation(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    eve = await world.person("Eve")

    response = await world.client.post(
        "/applets", json=example_applet(str(org)), headers=world.headers(eve)
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_a_member"


async def test_a_revoked_membership_outweighs_the_token_that_still_claims_it(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    bob = await world.person("Bob")
    await world.member(org, bob, "member")
    await world.publish(
        "auth.membership.revoked", {"organisation_id": str(org), "user_id": str(bob.id)}, str(org)
    )
    await world.eventually_sql(
        "SELECT 1 FROM memberships WHERE user_id = $1 AND revoked_at IS NOT NULL", bob.id
    )

    response = await world.client.post(
        "/applets",
        json=example_applet(str(org)),
        headers=world.headers(bob),  # still claims it
    )

    assert response.status_code == 403


async def test_the_encryption_key_is_fixed_once_a_respondent_may_have_answered(
    world: World,
) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    key = {"public_key": "pk-1", "prime": "23", "base": "5", "account_id": "acc"}
    created = await world.applet(ada, org, example_applet() | {"encryption": key})
    other_key = {**key, "public_key": "pk-2"}
    before = await world.client.patch(
        f"/applets/{created['id']}", json={"encryption": other_key}, headers=world.headers(ada)
    )
    assert before.status_code == 200  # nobody could have answered yet
    bob = await world.person("Bob")
    await world.grant(created["id"], ada, bob, "respondent")

    after = await world.client.patch(
        f"/applets/{created['id']}", json={"encryption": key}, headers=world.headers(ada)
    )

    assert after.status_code == 409
    assert after.json()["code"] == "encryption_locked"


async def test_a_deleted_applet_is_gone_for_everyone_and_its_deletion_is_published(
    world: World,
) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)

    deleted = await world.client.delete(f"/applets/{created['id']}", headers=world.headers(ada))
    got = await world.client.get(f"/applets/{created['id']}", headers=world.headers(ada))

    assert deleted.status_code == 204
    assert got.status_code == 404
    event = await world.bus.one("applets.applet.deleted", applet_id=created["id"])
    assert event["deleted_by"] == str(ada.id)
    versions = await world.query(
        "SELECT version FROM versions WHERE applet_id = $1", uuid.UUID(created["id"])
    )
    assert len(versions) == 1  # kept for the answers given to it


async def test_a_duplicate_has_new_ids_no_key_and_the_caller_owns_it(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    key = {"public_key": "pk-1", "prime": "23", "base": "5", "account_id": "acc"}
    created = await world.applet(ada, org, example_applet() | {"encryption": key})

    copied = await world.client.post(
        f"/applets/{created['id']}/duplicate", json={}, headers=world.headers(ada)
    )

    assert copied.status_code == 201, copied.text
    body = copied.json()
    assert body["display_name"] == "Daily wellbeing (copy)"
    assert body.get("encryption") is None
    assert body["version"] == "1.0.0"
    old = {i["id"] for a in created["activities"] for i in a["items"]}
    new = {i["id"] for a in body["activities"] for i in a["items"]}
    assert len(new) == len(old)
    assert not old & new


async def test_the_list_is_searched_filtered_and_paginated(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    tag = uuid.uuid4().hex[:8]
    for n in range(3):
        await world.applet(ada, org, example_applet() | {"display_name": f"Sleep {tag} {n}"})
    await world.applet(ada, org, example_applet() | {"display_name": f"Mood {tag}"})

    page = await world.client.get(
        "/applets", params={"name": f"sleep {tag}", "limit": 2}, headers=world.headers(ada)
    )
    rest = await world.client.get(
        "/applets", params={"name": f"sleep {tag}", "limit": 2, "offset": 2},
        headers=world.headers(ada),
    )  # fmt: skip
    by_role = await world.client.get(
        "/applets", params={"role": "respondent", "organisation_id": str(org)},
        headers=world.headers(ada),
    )  # fmt: skip
    percent = await world.client.get("/applets", params={"name": "%"}, headers=world.headers(ada))

    assert page.status_code == 200
    assert page.json()["total"] == 3
    assert len(page.json()["items"]) == 2
    assert len(rest.json()["items"]) == 1
    assert all(tag in a["display_name"] for a in page.json()["items"] + rest.json()["items"])
    assert by_role.json()["total"] == 0
    assert percent.json()["total"] == 0  # a wildcard is a character, not a pattern


async def test_publishing_and_concealing_are_not_versions_but_are_published(
    world: World,
) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)

    shown = await world.client.post(f"/applets/{created['id']}/publish", headers=world.headers(ada))
    hidden = await world.client.post(
        f"/applets/{created['id']}/conceal", headers=world.headers(ada)
    )

    assert shown.json()["published"] is True
    assert hidden.json()["published"] is False
    assert hidden.json()["version"] == "1.0.0"
    updates = await world.bus.events(
        "applets.applet.updated", where=lambda d: d["applet_id"] == created["id"], count=2
    )
    assert [u["change"] for u in updates] == ["published", "concealed"]


async def test_a_public_link_shows_the_published_applet_without_hidden_parts(
    world: World,
) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    document = example_applet()
    document["activities"][0]["items"][4]["is_hidden"] = True  # 'notes'
    document["activities"][1]["is_hidden"] = True
    created = await world.applet(ada, org, document)
    link = await world.client.post(
        f"/applets/{created['id']}/public-link", headers=world.headers(ada)
    )
    assert link.status_code == 201
    path = link.json()["path"]

    concealed = await world.client.get(path)
    await world.client.post(f"/applets/{created['id']}/publish", headers=world.headers(ada))
    shown = await world.client.get(path)
    await world.client.delete(f"/applets/{created['id']}/public-link", headers=world.headers(ada))
    stopped = await world.client.get(path)

    assert concealed.status_code == 404
    assert shown.status_code == 200
    names = [i["name"] for i in shown.json()["activities"][0]["items"]]
    assert "notes" not in names
    assert len(shown.json()["activities"]) == 1
    assert stopped.status_code == 404


async def test_two_items_may_swap_names_in_one_replacement(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)
    document = _content(created)
    items = document["activities"][0]["items"]
    items[4]["name"], items[5]["name"] = items[5]["name"], items[4]["name"]  # notes <-> diary

    swapped = await world.client.put(
        f"/applets/{created['id']}", json=document, headers=world.headers(ada)
    )

    assert swapped.status_code == 200, swapped.text
    names = {i["id"]: i["name"] for i in swapped.json()["activities"][0]["items"]}
    assert names[items[4]["id"]] == "diary"
    assert names[items[5]["id"]] == "notes"


async def test_a_replacement_rewrites_only_the_rows_that_changed(world: World) -> None:
    ada = await world.person("Ada")
    org = await world.organisation(ada)
    created = await world.applet(ada, org)
    applet_id = uuid.UUID(created["id"])
    before = dict(await world.query("SELECT id, xmin::text FROM items WHERE applet_id = $1",
                                    applet_id))  # fmt: skip
    document = _content(created)
    document["activities"][0]["items"][4]["question"] = {"en": "Anything else?"}
    removed = document["activities"][1]["items"].pop()
    document["activities"][1]["items"].append(
        {"name": "fresh", "question": {"en": "New"}, "response_type": "date"}
    )

    replaced = await world.client.put(
        f"/applets/{created['id']}", json=document, headers=world.headers(ada)
    )

    assert replaced.status_code == 200, replaced.text
    after = dict(await world.query("SELECT id, xmin::text FROM items WHERE applet_id = $1",
                                   applet_id))  # fmt: skip
    changed = document["activities"][0]["items"][4]["id"]
    rewritten = {i for i in after if i in before and after[i] != before[i]}
    assert rewritten == {uuid.UUID(changed)}
    assert uuid.UUID(removed["id"]) not in after
    assert len(after) == len(before)  # one left, one came
