"""Step 2 of an import: the parts read from ReproSchema, patched by their ``tessera:`` terms,
validated one by one, then checked together (``logic.check_applet``). A part that does not
validate with its patch is read without it; one that does not validate at all is skipped; a
condition, a report or a flow that does not fit the rest is dropped; each is noted."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tessera.applets.document import ActivityIn, AppletContent
from tessera.applets.logic import InconsistentApplet, check_applet
from tessera.applets.reproschema.bundle import BundleError
from tessera.applets.reproschema.jsonld import Note
from tessera.applets.reproschema.patch import merge, merge_reports
from tessera.applets.reproschema.records import (
    ITEM,
    ActivityRecord,
    AppletRecord,
    ItemRecord,
    strip_ids,
)

__all__ = ["assemble"]


def _first(error: ValidationError | None) -> str:
    if error is None:
        return "it does not validate"
    detail = error.errors()[0]
    where = ".".join(str(p) for p in detail["loc"])
    return f"{where}: {detail['msg']}" if where else str(detail["msg"])


def _item(record: ItemRecord, note: Note) -> dict[str, Any] | None:
    tries = [(merge(record.base, record.patch), True)] if record.patch is not None else []
    tries.append((record.base, False))
    error: ValidationError | None = None
    for data, patched in tries:
        try:
            model = ITEM.validate_python(data)
        except ValidationError as exc:
            error = error or exc
            continue
        if not patched and record.patch is not None:
            note(
                record.where,
                "tessera:item",
                "",
                f"does not fit the item: ignored ({_first(error)})",
            )
        dumped: dict[str, Any] = ITEM.dump_python(model, mode="json")
        return dumped
    note(record.where, "ui.inputType", record.input_type, f"the item is skipped: {_first(error)}")
    return None


def _patched_activity(
    record: ActivityRecord, patch: Any, items: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    data = dict(record.base)
    missing: list[str] = []
    if isinstance(patch, dict):
        rest = dict(patch)
        if "scores_and_reports" in rest:
            reports, missing = merge_reports(
                data.get("scores_and_reports"), rest.pop("scores_and_reports")
            )
            data["scores_and_reports"] = reports
        data = merge(data, rest)
    elif patch is not None:
        raise ValueError("a tessera:activity patch is an object")
    data["items"] = items
    dumped = ActivityIn.model_validate(data).model_dump(mode="json")
    return dumped, missing


def _activity(
    record: ActivityRecord, items: list[dict[str, Any]], note: Note
) -> dict[str, Any] | None:
    error: Exception | None = None
    for patch in ([record.patch] if record.patch is not None else []) + [None]:
        try:
            activity, missing = _patched_activity(record, patch, items)
        except (ValidationError, ValueError) as exc:
            error = error or exc
            continue
        if patch is None and record.patch is not None:
            note(
                record.where,
                "tessera:activity",
                "",
                f"does not fit the activity: ignored "
                f"({_first(error) if isinstance(error, ValidationError) else error})",
            )
        for name in missing:
            note(record.where, "tessera:activity", name, "names a compute that is not there")
        return activity
    reason = _first(error) if isinstance(error, ValidationError) else str(error)
    note(record.where, "", "", f"the activity is skipped: {reason}")
    return None


def assemble(record: AppletRecord, note: Note) -> dict[str, Any]:
    """The applet document of ``record``: it validates and passes ``check_applet``."""
    activities: list[dict[str, Any]] = []
    wheres: list[tuple[str, list[ItemRecord]]] = []
    for part in record.activities:
        items, item_wheres = [], []
        for item_record in part.items:
            item = _item(item_record, note)
            if item is not None:
                items.append(item)
                item_wheres.append(item_record)
        if not items:
            note(part.where, "ui.order", "", "no item could be imported: the activity is skipped")
            continue
        activity = _activity(part, items, note)
        if activity is not None:
            activities.append(activity)
            wheres.append((part.where, item_wheres))
    if not activities:
        raise BundleError("nothing to import: no activity with an item that could be read")
    model = None
    for patch in ([record.patch] if record.patch is not None else []) + [None]:
        applet = merge(record.base, patch) if patch is not None else record.base
        try:
            model = AppletContent.model_validate({**applet, "activities": activities})
        except (ValidationError, TypeError) as exc:
            if patch is None:
                reason = _first(exc) if isinstance(exc, ValidationError) else str(exc)
                raise BundleError(f"the bundle does not read as an applet: {reason}") from exc
            note(record.where, "tessera:applet", "", "does not fit the applet: ignored")
            continue
        break
    assert model is not None
    document = model.model_dump(mode="json", exclude={"organisation_id"})
    for _ in range(50):
        try:
            check_applet(AppletContent.model_validate(document))
        except InconsistentApplet as exc:
            _drop(document, exc.errors, wheres, record.where, note)
            continue
        return strip_ids(document)
    raise BundleError("the bundle does not read as a consistent applet")


def _drop(
    document: dict[str, Any],
    errors: list[dict[str, Any]],
    wheres: list[tuple[str, list[ItemRecord]]],
    applet_where: str,
    note: Note,
) -> None:
    """Drop what each error names (a condition, a report, a flow); other errors cannot be
    mended and raise."""
    reports: set[tuple[int, int]] = set()
    flows: set[int] = set()
    for error in errors:
        parts = error["field"].split(".")
        if (
            parts[0] == "activities"
            and len(parts) > 4
            and parts[2] == "items"
            and parts[4] == "conditional_logic"
        ):
            a, i = int(parts[1]), int(parts[3])
            item = document["activities"][a]["items"][i]
            if item["conditional_logic"] is not None:
                item["conditional_logic"] = None
                source = wheres[a][1][i]
                note(
                    source.where,
                    "isVis" if source.visibility else "tessera:item",
                    source.visibility or "conditional_logic",
                    f"{error['message']}: the item is always shown",
                )
        elif parts[0] == "activities" and parts[2:4] == ["scores_and_reports", "reports"]:
            reports.add((int(parts[1]), int(parts[4])))
        elif parts[0] == "flows" and len(parts) > 1:
            flows.add(int(parts[1]))
        else:
            raise BundleError(
                f"the bundle does not read as a consistent applet: "
                f"{error['field']}: {error['message']}",
                field=error["field"],
            )
    for a, r in sorted(reports, reverse=True):
        removed = document["activities"][a]["scores_and_reports"]["reports"].pop(r)
        note(
            wheres[a][0],
            "compute",
            removed.get("name", ""),
            "the report does not fit the imported items: dropped",
        )
    for f in sorted(flows, reverse=True):
        removed = document["flows"].pop(f)
        note(
            applet_where,
            "tessera:applet",
            removed.get("name", ""),
            "the flow names activities that were not imported: dropped",
        )
