"""What a manager reads about a new version: ``describe_changes`` on two canonical contents.

Each test takes the example applet's canonical content as the previous version, edits a
copy into the current one and says which lines that edit reads as. Pure unit tests: no
database, no fixtures.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tessera.applets import canon, examples
from tessera.applets.changes import MAX_LINE, describe_changes
from tessera.applets.document import AppletContent

Content = dict[str, Any]


def versions() -> tuple[Content, Content]:
    """The example applet's canonical content, and a copy to edit into the next version."""
    previous = canon.canonical(AppletContent.model_validate(examples.example_applet()))
    return previous, copy.deepcopy(previous)


def recanonical(content: Content) -> Content:
    """``content`` as the server keeps it after an edit that moved parts (ids kept,
    positions and the flows' activity ids written again)."""
    return canon.canonical(AppletContent.model_validate(content))


def activity(content: Content, name: str) -> Content:
    return next(a for a in content["activities"] if a["name"] == name)


def item(content: Content, activity_name: str, name: str) -> Content:
    return next(i for i in activity(content, activity_name)["items"] if i["name"] == name)


def options(content: Content, name: str = "mood") -> list[Content]:
    options: list[Content] = item(content, "Daily check", name)["response_values"]["options"]
    return options


# --- the applet --------------------------------------------------------------------------------


def test_the_first_version_says_what_was_created() -> None:
    current, _ = versions()

    assert describe_changes(None, current) == [
        "Applet created with 2 activities, 23 items and 1 flow"
    ]


def test_identical_versions_have_no_changes() -> None:
    previous, current = versions()

    assert describe_changes(previous, current) == []
    assert describe_changes(previous, recanonical(current)) == []


def test_a_display_name_change_quotes_both_names() -> None:
    previous, current = versions()
    current["display_name"] = "Evening wellbeing"

    assert describe_changes(previous, current) == [
        "Display name changed from 'Daily wellbeing' to 'Evening wellbeing'"
    ]


def test_localized_texts_are_told_per_language_without_the_text() -> None:
    previous, current = versions()
    current["description"] = {"en": "Two questions a day", "de": "Zwei Fragen am Tag"}
    current["about"] = {"en": "A study of sleep and mood", "fr": "Une étude"}

    assert describe_changes(previous, current) == [
        "Description (en) changed",
        "Description (fr) removed",
        "Description (de) added",
        "About (fr) added",
    ]


def test_a_theme_colour_change_prints_both_colours() -> None:
    previous, current = versions()
    current["theme"] = {
        "primary_color": "#222222",
        "secondary_color": "#ffffff",
        "tertiary_color": None,
        "logo": "https://cdn.example.org/logo.png",
    }

    assert describe_changes(previous, current) == [
        "Theme primary colour changed from #1f6feb to #222222",
        "Theme secondary colour set to #ffffff",
        "Theme logo added",
    ]
    current["theme"] = None
    assert describe_changes(previous, current) == ["Theme primary colour removed"]


def test_images_are_told_as_added_changed_or_removed_without_their_urls() -> None:
    previous, current = versions()
    previous["watermark"] = "https://cdn.example.org/old.png"
    current["watermark"] = "https://cdn.example.org/new.png"
    current["image"] = "https://cdn.example.org/image.png"

    assert describe_changes(previous, current) == ["Image added", "Watermark changed"]
    assert describe_changes(current, previous) == ["Image removed", "Watermark changed"]


def test_encryption_change_never_prints_the_key() -> None:
    key = {
        "public_key": "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
        "prime": "170141183460469231731687303715884105727",
        "base": "7",
        "account_id": "account-0001",
    }
    plain, keyed = versions()
    keyed["encryption"] = key
    rotated = copy.deepcopy(keyed)
    rotated["encryption"] = {**key, "public_key": "MIIBCgKCAQEAnother"}

    told = [
        describe_changes(plain, keyed),
        describe_changes(keyed, rotated),
        describe_changes(rotated, plain),
    ]

    assert told == [["Encryption key set"], ["Encryption key changed"], ["Encryption key removed"]]
    printed = " ".join(line for lines in told for line in lines)
    assert not any(secret in printed for secret in [*key.values(), "MIIBCgKCAQEAnother"])


@pytest.mark.parametrize(
    ("retention", "line"),
    [
        ({"period": "months", "amount": 6}, "Retention changed from 2 years to 6 months"),
        ({"period": "weeks", "amount": 1}, "Retention changed from 2 years to 1 week"),
        (
            {"period": "indefinitely", "amount": None},
            "Retention changed from 2 years to indefinitely",
        ),
    ],
)
def test_a_retention_change_reads_as_durations(retention: Content, line: str) -> None:
    previous, current = versions()
    current["retention"] = retention

    assert describe_changes(previous, current) == [line]


# --- activities --------------------------------------------------------------------------------


def test_an_added_activity_is_one_line_and_moves_no_other() -> None:
    previous, current = versions()
    current["activities"].insert(
        0, {"name": "Intro", "items": [{"name": "welcome", "response_type": "message"}]}
    )

    assert describe_changes(previous, recanonical(current)) == [
        "Activity 'Intro' added with 1 item"
    ]


def test_a_removed_activity_is_told_where_it_was() -> None:
    previous, current = versions()
    del current["activities"][0]
    current["flows"][0]["activities"] = ["Weekly review"]
    activity(current, "Weekly review")["is_hidden"] = True

    assert describe_changes(previous, recanonical(current)) == [
        "Activity 'Daily check' removed",
        "Activity 'Weekly review' is now hidden",
        "Flow 'Evening' now runs 'Weekly review'",
    ]


def test_a_renamed_activity_is_a_rename_and_its_flows_follow_it_silently() -> None:
    previous, current = versions()
    activity(current, "Daily check")["name"] = "Evening check"
    current["flows"][0]["activities"] = ["Evening check", "Weekly review"]

    assert describe_changes(previous, recanonical(current)) == [
        "Activity 'Daily check' renamed to 'Evening check'"
    ]


def test_swapping_two_activities_is_one_move() -> None:
    previous, current = versions()
    current["activities"].reverse()

    assert describe_changes(previous, recanonical(current)) == [
        "Activity 'Weekly review' moved from position 2 to 1"
    ]


def test_activity_flags_read_as_sentences() -> None:
    previous, current = versions()
    activity(current, "Daily check").update(
        show_all_at_once=True,
        is_skippable=True,
        is_reviewable=False,
        response_is_editable=False,
        is_hidden=True,
    )

    assert describe_changes(previous, current) == [
        "Activity 'Daily check' now shows all items at once",
        "Activity 'Daily check' is now skippable",
        "Activity 'Daily check' is no longer reviewable",
        "Activity 'Daily check' no longer lets respondents edit their responses",
        "Activity 'Daily check' is now hidden",
    ]


def test_activity_description_splash_screen_and_image() -> None:
    previous, current = versions()
    activity(current, "Daily check").update(
        description={"en": "Every night"},
        splash_screen="https://cdn.example.org/splash.png",
        image="https://cdn.example.org/check.png",
    )

    assert describe_changes(previous, current) == [
        "Description (en) of activity 'Daily check' changed",
        "Splash screen of activity 'Daily check' added",
        "Image of activity 'Daily check' added",
    ]


def test_a_score_is_matched_by_id_so_a_new_name_is_a_rename() -> None:
    previous, current = versions()
    reports = activity(current, "Daily check")["scores_and_reports"]
    reports["generate_report"] = False
    score, section = reports["reports"]
    score.update(name="Mood score", calculation_type="average")
    section["message"] = "Call them back"

    assert describe_changes(previous, current) == [
        "Activity 'Daily check' no longer generates a report",
        "Score 'Wellbeing' of activity 'Daily check' renamed to 'Mood score'",
        "Score 'Mood score' of activity 'Daily check' changed (calculation type)",
        "Section 'Summary' of activity 'Daily check' changed (message)",
    ]


def test_scores_and_sections_added_and_removed() -> None:
    previous, current = versions()
    reports = activity(current, "Daily check")["scores_and_reports"]["reports"]
    reports[:] = [reports[1], {**reports[1], "name": "Advice"}]
    activity(current, "Weekly review")["scores_and_reports"] = {
        "generate_report": True,
        "show_score_summary": False,
        "reports": [],
    }

    assert describe_changes(previous, current) == [
        "Score 'Wellbeing' of activity 'Daily check' removed",
        "Section 'Advice' of activity 'Daily check' added",
        "Activity 'Weekly review' now generates a report",
    ]


def test_a_field_without_words_still_gets_a_line() -> None:
    previous, current = versions()
    activity(current, "Daily check")["estimated_minutes"] = 5

    assert describe_changes(previous, current) == [
        "Field 'estimated_minutes' of activity 'Daily check' changed from none to 5"
    ]


# --- items -------------------------------------------------------------------------------------


def test_an_added_item_names_its_activity() -> None:
    previous, current = versions()
    activity(current, "Weekly review")["items"].append({"name": "rest", "response_type": "text"})

    assert describe_changes(previous, recanonical(current)) == [
        "Item 'rest' of activity 'Weekly review' added"
    ]


def test_a_removed_item_names_its_activity_and_moves_no_other() -> None:
    previous, current = versions()
    activity(current, "Daily check")["items"].remove(item(current, "Daily check", "diary"))

    assert describe_changes(previous, recanonical(current)) == [
        "Item 'diary' of activity 'Daily check' removed"
    ]


def test_a_renamed_item_is_a_rename_not_a_removal_and_an_addition() -> None:
    previous, current = versions()
    item(current, "Daily check", "mood")["name"] = "humour"

    assert describe_changes(previous, current) == [
        "Item 'mood' of activity 'Daily check' renamed to 'humour'"
    ]


def test_an_item_dragged_to_another_activity_is_a_move() -> None:
    previous, current = versions()
    diary = item(current, "Daily check", "diary")
    activity(current, "Daily check")["items"].remove(diary)
    activity(current, "Weekly review")["items"].append({**diary, "name": "journal"})

    assert describe_changes(previous, recanonical(current)) == [
        "Item 'diary' moved from activity 'Daily check' to activity 'Weekly review'",
        "Item 'diary' of activity 'Weekly review' renamed to 'journal'",
    ]


def test_an_item_dragged_into_a_new_activity_is_still_a_move() -> None:
    previous, current = versions()
    diary = item(current, "Daily check", "diary")
    activity(current, "Daily check")["items"].remove(diary)
    current["activities"].append({"name": "Journal", "items": [diary, {"name": "title"}]})
    current["activities"][-1]["items"][1]["response_type"] = "text"

    assert describe_changes(previous, recanonical(current)) == [
        "Activity 'Journal' added with 2 items",
        "Item 'diary' moved from activity 'Daily check' to activity 'Journal'",
    ]


def test_dragging_an_item_to_the_top_is_one_move() -> None:
    previous, current = versions()
    items = activity(current, "Daily check")["items"]
    items.insert(0, items.pop())

    assert describe_changes(previous, recanonical(current)) == [
        "Item 'trails' of activity 'Daily check' moved from position 22 to 1"
    ]


def test_a_response_type_change_is_one_line() -> None:
    previous, current = versions()
    item(current, "Daily check", "mood")["response_type"] = "multiSelect"
    diary = item(current, "Daily check", "diary")
    diary.update(response_type="text", config={})

    assert describe_changes(previous, recanonical(current)) == [
        "Item 'mood' of activity 'Daily check' changed type from singleSelect to multiSelect",
        "Item 'diary' of activity 'Daily check' changed type from paragraphText to text",
    ]


def test_question_changes_are_told_per_language() -> None:
    previous, current = versions()
    item(current, "Daily check", "mood")["question"] = {"en": "How do you feel?"}

    assert describe_changes(previous, current) == [
        "Question (en) of item 'mood' in activity 'Daily check' changed",
        "Question (fr) of item 'mood' in activity 'Daily check' removed",
    ]


def test_hidden_and_editable_items_read_as_sentences() -> None:
    previous, current = versions()
    item(current, "Daily check", "mood").update(is_hidden=True, allow_edit=False)

    assert describe_changes(previous, current) == [
        "Item 'mood' of activity 'Daily check' is now hidden",
        "Item 'mood' of activity 'Daily check' no longer lets respondents edit the answer",
    ]


def test_conditional_logic_added_changed_and_removed() -> None:
    previous, current = versions()
    logic = item(current, "Daily check", "feelings")["conditional_logic"]
    logic["match"] = "all"
    item(current, "Daily check", "cups")["conditional_logic"] = None
    item(current, "Daily check", "notes")["conditional_logic"] = copy.deepcopy(logic)

    assert describe_changes(previous, current) == [
        "Conditional logic of item 'feelings' in activity 'Daily check' changed",
        "Conditional logic of item 'cups' in activity 'Daily check' removed",
        "Conditional logic of item 'notes' in activity 'Daily check' added",
    ]


def test_a_setting_change_names_the_setting_and_both_values() -> None:
    previous, current = versions()
    config = item(current, "Daily check", "mood")["config"]
    config.update(timer_s=30, randomize_options=True)
    config["additional_response_option"]["text_input_option"] = True

    assert sorted(describe_changes(previous, current)) == sorted(
        [
            "Setting 'timer_s' of item 'mood' in activity 'Daily check' changed from none to 30",
            "Setting 'additional_response_option.text_input_option' of item 'mood'"
            " in activity 'Daily check' changed from false to true",
            "Setting 'randomize_options' of item 'mood' in activity 'Daily check'"
            " changed from false to true",
        ]
    )


def test_a_large_config_reads_one_line_per_top_level_setting() -> None:
    previous, current = versions()
    config = item(current, "Daily check", "flanker")["config"]
    config["stimulus_trials"].append({"id": "up", "image": None, "text": "^", "value": 0})
    config.update(
        trial_duration_ms=2000,
        sampling_method="fixed-order",
        fixation_screen={"value": "+", "image": None},
    )

    where = "of item 'flanker' in activity 'Daily check'"
    assert describe_changes(previous, current) == [
        f"Setting 'stimulus_trials' {where} changed",
        f"Setting 'trial_duration_ms' {where} changed from 3000 to 2000",
        f"Setting 'sampling_method' {where} changed from 'randomize-order' to 'fixed-order'",
        f"Setting 'fixation_screen' {where} changed",
    ]


# --- response values ---------------------------------------------------------------------------


def test_an_option_score_change_reads_as_one_line() -> None:
    previous, current = versions()
    options(current)[0]["score"] = 1

    assert describe_changes(previous, current) == [
        "Option 'Never' score changed from 0 to 1 (item 'mood', activity 'Daily check')"
    ]


def test_options_without_ids_are_matched_by_value() -> None:
    previous, current = versions()
    never, _sometimes, often = options(current)
    never["text"] = "Not at all"
    always = {**often, "text": "Always", "value": 3, "score": 3, "alert": None}
    options(current)[:] = [never, often, always]

    assert describe_changes(previous, current) == [
        "Option 'Never' renamed to 'Not at all' (item 'mood', activity 'Daily check')",
        "Option 'Sometimes' removed from item 'mood' of activity 'Daily check'",
        "Option 'Always' added to item 'mood' of activity 'Daily check'",
    ]


def test_options_with_ids_are_matched_by_id_even_when_their_value_changes() -> None:
    previous, current = versions()
    for index, (before, after) in enumerate(zip(options(previous), options(current), strict=True)):
        before["id"] = after["id"] = f"00000000-0000-4000-8000-00000000000{index}"
    options(current)[0]["value"] = 5

    assert describe_changes(previous, current) == [
        "Option 'Never' value changed from 0 to 5 (item 'mood', activity 'Daily check')"
    ]
    options(current)[0]["id"] = "00000000-0000-4000-8000-000000000009"
    options(current)[0]["value"] = 0
    assert describe_changes(previous, current) == [
        "Option 'Never' removed from item 'mood' of activity 'Daily check'",
        "Option 'Never' added to item 'mood' of activity 'Daily check'",
    ]


def test_option_alerts_visibility_and_order() -> None:
    previous, current = versions()
    never, sometimes, often = options(current)
    never["alert"] = "Call them"
    sometimes["is_hidden"] = True
    often["alert"] = None
    options(current)[:] = [often, never, sometimes]

    where = " (item 'mood', activity 'Daily check')"
    assert describe_changes(previous, current) == [
        f"Option 'Often' moved from position 3 to 1{where}",
        f"Option 'Often' alert removed{where}",
        f"Option 'Never' alert added{where}",
        f"Option 'Sometimes' is now hidden{where}",
    ]


def test_slider_range_labels_scores_and_alerts() -> None:
    previous, current = versions()
    item(current, "Daily check", "energy")["response_values"].update(
        max_value=5, min_label="very low", scores=[0, 1, 2, 3, 4, 5], alerts=[]
    )

    where = "of item 'energy' in activity 'Daily check'"
    assert describe_changes(previous, current) == [
        f"Range {where} changed from 0–4 to 0–5",  # noqa: RUF001
        f"Minimum label {where} changed from 'low' to 'very low'",
        f"Scores {where} changed from [0, 1, 2, 3, 4] to [0, 1, 2, 3, 4, 5]",
        f"Alerts {where} changed",
    ]


def test_a_list_too_long_to_read_is_summarised() -> None:
    previous, current = versions()
    item(current, "Daily check", "energy")["response_values"].update(
        max_value=40, scores=list(range(41))
    )

    where = "of item 'energy' in activity 'Daily check'"
    assert describe_changes(previous, current) == [
        f"Range {where} changed from 0–4 to 0–40",  # noqa: RUF001
        f"Scores {where} changed",
    ]


def test_slider_rows_are_matched_by_label_then_by_position() -> None:
    previous, current = versions()
    rows = item(current, "Daily check", "rows")["response_values"]["rows"]
    rows.append({**rows[1], "label": "heart"})
    rows[0]["label"] = "torso"
    rows[1]["scores"] = [0, 2, 4]

    where = " (item 'rows', activity 'Daily check')"
    assert describe_changes(previous, current) == [
        f"Row 'body' renamed to 'torso'{where}",
        f"Row 'mind' scores changed from [0, 1, 2] to [0, 2, 4]{where}",
        "Row 'heart' added to item 'rows' of activity 'Daily check'",
    ]


def test_grid_rows_options_and_scores() -> None:
    previous, current = versions()
    values = item(current, "Daily check", "grid")["response_values"]
    values["rows"].append({"id": None, "row_name": "Wed", "row_image": None, "tooltip": None})
    values["rows"][0]["tooltip"] = "Monday"
    values["options"][0]["text"] = "oui"
    values["scores"] = [[1, 0], [1, 0], [0, 1]]

    assert describe_changes(previous, current) == [
        "Row 'Mon' tooltip added (item 'grid', activity 'Daily check')",
        "Row 'Wed' added to item 'grid' of activity 'Daily check'",
        "Option 'yes' renamed to 'oui' (item 'grid', activity 'Daily check')",
        "Scores of item 'grid' in activity 'Daily check'"
        " changed from [[1, 0], [1, 0]] to [[1, 0], [1, 0], [0, 1]]",
    ]


def test_other_response_values_are_one_line_per_key() -> None:
    previous, current = versions()
    item(current, "Daily check", "voice")["response_values"]["max_duration_s"] = 120
    item(current, "Daily check", "listen")["response_values"]["file"] = "https://x.org/b.mp3"

    assert describe_changes(previous, current) == [
        "Maximum duration (s) of item 'voice' in activity 'Daily check' changed from 60 to 120",
        "Audio file of item 'listen' in activity 'Daily check' changed",
    ]


# --- flows -------------------------------------------------------------------------------------


def test_flows_added_renamed_and_removed() -> None:
    previous, current = versions()
    current["flows"][0]["name"] = "Night"
    current["flows"].insert(0, {"name": "Morning", "activities": ["Weekly review"]})

    assert describe_changes(previous, recanonical(current)) == [
        "Flow 'Morning' added, running 'Weekly review'",
        "Flow 'Evening' renamed to 'Night'",
    ]
    current["flows"] = []
    assert describe_changes(previous, current) == ["Flow 'Evening' removed"]


def test_flow_activities_and_flags() -> None:
    previous, current = versions()
    current["flows"][0].update(
        activities=["Weekly review", "Daily check"], is_single_report=True, hide_badge=True
    )

    assert describe_changes(previous, recanonical(current)) == [
        "Flow 'Evening' now runs 'Weekly review', 'Daily check'",
        "Flow 'Evening' now makes a single report",
        "Flow 'Evening' now hides its badge",
    ]


# --- the whole ---------------------------------------------------------------------------------


def test_lines_come_in_document_order() -> None:
    previous, current = versions()
    current["flows"][0]["is_hidden"] = True
    item(current, "Weekly review", "week")["is_hidden"] = True
    activity(current, "Daily check")["is_hidden"] = True
    item(current, "Daily check", "trails")["allow_edit"] = False
    current["display_name"] = "Evening wellbeing"

    lines = describe_changes(previous, current)

    assert lines == [
        "Display name changed from 'Daily wellbeing' to 'Evening wellbeing'",
        "Activity 'Daily check' is now hidden",
        "Item 'trails' of activity 'Daily check' no longer lets respondents edit the answer",
        "Item 'week' of activity 'Weekly review' is now hidden",
        "Flow 'Evening' is now hidden",
    ]
    assert describe_changes(previous, copy.deepcopy(current)) == lines


def test_long_texts_are_cut_so_no_line_passes_the_limit() -> None:
    previous, current = versions()
    current["display_name"] = "A" * 200
    current["flows"][0]["activities"] = [f"{n} {'x' * 90}" for n in range(5)]
    current["flows"][0]["activity_ids"] = []

    name_line, flow_line = describe_changes(previous, current)

    assert name_line == "Display name changed from 'Daily wellbeing' to '" + "A" * 59 + "…'"
    assert flow_line.startswith("Flow 'Evening' now runs '0 xxx")
    assert len(flow_line) == MAX_LINE
    assert flow_line.endswith("…")
