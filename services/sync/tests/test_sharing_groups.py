"""MISP's sharing-group routes: a group made through the API, organisations and servers added
and removed, what an event shared with it shows to whom (``events/view`` and
``restSearch``), who may create, change, see and delete a group, and MISP's answers."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import Member, World


async def _site_admin(world: World) -> dict[str, str]:
    admin = await world.member("Admin", await world.organisation("Home"), role="admin")
    return world.tokens.bearer(admin.id, roles=["superadmin"]) | {"Accept": "application/json"}


async def _server(world: World, headers: dict[str, str]) -> dict[str, Any]:
    added = await world.client.post(
        "/sync/servers/add", headers=headers,
        json={"name": f"partner-{uuid.uuid4().hex[:8]}", "url": "https://misp.partner.example",
              "authkey": "k" * 40, "Organisation": {"uuid": str(uuid.uuid4()), "name": "P"}},
    )  # fmt: skip
    assert added.status_code == 200, added.text
    server: dict[str, Any] = added.json()["Server"]
    return server


async def _group(world: World, owner: Member, **fields: Any) -> dict[str, Any]:
    made = await world.client.post(
        "/sync/sharingGroups/add", headers=owner.headers,
        json={"name": f"Group {uuid.uuid4().hex[:8]}", "releasability": "partners", **fields},
    )  # fmt: skip
    assert made.status_code == 200, made.text
    group: dict[str, Any] = made.json()
    return group


async def _shared_event(world: World, owner: Member, group_id: str) -> str:
    added = await world.client.post(
        "/sync/events/add", headers=owner.headers,
        json={"info": "for the group", "distribution": 4, "sharing_group_id": group_id,
              "Attribute": [{"type": "ip-dst", "value": "203.0.113.77", "distribution": 5}]},
    )  # fmt: skip
    assert added.status_code == 200, added.text
    event_id: str = added.json()["Event"]["id"]
    return event_id


async def _sees(world: World, member: Member, event_id: str) -> tuple[bool, bool]:
    """Whether the member sees the event by ``events/view`` and by ``restSearch``."""
    viewed = await world.client.get(f"/sync/events/view/{event_id}", headers=member.headers)
    searched = await world.client.post(
        "/sync/events/restSearch", headers=member.headers,
        json={"eventid": event_id, "returnFormat": "json"},
    )  # fmt: skip
    assert viewed.status_code in (200, 404), viewed.text
    assert searched.status_code == 200, searched.text
    found = [e["Event"]["id"] for e in searched.json()["response"]]
    return viewed.status_code == 200, found == [event_id]


async def test_a_group_made_by_api_shares_an_event_with_its_members_only(world: World) -> None:
    admin_headers = await _site_admin(world)
    lab, partner, outsider = [await world.organisation(n) for n in ("Lab", "Partner", "Out")]
    owner = await world.member("Owner", lab, role="admin")  # MISP's Org Admin
    ally = await world.member("Ally", partner)
    stranger = await world.member("Stranger", outsider)
    server = await _server(world, admin_headers)

    group = await _group(world, owner, description="lab and partners")
    sg = group["SharingGroup"]
    added_org = await world.client.post(
        "/sync/sharingGroups/addOrg", headers=owner.headers,
        json={"sg_id": sg["id"], "org_id": str(partner), "extend": False},
    )  # fmt: skip
    added_server = await world.client.post(
        "/sync/sharingGroups/addServer", headers=owner.headers,
        json={"sg_id": sg["uuid"], "server_id": server["id"], "all_orgs": False},
    )  # fmt: skip
    event_id = await _shared_event(world, owner, sg["id"])
    ally_before = await _sees(world, ally, event_id)
    in_group = await world.client.post(
        "/sync/events/restSearch", headers=ally.headers,
        json={"sharinggroup": [sg["id"]], "org": str(lab)},
    )  # fmt: skip
    stranger_sees = await _sees(world, stranger, event_id)
    viewed = await world.client.get(f"/sync/sharing_groups/view/{sg['id']}", headers=ally.headers)
    removed = await world.client.post(
        "/sync/sharingGroups/removeOrg", headers=owner.headers,
        json={"sg_id": sg["id"], "org_id": str(partner)},
    )  # fmt: skip
    ally_after = await _sees(world, ally, event_id)
    view_after = await world.client.get(
        f"/sync/sharing_groups/view/{sg['id']}", headers=ally.headers
    )

    assert sg["name"].startswith("Group ")
    assert sg["releasability"] == "partners"
    assert (sg["local"], sg["active"], sg["roaming"]) == (True, True, False)
    assert group["Organisation"]["uuid"] == str(lab)
    # the creator's organisation is a member (extend), this instance the group's server
    assert [(m["Organisation"]["uuid"], m["extend"]) for m in group["SharingGroupOrg"]] == [
        (str(lab), True)
    ]
    assert [(s["server_id"], s["all_orgs"]) for s in group["SharingGroupServer"]] == [("0", False)]
    assert added_org.json()["message"] == "Organisation added to the sharing group."
    assert added_server.json()["message"] == "Server added to the sharing group."
    assert ally_before == (True, True)
    assert [e["Event"]["id"] for e in in_group.json()["response"]] == [event_id]
    assert stranger_sees == (False, False)
    assert viewed.status_code == 200
    members = {m["Organisation"]["uuid"] for m in viewed.json()["SharingGroupOrg"]}
    assert members == {str(lab), str(partner)}
    servers = {s["server_id"] for s in viewed.json()["SharingGroupServer"]}
    assert servers == {"0", server["id"]}
    assert removed.json()["message"] == "Organisation removed from the sharing group."
    assert ally_after == (False, False)
    assert view_after.status_code == 405
    assert view_after.json()["message"] == (
        "Sharing group doesn't exist or you do not have permission to access it."
    )


async def test_a_plain_user_may_not_create_an_org_admin_and_a_sharing_group_role_may(
    world: World,
) -> None:
    lab = await world.organisation("Lab")
    user = await world.member("User", lab)
    org_admin = await world.member("OrgAdmin", lab, role="admin")
    syncer = await world.member("Syncer", lab)
    world.app.state.runtime.settings.roles.users[syncer.id] = "sync_user"  # perm_sharing_group

    refused = await world.client.post(
        "/sync/sharing_groups/add", headers=user.headers, json={"name": "mine"}
    )
    made = await _group(world, org_admin)
    by_sync = await _group(world, syncer)
    add_org = await world.client.post(
        "/sync/sharing_groups/addOrg", headers=user.headers,
        json={"sg_id": made["SharingGroup"]["id"], "org_id": str(lab)},
    )  # fmt: skip
    edit = await world.client.post(
        f"/sync/sharing_groups/edit/{made['SharingGroup']['id']}", headers=user.headers,
        json={"name": "taken over"},
    )  # fmt: skip
    listed = await world.client.get("/sync/sharing_groups/index", headers=user.headers)
    delete = await world.client.post(
        f"/sync/sharing_groups/delete/{made['SharingGroup']['id']}", headers=user.headers
    )

    assert refused.status_code == 403
    assert refused.json()["message"] == "You do not have permission to use this functionality."
    assert made["Organisation"]["uuid"] == str(lab)
    assert by_sync["Organisation"]["uuid"] == str(lab)
    assert add_org.status_code == 403
    assert edit.status_code == 403
    assert delete.status_code == 403  # of their own organisation, but without the permission
    # the user sees their organisation's groups, but may change none
    mine = {e["SharingGroup"]["id"]: e for e in listed.json()["response"]}
    entry = mine[made["SharingGroup"]["id"]]
    assert (entry["editable"], entry["deletable"]) == (False, False)


async def test_an_extending_member_may_add_orgs_but_not_rename_and_strangers_may_do_nothing(
    world: World,
) -> None:
    lab, partner, other = [await world.organisation(n) for n in ("Lab", "Partner", "Other")]
    owner = await world.member("Owner", lab, role="admin")
    partner_admin = await world.member("PartnerAdmin", partner, role="admin")
    other_admin = await world.member("OtherAdmin", other, role="admin")
    group = await _group(world, owner, SharingGroupOrg=[{"uuid": str(partner), "extend": True}])
    sg = group["SharingGroup"]

    extended = await world.client.post(
        f"/sync/sharingGroups/addOrg/{sg['id']}/{other}", headers=partner_admin.headers
    )
    renamed = await world.client.post(
        f"/sync/sharing_groups/edit/{sg['uuid']}", headers=partner_admin.headers,
        json={"SharingGroup": {"name": "renamed by a member", "description": "new"}},
    )  # fmt: skip
    twice = await world.client.post(
        f"/sync/sharingGroups/addOrg/{sg['id']}/{other}", headers=partner_admin.headers
    )
    deleted_by_member = await world.client.post(
        f"/sync/sharingGroups/delete/{sg['id']}", headers=partner_admin.headers
    )
    owner_edit = await world.client.put(
        f"/sync/sharing_groups/edit/{sg['id']}", headers=owner.headers,
        json={"name": "Renamed", "releasability": "everyone in it"},
    )  # fmt: skip
    stranger = await world.client.post(
        "/sync/sharingGroups/addOrg", headers=other_admin.headers,
        json={"sg_id": sg["id"], "org_id": str(other)},
    )  # fmt: skip
    unknown = await world.client.post(
        "/sync/sharingGroups/addOrg", headers=owner.headers,
        json={"sg_id": sg["id"], "org_id": str(uuid.uuid4())},
    )  # fmt: skip

    assert extended.status_code == 200, extended.text
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["SharingGroup"]["name"] == sg["name"]  # only the owner renames
    assert twice.status_code == 403
    assert twice.json()["saved"] is False
    assert twice.json()["errors"] == "Organisation is already in the sharing group."
    assert deleted_by_member.status_code == 405
    assert owner_edit.json()["SharingGroup"]["name"] == "Renamed"
    assert owner_edit.json()["SharingGroup"]["releasability"] == "everyone in it"
    # a member now, but without extend: it may see the group, not change it
    assert stranger.status_code == 405
    assert stranger.json()["message"] == "Invalid sharing group or no editing rights."
    assert unknown.status_code == 405
    assert unknown.json()["message"] == "Invalid organisation."


async def test_a_group_in_use_cannot_be_deleted_until_nothing_names_it(world: World) -> None:
    lab = await world.organisation("Lab")
    owner = await world.member("Owner", lab, role="admin")
    group = await _group(world, owner)
    sg_id = group["SharingGroup"]["id"]
    event_id = await _shared_event(world, owner, sg_id)

    refused = await world.client.post(f"/sync/sharingGroups/delete/{sg_id}", headers=owner.headers)
    gone_event = await world.client.delete(f"/sync/events/delete/{event_id}", headers=owner.headers)
    deleted = await world.client.delete(
        f"/sync/sharing_groups/delete/{sg_id}", headers=owner.headers
    )
    again = await world.client.post(f"/sync/sharingGroups/delete/{sg_id}", headers=owner.headers)
    rows = await world.query("SELECT 1 FROM sharing_groups WHERE id = $1", int(sg_id))

    assert refused.status_code == 403
    assert refused.json()["saved"] is False
    assert refused.json()["errors"] == "The sharing group could not be deleted."
    assert gone_event.status_code == 200, gone_event.text
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["message"] == "SharingGroup deleted"
    assert again.status_code == 405
    assert rows == []


async def test_the_index_pages_filters_and_hides_what_is_not_the_callers(world: World) -> None:
    admin_headers = await _site_admin(world)
    lab, other = await world.organisation("Lab"), await world.organisation("Other")
    owner = await world.member("Owner", lab, role="admin")
    outsider = await world.member("Outsider", other, role="admin")
    tag = uuid.uuid4().hex[:8]
    made = [await _group(world, owner, name=f"{tag} {n}") for n in ("b", "a", "c")]
    inactive = await _group(world, owner, name=f"{tag} old", active=False)

    first = await world.client.get(
        f"/sync/sharingGroups/index/value:{tag}", headers=owner.headers, params={"limit": 2}
    )
    second = await world.client.get(
        f"/sync/sharingGroups/index/value:{tag}/limit:2/page:2", headers=owner.headers
    )
    passive = await world.client.get(
        f"/sync/sharingGroups/index/true/value:{tag}", headers=owner.headers
    )
    theirs = await world.client.get(
        "/sync/sharingGroups/index", headers=outsider.headers, params={"value": tag}
    )
    by_admin = await world.client.get(
        "/sync/sharing_groups/index", headers=admin_headers, params={"value": tag}
    )
    by_org = await world.client.get(
        f"/sync/sharing_groups/index/searchorg:{other}", headers=admin_headers
    )
    head = await world.client.head(
        f"/sync/sharing_groups/view/{made[0]['SharingGroup']['uuid']}", headers=outsider.headers
    )
    head_owner = await world.client.head(
        f"/sync/sharing_groups/view/{made[0]['SharingGroup']['uuid']}", headers=owner.headers
    )

    def names(answer: Any) -> list[str]:
        return [e["SharingGroup"]["name"] for e in answer.json()["response"]]

    assert names(first) == [f"{tag} a", f"{tag} b"]
    assert first.headers["X-Result-Count"] == "3"
    assert names(second) == [f"{tag} c"]
    assert names(passive) == [inactive["SharingGroup"]["name"]]
    assert names(theirs) == []
    assert names(by_admin) == [f"{tag} a", f"{tag} b", f"{tag} c"]
    assert all(e["editable"] and e["deletable"] for e in by_admin.json()["response"])
    assert tag not in " ".join(names(by_org))
    assert (head.status_code, head_owner.status_code) == (404, 200)
