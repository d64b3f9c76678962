"""What a PyMISP user does, as functions a test runs against any URL PyMISP is given: the sync
service served in-process (``services/sync/tests``) or the whole suite behind the gateway
(``tests/e2e``). PyMISP is used unchanged; every step asserts what MISP would answer."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from pymisp import (
    MISPAttribute,
    MISPEvent,
    MISPObject,
    MISPObjectReference,
    MISPSighting,
    PyMISP,
)

__all__ = ["lifecycle", "objects", "renamed", "round_trip"]


def _client(url: str, key: str) -> Any:
    """PyMISP's answers are unions of dicts, lists and objects: a test reads them as it
    expects them (and fails when they are not)."""
    return PyMISP(url, key, ssl=False, timeout=30)


def _seconds(stamp: Any) -> float:
    return stamp.timestamp() if isinstance(stamp, datetime) else float(stamp)


def _tags(entity: Any) -> set[str]:
    return {t.name for t in entity.tags}


def lifecycle(url: str, key: str) -> None:
    """What a PyMISP user does with an event, from creation to deletion."""
    misp = _client(url, key)
    event = MISPEvent()
    event.info = "PyMISP lifecycle"
    event.distribution = 0
    event.add_attribute("ip-dst", "198.51.100.7", comment="first seen at the gateway")
    event.add_attribute("domain", "bad.example.org")
    file_object = MISPObject("file")
    file_object.add_attribute("filename", value="dropper.exe")
    file_object.add_attribute("md5", value="d41d8cd98f00b204e9800998ecf8427e")
    event.add_object(file_object)
    event.add_tag("tlp:green")

    created = misp.add_event(event, pythonify=True)
    assert isinstance(created, MISPEvent), created
    assert created.uuid == event.uuid
    assert {a.value for a in created.attributes} == {"198.51.100.7", "bad.example.org"}
    assert created.objects[0].name == "file"
    assert {a.object_relation for a in created.objects[0].attributes} == {"filename", "md5"}
    assert _tags(created) == {"tlp:green"}
    assert misp.event_exists(created.uuid)

    # edit: PyMISP sends the edited parts without their timestamps
    created.info = "PyMISP lifecycle, edited"
    created.attributes[0].comment = "seen again"
    created.add_attribute("url", "http://bad.example.org/payload")
    updated = misp.update_event(created, pythonify=True)
    assert isinstance(updated, MISPEvent), updated
    assert updated.info == "PyMISP lifecycle, edited"
    assert len(updated.attributes) == 3
    first = next(a for a in updated.attributes if a.value == "198.51.100.7")
    assert first.comment == "seen again"
    assert _seconds(updated.timestamp) >= _seconds(created.timestamp)

    # tags on the event and on an attribute
    tagged = misp.tag(updated, 'workflow:state="draft"')
    assert "successfully" in tagged["message"].lower(), tagged
    assert f"({updated.id})" in tagged["message"]
    assert 'workflow:state="draft"' in _tags(misp.get_event(updated.id, pythonify=True))
    untagged = misp.untag(updated, 'workflow:state="draft"')
    assert untagged["message"].endswith(f"successfully removed from Event({updated.id})."), untagged
    assert 'workflow:state="draft"' not in _tags(misp.get_event(updated.uuid, pythonify=True))
    attribute_tag = misp.tag(first.uuid, "tlp:amber")
    assert f"({first.id})" in attribute_tag["message"], attribute_tag
    assert _tags(misp.get_attribute(first.uuid, pythonify=True)) == {"tlp:amber"}
    assert "tlp:green" in {t.name for t in misp.tags(pythonify=True)}

    # one attribute more, then the same again: MISP's duplicate rule
    extra = MISPAttribute()
    extra.type, extra.value = "ip-src", "203.0.113.9"
    added = misp.add_attribute(updated, extra, pythonify=True)
    assert isinstance(added, MISPAttribute), added
    assert added.value == "203.0.113.9"
    again = MISPAttribute()
    again.type, again.value = "ip-src", "203.0.113.9"
    refused = misp.add_attribute(updated, again)
    assert refused["errors"][1]["errors"]["value"][0] == (
        "A similar attribute already exists for this event."
    )
    changed = misp.update_attribute({"comment": "an egress address"}, added.id, pythonify=True)
    assert changed.comment == "an egress address"

    # sightings
    sighting = MISPSighting()
    sighting.source = "sensor-7"
    seen = misp.add_sighting(sighting, first, pythonify=True)
    assert isinstance(seen, MISPSighting), seen
    assert seen.source == "sensor-7"  # type: ignore[attr-defined]  # PyMISP sets it dynamically
    assert int(seen.attribute_id) == first.id  # type: ignore[attr-defined]
    by_value = misp.add_sighting({"value": "bad.example.org"}, pythonify=True)
    assert isinstance(by_value, MISPSighting), by_value
    listed = misp.sightings(first, pythonify=True)
    assert [s.source for s in listed] == ["sensor-7"]
    assert len(misp.sightings(updated, pythonify=True)) == 2
    viewed = misp.get_event(updated, pythonify=True)
    assert next(a for a in viewed.attributes if a.uuid == first.uuid).sightings
    unsighted = misp.get_event(updated.id, no_sightings=True, pythonify=True)
    assert not any(a.sightings for a in unsighted.attributes)

    # index by eventid, and the event by id
    index = misp.search_index(eventid=updated.id, pythonify=True)
    assert [e.uuid for e in index] == [updated.uuid]
    assert misp.get_event(updated.id, pythonify=True).uuid == updated.uuid

    # soft delete of an attribute: gone, unless asked for deleted ones
    gone = misp.delete_attribute(added)
    assert gone["message"] == "Attribute deleted."
    live = misp.get_event(updated, pythonify=True)
    assert added.uuid not in {a.uuid for a in live.attributes}
    everything = misp.get_event(updated, deleted=True, pythonify=True)
    assert added.uuid in {a.uuid for a in everything.attributes}

    # publish, then delete: blocklisted
    published = misp.publish(updated)
    assert published["message"] == "Job queued", published
    assert misp.get_event(updated, pythonify=True).published is True
    deleted = misp.delete_event(updated)
    assert deleted["message"] == "Event deleted.", deleted
    assert not misp.event_exists(updated.uuid)
    blocked = misp.add_event(event)
    assert blocked["errors"][0] == 403
    assert blocked["errors"][1]["message"] == "Event blocked by event blocklist."


def objects(url: str, key: str) -> None:
    """What a PyMISP user does with objects of an event: add, view, update, reference,
    delete (soft, then hard)."""
    misp = _client(url, key)
    event = MISPEvent()
    event.info = "PyMISP objects"
    event.add_attribute("ip-dst", "198.51.100.9")
    created = misp.add_event(event, pythonify=True)
    assert isinstance(created, MISPEvent), created
    [address] = created.attributes

    tuple_ = MISPObject("domain-ip")
    tuple_.add_attribute("domain", value="c2.example.org")
    tuple_.add_attribute("ip", value="198.51.100.10")
    added = misp.add_object(created, tuple_, pythonify=True)
    assert isinstance(added, MISPObject), added
    assert (added.name, added.uuid) == ("domain-ip", tuple_.uuid)
    assert {a.object_relation for a in added.attributes} == {"domain", "ip"}
    assert misp.object_exists(added.uuid)
    dropper = MISPObject("file")
    dropper.add_attribute("filename", value="dropper.exe")
    dropper.add_attribute("md5", value="d41d8cd98f00b204e9800998ecf8427e")
    file_object = misp.add_object(created.id, dropper, pythonify=True)
    assert isinstance(file_object, MISPObject), file_object
    copy = MISPObject("file")
    copy.add_attribute("filename", value="dropper.exe")
    copy.add_attribute("md5", value="d41d8cd98f00b204e9800998ecf8427e")
    refused = misp.add_object(created, copy, break_on_duplicate=True)
    assert "Duplicate object found" in refused["errors"][1]["errors"]["value"][0], refused

    # update: one attribute changed, one more
    added.comment = "seen at the proxy"
    next(a for a in added.attributes if a.object_relation == "ip").comment = "egress"
    added.add_attribute("port", value="443")
    updated = misp.update_object(added, pythonify=True)
    assert isinstance(updated, MISPObject), updated
    assert updated.comment == "seen at the proxy"
    assert {a.object_relation: a.comment for a in updated.attributes} == {
        "domain": "", "ip": "egress", "port": ""}  # fmt: skip
    viewed = misp.get_object(updated.uuid, pythonify=True)
    assert isinstance(viewed, MISPObject), viewed
    assert {a.value for a in viewed.attributes} == {"c2.example.org", "198.51.100.10", "443"}

    # references: from the file to the tuple, from the tuple to an attribute
    reference = misp.add_object_reference(
        file_object.add_reference(updated.uuid, "connects-to"), pythonify=True
    )
    assert isinstance(reference, MISPObjectReference), reference
    assert reference.referenced_uuid == updated.uuid
    to_address = misp.add_object_reference(updated.add_reference(address, "resolves-to"))
    assert to_address["ObjectReference"]["referenced_type"] == "0", to_address
    shown = misp.get_event(created.uuid, pythonify=True)
    [source] = [o for o in shown.objects if o.uuid == file_object.uuid]
    assert [r.referenced_uuid for r in source.references] == [updated.uuid]
    removed = misp.delete_object_reference(to_address["ObjectReference"]["uuid"], hard=True)
    assert removed["success"] is True, removed

    # delete: soft, then hard
    assert misp.delete_object(file_object)["message"] == "Object deleted"
    live = misp.get_event(created, pythonify=True)
    assert [o.uuid for o in live.objects] == [updated.uuid]
    everything = misp.get_event(created, deleted=True, pythonify=True)
    assert file_object.uuid in {o.uuid for o in everything.objects}
    assert misp.delete_object(updated, hard=True)["message"] == "Object deleted"
    assert not misp.object_exists(updated.uuid)
    assert misp.get_event(created, pythonify=True).objects == []


def _attributes(event: MISPEvent) -> dict[str, str]:
    found = {a.uuid: a.value for a in event.attributes}
    for obj in event.objects:
        found |= {a.uuid: a.value for a in obj.attributes}
    return found


def _attribute_tags(event: MISPEvent) -> dict[str, set[str]]:
    found = {a.uuid: _tags(a) for a in event.attributes}
    for obj in event.objects:
        found |= {a.uuid: _tags(a) for a in obj.attributes}
    return found


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def renamed(text: str) -> str:
    """A MISP file's JSON with every uuid in it replaced, consistently (a reference still
    names its object), so the same sample can go into one database twice."""
    fresh: dict[str, str] = {}
    return _UUID.sub(lambda m: fresh.setdefault(m.group(0).lower(), str(uuid.uuid4())), text)


def round_trip(url: str, key: str, path: Path, *, rename: bool = False) -> None:
    """``path`` (an event file of PyMISP's tests) goes in with ``add_event`` and comes back
    with the same attributes, objects and tags; ``rename``: under uuids of its own."""
    misp = _client(url, key)
    text = path.read_text()
    if rename:
        text = renamed(text)
    sent = MISPEvent()
    sent.load(text)
    created = misp.add_event(sent, pythonify=True)
    assert isinstance(created, MISPEvent), (path.name, created)
    back = misp.get_event(sent.uuid, pythonify=True)
    assert isinstance(back, MISPEvent), (path.name, back)

    live = MISPEvent()
    live.load(text)
    expected = {
        a.uuid: a.value
        for a in [*live.attributes, *(a for o in live.objects for a in o.attributes)]
        if not a.get("deleted")
    }
    assert back.uuid == sent.uuid
    assert back.info == sent.info
    assert _attributes(back) == expected, path.name
    assert {o.uuid for o in back.objects} == {
        o.uuid for o in live.objects if not o.get("deleted") and o.attributes
    }
    assert _tags(back) == _tags(live), path.name
    wanted_tags = {a: t for a, t in _attribute_tags(live).items() if a in expected}
    assert _attribute_tags(back) == wanted_tags, path.name
