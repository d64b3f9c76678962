"""SQL for MISP events: writing a parsed event (new, edited, or synced in) and reading one back
for rendering. asyncpg, inside the caller's transaction; nothing here commits.

* :mod:`.writing`: the event's row and its parts, upserted by uuid (newer wins), sightings,
  blocklists;
* :mod:`.tags`: tags found or created by name, attached to events and attributes;
* :mod:`.reading`: what a viewer may see of an event, its sharing groups;
* :mod:`.objects`: one object or object reference the viewer may see, by id or uuid.
"""

from .objects import object_attributes, object_references, visible_object, visible_reference
from .reading import (
    Loaded,
    ident_condition,
    load_event,
    rendered_sharing_groups,
    sharing_group_views,
    visible_attribute,
    visible_event,
)
from .tags import attach_attribute_tags, attach_tags, attribute_tags_of, tag_ids
from .writing import (
    Saved,
    attributes_by_uuid,
    block_event,
    blocked_event,
    blocked_org,
    duplicate_attributes,
    event_by_ident,
    insert_event_row,
    objects_by_uuid,
    refresh_event,
    upsert_attributes,
    upsert_event_row,
    upsert_objects,
    upsert_references,
    upsert_reports,
    upsert_sharing_group,
    upsert_sightings,
)

__all__ = [
    "Loaded",
    "Saved",
    "attach_attribute_tags",
    "attach_tags",
    "attribute_tags_of",
    "attributes_by_uuid",
    "block_event",
    "blocked_event",
    "blocked_org",
    "duplicate_attributes",
    "event_by_ident",
    "ident_condition",
    "insert_event_row",
    "load_event",
    "object_attributes",
    "object_references",
    "objects_by_uuid",
    "refresh_event",
    "rendered_sharing_groups",
    "sharing_group_views",
    "tag_ids",
    "upsert_attributes",
    "upsert_event_row",
    "upsert_objects",
    "upsert_references",
    "upsert_reports",
    "upsert_sharing_group",
    "upsert_sightings",
    "visible_attribute",
    "visible_event",
    "visible_object",
    "visible_reference",
]
