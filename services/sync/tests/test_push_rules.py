"""What a push sends, without a database or a network: which events go to a server
(``refusal``) and how an event is rewritten for it (``prepare_for_push``), as MISP's
``Server::eventFilterPushableServers``, ``Event::checkDistributionForPush`` and
``Event::__updateEventForSync`` decide."""

from __future__ import annotations

import uuid
from typing import Any

from tessera.sync.access import SharingGroupView
from tessera.sync.service.push import prepare_for_push, refusal

ORGC = uuid.uuid4()


def _server(**fields: Any) -> dict[str, Any]:
    return {"id": 7, "org_id": 1, "remote_org_id": 20, "internal": False,
            "unpublish_event": False, "push_rules": {}} | fields  # fmt: skip


def _candidate(**fields: Any) -> dict[str, Any]:
    return {"distribution": 3, "sharing_group_id": None, "orgc_id": 5, "orgc_uuid": ORGC,
            "orgc_name": "Creator", "source_server_id": None, "tag_names": ["tlp:green"],
            "tag_ids": [11]} | fields  # fmt: skip


def test_an_event_goes_back_to_no_server_it_was_pulled_from() -> None:
    assert refusal(_candidate(source_server_id=7), _server(), None) == "pulled from this server"
    assert refusal(_candidate(source_server_id=8), _server(), None) is None


def test_push_rules_match_tags_and_creators_by_id_or_name() -> None:
    by_name = _server(push_rules={"tags": {"OR": ["tlp:green"]}})
    by_id = _server(push_rules={"tags": {"OR": ["11"]}})
    other_tag = _server(push_rules={"tags": {"OR": ["tlp:white"]}})
    not_green = _server(push_rules={"tags": {"NOT": [11]}})
    creator = _server(push_rules={"orgs": {"OR": [str(ORGC)]}})
    not_creator = _server(push_rules={"orgs": {"NOT": ["Creator"]}})
    other_org = _server(push_rules={"orgs": {"OR": [99]}})

    assert refusal(_candidate(), by_name, None) is None
    assert refusal(_candidate(), by_id, None) is None
    assert refusal(_candidate(), other_tag, None) == "push rules: tags"
    assert refusal(_candidate(), not_green, None) == "push rules: tags"
    assert refusal(_candidate(), creator, None) is None
    assert refusal(_candidate(), not_creator, None) == "push rules: organisations"
    assert refusal(_candidate(), other_org, None) == "push rules: organisations"


def test_private_events_go_only_to_the_host_s_internal_server_and_groups_need_the_server() -> None:
    listed = SharingGroupView(id=3, org_id=5, org_ids=frozenset({5, 20}),
                              server_ids=frozenset({7}))  # fmt: skip
    unlisted = SharingGroupView(id=4, org_id=5, org_ids=frozenset({5, 20}),
                                server_ids=frozenset({8}))  # fmt: skip
    without_remote = SharingGroupView(id=5, org_id=5, org_ids=frozenset({5}),
                                      server_ids=frozenset({7}))  # fmt: skip

    assert refusal(_candidate(distribution=0), _server(), None) == "distribution"
    assert refusal(_candidate(distribution=1), _server(), None) == "distribution"
    assert refusal(_candidate(distribution=1), _server(internal=True), None) == "distribution"
    assert refusal(_candidate(distribution=2), _server(), None) is None
    host_link = _server(internal=True, remote_org_id=1)
    assert refusal(_candidate(distribution=0), host_link, None, host_org_id=1) is None
    assert refusal(_candidate(distribution=1), host_link, None, host_org_id=1) is None
    assert refusal(_candidate(distribution=1), host_link, None, host_org_id=2) == "distribution"
    assert refusal(_candidate(distribution=1), _server(remote_org_id=1), None,
                   host_org_id=1) == "distribution"  # fmt: skip
    assert refusal(_candidate(distribution=4), _server(), listed) is None
    assert refusal(_candidate(distribution=4), _server(), unlisted) == "distribution"
    assert refusal(_candidate(distribution=4), _server(), without_remote) == "distribution"
    assert refusal(_candidate(distribution=4), _server(), None) == "distribution"


def _attribute(value: str, distribution: int, **fields: Any) -> dict[str, Any]:
    return {"id": "9", "uuid": str(uuid.uuid4()), "type": "domain", "value": value,
            "distribution": str(distribution), "sharing_group_id": "0"} | fields  # fmt: skip


def _rendered() -> dict[str, Any]:
    return {"Event": {
        "id": "1", "uuid": str(uuid.uuid4()), "distribution": "2", "published": True,
        "org_id": "1", "orgc_id": "5", "Org": {"name": "Home"}, "Orgc": {"uuid": str(ORGC)},
        "locked": False, "proposal_email_lock": False,
        "Tag": [{"name": "tlp:green", "exportable": True, "local": 0},
                {"name": "ours", "exportable": True, "local": 1},
                {"name": "hidden", "exportable": False, "local": 0}],
        "Attribute": [
            _attribute("org.example", 0), _attribute("community.example", 1),
            _attribute("connected.example", 2), _attribute("all.example", 3),
            _attribute("inherit.example", 5),
            _attribute("group.example", 4, sharing_group_id="3"),
            _attribute("other-group.example", 4, sharing_group_id="4"),
            _attribute("red.example", 3, Tag=[{"name": "tlp:red", "exportable": True}]),
        ],
        "Object": [
            {"id": "2", "uuid": str(uuid.uuid4()), "distribution": "0", "Attribute": []},
            {"id": "3", "uuid": str(uuid.uuid4()), "distribution": "2",
             "Attribute": [_attribute("in-object.example", 2), _attribute("private.example", 0)]},
        ],
        "EventReport": [{"uuid": str(uuid.uuid4()), "distribution": "1", "content": "x"}],
    }}  # fmt: skip


GROUPS = {
    3: SharingGroupView(id=3, org_id=5, org_ids=frozenset({5, 20}), server_ids=frozenset({7})),
    4: SharingGroupView(id=4, org_id=5, org_ids=frozenset({5}), server_ids=frozenset({8})),
}


def test_an_event_is_sent_as_misp_rewrites_it_for_sync() -> None:
    server = _server(push_rules={"tags": {"NOT": ["tlp:red"]}})

    sent = prepare_for_push(_rendered(), server, GROUPS)["Event"]

    assert sent["distribution"] == "1"  # connected communities goes as community only
    assert sent["locked"] is True
    assert sent["published"] is True
    for held_here in ("Org", "org_id", "orgc_id", "proposal_email_lock"):
        assert held_here not in sent
    assert sent["Orgc"] == {"uuid": str(ORGC)}
    assert [t["name"] for t in sent["Tag"]] == ["tlp:green"]  # not local, not unexportable
    assert {a["value"]: a["distribution"] for a in sent["Attribute"]} == {
        "connected.example": "1", "all.example": "3", "inherit.example": "5",
        "group.example": "4",
    }  # fmt: skip
    assert all("id" not in a for a in sent["Attribute"])
    assert len(sent["Object"]) == 1
    assert [a["value"] for a in sent["Object"][0]["Attribute"]] == ["in-object.example"]
    assert sent["Object"][0]["distribution"] == "1"
    assert "EventReport" not in sent  # its only report is community only


def test_an_internal_server_gets_everything_as_it_is_and_unpublish_event_is_honoured() -> None:
    server = _server(internal=True, unpublish_event=True)

    sent = prepare_for_push(_rendered(), server, GROUPS)["Event"]

    assert sent["distribution"] == "2"
    assert sent["published"] is False
    assert len(sent["Attribute"]) == 8
    assert {a["value"]: a["distribution"] for a in sent["Attribute"]}["org.example"] == "0"
    assert [t["name"] for t in sent["Tag"]] == ["tlp:green", "ours"]  # local tags too
    assert len(sent["Object"]) == 2
    assert len(sent["EventReport"]) == 1
