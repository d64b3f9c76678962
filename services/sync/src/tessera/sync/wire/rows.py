"""Reading our rows, whatever the caller holds: a mapping, a SQLModel instance, a SQLAlchemy
``Row``. Column names are those of :mod:`tessera.sync.models`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["Row", "TagLink", "fields", "tag_links"]

Row = Mapping[str, Any] | Any
"""A row of :mod:`tessera.sync.models`: a mapping of its columns, or the model instance."""

TagLink = tuple[Row, Row]
"""A tag and how it is attached: ``(Tag, EventTag)`` or ``(Tag, AttributeTag)``."""


def fields(row: Row) -> Mapping[str, Any]:
    if isinstance(row, Mapping):
        return row
    mapping = getattr(row, "_mapping", None)  # sqlalchemy.engine.Row
    if isinstance(mapping, Mapping):
        return mapping
    dump = getattr(row, "model_dump", None)  # SQLModel, pydantic
    if callable(dump):
        result: Mapping[str, Any] = dump()
        return result
    return vars(row)


def tag_links(links: Iterable[TagLink]) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    return [(fields(tag), fields(link)) for tag, link in links]
