"""The rules of an applet document that span several parts, checked after its shape.

Names are unique where something refers to them (activities in the applet, items in their
activity, flows); flows name existing activities; conditional logic refers only to earlier
items of the same activity, with an operator that fits the referred item's type and operands
that exist (an option's value, a row, a value in range); scores use only scored items and
reports print only existing ones. Every broken rule is reported at once, each naming the
activity, the item and the field (:class:`InconsistentApplet`, a 422).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from tessera.applets.document import (
    ActivityIn,
    AppletContent,
    ScoreReport,
    ScoresAndReports,
    SectionReport,
)
from tessera.applets.responses import (
    Condition,
    NumberSelectValues,
    Operator,
    ResponseType,
    SelectRowsValues,
    SelectValues,
    SliderRowsValues,
    SliderValues,
    item_is_scored,
)
from tessera.common.problems import Problem

__all__ = ["InconsistentApplet", "check_applet", "operators_for"]

_O = Operator
_OPTION = {"option_value"}
_ROW_OPTION = {"row", "option_value"}
_VALUE = {"value"}
_RANGE = {"min_value", "max_value"}
_ROW_VALUE = {"row", "value"}
_ROW_RANGE = {"row", "min_value", "max_value"}
_DATE = {"date"}
_DATES = {"min_date", "max_date"}
_TIME = {"time"}
_TIMES = {"min_time", "max_time"}
_FIELD_TIME = {"field", "time"}
_FIELD_TIMES = {"field", "min_time", "max_time"}

_NUMERIC: dict[Operator, set[str]] = {
    _O.greater_than: _VALUE,
    _O.less_than: _VALUE,
    _O.equal: _VALUE,
    _O.not_equal: _VALUE,
    _O.between: _RANGE,
    _O.outside_of: _RANGE,
}

# operator -> the payload keys it takes, by the response type of the item it refers to
_OPERATORS: dict[ResponseType, dict[Operator, set[str]]] = {
    ResponseType.single_select: {_O.equal_to_option: _OPTION, _O.not_equal_to_option: _OPTION},
    ResponseType.multi_select: {_O.includes_option: _OPTION, _O.not_includes_option: _OPTION},
    ResponseType.slider: _NUMERIC,
    ResponseType.number_select: _NUMERIC,
    ResponseType.slider_rows: {
        _O.greater_than_slider_rows: _ROW_VALUE,
        _O.less_than_slider_rows: _ROW_VALUE,
        _O.equal_to_slider_rows: _ROW_VALUE,
        _O.not_equal_to_slider_rows: _ROW_VALUE,
        _O.between_slider_rows: _ROW_RANGE,
        _O.outside_of_slider_rows: _ROW_RANGE,
    },
    ResponseType.single_select_rows: {
        _O.equal_to_row_option: _ROW_OPTION,
        _O.not_equal_to_row_option: _ROW_OPTION,
    },
    ResponseType.multi_select_rows: {
        _O.includes_row_option: _ROW_OPTION,
        _O.not_includes_row_option: _ROW_OPTION,
    },
    ResponseType.date: {
        _O.greater_than_date: _DATE,
        _O.less_than_date: _DATE,
        _O.equal_to_date: _DATE,
        _O.not_equal_to_date: _DATE,
        _O.between_dates: _DATES,
        _O.outside_of_dates: _DATES,
    },
    ResponseType.time: {
        _O.greater_than_time: _TIME,
        _O.less_than_time: _TIME,
        _O.equal_to_time: _TIME,
        _O.not_equal_to_time: _TIME,
        _O.between_times: _TIMES,
        _O.outside_of_times: _TIMES,
    },
    ResponseType.time_range: {
        _O.greater_than_time_range: _FIELD_TIME,
        _O.less_than_time_range: _FIELD_TIME,
        _O.equal_to_time_range: _FIELD_TIME,
        _O.not_equal_to_time_range: _FIELD_TIME,
        _O.between_times_range: _FIELD_TIMES,
        _O.outside_of_times_range: _FIELD_TIMES,
    },
}

_TIME_TEXT = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def operators_for(response_type: str) -> list[str]:
    """The operators a condition on an item of this type may use (none: it cannot be one)."""
    return sorted(_OPERATORS.get(ResponseType(response_type), {}))


class InconsistentApplet(Problem):
    status = 422
    code = "validation_failed"
    title = "The applet is not consistent"


@dataclass
class _Errors:
    found: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        path: tuple[str | int, ...],
        message: str,
        *,
        kind: str = "bad_reference",
        activity: str | None = None,
        item: str | None = None,
    ) -> None:
        entry: dict[str, Any] = {
            "field": ".".join(str(p) for p in path),
            "in": "body",
            "message": message,
            "type": kind,
        }
        if activity is not None:
            entry["activity"] = activity
        if item is not None:
            entry["item"] = item
        self.found.append(entry)


def check_applet(content: AppletContent) -> None:
    """Raise :class:`InconsistentApplet` listing every broken cross-reference rule."""
    errors = _Errors()
    _unique_names(
        errors, [(("activities", i, "name"), a.name) for i, a in enumerate(content.activities)]
    )
    _unique_names(errors, [(("flows", i, "name"), f.name) for i, f in enumerate(content.flows)])
    _unique_ids(errors, content)
    for index, activity in enumerate(content.activities):
        _check_activity(errors, index, activity)
    names = {a.name.casefold() for a in content.activities}
    for index, flow in enumerate(content.flows):
        seen: set[str] = set()
        for position, name in enumerate(flow.activities):
            path = ("flows", index, "activities", position)
            if name.casefold() not in names:
                errors.add(path, f"flow {flow.name!r} names no activity {name!r}")
            elif name.casefold() in seen:
                errors.add(path, f"flow {flow.name!r} names activity {name!r} twice")
            seen.add(name.casefold())
    if errors.found:
        fields = ", ".join(e["field"] for e in errors.found[:10])
        raise InconsistentApplet(f"invalid: {fields}", errors=errors.found)


def _unique_names(errors: _Errors, named: list[tuple[tuple[str | int, ...], str]]) -> None:
    seen: set[str] = set()
    for path, name in named:
        key = name.strip().casefold()
        if key in seen:
            errors.add(path, f"the name {name!r} is used twice", kind="duplicate_name")
        seen.add(key)


def _unique_ids(errors: _Errors, content: AppletContent) -> None:
    seen: set[Any] = set()

    def parts() -> Iterator[tuple[tuple[str | int, ...], Any, str | None, str | None]]:
        for a, activity in enumerate(content.activities):
            yield ("activities", a, "id"), activity.id, activity.name, None
            for i, item in enumerate(activity.items):
                yield ("activities", a, "items", i, "id"), item.id, activity.name, item.name
        for f, flow in enumerate(content.flows):
            yield ("flows", f, "id"), flow.id, None, None

    for path, id_, activity, item in parts():
        if id_ is None:
            continue
        if id_ in seen:
            errors.add(path, f"the id {id_} is used twice", kind="duplicate_id",
                       activity=activity, item=item)  # fmt: skip
        seen.add(id_)


def _check_activity(errors: _Errors, index: int, activity: ActivityIn) -> None:
    base: tuple[str | int, ...] = ("activities", index)
    items = activity.items
    position = {}
    for i, item in enumerate(items):
        key = item.name.casefold()
        if key in position:
            errors.add((*base, "items", i, "name"), f"the item name {item.name!r} is used twice",
                       kind="duplicate_name", activity=activity.name, item=item.name)  # fmt: skip
        else:
            position[key] = i
    for i, item in enumerate(items):
        logic = item.conditional_logic
        if logic is None:
            continue
        for c, condition in enumerate(logic.conditions):
            path = (*base, "items", i, "conditional_logic", "conditions", c)
            referred = position.get(condition.item.casefold())
            if referred is None:
                errors.add((*path, "item"), f"no item {condition.item!r} in this activity",
                           activity=activity.name, item=item.name)  # fmt: skip
                continue
            if referred >= i:
                errors.add((*path, "item"),
                           f"item {condition.item!r} is not before {item.name!r}: conditions "
                           "refer only to earlier items",
                           activity=activity.name, item=item.name)  # fmt: skip
                continue
            for where, message in _condition_problems(condition, items[referred]):
                errors.add((*path, *where), message, activity=activity.name, item=item.name)
    if activity.scores_and_reports is not None:
        _check_reports(errors, base, activity, activity.scores_and_reports, position)


def _condition_problems(condition: Condition, referred: Any) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with ``condition`` on the item ``referred`` (nothing: an empty list)."""
    kind = ResponseType(referred.response_type)
    allowed = _OPERATORS.get(kind)
    if not allowed:
        return [(("item",), f"a {kind.value} item ({referred.name!r}) cannot be tested")]
    keys = allowed.get(condition.type)
    if keys is None:
        fits = ", ".join(sorted(allowed))
        return [(("type",), f"{condition.type.value} does not fit a {kind.value} item; "
                 f"use one of {fits}")]  # fmt: skip
    return _payload_problems(condition.payload, keys, referred.response_values)


def _payload_problems(
    payload: dict[str, Any], keys: set[str], values: Any
) -> list[tuple[tuple[str, ...], str]]:
    found: list[tuple[tuple[str, ...], str]] = []
    got = set(payload)
    if got != keys:
        missing, extra = sorted(keys - got), sorted(got - keys)
        text = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(extra)}" if extra else "",
            )
            if part
        )
        return [(("payload",), f"payload takes {', '.join(sorted(keys))}: {text}")]
    row_values = values
    if "row" in keys:
        row = payload["row"]
        rows = getattr(values, "rows", [])
        if not _is_int(row) or not 0 <= row < len(rows):
            return [(("payload", "row"), f"row {row!r} is not a row index (0..{len(rows) - 1})")]
        if isinstance(values, SliderRowsValues):
            row_values = values.rows[row]
    if "option_value" in keys:
        options = values.options if isinstance(values, SelectValues | SelectRowsValues) else []
        known = {o.value for o in options}
        if payload["option_value"] not in known or not _is_int(payload["option_value"]):
            found.append((("payload", "option_value"),
                          f"{payload['option_value']!r} is not one of the options' values "
                          f"{sorted(known)}"))  # fmt: skip
    if "value" in keys or "min_value" in keys:
        found += _number_problems(payload, row_values)
    if "date" in keys or "min_date" in keys:
        found += _ordered(
            payload, ("date", "min_date", "max_date"), _as_date, "a date (YYYY-MM-DD)"
        )
    if "time" in keys or "min_time" in keys:
        found += _ordered(payload, ("time", "min_time", "max_time"), _as_time, "a time (HH:MM)")
    if "field" in keys and payload["field"] not in ("start_time", "end_time"):
        found.append((("payload", "field"), "field is start_time or end_time"))
    return found


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_problems(payload: dict[str, Any], values: Any) -> list[tuple[tuple[str, ...], str]]:
    found: list[tuple[tuple[str, ...], str]] = []
    bounds = (
        (values.min_value, values.max_value)
        if isinstance(values, SliderValues | NumberSelectValues)
        else None
    )
    for key in ("value", "min_value", "max_value"):
        if key not in payload:
            continue
        number = payload[key]
        if not isinstance(number, int | float) or isinstance(number, bool):
            found.append((("payload", key), f"{key} must be a number"))
        elif bounds is not None and not bounds[0] <= number <= bounds[1]:
            found.append((("payload", key), f"{number} is outside {bounds[0]}..{bounds[1]}"))
    if not found and "min_value" in payload and payload["min_value"] >= payload["max_value"]:
        found.append((("payload", "min_value"), "min_value must be less than max_value"))
    return found


def _as_date(text: Any) -> Any:
    return date.fromisoformat(text) if isinstance(text, str) else None


def _as_time(text: Any) -> Any:
    return text if isinstance(text, str) and _TIME_TEXT.match(text) else None


def _ordered(
    payload: dict[str, Any], keys: tuple[str, str, str], parse: Any, what: str
) -> list[tuple[tuple[str, ...], str]]:
    found: list[tuple[tuple[str, ...], str]] = []
    parsed = {}
    for key in keys:
        if key in payload:
            try:
                parsed[key] = parse(payload[key])
            except ValueError:
                parsed[key] = None
            if parsed[key] is None:
                found.append((("payload", key), f"{key} must be {what}"))
    low, high = parsed.get(keys[1]), parsed.get(keys[2])
    if not found and low is not None and high is not None and low > high:
        found.append((("payload", keys[1]), f"{keys[1]} is after {keys[2]}"))
    return found


def _check_reports(
    errors: _Errors,
    base: tuple[str | int, ...],
    activity: ActivityIn,
    reports: ScoresAndReports,
    position: dict[str, int],
) -> None:
    items = activity.items
    where = (*base, "scores_and_reports", "reports")
    scores = {r.id: r for r in reports.reports if isinstance(r, ScoreReport)}
    score_conditions: set[str] = set()
    names: set[str] = set()
    ids: set[str] = set()

    def bad(path: tuple[str | int, ...], message: str, kind: str = "bad_reference") -> None:
        errors.add((*where, *path), message, kind=kind, activity=activity.name)

    def printed(r: int, names_: list[str], path: tuple[str | int, ...]) -> None:
        for p, name in enumerate(names_):
            if name.casefold() not in position:
                bad((r, *path, p), f"no item {name!r} to print in this activity")

    for r, report in enumerate(reports.reports):
        key = f"{report.type}:{report.name.casefold()}"
        if key in names:
            bad((r, "name"), f"two {report.type}s are named {report.name!r}", "duplicate_name")
        names.add(key)
        printed(r, report.items_print, ("items_print",))
        if isinstance(report, ScoreReport):
            if report.id in ids:
                bad((r, "id"), f"two scores have the id {report.id!r}", "duplicate_id")
            ids.add(report.id)
            for s, name in enumerate(report.items_score):
                index = position.get(name.casefold())
                if index is None:
                    bad((r, "items_score", s), f"no item {name!r} in this activity")
                elif not item_is_scored(items[index]):
                    bad((r, "items_score", s),
                        f"item {name!r} has no scores (a {items[index].response_type} item "
                        "with add_scores)")  # fmt: skip
            for c, logic in enumerate(report.conditional_logic):
                if logic.id in score_conditions or logic.id in scores:
                    bad((r, "conditional_logic", c, "id"),
                        f"the id {logic.id!r} is used twice", "duplicate_id")  # fmt: skip
                score_conditions.add(logic.id)
                printed(r, logic.items_print, ("conditional_logic", c, "items_print"))
                for k, condition in enumerate(logic.conditions):
                    path = (r, "conditional_logic", c, "conditions", k)
                    if condition.item != report.id:
                        bad((*path, "item"), f"a score's condition tests that score "
                            f"({report.id!r}), not {condition.item!r}")  # fmt: skip
                    for sub, message in _score_condition_problems(condition):
                        bad((*path, *sub), message)
    for r, report in enumerate(reports.reports):
        if not isinstance(report, SectionReport) or report.conditional_logic is None:
            continue
        for k, condition in enumerate(report.conditional_logic.conditions):
            where_: tuple[str | int, ...] = (r, "conditional_logic", "conditions", k)
            if condition.item in scores:
                problems = _score_condition_problems(condition)
            elif condition.item in score_conditions:
                problems = _flag_problems(condition)
            elif (index := position.get(condition.item.casefold())) is not None:
                problems = _condition_problems(condition, items[index])
            else:
                problems = [(("item",), f"no item, score or score condition {condition.item!r}")]
            for sub, message in problems:
                bad((*where_, *sub), message)


def _score_condition_problems(condition: Condition) -> list[tuple[tuple[str, ...], str]]:
    keys = _NUMERIC.get(condition.type)
    if keys is None:
        return [(("type",), f"{condition.type.value} does not fit a score; "
                 f"use one of {', '.join(sorted(_NUMERIC))}")]  # fmt: skip
    return _payload_problems(condition.payload, keys, None)


def _flag_problems(condition: Condition) -> list[tuple[tuple[str, ...], str]]:
    if condition.type != Operator.equal_to_score:
        return [(("type",), "a score condition is tested with EQUAL_TO_SCORE")]
    if set(condition.payload) != {"value"} or not isinstance(condition.payload["value"], bool):
        return [(("payload",), 'payload is {"value": true} or {"value": false}')]
    return []
