"""SQL for feeds: their rows, the schedule's claim of the feeds due, and what this instance
exports as a feed (published events shared with all communities). asyncpg; nothing here
commits."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from .rows import update_columns

__all__ = [
    "EXPORTED",
    "claim_due",
    "exported_event_id",
    "feed",
    "feed_ids_named",
    "feeds_page",
    "forget_manifest",
    "hash_rows",
    "insert_feed",
    "manifest_rows",
    "set_fetched",
    "set_manifest_etag",
]

Conn = Any

EXPORTED = "e.published AND e.distribution = 3"
"""the events of this instance's feed: published, shared with all communities"""

_SHOWN = "a.distribution IN (3, 5)"
"""an element a stranger may see in an exported event: all communities, or the event's"""


async def insert_feed(conn: Conn, row: dict[str, Any]) -> int:
    found = await conn.fetchval(
        """
        INSERT INTO feeds (name, provider, url, rules, enabled, distribution, sharing_group_id,
            tag_id, source_format, fixed_event, delta_merge, publish, override_ids,
            lookup_visible, caching_enabled, input_source, settings, allow_private_addresses,
            headers, fetch_every_s, org_id, created_at)
        VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
            $17::jsonb, $18, $19, $20, $21, $22)
        RETURNING id
        """,
        row["name"], row["provider"], row["url"], json.dumps(row["rules"]), row["enabled"],
        row["distribution"], row["sharing_group_id"], row["tag_id"], row["source_format"],
        row["fixed_event"], row["delta_merge"], row["publish"], row["override_ids"],
        row["lookup_visible"], row["caching_enabled"], row["input_source"],
        json.dumps(row["settings"]), row["allow_private_addresses"], row["headers"],
        row["fetch_every_s"], row["org_id"], row["now"],
    )  # fmt: skip
    return int(found)


_FEED = (
    "f.id, f.name, f.provider, f.url, f.rules::text AS rules, f.enabled, f.distribution, "
    "f.sharing_group_id, f.tag_id, f.source_format, f.fixed_event, f.delta_merge, f.publish, "
    "f.override_ids, f.lookup_visible, f.caching_enabled, f.input_source, "
    "f.settings::text AS settings, f.allow_private_addresses, f.headers, f.manifest_etag, "
    "f.fetch_every_s, f.last_fetched_at, f.orgc_id, f.org_id, f.created_at, "
    "o.uuid AS org_uuid, o.name AS org_name, t.name AS tag_name, t.colour AS tag_colour, "
    "t.exportable AS tag_exportable, t.hide_tag AS tag_hide_tag"
)
_FROM = (
    "FROM feeds f LEFT JOIN organisations o ON o.id = f.org_id LEFT JOIN tags t ON t.id = f.tag_id"
)


def _decoded(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    found = dict(row)
    found["rules"] = json.loads(found["rules"])
    found["settings"] = json.loads(found["settings"])
    return found


async def feed(conn: Conn, feed_id: int) -> dict[str, Any] | None:
    return _decoded(await conn.fetchrow(f"SELECT {_FEED} {_FROM} WHERE f.id = $1", feed_id))


async def feed_ids_named(conn: Conn, name: str) -> list[int]:
    """The ids of the feeds called ``name`` (names are not unique, as in MISP)."""
    rows = await conn.fetch("SELECT id FROM feeds WHERE name = $1 ORDER BY id", name)
    return [int(r["id"]) for r in rows]


async def feeds_page(conn: Conn, *, limit: int, offset: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_FEED} {_FROM} ORDER BY f.id LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    return [r for r in (_decoded(row) for row in rows) if r is not None]


_EDITABLE = frozenset({
    "name", "provider", "url", "rules", "enabled", "distribution", "sharing_group_id", "tag_id",
    "source_format", "fixed_event", "delta_merge", "publish", "override_ids", "lookup_visible",
    "caching_enabled", "input_source", "settings", "allow_private_addresses", "headers",
    "fetch_every_s", "manifest_etag",
})  # fmt: skip
_JSON = frozenset({"rules", "settings"})


async def update_feed(conn: Conn, feed_id: int, columns: dict[str, Any]) -> None:
    """Set the given columns (names from :data:`_EDITABLE` only; ``rules`` and ``settings``
    as JSON)."""
    await update_columns(conn, "feeds", feed_id, columns, editable=_EDITABLE, json_columns=_JSON)


async def delete_feed(conn: Conn, feed_id: int) -> bool:
    """Remove the feed (its jobs keep their rows, without it)."""
    return await conn.fetchval("DELETE FROM feeds WHERE id = $1 RETURNING true", feed_id) is True


async def enabled_feed_ids(conn: Conn) -> list[int]:
    rows = await conn.fetch("SELECT id FROM feeds WHERE enabled ORDER BY id")
    return [int(r["id"]) for r in rows]


async def set_fetched(conn: Conn, feed_id: int, now: datetime) -> None:
    """A fetch of the feed was started: the schedule counts from here."""
    await conn.execute("UPDATE feeds SET last_fetched_at = $2 WHERE id = $1", feed_id, now)


async def set_manifest_etag(conn: Conn, feed_id: int, etag: str | None) -> None:
    await conn.execute("UPDATE feeds SET manifest_etag = $2 WHERE id = $1", feed_id, etag)


async def forget_manifest(conn: Conn, feed_id: int) -> None:
    """An event of the feed failed: the next fetch reads the manifest again (no 304) and
    retries it."""
    await conn.execute("UPDATE feeds SET manifest_etag = NULL WHERE id = $1", feed_id)


async def claim_due(conn: Conn, now: datetime) -> list[int]:
    """The enabled feeds whose ``fetch_every_s`` has passed since their last fetch, marked as
    fetched now: in one statement, so two schedulers (replicas) never both start one."""
    rows = await conn.fetch(
        """
        UPDATE feeds SET last_fetched_at = $1
        WHERE enabled AND fetch_every_s IS NOT NULL AND input_source = 'network'
          AND (last_fetched_at IS NULL
               OR last_fetched_at + make_interval(secs => fetch_every_s) <= $1)
        RETURNING id
        """,
        now,
    )
    return sorted(int(r["id"]) for r in rows)


# --- this instance's feed -------------------------------------------------------------------


async def manifest_rows(conn: Conn) -> list[Any]:
    """What ``manifest.json`` says of each exported event, with its exportable global tags."""
    return list(
        await conn.fetch(
            f"""
            SELECT e.uuid, e.info, e.date, e.analysis, e.threat_level_id, e.timestamp,
                   o.name AS orgc_name, o.uuid AS orgc_uuid,
                   COALESCE((SELECT json_agg(json_build_object(
                                 'colour', t.colour, 'local', false, 'name', t.name,
                                 'relationship_type', COALESCE(et.relationship_type, ''))
                             ORDER BY et.id)::text
                             FROM event_tags et JOIN tags t ON t.id = et.tag_id
                             WHERE et.event_id = e.id AND NOT et.local AND t.exportable),
                            '[]') AS tags
            FROM events e JOIN organisations o ON o.id = e.orgc_id
            WHERE {EXPORTED}
            ORDER BY e.id
            """  # noqa: S608
        )
    )


async def exported_event_id(conn: Conn, event_uuid: UUID) -> int | None:
    found = await conn.fetchval(
        f"SELECT e.id FROM events e WHERE e.uuid = $1 AND {EXPORTED}",  # noqa: S608
        event_uuid,
    )
    return None if found is None else int(found)


async def hash_rows(conn: Conn) -> list[Any]:
    """``(md5 of value1, md5 of value2 or NULL, event uuid)`` of every attribute a stranger
    sees in the feed (a composite's halves hashed one by one, as PyMISP's feed generator)."""
    return list(
        await conn.fetch(
            f"""
            SELECT md5(a.value1) AS first, CASE WHEN COALESCE(a.value2, '') <> ''
                   THEN md5(a.value2) END AS second, e.uuid
            FROM attributes a JOIN events e ON e.id = a.event_id
            LEFT JOIN objects ob ON ob.id = a.object_id
            WHERE {EXPORTED} AND NOT a.deleted AND {_SHOWN}
              AND (a.object_id IS NULL OR (NOT ob.deleted AND ob.distribution IN (3, 5)))
            ORDER BY e.id, a.id
            """  # noqa: S608
        )
    )
