"""One row's columns set by name, for the tables edited a few fields at a time (servers,
feeds): the names checked against the table's editable ones, JSON columns cast."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

__all__ = ["update_columns"]

Conn = Any


async def update_columns(
    conn: Conn,
    table: str,
    row_id: int,
    columns: dict[str, Any],
    *,
    editable: Collection[str],
    json_columns: Collection[str] = (),
) -> None:
    """``UPDATE table SET ... WHERE id = row_id`` of ``columns`` (nothing when empty);
    ValueError for a name not in ``editable`` (names are never the caller's input)."""
    unknown = set(columns) - set(editable)
    if unknown:
        raise ValueError(f"not an editable column of {table}: {sorted(unknown)}")
    if not columns:
        return
    names = sorted(columns)
    values = [json.dumps(columns[n]) if n in json_columns else columns[n] for n in names]
    sets = ", ".join(
        f"{n} = ${i}::jsonb" if n in json_columns else f"{n} = ${i}"
        for i, n in enumerate(names, start=2)
    )
    await conn.execute(f"UPDATE {table} SET {sets} WHERE id = $1", row_id, *values)  # noqa: S608
