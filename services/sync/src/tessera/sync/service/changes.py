"""What every change of a MISP event does besides the change itself: the event's
``timestamp`` moves to the time of the change (and it is no longer published, as MISP's
``Event::unpublishEvent`` does after an attribute or a tag changed), and the change is
announced through the outbox (``sync.event.updated``, ``sync.event.published``; and
``sync.event.deleted`` when it goes)."""

from __future__ import annotations

import time
from typing import Any

from tessera.common.db import UnitOfWork
from tessera.sync.events import EventDeleted, EventPublished, EventUpdated

__all__ = ["announce", "announce_deletion", "epoch", "facts", "unpublish_event"]

Conn = Any

SOURCE = "api"
"""``source`` of the events announced by the routes: a user or a MISP client"""


def epoch() -> int:
    """Now, in MISP's Unix seconds."""
    return int(time.time())


def facts(row: Any, *, source: str = SOURCE) -> dict[str, Any]:
    """The facts both events carry, from an ``events`` row (and its organisations' uuids,
    ``org_uuid`` and ``orgc_uuid``, selected with it)."""
    return {
        "event_id": int(row["id"]),
        "event_uuid": row["uuid"],
        "info": str(row["info"])[:2000],
        "orgc_uuid": row["orgc_uuid"],
        "org_uuid": row["org_uuid"],
        "distribution": int(row["distribution"]),
        "timestamp": int(row["timestamp"]),
        "attribute_count": int(row["attribute_count"]),
        "source": source,
    }


async def event_facts(conn: Conn, event_id: int) -> Any:
    """The event's row with its organisations' uuids, as :func:`facts` reads it."""
    return await conn.fetchrow(
        "SELECT e.*, o.uuid AS org_uuid, c.uuid AS orgc_uuid FROM events e "
        "JOIN organisations o ON o.id = e.org_id JOIN organisations c ON c.id = e.orgc_id "
        "WHERE e.id = $1",
        event_id,
    )


async def announce(
    uow: UnitOfWork,
    conn: Conn,
    event_id: int,
    *,
    updated: bool = True,
    published: bool = False,
    source: str = SOURCE,
) -> None:
    """Append ``sync.event.updated`` (a creation or a change) and/or ``sync.event.published``
    for the event as it now is; written with the commit, or not at all."""
    row = await event_facts(conn, event_id)
    if row is None:
        return
    subject = str(row["uuid"])
    if updated:
        uow.publish(EventUpdated(**facts(row, source=source)), subject=subject)
    if published:
        uow.publish(EventPublished(**facts(row, source=source)), subject=subject)


async def announce_deletion(
    uow: UnitOfWork, conn: Conn, event_id: int, *, source: str = SOURCE
) -> None:
    """Append ``sync.event.deleted`` with the event's last facts: call it before the row goes,
    in the transaction that deletes it."""
    row = await event_facts(conn, event_id)
    if row is None:
        return
    last = facts(row, source=source)
    for dropped in ("distribution", "timestamp", "attribute_count"):
        del last[dropped]
    uow.publish(EventDeleted(**last), subject=str(row["uuid"]))


async def unpublish_event(conn: Conn, event_id: int, *, now: int) -> None:
    """``Event::unpublishEvent``: what changed an event's attributes or global tags takes the
    time of the change and leaves the event to be published again; ``attribute_count``
    follows its live attributes."""
    await conn.execute(
        "UPDATE events SET published = false, timestamp = GREATEST(timestamp, $2), "
        "attribute_count = (SELECT count(*) FROM attributes WHERE event_id = $1 AND NOT deleted) "
        "WHERE id = $1",
        event_id,
        now,
    )
