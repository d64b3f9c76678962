"""SQL for sync: servers, jobs and their progress, and what a pull skips before downloading
anything (blocklists, local copies as new). asyncpg; nothing here commits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from tessera.sync.store.rows import update_columns

__all__ = [
    "begin_job",
    "count_job",
    "insert_job",
    "insert_server",
    "job",
    "pull_candidates",
    "push_candidates",
    "push_servers",
    "recent_jobs",
    "server",
    "server_ids_named",
    "servers_page",
    "set_job",
    "set_server_etag",
    "set_source_server",
    "upsert_sightings",
]

Conn = Any


async def insert_server(conn: Conn, row: dict[str, Any]) -> int:
    found = await conn.fetchval(
        """
        INSERT INTO servers (name, url, authkey, org_id, remote_org_id, push, pull,
            push_sightings, pull_rules, push_rules, internal, unpublish_event,
            publish_without_email, self_signed, allow_private_addresses, priority, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10::jsonb, $11, $12, $13, $14, $15,
            $16, $17)
        RETURNING id
        """,
        row["name"], row["url"], row["authkey"], row["org_id"], row["remote_org_id"],
        row["push"], row["pull"], row["push_sightings"], json.dumps(row["pull_rules"]),
        json.dumps(row["push_rules"]), row["internal"], row["unpublish_event"],
        row["publish_without_email"], row["self_signed"], row["allow_private_addresses"],
        row["priority"], row["now"],
    )  # fmt: skip
    return int(found)


_SERVER = (
    "s.id, s.name, s.url, s.authkey, s.org_id, s.remote_org_id, s.push, s.pull, "
    "s.push_sightings, s.pull_rules::text AS pull_rules, s.push_rules::text AS push_rules, "
    "s.internal, s.unpublish_event, s.publish_without_email, s.self_signed, "
    "s.allow_private_addresses, s.index_etag, s.priority, s.created_at, "
    "o.name AS org_name, o.uuid AS org_uuid, r.name AS remote_org_name, "
    "r.uuid AS remote_org_uuid"
)


def _decoded(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    found = dict(row)
    found["pull_rules"] = json.loads(found["pull_rules"])
    found["push_rules"] = json.loads(found["push_rules"])
    return found


async def server(conn: Conn, server_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_SERVER} FROM servers s JOIN organisations o ON o.id = s.org_id "  # noqa: S608
        "LEFT JOIN organisations r ON r.id = s.remote_org_id WHERE s.id = $1"
        + (" FOR UPDATE OF s" if lock else ""),
        server_id,
    )
    return _decoded(row)


_EDITABLE = frozenset({
    "name", "url", "authkey", "remote_org_id", "push", "pull", "push_sightings", "pull_rules",
    "push_rules", "internal", "unpublish_event", "publish_without_email", "self_signed",
    "allow_private_addresses", "priority", "index_etag",
})  # fmt: skip


async def update_server(conn: Conn, server_id: int, columns: dict[str, Any]) -> None:
    """Set the given columns (names from :data:`_EDITABLE` only; rules as JSON)."""
    await update_columns(conn, "servers", server_id, columns, editable=_EDITABLE,
                         json_columns=("pull_rules", "push_rules"))  # fmt: skip


async def delete_server(conn: Conn, server_id: int) -> bool:
    """Remove the server (jobs and events keep their rows: their references become null)."""
    return (
        await conn.fetchval("DELETE FROM servers WHERE id = $1 RETURNING true", server_id) is True
    )


async def push_servers(conn: Conn) -> list[dict[str, Any]]:
    """The servers with ``push`` on, in MISP's order (``priority``, then id)."""
    rows = await conn.fetch(
        f"SELECT {_SERVER} FROM servers s JOIN organisations o ON o.id = s.org_id "  # noqa: S608
        "LEFT JOIN organisations r ON r.id = s.remote_org_id WHERE s.push "
        "ORDER BY s.priority, s.id"
    )
    return [r for r in (_decoded(row) for row in rows) if r is not None]


async def server_ids_named(conn: Conn, name: str) -> list[int]:
    """The ids of the servers called ``name`` (names are not unique, as in MISP)."""
    rows = await conn.fetch("SELECT id FROM servers WHERE name = $1 ORDER BY id", name)
    return [int(r["id"]) for r in rows]


async def servers_page(conn: Conn, *, limit: int, offset: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_SERVER} FROM servers s JOIN organisations o ON o.id = s.org_id "  # noqa: S608
        "LEFT JOIN organisations r ON r.id = s.remote_org_id ORDER BY s.priority, s.id "
        "LIMIT $1 OFFSET $2",
        limit,
        offset,
    )
    return [r for r in (_decoded(row) for row in rows) if r is not None]


async def set_server_etag(conn: Conn, server_id: int, etag: str | None) -> None:
    await conn.execute("UPDATE servers SET index_etag = $2 WHERE id = $1", server_id, etag)


async def insert_job(conn: Conn, row: dict[str, Any]) -> None:
    await conn.execute(
        """
        INSERT INTO jobs (id, kind, server_id, feed_id, event_uuid, status, requested_by,
            created_at)
        VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7)
        """,
        row["id"], row["kind"], row.get("server_id"), row.get("feed_id"),
        row.get("event_uuid"), row.get("requested_by"), row["now"],
    )  # fmt: skip


_JOB = (
    "id, kind, server_id, feed_id, event_uuid, status, seen, skipped, fetched, pushed, failed, "
    "sightings, bytes, total, error, requested_by, created_at, started_at, finished_at"
)


async def job(conn: Conn, job_id: UUID) -> Any:
    return await conn.fetchrow(f"SELECT {_JOB} FROM jobs WHERE id = $1", job_id)  # noqa: S608


async def recent_jobs(conn: Conn, *, limit: int) -> list[Any]:
    """The latest jobs, newest first, each with its server's name (None for a feed's)."""
    columns = ", ".join(f"j.{name}" for name in _JOB.split(", "))
    return list(
        await conn.fetch(
            f"SELECT {columns}, s.name AS server_name FROM jobs j "  # noqa: S608
            "LEFT JOIN servers s ON s.id = j.server_id ORDER BY j.created_at DESC LIMIT $1",
            limit,
        )
    )


async def set_job(conn: Conn, job_id: UUID, **values: Any) -> Any:
    """Set columns of the job; a job whose every item is accounted for is ``done``."""
    allowed = {"status", "seen", "skipped", "total", "error", "started_at", "finished_at",
               "bytes", "sightings"}  # fmt: skip
    sets, args = [], [job_id]
    for name, value in values.items():
        if name not in allowed:
            raise KeyError(name)
        args.append(value)
        sets.append(f"{name} = ${len(args)}")
    return await conn.fetchrow(
        f"UPDATE jobs SET {', '.join(sets)} WHERE id = $1 RETURNING {_JOB}",  # noqa: S608
        *args,
    )


_SETTLED = "total IS NOT NULL AND fetched + pushed + failed + $2 + $8 + $3 >= total - $7"


async def begin_job(conn: Conn, job_id: UUID, *, now: datetime) -> bool:
    """Mark the job ``running`` for the delivery of its first message; False when that message
    was handled already (a redelivery). A job ``running`` without a total is taken again: a
    delivery died before it read its index or manifest, so this one reads it."""
    job = await conn.fetchrow("SELECT status, total FROM jobs WHERE id = $1 FOR UPDATE", job_id)
    if job is None or job["status"] not in ("queued", "running") or job["total"] is not None:
        return False
    await conn.execute(
        "UPDATE jobs SET status = 'running', started_at = $2 WHERE id = $1", job_id, now
    )
    return True


async def count_job(
    conn: Conn,
    job_id: UUID,
    *,
    fetched: int = 0,
    pushed: int = 0,
    failed: int = 0,
    skipped: int = 0,
    bytes_: int = 0,
    error: str | None = None,
    now: datetime,
) -> Any:
    """One item of the job settled (fetched by a pull, pushed by a push, or failed): counted,
    and the job ``done`` once every item is. An item ``skipped`` only once it was at hand (a
    pulled event whose organisation is blocklisted, a pushed one the remote has as new)
    leaves the items to settle: ``total`` counts one fewer and ``skipped`` one more."""
    return await conn.fetchrow(
        f"""
        UPDATE jobs SET fetched = fetched + $2, failed = failed + $3, bytes = bytes + $4,
            pushed = pushed + $8, skipped = skipped + $7, total = total - $7,
            error = COALESCE($5, error),
            status = CASE WHEN {_SETTLED} THEN 'done' ELSE status END,
            finished_at = CASE WHEN {_SETTLED} THEN $6 ELSE finished_at END
        WHERE id = $1 RETURNING {_JOB}
        """,  # noqa: S608
        job_id,
        fetched,
        failed,
        bytes_,
        error,
        now,
        skipped,
        pushed,
    )


async def pull_candidates(
    conn: Conn,
    entries: Sequence[tuple[UUID, int, UUID | None]],
) -> tuple[list[tuple[UUID, int]], int]:
    """Of the remote's ``(uuid, timestamp, orgc_uuid)``: those to download (new here, or
    newer there), and how many were skipped (blocklisted event or organisation, or a local
    copy as new) — decided in one query, before downloading anything."""
    if not entries:
        return [], 0
    rows = await conn.fetch(
        """
        SELECT r.uuid, r.ts FROM unnest($1::uuid[], $2::bigint[], $3::uuid[]) AS r(uuid, ts, orgc)
        WHERE NOT EXISTS (SELECT 1 FROM event_blocklists b WHERE b.event_uuid = r.uuid)
          AND NOT EXISTS (SELECT 1 FROM org_blocklists b WHERE b.org_uuid = r.orgc)
          AND NOT EXISTS (SELECT 1 FROM events e WHERE e.uuid = r.uuid AND e.timestamp >= r.ts)
        """,
        [e[0] for e in entries],
        [e[1] for e in entries],
        [e[2] for e in entries],
    )
    wanted = [(r["uuid"], int(r["ts"])) for r in rows]
    return wanted, len(entries) - len(wanted)


async def push_candidates(
    conn: Conn, *, event_uuid: UUID | None = None, event_id: int | None = None
) -> list[Any]:
    """The events a push may send (``Server::push``'s query): published, with a live
    attribute or report; each with what the push rules and the distribution rules read
    (creator, tags, sharing group, the server it was pulled from). One event by its uuid or
    its id, or all of them."""
    return list(
        await conn.fetch(
            """
            SELECT e.id, e.uuid, e.timestamp, e.distribution, e.sharing_group_id, e.orgc_id,
                e.source_server_id, c.uuid AS orgc_uuid, c.name AS orgc_name,
                COALESCE((SELECT array_agg(t.name) FROM event_tags et
                          JOIN tags t ON t.id = et.tag_id
                          WHERE et.event_id = e.id AND NOT et.local), '{}') AS tag_names,
                COALESCE((SELECT array_agg(t.id) FROM event_tags et
                          JOIN tags t ON t.id = et.tag_id
                          WHERE et.event_id = e.id AND NOT et.local), '{}') AS tag_ids
            FROM events e JOIN organisations c ON c.id = e.orgc_id
            WHERE e.published AND ($1::uuid IS NULL OR e.uuid = $1)
              AND ($2::bigint IS NULL OR e.id = $2)
              AND (e.attribute_count > 0 OR EXISTS (
                   SELECT 1 FROM event_reports r WHERE r.event_id = e.id AND NOT r.deleted))
            ORDER BY e.id
            """,
            event_uuid,
            event_id,
        )
    )


async def set_source_server(conn: Conn, event_id: int, server_id: int) -> None:
    """The event came from ``server_id`` (a pull): a push never sends it back there."""
    await conn.execute("UPDATE events SET source_server_id = $2 WHERE id = $1", event_id, server_id)


async def upsert_sightings(
    conn: Conn, event_id: int, sightings: Sequence[tuple[UUID, Any]], *, now: datetime
) -> int:
    """Sightings of the event's attributes (``(attribute uuid, SightingIn)``), by their
    uuid: a sighting is a fact, written once; the event's ``sighting_timestamp`` follows."""
    from tessera.sync import directory

    if not sightings:
        return 0
    epoch = int(now.timestamp())
    org_ids: dict[UUID, int] = {}
    rows = []
    for attribute_uuid, sighting in sightings:
        org_id = None
        if sighting.org is not None and sighting.org.uuid is not None:
            if sighting.org.uuid not in org_ids:
                org_ids[sighting.org.uuid] = await directory.ensure_organisation(
                    conn, sighting.org.uuid, sighting.org.name or str(sighting.org.uuid), now
                )
            org_id = org_ids[sighting.org.uuid]
        columns = sighting.columns(now=epoch)
        rows.append((attribute_uuid, columns, org_id))
    written = await conn.fetchval(
        """
        WITH new AS (
            INSERT INTO sightings (uuid, attribute_id, event_id, org_id, date_sighting, source,
                type)
            SELECT s.uuid, a.id, $1, s.org_id, s.date_sighting, s.source, s.type
            FROM unnest($2::uuid[], $3::uuid[], $4::bigint[], $5::bigint[], $6::text[],
                        $7::smallint[]) AS s(uuid, attribute_uuid, org_id, date_sighting, source,
                                             type)
            JOIN attributes a ON a.uuid = s.attribute_uuid AND a.event_id = $1
            ON CONFLICT (uuid) DO NOTHING
            RETURNING date_sighting
        )
        UPDATE events SET sighting_timestamp = GREATEST(sighting_timestamp,
            COALESCE((SELECT max(date_sighting) FROM new), 0))
        WHERE id = $1
        RETURNING (SELECT count(*) FROM new)
        """,
        event_id,
        [c["uuid"] for _, c, _ in rows], [a for a, _, _ in rows], [o for _, _, o in rows],
        [c["date_sighting"] for _, c, _ in rows], [c["source"] for _, c, _ in rows],
        [c["type"] for _, c, _ in rows],
    )  # fmt: skip
    return int(written or 0)
