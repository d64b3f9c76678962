"""MISP's event JSON, read and written: against events real MISP servers answered (pymisp's
test files, in ``data/misp``) and against PyMISP, the client that has to understand us."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pymisp
import pytest

from tessera.sync import models
from tessera.sync.wire import (
    AttributeIn,
    EventIn,
    EventReportIn,
    InvalidPayload,
    ObjectReferenceIn,
    SightingIn,
    TagIn,
    micro_to_iso,
    parse_attribute,
    parse_event,
    render_attribute,
    render_event,
    render_feed_event,
    render_index_entry,
    render_sharing_group,
)

DATA = Path(__file__).parent / "data" / "misp"
NOW = 1_700_000_000
EVENT_ID = 7
HERE = {
    "id": 1,
    "uuid": UUID("11111111-2222-4333-8444-555555555555"),
    "name": "Tessera",
    "local": True,
}
"""this instance's organisation, holding every event in these tests"""
MD5 = "0123456789abcdef0123456789abcdef"
GOOD = {"type": "domain", "value": "good.example"}
A_UUID = "5758ebf5-c898-48e6-9fe9-5665c0a83866"

# file: attributes, objects, attributes in objects, event tags, sightings (as the file has them)
SAMPLES = {
    "57c4445b-c548-4654-af0b-4be3950d210f.json": (9, 0, 0, 4, 0),
    "misp_event.json": (2, 0, 0, 2, 0),
    "shadow.json": (1, 1, 2, 0, 0),
    "malware_exist.json": (0, 1, 6, 0, 0),
    "sighting_1.json": (5, 0, 0, 2, 6),
    "sighting_2.json": (2, 0, 0, 1, 2),
}


def sample(name: str) -> dict[str, Any]:
    """A pymisp test file: an event, or a ``restSearch`` answer holding one."""
    document: dict[str, Any] = json.loads((DATA / name).read_text("utf-8"))
    return document["response"][0] if "response" in document else document


def event_body(name: str) -> dict[str, Any]:
    document = sample(name)
    body: dict[str, Any] = document.get("Event", document)
    return body


class Stored:
    """The rows the service would write for a parsed event (ids made up), as keyword
    arguments of :func:`render_event`."""

    def __init__(self, event: EventIn) -> None:
        self._ids = itertools.count(100)
        self._tags: dict[str, dict[str, Any]] = {}
        orgc = HERE
        if event.orgc is not None:
            orgc = {"id": 2, "uuid": event.orgc.uuid, "name": event.orgc.name, "local": False}
        self.rows: dict[str, Any] = {
            "event": event.columns(now=NOW)
            | {"id": EVENT_ID, "org_id": 1, "orgc_id": orgc["id"], "sharing_group_id": None},
            "org": HERE,
            "orgc": orgc,
            "tags": [self._tag(t, {"event_id": EVENT_ID}) for t in event.tags],
            "attributes": [],
            "attribute_tags": [],
            "sightings": [],
            "sighting_orgs": {},
            "objects": [],
            "references": [],
            "reports": [self._child(r.columns(now=NOW)) for r in event.reports],
        }
        for attribute in event.attributes:
            self._attribute(attribute, None)
        for obj in event.objects:
            object_row = self._child(obj.columns(now=NOW))
            self.rows["objects"].append(object_row)
            for attribute in obj.attributes:
                self._attribute(attribute, object_row["id"])
            self.rows["references"] += [
                self._child(r.columns(now=NOW), object_id=object_row["id"]) for r in obj.references
            ]

    def _child(self, columns: dict[str, Any], **more: Any) -> dict[str, Any]:
        ids = {"id": next(self._ids), "event_id": EVENT_ID, "sharing_group_id": None}
        return columns | ids | more

    def _tag(self, tag: TagIn, link: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        row = self._tags.setdefault(tag.name, {"id": next(self._ids), **tag.columns()})
        return row, {"id": next(self._ids), "tag_id": row["id"], **link, **tag.link_columns()}

    def _attribute(self, attribute: AttributeIn, object_id: int | None) -> None:
        row = self._child(attribute.columns(now=NOW), object_id=object_id)
        self.rows["attributes"].append(row)
        link = {"attribute_id": row["id"], "event_id": EVENT_ID}
        self.rows["attribute_tags"] += [self._tag(t, link) for t in attribute.tags]
        for sighting in attribute.sightings:
            org_id = None
            if sighting.org is not None:
                org_id = next(self._ids)
                org = {"id": org_id, "uuid": sighting.org.uuid, "name": sighting.org.name}
                self.rows["sighting_orgs"][org_id] = org
            self.rows["sightings"].append(
                self._child(sighting.columns(now=NOW), attribute_id=row["id"], org_id=org_id)
            )


def stored(event: EventIn) -> dict[str, Any]:
    return Stored(event).rows


def rendered(event: EventIn, **options: Any) -> dict[str, Any]:
    return render_event(**stored(event), **options)


def loaded(document: dict[str, Any]) -> pymisp.MISPEvent:
    """What PyMISP makes of a document we answer (after it went through JSON)."""
    event = pymisp.MISPEvent()
    event.load(json.loads(json.dumps(document)))
    return event


def pymisp_event() -> pymisp.MISPEvent:
    """An event as a PyMISP user builds it: attributes, tags, objects, a reference."""
    event = pymisp.MISPEvent()
    event.info = "Ransomware campaign"
    event.distribution = 2
    event.threat_level_id = 2
    event.analysis = 1
    event.set_date("2024-03-01")
    event.add_tag("tlp:green")
    event.add_tag({"name": 'workflow:state="draft"', "local": True})
    ip = event.add_attribute("ip-dst", "198.51.100.7", comment="C2", to_ids=False)
    assert isinstance(ip, pymisp.MISPAttribute)
    ip.add_tag("kill-chain:c2")
    ip.first_seen = datetime(2024, 2, 1, 8, 30, 0, 250000, tzinfo=UTC)
    ip.last_seen = datetime(2024, 2, 3, 9, 0, tzinfo=UTC)
    event.add_attribute("filename|md5", f"dropper.exe|{MD5}")
    file_object = pymisp.MISPObject("file")
    file_object.add_attribute("filename", value="dropper.exe")
    file_object.add_attribute("md5", value=MD5)
    file_object.add_attribute("size-in-bytes", value=4096)
    event.add_object(file_object)
    url_object = pymisp.MISPObject("url")
    url_object.add_attribute("url", value="https://evil.example/payload")
    url_object.add_reference(file_object.uuid, "downloads", "the dropper")
    url_object.add_reference(ip.uuid, "resolves-to")
    event.add_object(url_object)
    return event


def sent_by_pymisp() -> EventIn:
    return parse_event(json.loads(pymisp_event().to_json()))


def keys_within(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from keys_within(value)
    elif isinstance(document, list):
        for value in document:
            yield from keys_within(value)


def with_attributes(*attributes: dict[str, Any], **event: Any) -> dict[str, Any]:
    return {"info": "problems", **event, "Attribute": list(attributes)}


def with_object(*attributes: dict[str, Any], **obj: Any) -> dict[str, Any]:
    body = {"name": "file", "meta-category": "file", **obj, "Attribute": list(attributes)}
    return {"info": "problems", "Object": [body]}


# -- reading real events -----------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_every_pymisp_sample_event_parses_with_what_it_holds(name: str) -> None:
    body = event_body(name)

    event = parse_event(sample(name))

    in_objects = sum(len(o.attributes) for o in event.objects)
    sightings = sum(len(a.sightings) for a in event.attributes)
    counts = (len(event.attributes), len(event.objects), in_objects, len(event.tags), sightings)
    assert counts == SAMPLES[name]
    assert len(body.get("Attribute", [])) == counts[0]
    assert sum(len(o["Attribute"]) for o in body.get("Object", [])) == in_objects
    assert event.uuid == UUID(body["uuid"])
    assert event.info == body["info"]
    assert [str(a.uuid) for a in event.attributes] == [a["uuid"] for a in body.get("Attribute", [])]
    assert [t.name for t in event.tags] == [t["name"] for t in body.get("Tag", [])]
    assert event.collapsed_duplicates == 0


def test_flat_and_wrapped_events_read_the_same() -> None:
    body = event_body("sighting_2.json")

    assert parse_event(body) == parse_event({"Event": body})


def test_composite_values_are_split_and_joined_back() -> None:
    event = parse_event(sample("57c4445b-c548-4654-af0b-4be3950d210f.json"))

    (regkey,) = [a for a in event.attributes if a.type == "regkey|value"]
    assert regkey.value1 == "Software\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\Run"
    assert regkey.value2 == "%TEMP%\\3Z4wnG9603it23y.exe"
    (shown,) = [a for a in rendered(event)["Event"]["Attribute"] if a["type"] == "regkey|value"]
    assert shown["value"] == regkey.value


def test_malware_sample_is_a_composite_and_keeps_its_data() -> None:
    event = parse_event(sample("malware_exist.json"))

    (malware,) = [a for a in event.objects[0].attributes if a.type == "malware-sample"]
    assert (malware.value1, malware.value2) == ("simple.json", "7637beddacbeac59d44469b2b120b9e6")
    assert malware.data is not None
    assert malware.data.startswith("UEsDB")  # MISP's zip, base64


# -- writing: PyMISP reads what we render ------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_rendered_event_loads_in_pymisp_with_the_same_content(name: str) -> None:
    event = parse_event(sample(name))

    misp = loaded(rendered(event))

    assert misp.uuid == str(event.uuid)
    assert (misp.info, misp.distribution, misp.threat_level_id, misp.analysis) == (
        event.info,
        event.distribution,
        event.threat_level_id,
        event.analysis,
    )
    assert misp.published == event.published
    assert misp.date.isoformat() == event.date
    assert [
        (a.uuid, a.type, a.category, a.value, a.to_ids, a.comment) for a in misp.attributes
    ] == [(str(a.uuid), a.type, a.category, a.value, a.to_ids, a.comment) for a in event.attributes]
    assert [[t.name for t in a.tags] for a in misp.attributes] == [
        [t.name for t in a.tags] for a in event.attributes
    ]
    assert [len(a.sightings) for a in misp.attributes] == [
        len(a.sightings) for a in event.attributes
    ]
    assert [t.name for t in misp.tags] == [t.name for t in event.tags]
    assert [(o.uuid, o.name) for o in misp.objects] == [
        (str(o.uuid), o.name) for o in event.objects
    ]
    assert [[(a.uuid, a.object_relation, a.value) for a in o.attributes] for o in misp.objects] == [
        [(str(a.uuid), a.object_relation, a.value) for a in o.attributes] for o in event.objects
    ]


@pytest.mark.parametrize("name", SAMPLES)
def test_rendered_event_reads_back_into_the_same_event(name: str) -> None:
    event = parse_event(sample(name))

    again = parse_event(rendered(event))

    def kept(items: list[Any]) -> list[dict[str, Any]]:  # attachments are not stored
        return [
            i.model_dump(exclude={"data": True, "attributes": {"__all__": {"data"}}}) for i in items
        ]

    assert again.uuid == event.uuid
    assert kept(again.attributes) == kept(event.attributes)
    assert kept(again.objects) == kept(event.objects)
    assert again.tags == event.tags


def test_pymisp_event_round_trips_objects_references_tags_and_seen() -> None:
    event = sent_by_pymisp()

    misp = loaded(rendered(event))

    ip = misp.attributes[0]
    assert ip.first_seen == datetime(2024, 2, 1, 8, 30, 0, 250000, tzinfo=UTC)
    assert ip.last_seen == datetime(2024, 2, 3, 9, 0, tzinfo=UTC)
    assert [t.name for t in ip.tags] == ["kill-chain:c2"]
    assert [(t.name, t.local) for t in misp.tags] == [
        ("tlp:green", False),
        ('workflow:state="draft"', True),
    ]
    to_file, to_ip = misp.objects[1].references
    assert to_file.referenced_uuid == str(event.objects[0].uuid)
    assert to_file.relationship_type == "downloads"
    assert to_file["source_uuid"] == str(event.objects[1].uuid)
    assert to_file["Object"]["name"] == "file"
    assert to_ip["Attribute"]["value"] == "198.51.100.7"


def test_pymisp_to_dict_reads_into_the_event_pymisp_meant() -> None:
    built = pymisp_event()
    file_object, url_object = built.objects

    event = parse_event(built.to_dict())

    assert event == parse_event(json.loads(built.to_json()))  # as it travels
    assert event.uuid == UUID(built.uuid)
    assert (event.info, event.distribution, event.threat_level_id, event.analysis) == (
        "Ransomware campaign",
        2,
        2,
        1,
    )
    assert (event.date, event.published) == ("2024-03-01", False)
    assert [(t.name, t.local) for t in event.tags] == [
        ("tlp:green", False),
        ('workflow:state="draft"', True),
    ]
    ip, composite = event.attributes
    assert (ip.type, ip.category, ip.value, ip.to_ids, ip.comment) == (
        "ip-dst",
        "Network activity",
        "198.51.100.7",
        False,
        "C2",
    )
    assert ip.first_seen == 1_706_776_200_250_000
    assert [t.name for t in ip.tags] == ["kill-chain:c2"]
    assert (composite.value1, composite.value2, composite.to_ids) == ("dropper.exe", MD5, True)
    parsed_file, parsed_url = event.objects
    assert (parsed_file.uuid, parsed_file.name, parsed_file.meta_category) == (
        UUID(file_object.uuid),
        "file",
        "file",
    )
    assert parsed_file.template_uuid == UUID(file_object.template_uuid)
    assert parsed_file.template_version == int(file_object.template_version)
    assert [(a.object_relation, a.type, a.value) for a in parsed_file.attributes] == [
        ("filename", "filename", "dropper.exe"),
        ("md5", "md5", MD5),
        ("size-in-bytes", "size-in-bytes", "4096"),
    ]
    assert parsed_url.references[0] == ObjectReferenceIn(
        uuid=UUID(url_object.references[0].uuid),
        source_uuid=UUID(url_object.uuid),
        referenced_uuid=UUID(file_object.uuid),
        referenced_type=1,
        relationship_type="downloads",
        comment="the dropper",
    )
    assert parsed_url.references[1].referenced_type == 0  # an attribute of the event


def test_pymisp_add_attribute_body_parses_flat_or_wrapped() -> None:
    attribute = pymisp.MISPAttribute()
    attribute.from_dict(type="domain", value="Evil.Example.", comment="seen")

    parsed = parse_attribute(attribute.to_dict())

    assert (parsed.type, parsed.category, parsed.to_ids, parsed.comment) == (
        "domain",
        "Network activity",
        True,
        "seen",
    )
    assert parsed.uuid == UUID(attribute.uuid)
    assert parse_attribute({"Attribute": attribute.to_dict()}) == parsed


# -- MISP's loose types and defaults -----------------------------------------------------------


def test_loose_types_are_coerced() -> None:
    attribute = {
        "type": "md5",
        "value": MD5.upper(),
        "to_ids": "0",
        "distribution": 5,
        "timestamp": 1600000000,
        "deleted": "0",
        "comment": None,
        "first_seen": "2020-09-13T12:26:40Z",
        "last_seen": 1600005600000000,
        "disable_correlation": True,
    }
    event = parse_event(
        {
            "info": "loose",
            "distribution": "3",
            "threat_level_id": 2,
            "analysis": "Ongoing",
            "published": "1",
            "locked": 0,
            "disable_correlation": "false",
            "protected": None,
            "timestamp": "1600000000",
            "publish_timestamp": 1600000100,
            "date": "2020-09-13",
            "uuid": A_UUID.upper(),
            "sharing_group_id": "0",
            "Orgc": [],  # PHP's empty array
            "Tag": {"name": "tlp:white", "colour": "#FFFFFF", "exportable": "1"},
            "Attribute": attribute,  # one, without its list (as from XML)
        }
    )

    assert (event.distribution, event.threat_level_id, event.analysis) == (3, 2, 1)
    assert (event.published, event.locked, event.disable_correlation, event.protected) == (
        True,
        False,
        False,
        False,
    )
    assert (event.timestamp, event.publish_timestamp) == (1600000000, 1600000100)
    assert event.uuid == UUID(A_UUID)
    assert (event.sharing_group_id, event.orgc) == (None, None)
    assert [(t.name, t.exportable) for t in event.tags] == [("tlp:white", True)]
    (parsed,) = event.attributes
    assert parsed.value == MD5  # normalised, as MISP does
    assert (parsed.to_ids, parsed.deleted, parsed.comment) == (False, False, "")
    assert (parsed.first_seen, parsed.last_seen) == (1600000000000000, 1600005600000000)
    assert parsed.disable_correlation is True


def test_missing_fields_take_misp_defaults() -> None:
    domain = {"type": "domain", "value": "a.example", "object_relation": "domain"}
    event = parse_event(
        {
            "info": "bare",
            "Attribute": [{"type": "ip-src", "value": "10.0.0.1"}],
            "Object": [{"name": "domain-ip", "meta-category": "network", "Attribute": [domain]}],
            "EventReport": [{"name": "notes"}],
        }
    )

    assert (event.distribution, event.threat_level_id, event.analysis) == (1, 4, 0)
    assert (event.uuid, event.date, event.timestamp, event.published) == (None, None, None, False)
    assert parse_event({"info": "x"}, default_distribution=0).distribution == 0
    (attribute,) = event.attributes
    assert (attribute.category, attribute.to_ids, attribute.distribution) == (
        "Network activity",
        True,
        5,
    )
    assert isinstance(attribute.uuid, UUID)
    (obj,) = event.objects
    assert (obj.distribution, obj.template_version, obj.comment) == (5, 1, "")
    assert event.reports[0].distribution == 5
    columns = event.columns(now=NOW)
    assert (columns["timestamp"], columns["date"], columns["attribute_count"]) == (
        NOW,
        "2023-11-14",
        2,
    )


def test_tags_without_colour_get_misps_colour_and_links_are_merged() -> None:
    event = parse_event(
        {
            "info": "t",
            "Tag": [{"name": "a"}, {"name": "A"}],
            "EventTag": [{"local": 1, "Tag": {"name": "b", "colour": "#123456"}}],
        }
    )

    assert [(t.name, t.colour, t.local) for t in event.tags] == [
        ("a", "#0cc175", False),  # md5("a"), as Tag::tagColor; "A" is the same tag
        ("b", "#123456", True),
    ]


# -- problems, named by their path -------------------------------------------------------------

UUID_MESSAGE = "Please provide a valid RFC 4122 UUID"


@pytest.mark.parametrize(
    ("payload", "path", "message"),
    [
        pytest.param(
            with_attributes(GOOD, GOOD, GOOD, {"type": "md5", "value": "not-a-hash"}),
            "Attribute.3.value",
            None,
            id="value",
        ),
        pytest.param(
            with_attributes({"type": "md5", "value": MD5, "category": "Network activity"}),
            "Attribute.0.category",
            None,
            id="category-for-type",
        ),
        pytest.param(
            with_attributes(GOOD | {"category": "Sleepy"}),
            "Attribute.0.category",
            None,
            id="category",
        ),
        pytest.param(
            with_attributes({"type": "no-such-type", "value": "x"}),
            "Attribute.0.type",
            "Invalid type.",
            id="type",
        ),
        pytest.param(
            with_attributes({"type": ["md5"], "value": MD5}),
            "Attribute.0.type",
            "Must be text.",
            id="type-not-text",
        ),
        pytest.param(
            with_attributes({"value": "x"}),
            "Attribute.0.type",
            "This field is required.",
            id="type-missing",
        ),
        pytest.param(
            with_attributes(GOOD | {"uuid": "not-a-uuid"}),
            "Attribute.0.uuid",
            UUID_MESSAGE,
            id="attribute-uuid",
        ),
        pytest.param(
            {"info": "x", "uuid": A_UUID.replace("-", "")},
            "uuid",
            UUID_MESSAGE,
            id="event-uuid",
        ),
        pytest.param(
            with_attributes(GOOD, GOOD | {"uuid": A_UUID}, GOOD | {"uuid": A_UUID}),
            "Attribute.2.uuid",
            "The UUID provided is not unique",
            id="uuid-twice",
        ),
        pytest.param(
            {"info": "x", "distribution": 5},
            "distribution",
            "Options : Your organisation only, This community only, Connected communities, "
            "All communities, Sharing group",
            id="event-distribution",
        ),
        pytest.param(
            with_attributes(GOOD | {"distribution": "6"}),
            "Attribute.0.distribution",
            "Options: Your organisation only, This community only, Connected communities, "
            "All communities, Sharing group, Inherit event",
            id="attribute-distribution",
        ),
        pytest.param(
            {"info": "x", "distribution": 4},
            "sharing_group_id",
            'If the distribution is set to "Sharing Group", a sharing group has to be selected.',
            id="sharing-group",
        ),
        pytest.param(
            {"info": "x", "threat_level_id": 0},
            "threat_level_id",
            "Options : 1, 2, 3, 4 (for High, Medium, Low, Undefined)",
            id="threat-level",
        ),
        pytest.param(
            {"info": "x", "analysis": "3"},
            "analysis",
            "Options : 0, 1, 2 (for Initial, Ongoing, Completed)",
            id="analysis",
        ),
        pytest.param(
            {"info": "x", "date": "2024-02-30"},
            "date",
            "Expected date format: YYYY-MM-DD",
            id="date",
        ),
        pytest.param({"info": "  "}, "info", "Info cannot be empty.", id="info-blank"),
        pytest.param({"distribution": 1}, "info", "This field is required.", id="info-missing"),
        pytest.param(
            with_attributes(GOOD | {"to_ids": "maybe"}),
            "Attribute.0.to_ids",
            "Must be a boolean: true, false, 1 or 0.",
            id="boolean",
        ),
        pytest.param(
            with_attributes(GOOD | {"timestamp": "yesterday"}),
            "Attribute.0.timestamp",
            "Must be a Unix timestamp (seconds).",
            id="timestamp",
        ),
        pytest.param(
            with_attributes(GOOD | {"first_seen": "last tuesday"}),
            "Attribute.0.first_seen",
            "Invalid ISO 8601 format",
            id="first-seen",
        ),
        pytest.param(
            with_attributes(GOOD | {"first_seen": 10**20}),
            "Attribute.0.first_seen",
            "Invalid ISO 8601 format",
            id="first-seen-out-of-range",
        ),
        pytest.param(
            with_object(template_version=2**40),
            "Object.0.template_version",
            "Out of range.",
            id="int-out-of-range",
        ),
        pytest.param(
            with_attributes(GOOD | {"first_seen": "2024-02-02", "last_seen": "2024-02-01"}),
            "Attribute.0.last_seen",
            "Last seen value should be greater than first seen value",
            id="seen-order",
        ),
        pytest.param(
            with_object(
                {"type": "filename", "value": "a", "object_relation": "filename"},
                {"type": "md5", "value": "zz", "object_relation": "md5"},
            ),
            "Object.0.Attribute.1.value",
            None,
            id="object-attribute-value",
        ),
        pytest.param(
            with_object({"type": "filename", "value": "a"}),
            "Object.0.Attribute.0.object_relation",
            "Object attribute sent, but no object_relation set.",
            id="object-relation",
        ),
        pytest.param(
            with_object(**{"meta-category": ""}),
            "Object.0.meta-category",
            "Meta-category cannot be empty.",
            id="meta-category",
        ),
        pytest.param(
            with_object(name="x" * 256),
            "Object.0.name",
            "Must be at most 255 characters.",
            id="name-too-long",
        ),
        pytest.param(
            with_object(ObjectReference=[{"referenced_uuid": "nope", "relationship_type": "x"}]),
            "Object.0.ObjectReference.0.referenced_uuid",
            UUID_MESSAGE,
            id="reference",
        ),
        pytest.param(
            with_attributes(GOOD | {"Sighting": [{"type": 3}]}),
            "Attribute.0.Sighting.0.type",
            "Invalid type, please change it before you POST 1000000 sightings.",
            id="sighting",
        ),
        pytest.param(
            {"info": "x", "Tag": [{"name": "ok"}, {"colour": "#ffffff"}]},
            "Tag.1.name",
            "This field is required.",
            id="tag",
        ),
        pytest.param(
            {"info": "x", "Tag": "tlp:white", "EventTag": [{"Tag": {"name": "a"}}]},
            "Tag",
            "Must be a list.",
            id="tags-not-a-list",
        ),
        pytest.param(
            {"info": "x", "Attribute": "8.8.8.8"}, "Attribute", "Must be a list.", id="list"
        ),
    ],
)
def test_invalid_field_is_named_by_its_path(
    payload: dict[str, Any], path: str, message: str | None
) -> None:
    with pytest.raises(InvalidPayload) as raised:
        parse_event(payload)

    assert raised.value.field == path
    if message is not None:  # else misp_types words it
        assert raised.value.message == message


def test_every_problem_is_reported_at_once() -> None:
    payload = with_attributes(
        {"type": "md5", "value": "x"}, GOOD | {"distribution": 9}, threat_level_id=9
    )

    with pytest.raises(InvalidPayload) as raised:
        parse_event(payload)

    assert set(raised.value.by_field()) == {
        "threat_level_id",
        "Attribute.0.value",
        "Attribute.1.distribution",
    }
    assert "Attribute.0.value" in str(raised.value)


def test_payload_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidPayload) as raised:
        parse_event(["not", "an", "event"])

    assert (raised.value.field, raised.value.message) == ("", "The event must be a JSON object.")


def test_drop_invalid_keeps_the_event_and_says_what_it_left_out() -> None:
    payload = with_attributes(GOOD, {"type": "md5", "value": "nope"}, GOOD | {"value": "z.example"})
    payload["Object"] = [
        with_object(
            {"type": "filename", "value": "ok.exe", "object_relation": "filename"},
            {"type": "filename", "value": "no-relation.exe"},
        )["Object"][0],
        {"name": "", "meta-category": "file"},
    ]

    event = parse_event(payload, drop_invalid=True)

    assert [a.value for a in event.attributes] == ["good.example", "z.example"]
    assert [[a.value for a in o.attributes] for o in event.objects] == [["ok.exe"]]
    assert [p.path for p in event.dropped] == [
        "Attribute.1.value",
        "Object.0.Attribute.1.object_relation",
        "Object.1.name",
    ]
    with pytest.raises(InvalidPayload):  # the event's own fields still have to be right
        parse_event({**payload, "threat_level_id": 7}, drop_invalid=True)


def test_duplicate_attributes_are_collapsed_keeping_the_first() -> None:
    event = parse_event(
        with_attributes(
            GOOD | {"uuid": A_UUID, "comment": "first"},
            GOOD | {"value": "good[.]example", "comment": "defanged twin"},  # once re-fanged
            GOOD | {"category": "External analysis"},  # another category: kept
            GOOD | {"comment": "deleted twin", "deleted": True},  # deleted: kept, as MISP does
            GOOD | {"comment": "plain twin"},
        )
    )

    assert [(a.category, a.comment) for a in event.attributes] == [
        ("Network activity", "first"),
        ("External analysis", ""),
        ("Network activity", "deleted twin"),
    ]
    assert event.attributes[0].uuid == UUID(A_UUID)
    assert event.collapsed_duplicates == 2


# -- what MISP answers, field by field ---------------------------------------------------------


@pytest.mark.parametrize("name", ["sighting_1.json", "sighting_2.json", "misp_event.json"])
def test_rendered_event_has_misps_fields_with_misps_json_types(name: str) -> None:
    """The file is what a MISP server answered on ``events/view``: every field it shows we
    show, with the same JSON type (``"5"`` where MISP sends a string, ``true`` for a bool)."""
    real = event_body(name)
    ours = rendered(parse_event(real))["Event"]

    def same_shape(theirs: dict[str, Any], mine: dict[str, Any], where: str) -> None:
        missing = set(theirs) - set(mine) - {"event_creator_email"}
        assert not missing, f"{where} lacks {missing}"
        for key, value in theirs.items():
            if key in mine and None not in (value, mine[key]):
                assert type(mine[key]) is type(value), f"{where}.{key}"

    same_shape(real, ours, "Event")
    same_shape(real["Org"], ours["Org"], "Org")
    for t, tag in enumerate(real.get("Tag", [])):
        same_shape(tag, ours["Tag"][t], f"Tag.{t}")
    for index, attribute in enumerate(real["Attribute"]):
        mine = ours["Attribute"][index]
        same_shape(attribute, mine, f"Attribute.{index}")
        for t, tag in enumerate(attribute.get("Tag", [])):
            same_shape(tag, mine["Tag"][t], f"Attribute.{index}.Tag.{t}")
        for s, seen in enumerate(attribute.get("Sighting", [])):
            same_shape(seen, mine["Sighting"][s], f"Attribute.{index}.Sighting.{s}")


def test_rendered_event_spells_values_as_misp_does() -> None:
    event = sent_by_pymisp()

    body = rendered(event)["Event"]

    assert {"ShadowAttribute", "RelatedEvent", "Galaxy", "CryptographicKey"} <= set(body)
    assert (body["id"], body["distribution"], body["threat_level_id"], body["analysis"]) == (
        "7",
        "2",
        "2",
        "1",
    )
    assert (body["timestamp"], body["publish_timestamp"], body["sharing_group_id"]) == (
        str(NOW),
        "0",
        "0",
    )
    assert (body["published"], body["locked"], body["protected"]) == (False, False, False)
    assert (body["attribute_count"], body["extends_uuid"]) == ("6", "")
    assert body["Org"] == {"id": "1", "name": "Tessera", "uuid": str(HERE["uuid"]), "local": True}
    ip = body["Attribute"][0]
    assert (ip["object_id"], ip["sharing_group_id"], ip["to_ids"], ip["deleted"]) == (
        "0",
        "0",
        False,
        False,
    )
    assert (ip["first_seen"], ip["last_seen"]) == (
        "2024-02-01T08:30:00.250000+00:00",
        "2024-02-03T09:00:00.000000+00:00",
    )
    assert (ip["Galaxy"], ip["ShadowAttribute"]) == ([], [])
    assert ip["Tag"][0] | {"id": "?", "colour": "?"} == {
        "id": "?",
        "name": "kill-chain:c2",
        "colour": "?",
        "exportable": True,
        "user_id": "0",
        "hide_tag": False,
        "numerical_value": None,
        "is_galaxy": False,
        "is_custom_galaxy": False,
        "local_only": False,
        "local": False,
        "relationship_type": None,
    }
    assert "Tag" not in body["Attribute"][1]
    assert "Sighting" not in body["Attribute"][1]
    file_object, url_object = body["Object"]
    assert file_object["meta-category"] == "file"
    assert file_object["template_version"] == str(event.objects[0].template_version)
    assert [a["object_id"] for a in file_object["Attribute"]] == [file_object["id"]] * 3
    reference, to_ip = url_object["ObjectReference"]
    assert (reference["referenced_type"], reference["referenced_id"]) == ("1", file_object["id"])
    assert (to_ip["referenced_type"], to_ip["referenced_id"]) == ("0", ip["id"])
    assert to_ip["Attribute"] == {
        "distribution": "5",
        "sharing_group_id": "0",
        "uuid": ip["uuid"],
        "value": "198.51.100.7",
        "type": "ip-dst",
        "category": "Network activity",
        "to_ids": False,
    }
    assert reference["Object"] == {
        "distribution": "5",
        "sharing_group_id": "0",
        "uuid": file_object["uuid"],
        "name": "file",
        "meta-category": "file",
    }


def test_only_exportable_tags_and_objects_with_attributes_are_shown() -> None:
    event = parse_event(
        {
            "info": "x",
            "Tag": [{"name": "secret", "exportable": False}, {"name": "mine", "local": True}],
            "Object": [{"name": "file", "meta-category": "file"}],
        }
    )

    assert [t["name"] for t in rendered(event)["Event"]["Tag"]] == ["mine"]
    assert "Tag" not in rendered(event, exclude_local_tags=True)["Event"]
    assert rendered(event)["Event"]["Object"] == []


def test_rendering_takes_model_instances() -> None:
    rows = stored(sent_by_pymisp())
    instances = {
        "event": models.Event(**rows["event"]),
        "attributes": [models.Attribute(**a) for a in rows["attributes"]],
        "objects": [models.MispObject(**o) for o in rows["objects"]],
        "references": [models.ObjectReference(**r) for r in rows["references"]],
        "tags": [(models.Tag(**t), models.EventTag(**link)) for t, link in rows["tags"]],
        "attribute_tags": [
            (models.Tag(**t), models.AttributeTag(**link)) for t, link in rows["attribute_tags"]
        ],
    }

    assert render_event(**(rows | instances)) == render_event(**rows)


@pytest.mark.parametrize(
    ("part", "table"),
    [
        (lambda e: e, models.Event),
        (lambda e: e.attributes[0], models.Attribute),
        (lambda e: e.objects[0], models.MispObject),
        (lambda e: e.objects[1].references[0], models.ObjectReference),
        (lambda e: EventReportIn(name="r"), models.EventReport),
        (lambda e: SightingIn(), models.Sighting),
    ],
    ids=["event", "attribute", "object", "reference", "report", "sighting"],
)
def test_columns_are_our_columns(part: Any, table: Any) -> None:
    columns = part(sent_by_pymisp()).columns(now=NOW)

    assert set(columns) <= set(table.model_fields)
    assert set(TagIn(name="t").columns()) <= set(models.Tag.model_fields)
    assert set(TagIn(name="t").link_columns()) <= set(models.EventTag.model_fields)


def test_render_attribute_answers_like_attributes_add() -> None:
    attribute = parse_attribute(
        {
            "type": "ip-dst|port",
            "value": "198.51.100.7|443",
            "Tag": [{"name": "tlp:amber", "colour": "#ffc000"}],
        }
    )
    row = attribute.columns(now=NOW) | {"id": 41, "event_id": EVENT_ID, "object_id": None}
    tag = ({"id": 3, **attribute.tags[0].columns()}, {"id": 9, **attribute.tags[0].link_columns()})

    answer = render_attribute(row, tags=[tag])

    assert answer["Attribute"] | {"uuid": "?"} == {
        "id": "41",
        "event_id": "7",
        "object_id": "0",
        "object_relation": None,
        "category": "Network activity",
        "type": "ip-dst|port",
        "value1": "198.51.100.7",
        "value2": "443",
        "to_ids": True,
        "uuid": "?",
        "timestamp": str(NOW),
        "distribution": "5",
        "sharing_group_id": "0",
        "comment": "",
        "deleted": False,
        "disable_correlation": False,
        "first_seen": None,
        "last_seen": None,
        "value": "198.51.100.7|443",
    }
    assert answer["AttributeTag"] == [
        {
            "id": "9",
            "attribute_id": "41",
            "event_id": "7",
            "tag_id": "3",
            "local": False,
            "relationship_type": "",
            "Tag": {"id": "3", "name": "tlp:amber", "colour": "#ffc000", "numerical_value": None},
        }
    ]
    misp = pymisp.MISPAttribute()
    misp.from_dict(**answer)
    assert (misp.value, misp.id, misp.to_ids) == ("198.51.100.7|443", 41, True)


def test_index_entries_minimal_and_full() -> None:
    rows = stored(parse_event(sample("sighting_2.json")))
    rows["event"]["sighting_timestamp"] = 1551253653

    minimal = render_index_entry(rows["event"], org=HERE, orgc=rows["orgc"], minimal=True)
    full = render_index_entry(rows["event"], org=HERE, orgc=rows["orgc"], tags=rows["tags"])

    assert minimal == {
        "id": "7",
        "timestamp": "1551253649",
        "sighting_timestamp": "1551253653",
        "published": False,
        "uuid": "5c6ab833-676c-42f3-95d2-034f0a00020f",
        "orgc_uuid": "5c6983c8-3af8-4304-869c-4800d6c1883c",
    }
    assert full["Orgc"] == {
        "id": "2",
        "name": "ORGNAME",
        "uuid": "5c6983c8-3af8-4304-869c-4800d6c1883c",
    }
    assert "user_id" not in full
    assert full["attribute_count"] == "2"
    (link,) = full["EventTag"]
    assert (link["Tag"]["name"], link["Tag"]["is_galaxy"]) == ('misp-galaxy:botnet="Asprox"', True)
    misp = pymisp.MISPEvent()
    misp.from_dict(**full)
    assert misp.uuid == full["uuid"]


def test_feed_event_is_what_pymisp_writes_for_the_event() -> None:
    event = sent_by_pymisp()
    rows = stored(event)
    feed_rows = {key: rows[key] for key in rows if key not in ("org", "sightings", "sighting_orgs")}

    feed = render_feed_event(**feed_rows)

    theirs = loaded(render_event(**rows)).to_feed()
    # PyMISP gives a reference it loads a random object_uuid (it reads ObjectReference before
    # the object's uuid, and MISP 2.5 sends source_uuid): ours is the object's
    for ours, pymisps in zip(
        feed["Event"]["Object"][1]["ObjectReference"],
        theirs["Event"]["Object"][1]["ObjectReference"],
        strict=True,
    ):
        assert ours["object_uuid"] == str(event.objects[1].uuid)
        ours["object_uuid"] = pymisps["object_uuid"]
    assert feed == theirs


def test_feed_event_carries_no_ids_and_no_holder() -> None:
    rows = stored(sent_by_pymisp())
    feed_rows = {key: rows[key] for key in rows if key not in ("org", "sightings", "sighting_orgs")}

    feed = render_feed_event(**feed_rows)["Event"]

    assert not set(keys_within(feed)) & {"id", "event_id", "object_id", "org_id", "Org"}
    assert feed["Orgc"] == {"name": "Tessera", "uuid": str(HERE["uuid"])}
    assert "distribution" not in feed
    assert render_feed_event(**feed_rows, with_distribution=True)["Event"]["distribution"] == "2"
    without_local = render_feed_event(**feed_rows, with_local_tags=False)["Event"]
    assert [t["name"] for t in without_local["Tag"]] == ["tlp:green"]
    assert loaded({"Event": feed}).attributes[0].value == "198.51.100.7"


def test_sharing_group_is_attached_to_what_is_shared_with_it() -> None:
    sg = {
        "id": 5,
        "uuid": UUID(A_UUID),
        "name": "Banks",
        "releasability": "members",
        "description": "",
        "org_id": 1,
        "active": True,
        "roaming": False,
        "local": True,
        "created_at": datetime(2024, 1, 1, tzinfo=UTC),
        "updated_at": datetime(2024, 1, 2, tzinfo=UTC),
    }
    shown = render_sharing_group(
        sg,
        organisation=HERE,
        base_url="https://tessera.example",
        orgs=[({"id": 1, "org_id": 1, "extend": True}, HERE)],
        servers=[({"id": 1, "server_id": 0, "all_orgs": False}, None)],
    )
    attribute = GOOD | {"distribution": 4, "sharing_group_id": 5}
    rows = stored(
        parse_event(
            {"info": "x", "distribution": 4, "sharing_group_id": 5} | {"Attribute": [attribute]}
        )
    )
    rows["event"]["sharing_group_id"] = rows["attributes"][0]["sharing_group_id"] = 5

    body = render_event(**rows, sharing_groups={5: shown})["Event"]

    assert body["SharingGroup"]["created"] == "2024-01-01 00:00:00"
    assert (
        body["SharingGroup"]["SharingGroupServer"][0]["Server"]["url"] == "https://tessera.example"
    )
    assert body["Attribute"][0]["SharingGroup"]["uuid"] == A_UUID
    again = parse_event(body)  # as a server pulling it reads it
    assert again.sharing_group is not None
    assert again.sharing_group.orgs[0].organisation.uuid == HERE["uuid"]
    assert again.attributes[0].sharing_group == again.sharing_group


def test_seen_is_written_as_misp_writes_it() -> None:
    assert micro_to_iso(0) == "1970-01-01T00:00:00.000000+00:00"
    assert micro_to_iso(1_706_776_200_250_000) == "2024-02-01T08:30:00.250000+00:00"
    assert micro_to_iso(None) is None
