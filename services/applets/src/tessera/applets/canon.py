"""The canonical form of an applet's content: what a version keeps, what ``GET`` answers
(plus the applet's metadata), what two versions are compared in, and the ``snapshot`` of
``applets.applet.version_published``.

Canonical means: every field that has a value present (defaults written out, nulls left
out: a reader takes a missing field as null), ids on every activity, item and flow,
``order`` equal to the position, flows naming their activities both by name and by id.
It is produced as JSON text by pydantic's serializer in one pass (:func:`canonical_json`):
a 600-item applet is 400 KB, and that text is what PostgreSQL stores and explodes
into rows, what the version event carries and what the answer to the request is, without
being parsed or encoded again. Two contents that mean the same thing have the same text, so
"nothing changed" is a comparison of hashes.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

from tessera.applets.document import AppletContent

__all__ = ["APPLET_FIELDS", "canonical", "canonical_json", "given_ids", "version_data"]

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


def _set(model: Any, **values: Any) -> None:
    """Fill the server's own fields (ids, order) of a part of the validated document. The
    models are frozen for everyone else; these are this request's own objects."""
    for name, value in values.items():
        object.__setattr__(model, name, value)


def canonical_json(content: AppletContent, *, fresh_ids: bool = False) -> str:
    """``content`` in canonical form, as JSON text. Parts without an id get a new one (all
    of them do with ``fresh_ids``: a duplicate, an import). Fills ids and order in
    ``content`` itself."""

    fresh = _new_ids(sum(1 + len(a.items) for a in content.activities) + len(content.flows))

    def id_of(given: uuid.UUID | None) -> uuid.UUID:
        return next(fresh) if fresh_ids or given is None else given

    activity_ids: dict[str, uuid.UUID] = {}
    for position, activity in enumerate(content.activities):
        activity_ids[activity.name.casefold()] = id_of(activity.id)
        _set(activity, id=activity_ids[activity.name.casefold()], order=position)
        for index, item in enumerate(activity.items):
            _set(item, id=id_of(item.id), order=index)
    for position, flow in enumerate(content.flows):
        _set(
            flow,
            id=id_of(flow.id),
            order=position,
            activity_ids=[activity_ids[name.casefold()] for name in flow.activities],
        )
    return content.model_dump_json(exclude={"organisation_id"}, exclude_none=True)


def _new_ids(count: int) -> Iterator[uuid.UUID]:
    """``count`` random (version 4) UUIDs from one read of the system's randomness."""
    randomness = os.urandom(16 * count)
    for start in range(0, len(randomness), 16):
        yield uuid.UUID(bytes=randomness[start : start + 16], version=4)


def canonical(content: AppletContent, *, fresh_ids: bool = False) -> dict[str, Any]:
    """:func:`canonical_json` as a dict (for tests and the ReproSchema export)."""
    result: dict[str, Any] = json.loads(canonical_json(content, fresh_ids=fresh_ids))
    return result


def version_data(
    *,
    applet_id: uuid.UUID,
    organisation_id: uuid.UUID,
    version: str,
    previous: str | None,
    published_by: uuid.UUID | None,
    document: str,
) -> str:
    """The data of ``applets.applet.version_published`` as JSON text: the version's metadata
    and, as ``snapshot``, the canonical ``document`` itself (see ``events.VersionPublished``)."""
    head = json.dumps(
        {
            "applet_id": str(applet_id),
            "organisation_id": str(organisation_id),
            "applet_version": version,
            "previous_version": previous,
            "published_by": None if published_by is None else str(published_by),
        },
        separators=(",", ":"),
    )
    return f'{head[:-1]},"snapshot":{document}}}'
