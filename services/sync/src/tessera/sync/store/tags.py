"""Tags: found or created by name (whatever its case, as ``Tag::captureTag``), attached to
events and attributes, read back as ``(tag, link)`` rows. asyncpg; nothing here commits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from tessera.sync.wire import TagIn

__all__ = ["TAG_COLUMNS", "attach_attribute_tags", "attach_tags", "attribute_tags_of",
           "split_tag", "tag_ids"]  # fmt: skip

Conn = Any


async def tag_ids(
    conn: Conn, tags: Iterable[TagIn], *, create: bool = True, org_id: int | None = None
) -> dict[str, int]:
    """Tag ids by name (matched whatever its case, as ``Tag::captureTag``), creating the tags
    not known yet when ``create``. With ``org_id``, a tag restricted to another organisation
    is left out (a site admin passes None)."""
    wanted = {t.name: t for t in tags}
    if not wanted:
        return {}
    if create:
        rows = [t.columns() for t in wanted.values()]
        await conn.execute(
            """
            INSERT INTO tags (name, colour, exportable, hide_tag, local_only, numerical_value,
                is_galaxy)
            SELECT n, c, e, h, l, v, g FROM unnest($1::text[], $2::text[], $3::boolean[],
                $4::boolean[], $5::boolean[], $6::int[], $7::boolean[]) AS x(n, c, e, h, l, v, g)
            WHERE NOT EXISTS (SELECT 1 FROM tags WHERE lower(tags.name) = lower(x.n))
            ON CONFLICT (name) DO NOTHING
            """,
            [r["name"] for r in rows], [r["colour"] or "#ffffff" for r in rows],
            [r["exportable"] for r in rows], [r["hide_tag"] for r in rows],
            [r["local_only"] for r in rows], [r["numerical_value"] for r in rows],
            [r["is_galaxy"] for r in rows],
        )  # fmt: skip
    found = await conn.fetch(
        "SELECT DISTINCT ON (lower(name)) lower(name) AS key, id FROM tags "
        "WHERE lower(name) = ANY($1::text[]) AND ($2::bigint IS NULL OR org_id IS NULL "
        "OR org_id = $2) ORDER BY lower(name), id",
        [name.lower() for name in wanted],
        org_id,
    )
    by_key = {r["key"]: int(r["id"]) for r in found}
    return {name: by_key[name.lower()] for name in wanted if name.lower() in by_key}


async def attach_tags(
    conn: Conn,
    event_id: int,
    tags: Sequence[TagIn],
    *,
    attribute_id: int | None = None,
    create: bool = True,
    org_id: int | None = None,
) -> int:
    """Tag the event (or one of its attributes); a tag attached already stays as it is. How
    many links were made. ``create`` and ``org_id`` as for :func:`tag_ids`."""
    ids = await tag_ids(conn, tags, create=create, org_id=org_id)
    if not ids:
        return 0
    links = [(ids[t.name], t.local, t.relationship_type) for t in tags if t.name in ids]
    if attribute_id is None:
        made = await conn.fetch(
            """
            INSERT INTO event_tags (event_id, tag_id, local, relationship_type)
            SELECT $1, * FROM unnest($2::bigint[], $3::boolean[], $4::text[])
            ON CONFLICT (event_id, tag_id) DO NOTHING RETURNING id
            """,
            event_id, [t for t, _, _ in links], [local for _, local, _ in links],
            [r or "" for _, _, r in links],
        )  # fmt: skip
        return len(made)
    made = await conn.fetch(
        """
        INSERT INTO attribute_tags (attribute_id, event_id, tag_id, local, relationship_type)
        SELECT $1, $2, * FROM unnest($3::bigint[], $4::boolean[], $5::text[])
        ON CONFLICT (attribute_id, tag_id) DO NOTHING RETURNING id
        """,
        attribute_id, event_id, [t for t, _, _ in links], [local for _, local, _ in links],
        [r or "" for _, _, r in links],
    )  # fmt: skip
    return len(made)


async def attach_attribute_tags(
    conn: Conn,
    event_id: int,
    links: Sequence[tuple[int, TagIn]],
    *,
    create: bool = True,
    org_id: int | None = None,
) -> int:
    """Tag many attributes of the event at once, ``(attribute id, tag)`` pairs; links that
    exist already stay as they are. How many were made. ``create`` and ``org_id`` as for
    :func:`tag_ids`."""
    if not links:
        return 0
    ids = await tag_ids(conn, (tag for _, tag in links), create=create, org_id=org_id)
    rows = [(a, ids[t.name], t.local, t.relationship_type or "") for a, t in links
            if t.name in ids]  # fmt: skip
    if not rows:
        return 0
    made = await conn.fetch(
        """
        INSERT INTO attribute_tags (event_id, attribute_id, tag_id, local, relationship_type)
        SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::boolean[], $5::text[])
        ON CONFLICT (attribute_id, tag_id) DO NOTHING RETURNING id
        """,
        event_id, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
        [r[3] for r in rows],
    )  # fmt: skip
    return len(made)


TAG_COLUMNS = (
    "t.id AS t_id, t.name AS t_name, t.colour AS t_colour, t.exportable AS t_exportable, "
    "t.hide_tag AS t_hide_tag, t.local_only AS t_local_only, "
    "t.numerical_value AS t_numerical_value, t.is_galaxy AS t_is_galaxy, t.org_id AS t_org_id"
)


def split_tag(row: Any, link: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    data = dict(row)
    tag = {k.removeprefix("t_"): v for k, v in data.items() if k.startswith("t_")}
    link_row = {k: data[k] for k in link}
    return tag, link_row


async def attribute_tags_of(conn: Conn, attribute_ids: Sequence[int]) -> dict[int, list[Any]]:
    """The tags of each attribute, as ``(tag, link)`` pairs of rows, in attaching order."""
    rows = await conn.fetch(
        "SELECT at.id, at.attribute_id, at.event_id, at.tag_id, at.local, "  # noqa: S608
        f"at.relationship_type, {TAG_COLUMNS} FROM attribute_tags at "
        "JOIN tags t ON t.id = at.tag_id WHERE at.attribute_id = ANY($1::bigint[]) ORDER BY at.id",
        list(attribute_ids),
    )
    link = ("id", "attribute_id", "event_id", "tag_id", "local", "relationship_type")
    found: dict[int, list[Any]] = {}
    for row in rows:
        found.setdefault(int(row["attribute_id"]), []).append(split_tag(row, link))
    return found
