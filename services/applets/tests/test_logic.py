"""The rules of an applet document that span several parts (``logic.check_applet``): unit
tests of each rule, on the example applet with one thing broken at a time."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tessera.applets.document import AppletContent
from tessera.applets.examples import example_applet
from tessera.applets.logic import InconsistentApplet, check_applet, operators_for

Doc = dict[str, Any]


def _errors(change: Callable[[Doc], object]) -> list[dict[str, Any]]:
    document = copy.deepcopy(example_applet())
    change(document)
    with pytest.raises(InconsistentApplet) as raised:
        check_applet(AppletContent.model_validate(document))
    return raised.value.errors


def _items(document: Doc) -> list[Doc]:
    items: list[Doc] = document["activities"][0]["items"]
    return items


def _condition(document: Doc, index: int) -> Doc:
    condition: Doc = _items(document)[index]["conditional_logic"]["conditions"][0]
    return condition


def test_the_example_applet_is_consistent() -> None:
    check_applet(AppletContent.model_validate(example_applet()))


def test_a_condition_may_not_refer_to_its_own_item() -> None:
    [error] = _errors(lambda d: _condition(d, 1).update(item="feelings"))
    assert error["item"] == "feelings"
    assert "earlier" in error["message"]


def test_a_condition_on_an_unknown_item_names_it() -> None:
    [error] = _errors(lambda d: _condition(d, 1).update(item="nowhere"))
    assert error["field"].endswith("conditions.0.item")
    assert "'nowhere'" in error["message"]


def test_item_names_are_compared_without_case() -> None:
    [error] = _errors(lambda d: _items(d)[8].update(name="MOOD"))
    assert error["type"] == "duplicate_name"
    assert error["field"] == "activities.0.items.8.name"


def test_a_text_item_cannot_be_tested() -> None:
    def refer_to_notes(d: Doc) -> None:
        _condition(d, 7).update(item="notes", type="EQUAL", payload={"value": 1})

    [error] = _errors(refer_to_notes)
    assert "cannot be tested" in error["message"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "payload"),
        ({"option_value": 2, "extra": 1}, "payload"),
        ({"option_value": 7}, "payload.option_value"),
        ({"option_value": "2"}, "payload.option_value"),
        ({"option_value": True}, "payload.option_value"),  # a bool is not the value 1
    ],
)
def test_an_option_condition_needs_an_existing_option_value(payload: Doc, field: str) -> None:
    [error] = _errors(lambda d: _condition(d, 1).update(payload=payload))
    assert error["field"].endswith(f"conditions.0.{field}")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"min_value": 3, "max_value": 1}, "payload.min_value"),
        ({"min_value": 1, "max_value": 9}, "payload.max_value"),  # the slider ends at 4
        ({"min_value": "a", "max_value": 3}, "payload.min_value"),
        ({"min_value": True, "max_value": 3}, "payload.min_value"),
    ],
)
def test_a_range_condition_lies_within_the_slider(payload: Doc, field: str) -> None:
    [error] = _errors(lambda d: _condition(d, 3).update(payload=payload))
    assert error["field"].endswith(f"conditions.0.{field}")


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ({"type": "GREATER_THAN_DATE", "payload": {"date": "2026-13-01"}}, "payload.date"),
        ({"type": "BETWEEN_DATES", "payload": {"min_date": "2026-02-01",
                                               "max_date": "2026-01-01"}}, "payload.min_date"),
        ({"type": "GREATER_THAN_TIME", "payload": {"time": "8:30"}}, "type"),
    ],
)  # fmt: skip
def test_date_conditions_take_dates_in_order(condition: Doc, field: str) -> None:
    [error] = _errors(lambda d: _condition(d, 7).update(condition))
    assert error["field"].endswith(f"conditions.0.{field}")


def test_a_grid_condition_names_an_existing_row() -> None:
    [error] = _errors(lambda d: _condition(d, 11).update(payload={"row": 5, "option_value": 1}))
    assert error["field"].endswith("payload.row")


def test_operators_fit_the_type_they_refer_to() -> None:
    assert operators_for("singleSelect") == ["EQUAL_TO_OPTION", "NOT_EQUAL_TO_OPTION"]
    assert "INCLUDES_OPTION" in operators_for("multiSelect")
    assert "BETWEEN" in operators_for("slider")
    assert operators_for("text") == []
    assert "GREATER_THAN_TIME_RANGE" in operators_for("timeRange")


def _report(document: Doc, index: int) -> Doc:
    report: Doc = document["activities"][0]["scores_and_reports"]["reports"][index]
    return report


def test_a_score_condition_tests_its_own_score() -> None:
    def other(d: Doc) -> None:
        _report(d, 0)["conditional_logic"][0]["conditions"][0]["item"] = "mood"

    [error] = _errors(other)
    assert "'wellbeing'" in error["message"]


def test_a_score_condition_takes_a_numeric_operator() -> None:
    def option(d: Doc) -> None:
        _report(d, 0)["conditional_logic"][0]["conditions"][0].update(
            type="EQUAL_TO_OPTION", payload={"option_value": 1}
        )

    [error] = _errors(option)
    assert error["field"].endswith("conditions.0.type")


def test_a_section_refers_to_an_item_a_score_or_a_score_condition() -> None:
    def unknown(d: Doc) -> None:
        _report(d, 1)["conditional_logic"]["conditions"][0]["item"] = "missing"

    def flag_with_number(d: Doc) -> None:
        _report(d, 1)["conditional_logic"]["conditions"][0]["payload"] = {"value": 1}

    [error] = _errors(unknown)
    assert "'missing'" in error["message"]
    [error] = _errors(flag_with_number)
    assert error["field"].endswith("conditions.0.payload")


def test_reports_print_only_existing_items_and_names_are_unique() -> None:
    def both(d: Doc) -> None:
        _report(d, 1)["items_print"].append("ghost")
        _report(d, 1)["name"] = "Summary"
        d["activities"][0]["scores_and_reports"]["reports"].append(copy.deepcopy(_report(d, 1)))

    errors = _errors(both)
    fields = {e["field"] for e in errors}
    assert "activities.0.scores_and_reports.reports.1.items_print.1" in fields
    assert "activities.0.scores_and_reports.reports.2.name" in fields


def test_ids_are_unique_across_the_document() -> None:
    same = "0b5f5f9e-0000-4000-8000-000000000001"

    def twice(d: Doc) -> None:
        _items(d)[0]["id"] = same
        d["activities"][1]["items"][0]["id"] = same

    [error] = _errors(twice)
    assert error["type"] == "duplicate_id"
    assert error["field"] == "activities.1.items.0.id"


def test_a_flow_names_each_existing_activity_once() -> None:
    [error] = _errors(lambda d: d["flows"][0]["activities"].append("Daily check"))
    assert "twice" in error["message"]
    [error] = _errors(lambda d: d["flows"][0]["activities"].append("Nope"))
    assert error["field"] == "flows.0.activities.2"


def test_every_broken_rule_is_reported_at_once() -> None:
    def many(d: Doc) -> None:
        _condition(d, 1).update(item="nowhere")
        _condition(d, 3).update(payload={"min_value": 9, "max_value": 1})
        d["flows"][0]["activities"].append("Nope")

    assert len(_errors(many)) == 3
