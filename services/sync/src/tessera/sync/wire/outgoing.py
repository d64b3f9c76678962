"""Events as MISP 2.5 renders them on ``events/view`` (and pushes them to other servers).

The shapes follow ``Event::fetchEvent`` and ``JSONConverterTool::convert``; the same
spelling holds in :mod:`.answers` (``attributes/add``, ``events/index``):

* integer columns are strings (``"id": "12"``, ``"distribution": "5"``, ``"timestamp":
  "1700000000"``), ``tinyint(1)`` columns are booleans (``published``, ``to_ids``, ``deleted``,
  ``local``...); a reference MISP stores as ``0`` (``sharing_group_id``, ``object_id``) is
  ``"0"``, never ``null``;
* ``value`` is ``value1|value2`` when ``value2`` is not empty, as MISP's virtual field;
  ``first_seen``/``last_seen`` are ISO 8601 with microseconds in UTC;
* an attribute has ``Galaxy`` and ``ShadowAttribute`` (empty here), and ``Tag`` and
  ``Sighting`` only when it has some; an object without attributes is left out; the event
  has ``Tag`` only when it has tags; only exportable tags are shown;
* ``Org``/``Orgc`` are ``{id, name, uuid, local}``, a tag adds ``local`` and
  ``relationship_type`` (``null`` when empty) to its columns, a reference carries a summary of
  what it points at (``Attribute`` or ``Object``).

Inputs are rows with the columns of :mod:`tessera.sync.models` (mappings or model instances);
tags come as ``(Tag, EventTag)`` / ``(Tag, AttributeTag)`` pairs. The caller chooses the rows
the viewer may see: nothing is filtered here but what MISP never shows (non-exportable tags,
and local tags when ``exclude_local_tags``, as for a sync user).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from .rows import Row, TagLink, fields, tag_links
from .scalars import micro_to_iso, wire_int

__all__ = [
    "event_fields",
    "render_event",
    "render_object",
    "render_org",
    "render_sharing_group",
    "render_tag",
    "value_of",
]

Json = dict[str, Any]


def render_org(org: Row, *, with_local: bool = True) -> Json:
    """``{id, name, uuid, local}``, as ``Org``/``Orgc`` of ``events/view``."""
    row = fields(org)
    rendered: Json = {"id": wire_int(row["id"]), "name": row["name"], "uuid": str(row["uuid"])}
    if with_local:
        rendered["local"] = bool(row.get("local", False))
    return rendered


def render_sharing_group(
    sharing_group: Row,
    *,
    organisation: Row,
    orgs: Iterable[tuple[Row, Row]] = (),
    servers: Iterable[tuple[Row, Row | None]] = (),
    base_url: str = "",
) -> Json:
    """A sharing group as events carry it (``SharingGroup::fetchAllAuthorised``, simplified):
    ``orgs`` are ``(SharingGroupOrg, Organisation)`` pairs, ``servers`` are
    ``(SharingGroupServer, Server)`` pairs, the server ``None`` for this instance
    (``server_id`` 0, shown with ``base_url``)."""
    sg, owner = fields(sharing_group), fields(organisation)
    members = []
    for link, org in orgs:
        link_row = fields(link)
        members.append(
            {
                "id": wire_int(link_row["id"]),
                "sharing_group_id": wire_int(sg["id"]),
                "org_id": wire_int(link_row["org_id"]),
                "extend": bool(link_row["extend"]),
                "Organisation": render_org(org, with_local=False),
            }
        )
    instances = []
    for link, server in servers:
        link_row = fields(link)
        if server is None:
            shown = {"id": "0", "url": base_url, "name": base_url}
        else:
            row = fields(server)
            shown = {"id": wire_int(row["id"]), "url": row["url"], "name": row["name"]}
        instances.append(
            {
                "id": wire_int(link_row["id"]),
                "sharing_group_id": wire_int(sg["id"]),
                "server_id": wire_int(link_row["server_id"]),
                "all_orgs": bool(link_row["all_orgs"]),
                "Server": shown,
            }
        )
    return {
        "id": wire_int(sg["id"]),
        "name": sg["name"],
        "releasability": sg["releasability"],
        "description": sg["description"],
        "uuid": str(sg["uuid"]),
        "organisation_uuid": str(owner["uuid"]),
        "org_id": wire_int(sg["org_id"]),
        "sync_user_id": "0",
        "active": bool(sg["active"]),
        "created": _datetime(sg.get("created_at")),
        "modified": _datetime(sg.get("updated_at")),
        "local": bool(sg["local"]),
        "roaming": bool(sg["roaming"]),
        "Organisation": render_org(organisation, with_local=False),
        "SharingGroupOrg": members,
        "SharingGroupServer": instances,
    }


def _datetime(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def value_of(row: Mapping[str, Any]) -> str:
    """MISP's virtual field: ``value1`` alone when ``value2`` is empty."""
    value1, value2 = row["value1"], row.get("value2") or ""
    return f"{value1}|{value2}" if value2 else str(value1)


def _tag(tag: Mapping[str, Any], link: Mapping[str, Any]) -> Json:
    numerical = tag.get("numerical_value")
    return {
        "id": wire_int(tag["id"]),
        "name": tag["name"],
        "colour": tag["colour"],
        "exportable": bool(tag["exportable"]),
        "user_id": "0",
        "hide_tag": bool(tag.get("hide_tag", False)),
        "numerical_value": None if numerical is None else str(numerical),
        "is_galaxy": bool(tag.get("is_galaxy", False)),
        "is_custom_galaxy": False,
        "local_only": bool(tag.get("local_only", False)),
        "local": bool(link.get("local", False)),
        "relationship_type": link.get("relationship_type") or None,
    }


def _shown(tag: Mapping[str, Any], link: Mapping[str, Any], exclude_local: bool) -> bool:
    return bool(tag["exportable"]) and not (exclude_local and link.get("local"))


def _attribute(
    row: Mapping[str, Any],
    *,
    tags: list[Json],
    sightings: list[Json],
    sharing_groups: Mapping[int, Json],
) -> Json:
    rendered: Json = {
        "id": wire_int(row["id"]),
        "type": row["type"],
        "category": row["category"],
        "to_ids": bool(row["to_ids"]),
        "uuid": str(row["uuid"]),
        "event_id": wire_int(row["event_id"]),
        "distribution": wire_int(row["distribution"]),
        "timestamp": wire_int(row["timestamp"]),
        "comment": row.get("comment") or "",
        "sharing_group_id": wire_int(row.get("sharing_group_id")),
        "deleted": bool(row.get("deleted", False)),
        "disable_correlation": bool(row.get("disable_correlation", False)),
        "object_id": wire_int(row.get("object_id")),
        "object_relation": row.get("object_relation"),
        "first_seen": micro_to_iso(row.get("first_seen")),
        "last_seen": micro_to_iso(row.get("last_seen")),
        "value": value_of(row),
        "Galaxy": [],
        "ShadowAttribute": [],
    }
    _attach_sharing_group(rendered, row, sharing_groups)
    if tags:
        rendered["Tag"] = tags
    if sightings:
        rendered["Sighting"] = sightings
    return rendered


def _attach_sharing_group(
    rendered: Json, row: Mapping[str, Any], groups: Mapping[int, Json]
) -> None:
    group = row.get("sharing_group_id")
    if row.get("distribution") == 4 and group is not None and group in groups:
        rendered["SharingGroup"] = groups[group]


def _sighting(row: Mapping[str, Any], attribute_uuid: str, orgs: Mapping[int, Row]) -> Json:
    rendered: Json = {
        "id": wire_int(row["id"]),
        "attribute_id": wire_int(row["attribute_id"]),
        "event_id": wire_int(row["event_id"]),
        "org_id": wire_int(row.get("org_id")),
        "date_sighting": wire_int(row["date_sighting"]),
        "uuid": str(row["uuid"]),
        "source": row.get("source") or "",
        "type": wire_int(row.get("type")),
        "attribute_uuid": attribute_uuid,
    }
    org = orgs.get(row.get("org_id") or 0)
    if org is not None:
        org_row = fields(org)
        rendered["Organisation"] = {
            "id": wire_int(org_row["id"]),
            "uuid": str(org_row["uuid"]),
            "name": org_row["name"],
        }
    return rendered


def _reference(
    row: Mapping[str, Any],
    *,
    source_uuid: str,
    attributes: Mapping[str, Json],
    objects: Mapping[str, Json],
) -> Json:
    referenced = str(row["referenced_uuid"])
    kind = "Object" if row.get("referenced_type") == 1 else "Attribute"
    found = (objects if kind == "Object" else attributes).get(referenced)
    rendered: Json = {
        "id": wire_int(row["id"]),
        "uuid": str(row["uuid"]),
        "timestamp": wire_int(row["timestamp"]),
        "object_id": wire_int(row["object_id"]),
        "referenced_uuid": referenced,
        "referenced_id": found["id"] if found else "0",
        "referenced_type": "1" if kind == "Object" else "0",
        "relationship_type": row.get("relationship_type") or "",
        "comment": row.get("comment") or "",
        "deleted": bool(row.get("deleted", False)),
        "event_id": wire_int(row["event_id"]),
        "source_uuid": source_uuid,
    }
    copied = (
        ("value", "type", "category", "to_ids")
        if kind == "Attribute"
        else ("name", "meta-category")
    )
    if found:
        summary = {key: found[key] for key in ("distribution", "sharing_group_id", "uuid")}
        rendered[kind] = summary | {key: found[key] for key in copied}
    else:  # in another event (an extension)
        rendered[kind] = {
            "name": "",
            "meta-category": f"{kind} from another event",
            "category": f"{kind} from another event",
            "type": "",
            "value": "",
            "uuid": referenced,
        }
    return rendered


def _object(row: Mapping[str, Any], sharing_groups: Mapping[int, Json]) -> Json:
    rendered: Json = {
        "id": wire_int(row["id"]),
        "name": row["name"],
        "meta-category": row.get("meta_category") or "",
        "description": row.get("description") or "",
        "template_uuid": None if row.get("template_uuid") is None else str(row["template_uuid"]),
        "template_version": wire_int(row.get("template_version")),
        "event_id": wire_int(row["event_id"]),
        "uuid": str(row["uuid"]),
        "timestamp": wire_int(row["timestamp"]),
        "distribution": wire_int(row["distribution"]),
        "sharing_group_id": wire_int(row.get("sharing_group_id")),
        "comment": row.get("comment") or "",
        "deleted": bool(row.get("deleted", False)),
        "first_seen": micro_to_iso(row.get("first_seen")),
        "last_seen": micro_to_iso(row.get("last_seen")),
    }
    _attach_sharing_group(rendered, row, sharing_groups)
    return rendered


def render_object(row: Mapping[str, Any], sharing_groups: Mapping[int, Json] | None = None) -> Json:
    """An object's own fields as events carry it (no attributes, no references)."""
    return _object(row, sharing_groups or {})


def render_tag(tag: Mapping[str, Any], link: Mapping[str, Any]) -> Json:
    """A tag attached to an event or an attribute, as events carry it (``Tag``)."""
    return _tag(tag, link)


def _report(row: Mapping[str, Any], sharing_groups: Mapping[int, Json]) -> Json:
    rendered: Json = {
        "id": wire_int(row["id"]),
        "uuid": str(row["uuid"]),
        "event_id": wire_int(row["event_id"]),
        "name": row["name"],
        "content": row.get("content") or "",
        "distribution": wire_int(row["distribution"]),
        "sharing_group_id": wire_int(row.get("sharing_group_id")),
        "timestamp": wire_int(row["timestamp"]),
        "deleted": bool(row.get("deleted", False)),
    }
    _attach_sharing_group(rendered, row, sharing_groups)
    return rendered


def event_fields(event: Mapping[str, Any]) -> Json:
    extends = event.get("extends_uuid")
    return {
        "id": wire_int(event["id"]),
        "orgc_id": wire_int(event["orgc_id"]),
        "org_id": wire_int(event["org_id"]),
        "date": str(event["date"]),
        "threat_level_id": wire_int(event["threat_level_id"]),
        "info": event["info"],
        "published": bool(event["published"]),
        "uuid": str(event["uuid"]),
        "attribute_count": wire_int(event.get("attribute_count")),
        "analysis": wire_int(event["analysis"]),
        "timestamp": wire_int(event["timestamp"]),
        "distribution": wire_int(event["distribution"]),
        "proposal_email_lock": bool(event.get("proposal_email_lock", False)),
        "locked": bool(event.get("locked", False)),
        "publish_timestamp": wire_int(event.get("publish_timestamp")),
        "sharing_group_id": wire_int(event.get("sharing_group_id")),
        "disable_correlation": bool(event.get("disable_correlation", False)),
        "extends_uuid": "" if extends is None else str(extends),
        "protected": bool(event.get("protected", False)),
    }


def render_event(
    event: Row,
    *,
    org: Row,
    orgc: Row,
    attributes: Iterable[Row] = (),
    objects: Iterable[Row] = (),
    references: Iterable[Row] = (),
    tags: Iterable[TagLink] = (),
    attribute_tags: Iterable[TagLink] = (),
    sightings: Iterable[Row] = (),
    reports: Iterable[Row] = (),
    sharing_groups: Mapping[int, Json] | None = None,
    sighting_orgs: Mapping[int, Row] | None = None,
    exclude_local_tags: bool = False,
    keys: Iterable[Row] = (),
) -> Json:
    """``{"Event": {...}}`` as ``events/view/{id}.json`` answers.

    ``attributes`` are all the event's attributes (in objects or not: ``object_id`` says),
    ``references`` its object references, ``sightings`` the sightings of its attributes;
    ``sharing_groups`` (id → :func:`render_sharing_group`) are attached to what is shared
    with one; ``sighting_orgs`` (id → organisation) name who saw what; ``keys`` are the
    ``cryptographic_keys`` a protected event trusts.
    """
    row = fields(event)
    groups = sharing_groups or {}
    attribute_rows = [fields(a) for a in attributes]
    tagged: dict[Any, list[Json]] = defaultdict(list)
    for tag, link in tag_links(attribute_tags):
        if _shown(tag, link, exclude_local_tags):
            tagged[link["attribute_id"]].append(_tag(tag, link))
    uuids = {a["id"]: str(a["uuid"]) for a in attribute_rows}
    seen: dict[Any, list[Json]] = defaultdict(list)
    for sighting in (fields(s) for s in sightings):
        attribute_uuid = uuids.get(sighting["attribute_id"], "")
        seen[sighting["attribute_id"]].append(
            _sighting(sighting, attribute_uuid, sighting_orgs or {})
        )

    top: list[Json] = []
    inside: dict[Any, list[Json]] = defaultdict(list)
    for attribute in attribute_rows:
        shown = _attribute(
            attribute,
            tags=tagged.get(attribute["id"], []),
            sightings=seen.get(attribute["id"], []),
            sharing_groups=groups,
        )
        (inside[attribute["object_id"]] if attribute.get("object_id") else top).append(shown)

    body = event_fields(row)
    body["Org"] = render_org(org)
    body["Orgc"] = render_org(orgc)
    if row.get("distribution") == 4 and row.get("sharing_group_id") in groups:
        body["SharingGroup"] = groups[row["sharing_group_id"]]
    body |= {
        "Attribute": top,
        "ShadowAttribute": [],
        "RelatedEvent": [],
        "Galaxy": [],
        "Object": _objects(objects, references, top, inside, groups),
        "EventReport": [_report(fields(r), groups) for r in reports],
        "CryptographicKey": [_key(fields(k)) for k in keys],
    }
    event_tags = [
        _tag(t, link) for t, link in tag_links(tags) if _shown(t, link, exclude_local_tags)
    ]
    if event_tags:
        body["Tag"] = event_tags
    return {"Event": body}


def _key(row: Row) -> Json:
    """MISP's ``CryptographicKey`` of an event."""
    return {
        "id": wire_int(row["id"]),
        "uuid": str(row["uuid"]),
        "type": row["type"],
        "timestamp": wire_int(row["timestamp"]),
        "parent_id": wire_int(row["event_id"]),
        "parent_type": "Event",
        "revoked": bool(row["revoked"]),
        "fingerprint": row["fingerprint"],
        "key_data": row["key_data"],
    }


def _objects(
    objects: Iterable[Row],
    references: Iterable[Row],
    top: list[Json],
    inside: Mapping[Any, list[Json]],
    groups: Mapping[int, Json],
) -> list[Json]:
    """The objects with their attributes (``inside``, by object id) and references (to
    attributes in ``top`` or ``inside``, or to objects); an object without attributes is
    left out, as ``JSONConverterTool`` does."""
    shown = {row["id"]: _object(row, groups) for row in (fields(o) for o in objects)}
    attributes = {a["uuid"]: a for a in top}
    attributes |= {a["uuid"]: a for those in inside.values() for a in those}
    by_uuid = {o["uuid"]: o for o in shown.values()}
    refs: dict[Any, list[Json]] = defaultdict(list)
    for reference in (fields(r) for r in references):
        source = shown.get(reference["object_id"])
        source_uuid = source["uuid"] if source else str(reference["source_uuid"])
        refs[reference["object_id"]].append(
            _reference(reference, source_uuid=source_uuid, attributes=attributes, objects=by_uuid)
        )
    kept = []
    for object_id, obj in shown.items():
        if inside.get(object_id):
            obj["ObjectReference"] = refs.get(object_id, [])
            obj["Attribute"] = inside[object_id]
            kept.append(obj)
    return kept
