"""SQL for the applets' rows, on asyncpg; nothing here commits (use cases do).

An applet's content travels as one JSON document: the use case serialises it once, and
PostgreSQL explodes it into activity, item and flow rows and keeps it as the version's
snapshot in the same statement (:func:`write_content`), then builds the document back from
the rows in one query when it is read (:func:`applet_document`). No row is encoded or
decoded one by one in Python, which is what a 20 x 30 applet would otherwise cost.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

__all__ = [
    "applet_document",
    "applet_for_update",
    "applet_row",
    "content_ids",
    "delete_content",
    "foreign_ids",
    "insert_applet",
    "list_applets",
    "next_version",
    "update_applet",
    "version_content",
    "versions_page",
    "write_version",
]

Conn = Any  # an asyncpg connection (inside the use case's transaction, or pooled for reads)

_APPLET_COLUMNS = (
    "id, organisation_id, display_name, description::text, about::text, image, watermark, "
    "theme::text, encryption::text, retention::text, published, public_link_hash, "
    "answers_possible_at, current_version, created_by, created_at, updated_at, deleted_at"
)
_JSON_COLUMNS = ("description", "about", "theme", "encryption", "retention")


def _decoded(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    found = dict(row)
    for name in _JSON_COLUMNS:
        if found.get(name) is not None:
            found[name] = json.loads(found[name])
    return found


async def applet_row(conn: Conn, applet_id: uuid.UUID) -> dict[str, Any] | None:
    """The applet's own row (deleted ones too: callers decide), JSON fields decoded."""
    row = await conn.fetchrow(f"SELECT {_APPLET_COLUMNS} FROM applets WHERE id = $1", applet_id)  # noqa: S608
    return _decoded(row)


async def applet_for_update(conn: Conn, applet_id: uuid.UUID) -> dict[str, Any] | None:
    """The live applet's row, locked until the transaction ends: changes to one applet
    (and the versions they number) happen one after the other."""
    row = await conn.fetchrow(
        f"SELECT {_APPLET_COLUMNS} FROM applets WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",  # noqa: S608
        applet_id,
    )
    return _decoded(row)


async def insert_applet(conn: Conn, row: dict[str, Any]) -> None:
    await conn.execute(
        """
        INSERT INTO applets (id, organisation_id, display_name, description, about, image,
            watermark, theme, encryption, retention, published, current_version, created_by,
            created_at, updated_at)
        VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8::jsonb, $9::jsonb, $10::jsonb,
            false, $11, $12, $13, $13)
        """,
        row["id"],
        row["organisation_id"],
        row["display_name"],
        json.dumps(row["description"]),
        json.dumps(row["about"]),
        row["image"],
        row["watermark"],
        _json_or_null(row["theme"]),
        _json_or_null(row["encryption"]),
        json.dumps(row["retention"]),
        row["current_version"],
        row["created_by"],
        row["now"],
    )


def _json_or_null(value: Any) -> str | None:
    return None if value is None else json.dumps(value)


_UPDATABLE = {
    "display_name": "",
    "description": "::jsonb",
    "about": "::jsonb",
    "image": "",
    "watermark": "",
    "theme": "::jsonb",
    "encryption": "::jsonb",
    "retention": "::jsonb",
    "published": "",
    "public_link_hash": "",
    "answers_possible_at": "",
    "current_version": "",
    "updated_at": "",
    "deleted_at": "",
}


async def update_applet(conn: Conn, applet_id: uuid.UUID, **values: Any) -> None:
    """Set the named columns (JSON ones are encoded here)."""
    sets: list[str] = []
    args: list[Any] = [applet_id]
    for name, value in values.items():
        cast = _UPDATABLE[name]  # KeyError: not a column that changes
        args.append(json.dumps(value) if cast and value is not None else value)
        sets.append(f"{name} = ${len(args)}{cast}")
    await conn.execute(f"UPDATE applets SET {', '.join(sets)} WHERE id = $1", *args)  # noqa: S608


async def content_ids(conn: Conn, applet_id: uuid.UUID) -> set[uuid.UUID]:
    """Ids of the applet's current activities, items and flows."""
    rows = await conn.fetch(
        """
        SELECT id FROM activities WHERE applet_id = $1
        UNION ALL SELECT id FROM items WHERE applet_id = $1
        UNION ALL SELECT id FROM flows WHERE applet_id = $1
        """,
        applet_id,
    )
    return {r["id"] for r in rows}


async def foreign_ids(conn: Conn, ids: Sequence[uuid.UUID], applet_id: uuid.UUID) -> set[uuid.UUID]:
    """Those of ``ids`` that belong to another applet's parts (an editor may not take them)."""
    if not ids:
        return set()
    rows = await conn.fetch(
        """
        SELECT id FROM activities WHERE id = ANY($1::uuid[]) AND applet_id <> $2
        UNION ALL SELECT id FROM items WHERE id = ANY($1::uuid[]) AND applet_id <> $2
        UNION ALL SELECT id FROM flows WHERE id = ANY($1::uuid[]) AND applet_id <> $2
        """,
        list(ids),
        applet_id,
    )
    return {r["id"] for r in rows}


async def delete_content(
    conn: Conn, applet_id: uuid.UUID, *, keep: Sequence[uuid.UUID] = ()
) -> None:
    """The applet's activities, items and flows whose ids are not in ``keep`` (what a
    replacement leaves out); the kept ones are then updated in place by
    :func:`write_version`, and only those that changed are written."""
    await conn.execute(
        """
        WITH keep AS (SELECT unnest($2::uuid[]) AS id),
        gone_items AS (
            DELETE FROM items WHERE applet_id = $1 AND id NOT IN (SELECT id FROM keep)
        ), gone_flows AS (
            DELETE FROM flows WHERE applet_id = $1 AND id NOT IN (SELECT id FROM keep)
        )
        DELETE FROM activities WHERE applet_id = $1 AND id NOT IN (SELECT id FROM keep)
        """,
        applet_id,
        list(keep),
    )


_VERSION = """
INSERT INTO versions (applet_id, version, major, minor, patch, content, content_hash,
    created_by, created_at)
VALUES ($1, $3, $4, $5, $6, $2::jsonb, $7, $8, $9)
"""

# Rows are upserted by id, and only those that are new or changed are written at all (each
# compared with the row as it was before the statement): replacing a 600-item applet to
# rename it writes the applet, its version and no item, and locks none. Names are unique per
# applet and activity through deferred constraints, so two parts may swap names.
_ACTIVITY = (
    "position", "name", "description", "splash_screen", "image", "show_all_at_once",
    "is_skippable", "is_reviewable", "response_is_editable", "is_hidden", "scores_and_reports",
)  # fmt: skip
_ITEM = (
    "activity_id", "position", "name", "question", "response_type", "response_values",
    "config", "is_hidden", "allow_edit", "conditional_logic",
)  # fmt: skip
_FLOW = (
    "position", "name", "description", "is_single_report", "hide_badge", "is_hidden",
    "activity_ids",
)  # fmt: skip

_ACTIVITY_ROWS = """
    SELECT (a->>'id')::uuid AS id, $1::uuid AS applet_id, (a->>'order')::int AS position,
        a->>'name' AS name, a->'description' AS description,
        a->>'splash_screen' AS splash_screen, a->>'image' AS image,
        (a->>'show_all_at_once')::bool AS show_all_at_once,
        (a->>'is_skippable')::bool AS is_skippable,
        (a->>'is_reviewable')::bool AS is_reviewable,
        (a->>'response_is_editable')::bool AS response_is_editable,
        (a->>'is_hidden')::bool AS is_hidden, a->'scores_and_reports' AS scores_and_reports
    FROM doc, jsonb_array_elements(d->'activities') a
"""
_ITEM_ROWS = """
    SELECT (i->>'id')::uuid AS id, $1::uuid AS applet_id, (a->>'id')::uuid AS activity_id,
        (i->>'order')::int AS position, i->>'name' AS name, i->'question' AS question,
        i->>'response_type' AS response_type, i->'response_values' AS response_values,
        i->'config' AS config, (i->>'is_hidden')::bool AS is_hidden,
        (i->>'allow_edit')::bool AS allow_edit, i->'conditional_logic' AS conditional_logic
    FROM doc, jsonb_array_elements(d->'activities') a, jsonb_array_elements(a->'items') i
"""
_FLOW_ROWS = """
    SELECT (f->>'id')::uuid AS id, $1::uuid AS applet_id, (f->>'order')::int AS position,
        f->>'name' AS name, f->'description' AS description,
        (f->>'is_single_report')::bool AS is_single_report,
        (f->>'hide_badge')::bool AS hide_badge, (f->>'is_hidden')::bool AS is_hidden,
        ARRAY(SELECT jsonb_array_elements_text(f->'activity_ids')::uuid) AS activity_ids
    FROM doc, jsonb_array_elements(d->'flows') f
"""


def _changed_only(table: str, columns: tuple[str, ...], source: str) -> str:
    """Upsert into ``table`` the rows of ``source`` (a query giving ``id``, ``applet_id`` and
    ``columns``) that are new or differ from the row they replace."""
    new = ", ".join(f"n.{c}" for c in columns)
    old = ", ".join(f"c.{c}" for c in columns)
    return (  # our constants only
        f"INSERT INTO {table} (id, applet_id, {', '.join(columns)}) "  # noqa: S608
        f"SELECT n.id, n.applet_id, {new} FROM ({source}) n "
        f"LEFT JOIN {table} c ON c.id = n.id AND c.applet_id = $1 "
        f"WHERE c.id IS NULL OR ({old}) IS DISTINCT FROM ({new}) "
        f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in columns)}"
    )


_ROWS = f"""
WITH doc AS (SELECT $2::jsonb AS d),
version AS (
    INSERT INTO versions (applet_id, version, major, minor, patch, content, content_hash,
        created_by, created_at)
    SELECT $1, $3, $4, $5, $6, d, $7, $8, $9 FROM doc
),
acts AS ({_changed_only("activities", _ACTIVITY, _ACTIVITY_ROWS)}),
its AS ({_changed_only("items", _ITEM, _ITEM_ROWS)})
{_changed_only("flows", _FLOW, _FLOW_ROWS)}
"""  # noqa: S608 (our constants)


def content_hash(document: str) -> str:
    """What tells two canonical contents apart (``document`` is their JSON text)."""
    return hashlib.sha256(document.encode()).hexdigest()


async def write_version(
    conn: Conn,
    applet_id: uuid.UUID,
    *,
    document: str,
    version: tuple[int, int, int],
    created_by: uuid.UUID | None,
    now: datetime,
    rows: bool = True,
) -> None:
    """Keep ``document`` (canonical content, JSON text) as the immutable ``version``, and
    with ``rows`` insert its activity, item and flow rows too: one statement, the document
    sent once. (A change of the applet's own fields keeps the rows it has.)"""
    await conn.execute(
        _ROWS if rows else _VERSION,
        applet_id,
        document,
        ".".join(map(str, version)),
        *version,
        content_hash(document),
        created_by,
        now,
    )


async def latest_hash(conn: Conn, applet_id: uuid.UUID) -> str | None:
    return await conn.fetchval(
        "SELECT content_hash FROM versions WHERE applet_id = $1 "
        "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
        applet_id,
    )


async def next_version(conn: Conn, applet_id: uuid.UUID) -> tuple[int, int, int]:
    row = await conn.fetchrow(
        "SELECT major, minor, patch FROM versions WHERE applet_id = $1 "
        "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
        applet_id,
    )
    if row is None:
        return (1, 0, 0)
    return (row["major"], row["minor"], row["patch"] + 1)


async def version_content(conn: Conn, applet_id: uuid.UUID, version: str | None) -> Any:
    """``(version, created_at, created_by, content JSON text)``; the latest when ``version``
    is None; None when there is no such version."""
    if version is None:
        return await conn.fetchrow(
            "SELECT version, created_at, created_by, content::text AS content FROM versions "
            "WHERE applet_id = $1 ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
            applet_id,
        )
    return await conn.fetchrow(
        "SELECT version, created_at, created_by, content::text AS content FROM versions "
        "WHERE applet_id = $1 AND version = $2",
        applet_id,
        version,
    )


async def previous_version(conn: Conn, applet_id: uuid.UUID, version: str) -> Any:
    """The version before ``version`` (its content), or None for the first."""
    return await conn.fetchrow(
        """
        SELECT p.version, p.content::text AS content FROM versions v
        JOIN versions p ON p.applet_id = v.applet_id
            AND (p.major, p.minor, p.patch) < (v.major, v.minor, v.patch)
        WHERE v.applet_id = $1 AND v.version = $2
        ORDER BY p.major DESC, p.minor DESC, p.patch DESC LIMIT 1
        """,
        applet_id,
        version,
    )


async def versions_page(
    conn: Conn, applet_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[Any], int]:
    rows = await conn.fetch(
        "SELECT version, created_at, created_by, count(*) OVER () AS total FROM versions "
        "WHERE applet_id = $1 ORDER BY major DESC, minor DESC, patch DESC LIMIT $2 OFFSET $3",
        applet_id,
        limit,
        offset,
    )
    if rows:
        return list(rows), rows[0]["total"]
    total = await conn.fetchval("SELECT count(*) FROM versions WHERE applet_id = $1", applet_id)
    return [], total


_DOCUMENT = """
SELECT json_strip_nulls(json_build_object(
    'id', a.id, 'organisation_id', a.organisation_id, 'version', a.current_version,
    'published', a.published, 'public_link', a.public_link_hash IS NOT NULL,
    'created_at', a.created_at, 'updated_at', a.updated_at,
    'display_name', a.display_name, 'description', a.description, 'about', a.about,
    'image', a.image, 'watermark', a.watermark, 'theme', a.theme, 'encryption', a.encryption,
    'retention', a.retention,
    'activities', COALESCE((
        SELECT json_agg(json_build_object(
            'id', ac.id, 'order', ac.position, 'name', ac.name, 'description', ac.description,
            'splash_screen', ac.splash_screen, 'image', ac.image,
            'show_all_at_once', ac.show_all_at_once, 'is_skippable', ac.is_skippable,
            'is_reviewable', ac.is_reviewable, 'response_is_editable', ac.response_is_editable,
            'is_hidden', ac.is_hidden, 'scores_and_reports', ac.scores_and_reports,
            'items', COALESCE((
                SELECT json_agg(json_build_object(
                    'id', i.id, 'order', i.position, 'name', i.name, 'question', i.question,
                    'response_type', i.response_type, 'response_values', i.response_values,
                    'config', i.config, 'is_hidden', i.is_hidden, 'allow_edit', i.allow_edit,
                    'conditional_logic', i.conditional_logic
                ) ORDER BY i.position)
                FROM items i WHERE i.activity_id = ac.id {item_filter}), '[]'::json)
        ) ORDER BY ac.position)
        FROM activities ac WHERE ac.applet_id = a.id {activity_filter}), '[]'::json),
    'flows', COALESCE((
        SELECT json_agg(json_build_object(
            'id', f.id, 'order', f.position, 'name', f.name, 'description', f.description,
            'is_single_report', f.is_single_report, 'hide_badge', f.hide_badge,
            'is_hidden', f.is_hidden, 'activity_ids', f.activity_ids,
            'activities', (SELECT json_agg(ac.name ORDER BY x.n) FROM
                unnest(f.activity_ids) WITH ORDINALITY x(id, n)
                JOIN activities ac ON ac.id = x.id)
        ) ORDER BY f.position)
        FROM flows f WHERE f.applet_id = a.id {flow_filter}), '[]'::json)
))::text
FROM applets a WHERE a.id = $1 AND a.deleted_at IS NULL
"""
_FULL = _DOCUMENT.format(item_filter="", activity_filter="", flow_filter="")
_RESPONDENT = _DOCUMENT.format(
    item_filter="AND NOT i.is_hidden",
    activity_filter="AND NOT ac.is_hidden",
    flow_filter="AND NOT f.is_hidden",
)


async def applet_document(
    conn: Conn, applet_id: uuid.UUID, *, respondent: bool = False
) -> str | None:
    """The live applet as ``GET /applets/{id}`` answers it (JSON text), built by PostgreSQL
    from the rows, without null fields as the canonical form; ``respondent``: without what is
    hidden from respondents."""
    return await conn.fetchval(_RESPONDENT if respondent else _FULL, applet_id)


async def list_applets(
    conn: Conn,
    *,
    user_id: uuid.UUID,
    admin_of: Iterable[uuid.UUID],
    name: str | None,
    organisation_id: uuid.UUID | None,
    role: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    """The live applets the user holds a role on or administers through an organisation,
    filtered, with the user's roles on each; newest change first."""
    rows = await conn.fetch(
        """
        WITH mine AS (
            SELECT a.id, a.organisation_id, a.display_name, a.published, a.current_version,
                a.created_at, a.updated_at,
                COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM roles r
                          WHERE r.applet_id = a.id AND r.user_id = $1), '{}') AS roles,
                a.organisation_id = ANY($2::uuid[]) AS org_admin
            FROM applets a
            WHERE a.deleted_at IS NULL
              AND (a.organisation_id = ANY($2::uuid[])
                   OR EXISTS (SELECT 1 FROM roles r WHERE r.applet_id = a.id AND r.user_id = $1))
              AND ($3::text IS NULL OR a.display_name ILIKE '%' || $3 || '%' ESCAPE '\\')
              AND ($4::uuid IS NULL OR a.organisation_id = $4)
        )
        SELECT *, count(*) OVER () AS total FROM mine
        WHERE $5::text IS NULL OR $5 = ANY(roles) OR ($5 = 'manager' AND org_admin)
        ORDER BY updated_at DESC, id
        LIMIT $6 OFFSET $7
        """,
        user_id,
        list(admin_of),
        None if name is None else _like_escaped(name),
        organisation_id,
        role,
        limit,
        offset,
    )
    total = rows[0]["total"] if rows else 0
    if not rows and offset:
        return [], await _count_beyond(conn, user_id, admin_of, name, organisation_id, role)
    return list(rows), total


async def _count_beyond(
    conn: Conn,
    user_id: uuid.UUID,
    admin_of: Iterable[uuid.UUID],
    name: str | None,
    organisation_id: uuid.UUID | None,
    role: str | None,
) -> int:
    """The total when the page asked for lies past the end."""
    _rows, total = await list_applets(
        conn, user_id=user_id, admin_of=admin_of, name=name,
        organisation_id=organisation_id, role=role, limit=1, offset=0,
    )  # fmt: skip
    return total


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
