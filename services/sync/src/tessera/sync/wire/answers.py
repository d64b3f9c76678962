"""MISP's shorter answers: an attribute just added (``attributes/add``), an object reference
(``objectReferences/add`` and ``view``), and the entries of ``events/index``, full or minimal
(what a pulling server asks for)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .outgoing import event_fields, render_org, value_of
from .rows import Row, TagLink, fields, tag_links
from .scalars import micro_to_iso, wire_int

__all__ = ["render_attribute", "render_index_entry", "render_reference"]

Json = dict[str, Any]


def render_attribute(attribute: Row, *, tags: Iterable[TagLink] = ()) -> Json:
    """``attributes/add`` (one attribute): every column, ``value1``/``value2`` included, and
    its ``AttributeTag`` links beside it, as ``AttributesController::add`` answers."""
    row = fields(attribute)
    body: Json = {
        "id": wire_int(row["id"]),
        "event_id": wire_int(row["event_id"]),
        "object_id": wire_int(row.get("object_id")),
        "object_relation": row.get("object_relation"),
        "category": row["category"],
        "type": row["type"],
        "value1": row["value1"],
        "value2": row.get("value2") or "",
        "to_ids": bool(row["to_ids"]),
        "uuid": str(row["uuid"]),
        "timestamp": wire_int(row["timestamp"]),
        "distribution": wire_int(row["distribution"]),
        "sharing_group_id": wire_int(row.get("sharing_group_id")),
        "comment": row.get("comment") or "",
        "deleted": bool(row.get("deleted", False)),
        "disable_correlation": bool(row.get("disable_correlation", False)),
        "first_seen": micro_to_iso(row.get("first_seen")),
        "last_seen": micro_to_iso(row.get("last_seen")),
        "value": value_of(row),
    }
    links = []
    for tag, link in tag_links(tags):
        links.append(
            {
                "id": wire_int(link.get("id")),
                "attribute_id": body["id"],
                "event_id": body["event_id"],
                "tag_id": wire_int(tag["id"]),
                "local": bool(link.get("local", False)),
                "relationship_type": link.get("relationship_type") or "",
                "Tag": {
                    "id": wire_int(tag["id"]),
                    "name": tag["name"],
                    "colour": tag["colour"],
                    "numerical_value": None
                    if tag.get("numerical_value") is None
                    else str(tag["numerical_value"]),
                },
            }
        )
    return {"Attribute": body, "AttributeTag": links}


def render_reference(reference: Row, *, referenced_id: int | None) -> Json:
    """``{"ObjectReference": {...}}``: the reference's columns as MISP stores them, with the
    local id of what it points at (``"0"`` when that is not here)."""
    row = fields(reference)
    body: Json = {
        "id": wire_int(row["id"]),
        "uuid": str(row["uuid"]),
        "timestamp": wire_int(row["timestamp"]),
        "object_id": wire_int(row["object_id"]),
        "event_id": wire_int(row["event_id"]),
        "source_uuid": str(row["source_uuid"]),
        "referenced_uuid": str(row["referenced_uuid"]),
        "referenced_id": wire_int(referenced_id),
        "referenced_type": wire_int(row["referenced_type"]),
        "relationship_type": row.get("relationship_type") or "",
        "comment": row.get("comment") or "",
        "deleted": bool(row.get("deleted", False)),
    }
    return {"ObjectReference": body}


def render_index_entry(
    event: Row,
    *,
    org: Row,
    orgc: Row,
    tags: Iterable[TagLink] = (),
    sharing_group: Row | None = None,
    minimal: bool = False,
) -> Json:
    """One element of ``events/index``. ``minimal`` (``minimal:1``, what a pulling server
    asks for): ``id, timestamp, sighting_timestamp, published, uuid, orgc_uuid``. Otherwise
    the event's columns (not ``user_id``), ``Org``/``Orgc`` as ``{id, name, uuid}``, the
    sharing group's ``{id, name, uuid}`` and the exportable ``EventTag`` links."""
    row = fields(event)
    if minimal:
        return {
            "id": wire_int(row["id"]),
            "timestamp": wire_int(row["timestamp"]),
            "sighting_timestamp": wire_int(row.get("sighting_timestamp")),
            "published": bool(row["published"]),
            "uuid": str(row["uuid"]),
            "orgc_uuid": str(fields(orgc)["uuid"]),
        }
    full = event_fields(row)
    entry: Json = {
        key: full[key]
        for key in (
            "id",
            "org_id",
            "date",
            "info",
            "uuid",
            "published",
            "analysis",
            "attribute_count",
            "orgc_id",
            "timestamp",
            "distribution",
            "sharing_group_id",
            "proposal_email_lock",
            "locked",
            "threat_level_id",
            "publish_timestamp",
        )
    }
    entry["sighting_timestamp"] = wire_int(row.get("sighting_timestamp"))
    entry |= {key: full[key] for key in ("disable_correlation", "extends_uuid", "protected")}
    entry["Org"] = render_org(org, with_local=False)
    entry["Orgc"] = render_org(orgc, with_local=False)
    if sharing_group is not None and row.get("sharing_group_id"):
        sg = fields(sharing_group)
        entry["SharingGroup"] = {
            "id": wire_int(sg["id"]),
            "name": sg["name"],
            "uuid": str(sg["uuid"]),
        }
    links = []
    for tag, link in tag_links(tags):
        if not tag["exportable"]:
            continue
        links.append(
            {
                "id": wire_int(link.get("id")),
                "event_id": entry["id"],
                "tag_id": wire_int(tag["id"]),
                "local": bool(link.get("local", False)),
                "relationship_type": link.get("relationship_type") or "",
                "Tag": {
                    "id": wire_int(tag["id"]),
                    "name": tag["name"],
                    "colour": tag["colour"],
                    "is_galaxy": bool(tag.get("is_galaxy", False)),
                },
            }
        )
    entry["EventTag"] = links
    return entry
