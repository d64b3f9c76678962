"""The canonical form of an applet's content: what a version keeps, what ``GET`` answers
(plus the applet's metadata), what two versions are compared in, and what the version's
event carries (:func:`snapshot`).

Canonical means: every field present (defaults written out), ids on every activity, item
and flow, ``order`` equal to the position, flows naming their activities both by name and
by id. Two documents that mean the same thing have the same canonical form, so "nothing
changed" is an equality test.
"""

from __future__ import annotations

import uuid
from typing import Any

from tessera.applets.document import AppletContent
from tessera.applets.events import VersionSnapshot

__all__ = ["APPLET_FIELDS", "canonical", "given_ids", "snapshot"]

APPLET_FIELDS = (
    "display_name",
    "description",
    "about",
    "image",
    "watermark",
    "theme",
    "encryption",
    "retention",
)
"""The applet's own fields (``PATCH`` changes these), in the order the document has them."""


def given_ids(content: AppletContent) -> list[uuid.UUID]:
    """The ids the editor sent for activities, items and flows (kept parts)."""
    ids: list[uuid.UUID] = []
    for activity in content.activities:
        if activity.id is not None:
            ids.append(activity.id)
        ids.extend(item.id for item in activity.items if item.id is not None)
    ids.extend(flow.id for flow in content.flows if flow.id is not None)
    return ids


def canonical(content: AppletContent, *, fresh_ids: bool = False) -> dict[str, Any]:
    """``content`` in canonical form; parts without an id get a new one (all of them do
    with ``fresh_ids``: a duplicate, an import)."""

    def id_of(given: uuid.UUID | None) -> str:
        return str(uuid.uuid4() if fresh_ids or given is None else given)

    dumped = content.model_dump(mode="json", exclude={"organisation_id"})
    activity_ids: dict[str, str] = {}
    for position, (activity, model) in enumerate(
        zip(dumped["activities"], content.activities, strict=True)
    ):
        activity["id"] = id_of(model.id)
        activity["order"] = position
        activity_ids[activity["name"].casefold()] = activity["id"]
        for index, (item, item_model) in enumerate(
            zip(activity["items"], model.items, strict=True)
        ):
            item["id"] = id_of(item_model.id)
            item["order"] = index
    for position, (flow, model) in enumerate(zip(dumped["flows"], content.flows, strict=True)):
        flow["id"] = id_of(model.id)
        flow["order"] = position
        flow["activity_ids"] = [activity_ids[name.casefold()] for name in flow["activities"]]
    return dumped


def snapshot(content: dict[str, Any]) -> VersionSnapshot:
    """What ``applets.applet.version_published`` carries of a canonical content."""
    return VersionSnapshot.model_validate(
        {
            "display_name": content["display_name"],
            "encryption": content["encryption"],
            "retention": content["retention"],
            "activities": content["activities"],
            "flows": content["flows"],
        }
    )
