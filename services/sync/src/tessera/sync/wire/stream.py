"""Reading a large MISP event as a stream: its head (every field but the attribute and object
lists), then its attributes and objects a batch at a time. A 150,000-attribute event (tens of
megabytes of JSON) then costs the memory of one batch, not of the document.

The source is a file object (the download spooled to disk); each pass reads it from the
start. ijson's C backend (yajl) does the parsing.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import IO, Any

import ijson

__all__ = ["LISTS", "batches", "read_head"]

LISTS = ("Attribute", "Object")
"""the lists of an event read batch by batch; everything else is its head"""


def _root(source: IO[bytes]) -> str:
    """``"Event"`` when the document is ``{"Event": {...}}``, else ``""`` (the flat form)."""
    source.seek(0)
    for prefix, event, value in ijson.parse(source):
        if prefix == "" and event == "map_key":
            source.seek(0)
            return "Event" if value == "Event" else ""
    source.seek(0)
    return ""


def read_head(source: IO[bytes]) -> dict[str, Any]:
    """The event without its ``Attribute`` and ``Object`` lists (which come empty)."""
    root = _root(source)
    base = f"{root}." if root else ""
    skipped = tuple(f"{base}{name}" for name in LISTS)
    builder = ijson.ObjectBuilder()
    for prefix, event, value in ijson.parse(source, use_float=True):
        if root and prefix == "":
            continue  # the {"Event": ...} wrapper
        if prefix == root and event == "map_key" and value in LISTS:
            continue  # the key of a list read batch by batch...
        if prefix in skipped or prefix.startswith(tuple(f"{s}." for s in skipped)):
            continue  # ...and its value
        builder.event(event, value)
    head = builder.value if isinstance(builder.value, dict) else {}
    for name in LISTS:
        head[name] = []
    source.seek(0)
    return head


def batches(source: IO[bytes], name: str, size: int) -> Iterator[list[dict[str, Any]]]:
    """The event's ``Attribute`` (or ``Object``) list, ``size`` items at a time."""
    root = _root(source)
    items = ijson.items(source, f"{root}.{name}.item" if root else f"{name}.item", use_float=True)
    while batch := list(islice(items, size)):
        yield batch
