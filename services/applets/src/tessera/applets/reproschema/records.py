"""What an import reads, part by part (``Reader.infer``), before it is put together
(``assembly.py``); the values it answers with (:class:`Imported`, :class:`Unsupported`); and
the forms the import and the export compare parts in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from tessera.applets.document import ActivityIn, AppletContent
from tessera.applets.responses import Item

__all__ = [
    "ITEM",
    "ActivityRecord",
    "AppletRecord",
    "Imported",
    "ItemRecord",
    "Unsupported",
    "normal_activity",
    "normal_applet",
    "normal_item",
    "one_item",
    "strip_ids",
]

ITEM: TypeAdapter[Any] = TypeAdapter(Item)
_PLACEHOLDER_ITEM = {"name": "x", "response_type": "text"}


@dataclass(frozen=True)
class Unsupported:
    """Something the bundle says that the applet cannot: ``where`` is the document (its
    path in the bundle), ``field`` the term in it (``ui.inputType``), ``value`` what it
    held, ``reason`` what the import did instead."""

    where: str
    field: str
    value: str
    reason: str


@dataclass(frozen=True)
class Imported:
    """The applet document (it validates as ``AppletContent`` and passes ``check_applet``;
    no ids: an import gets fresh ones) and everything that could not be imported."""

    document: dict[str, Any]
    unsupported: list[Unsupported]


@dataclass
class ItemRecord:
    """An item as ReproSchema says it (``base``) and its ``tessera:item`` patch; ``key`` is
    its place in the activity's ``ui.order`` (or ``preamble``)."""

    key: str
    where: str
    input_type: str
    base: dict[str, Any]
    patch: Any = None
    visibility: str | None = None


@dataclass
class ActivityRecord:
    """An activity's own fields as ReproSchema says them, its patch, its items."""

    key: int
    where: str
    base: dict[str, Any]
    patch: Any = None
    items: list[ItemRecord] = field(default_factory=list)


@dataclass
class AppletRecord:
    """The applet's own fields as ReproSchema says them, its patch, its activities."""

    where: str
    base: dict[str, Any]
    patch: Any = None
    activities: list[ActivityRecord] = field(default_factory=list)


def strip_ids(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` without the ids an import assigns afresh (activities, items, options,
    rows, flows); score and condition ids stay, they are names."""
    for activity in document.get("activities", []):
        activity.pop("id", None)
        for item in activity.get("items", []):
            item.pop("id", None)
            values = item.get("response_values")
            for key in ("options", "rows"):
                for part in (values or {}).get(key) or []:
                    part.pop("id", None)
    for flow in document.get("flows", []):
        flow.pop("id", None)
        flow.pop("activity_ids", None)
    return document


def normal_item(item: dict[str, Any]) -> dict[str, Any]:
    """``item`` with every field written out (as stored), or as it is when it does not
    validate on its own."""
    try:
        model = ITEM.validate_python(item)
    except ValidationError:
        return item
    return one_item(ITEM.dump_python(model, mode="json"))


def one_item(item: dict[str, Any]) -> dict[str, Any]:
    """A dumped item without its ids."""
    stripped: dict[str, Any] = strip_ids({"activities": [{"items": [item]}]})
    one: dict[str, Any] = stripped["activities"][0]["items"][0]
    return one


def normal_activity(activity: dict[str, Any]) -> dict[str, Any]:
    try:
        model = ActivityIn.model_validate({**activity, "items": [_PLACEHOLDER_ITEM]})
    except ValidationError:
        return activity
    return model.model_dump(mode="json", exclude={"id", "items"})


def normal_applet(applet: dict[str, Any]) -> dict[str, Any]:
    try:
        model = AppletContent.model_validate(
            {**applet, "activities": [{"name": "x", "items": [_PLACEHOLDER_ITEM]}]}
        )
    except ValidationError:
        return applet
    return strip_ids(model.model_dump(mode="json", exclude={"organisation_id", "activities"}))
