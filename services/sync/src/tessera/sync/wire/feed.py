"""Events in MISP's feed format, as PyMISP's ``MISPEvent.to_feed()`` writes them.

A feed is read by strangers: no ids (ours mean nothing elsewhere), no ``Org`` (who holds
the event here), only ``Orgc`` as ``{name, uuid}``, only exportable tags, and no
distribution unless asked for (``with_distribution``). Every object's keys come sorted, as
``AbstractMISP._to_feed`` emits them, integers as strings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from .rows import Row, TagLink, fields, tag_links
from .scalars import wire_int

__all__ = ["render_feed_event"]

Json = dict[str, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEMPLATE_NAMESPACE = UUID("9319371e-2504-4128-8410-3741cebbcfd3")
"""PyMISP's namespace for objects from before template uuids were mandatory"""


def _tag(tag: Mapping[str, Any], link: Mapping[str, Any]) -> Json:
    return {
        "colour": tag["colour"],
        "local": bool(link.get("local", False)),
        "name": tag["name"],
        "relationship_type": link.get("relationship_type") or "",
    }


_Link = tuple[Mapping[str, Any], Mapping[str, Any]]


def _tags(links: Iterable[_Link], local: bool) -> list[Json]:
    return [
        _tag(tag, link)
        for tag, link in links
        if tag["exportable"] and (local or not link.get("local"))
    ]


def _sorted(entries: Json) -> Json:
    return {key: entries[key] for key in sorted(entries)}


def _seen(entries: Json, row: Mapping[str, Any]) -> None:
    """PyMISP's ``datetime.isoformat()``: no ``.000000`` when there are no microseconds."""
    for key in ("first_seen", "last_seen"):
        if row.get(key) is not None:
            moment = _EPOCH + timedelta(microseconds=row[key])
            entries[key] = moment.isoformat()


def _attribute(row: Mapping[str, Any], tags: list[Json], with_distribution: bool) -> Json:
    value2 = row.get("value2") or ""
    entries: Json = {
        "category": row["category"],
        "comment": row.get("comment") or "",
        "deleted": bool(row.get("deleted", False)),
        "disable_correlation": bool(row.get("disable_correlation", False)),
        "timestamp": wire_int(row["timestamp"]),
        "to_ids": bool(row["to_ids"]),
        "type": row["type"],
        "uuid": str(row["uuid"]),
        "value": f"{row['value1']}|{value2}" if value2 else row["value1"],
    }
    _seen(entries, row)
    if row.get("object_id"):  # MISPObjectAttribute
        entries["object_relation"] = row.get("object_relation") or ""
    if with_distribution:
        entries["distribution"] = wire_int(row["distribution"])
    rendered = _sorted(entries)
    if tags:
        rendered["Tag"] = tags
    return rendered


def _reference(row: Mapping[str, Any], source_uuid: str) -> Json:
    return {
        "comment": row.get("comment") or "",
        "object_uuid": source_uuid,
        "referenced_uuid": str(row["referenced_uuid"]),
        "relationship_type": row.get("relationship_type") or "",
        "timestamp": wire_int(row["timestamp"]),
        "uuid": str(row["uuid"]),
    }


def _object(row: Mapping[str, Any], with_distribution: bool) -> Json:
    template = row.get("template_uuid") or uuid5(_TEMPLATE_NAMESPACE, row["name"])
    entries: Json = {
        "comment": row.get("comment") or "",
        "deleted": bool(row.get("deleted", False)),
        "description": row.get("description") or "",
        "meta-category": row.get("meta_category") or "",
        "name": row["name"],
        "template_uuid": str(template),
        "template_version": wire_int(row.get("template_version")),
        "timestamp": wire_int(row["timestamp"]),
        "uuid": str(row["uuid"]),
    }
    _seen(entries, row)
    if with_distribution:
        entries["distribution"] = wire_int(row["distribution"])
    return _sorted(entries)


def render_feed_event(
    event: Row,
    *,
    orgc: Row,
    attributes: Iterable[Row] = (),
    objects: Iterable[Row] = (),
    references: Iterable[Row] = (),
    tags: Iterable[TagLink] = (),
    attribute_tags: Iterable[TagLink] = (),
    reports: Iterable[Row] = (),
    with_distribution: bool = False,
    with_local_tags: bool = True,
) -> Json:
    """``{"Event": {...}}`` for a feed's ``<uuid>.json``. Rows as for
    :func:`~.outgoing.render_event`; the caller leaves out what the feed must not carry
    (PyMISP's ``valid_distributions``). ``with_local_tags`` keeps local tags, PyMISP's
    default."""
    row = fields(event)
    by_attribute: dict[Any, list[_Link]] = defaultdict(list)
    for tag, link in tag_links(attribute_tags):
        by_attribute[link["attribute_id"]].append((tag, link))
    top: list[Json] = []
    inside: dict[Any, list[Json]] = defaultdict(list)
    for attribute in (fields(a) for a in attributes):
        rendered = _attribute(
            attribute,
            _tags(by_attribute.get(attribute["id"], []), with_local_tags),
            with_distribution,
        )
        (inside[attribute["object_id"]] if attribute.get("object_id") else top).append(rendered)
    object_rows = [fields(o) for o in objects]
    uuids = {o["id"]: str(o["uuid"]) for o in object_rows}
    refs: dict[Any, list[Json]] = defaultdict(list)
    for reference in (fields(r) for r in references):
        source = uuids.get(reference["object_id"]) or str(reference["source_uuid"])
        refs[reference["object_id"]].append(_reference(reference, source))
    rendered_objects = []
    for obj in object_rows:
        rendered = _object(obj, with_distribution)
        if refs.get(obj["id"]):
            rendered["ObjectReference"] = refs[obj["id"]]
        rendered["Attribute"] = inside.get(obj["id"], [])
        rendered_objects.append(rendered)

    extends = row.get("extends_uuid")
    entries: Json = {
        "analysis": wire_int(row["analysis"]),
        "date": str(row["date"]),
        "extends_uuid": "" if extends is None else str(extends),
        "info": row["info"],
        "protected": bool(row.get("protected", False)),
        "publish_timestamp": wire_int(row.get("publish_timestamp")),
        "published": bool(row["published"]),
        "threat_level_id": wire_int(row["threat_level_id"]),
        "timestamp": wire_int(row["timestamp"]),
        "uuid": str(row["uuid"]),
    }
    if with_distribution:
        entries["distribution"] = wire_int(row["distribution"])
    body = _sorted(entries)
    creator = fields(orgc)
    body["Orgc"] = {"name": creator["name"], "uuid": str(creator["uuid"])}
    body["Tag"] = _tags(tag_links(tags), with_local_tags)
    if top:
        body["Attribute"] = top
    if rendered_objects:
        body["Object"] = rendered_objects
    report_rows = [fields(r) for r in reports]
    if report_rows:
        body["EventReport"] = [_report(r, with_distribution) for r in report_rows]
    return {"Event": body}


def _report(row: Mapping[str, Any], with_distribution: bool) -> Json:
    entries: Json = {
        "content": row.get("content") or "",
        "deleted": bool(row.get("deleted", False)),
        "name": row["name"],
        "timestamp": wire_int(row["timestamp"]),
        "uuid": str(row["uuid"]),
    }
    if with_distribution:
        entries["distribution"] = wire_int(row["distribution"])
    return _sorted(entries)
