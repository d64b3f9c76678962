"""Example documents: the OpenAPI examples of the routes, and the applets tests and the bench
build from them (one item of every response type, valid as given)."""

from __future__ import annotations

from typing import Any

__all__ = ["EVERY_RESPONSE_TYPE", "example_applet", "item_of_every_type", "large_applet"]

_OPTIONS = [
    {"text": "Never", "value": 0, "score": 0},
    {"text": "Sometimes", "value": 1, "score": 1},
    {"text": "Often", "value": 2, "score": 2, "alert": "Reported often"},
]


def item_of_every_type() -> list[dict[str, Any]]:
    """One item of each response type, in an order where the conditions refer backwards."""
    q = {"en": "Question", "fr": "Question"}
    return [
        {"name": "mood", "question": {"en": "How was your day?", "fr": "Votre journée ?"},
         "response_type": "singleSelect", "response_values": {"options": _OPTIONS},
         "config": {"add_scores": True, "set_alerts": True}},
        {"name": "feelings", "question": q, "response_type": "multiSelect",
         "response_values": {"options": _OPTIONS}, "config": {"add_scores": True},
         "conditional_logic": {"match": "any", "conditions": [
             {"item": "mood", "type": "EQUAL_TO_OPTION", "payload": {"option_value": 2}}]}},
        {"name": "energy", "question": q, "response_type": "slider",
         "response_values": {"min_value": 0, "max_value": 4, "min_label": "low",
                             "max_label": "high", "scores": [0, 1, 2, 3, 4],
                             "alerts": [{"value": 0, "message": "No energy"}]},
         "config": {"add_scores": True, "set_alerts": True, "show_tick_marks": True}},
        {"name": "cups", "question": q, "response_type": "numberSelect",
         "response_values": {"min_value": 0, "max_value": 12},
         "conditional_logic": {"conditions": [
             {"item": "energy", "type": "BETWEEN", "payload": {"min_value": 1, "max_value": 3}}]}},
        {"name": "notes", "question": q, "response_type": "text",
         "config": {"max_response_length": 200}},
        {"name": "diary", "question": q, "response_type": "paragraphText"},
        {"name": "day", "question": q, "response_type": "date"},
        {"name": "wake", "question": q, "response_type": "time",
         "conditional_logic": {"conditions": [
             {"item": "day", "type": "GREATER_THAN_DATE", "payload": {"date": "2026-01-01"}}]}},
        {"name": "sleep", "question": q, "response_type": "timeRange"},
        {"name": "rows", "question": q, "response_type": "sliderRows",
         "response_values": {"rows": [
             {"label": "body", "min_value": 0, "max_value": 2, "scores": [0, 1, 2]},
             {"label": "mind", "min_value": 0, "max_value": 2, "scores": [0, 1, 2]}]},
         "config": {"add_scores": True}},
        {"name": "grid", "question": q, "response_type": "singleSelectRows",
         "response_values": {"rows": [{"row_name": "Mon"}, {"row_name": "Tue"}],
                             "options": [{"text": "yes", "value": 1}, {"text": "no", "value": 0}],
                             "scores": [[1, 0], [1, 0]]},
         "config": {"add_scores": True}},
        {"name": "grid_many", "question": q, "response_type": "multiSelectRows",
         "response_values": {"rows": [{"row_name": "AM"}, {"row_name": "PM"}],
                             "options": [{"text": "tea", "value": 1},
                                         {"text": "coffee", "value": 2}]},
         "conditional_logic": {"conditions": [
             {"item": "grid", "type": "EQUAL_TO_ROW_OPTION",
              "payload": {"row": 0, "option_value": 1}}]}},
        {"name": "where", "question": q, "response_type": "geolocation"},
        {"name": "sketch", "question": q, "response_type": "drawing",
         "response_values": {"drawing_background": "https://cdn.example.org/bg.png"}},
        {"name": "selfie", "question": q, "response_type": "photo"},
        {"name": "clip", "question": q, "response_type": "video"},
        {"name": "voice", "question": q, "response_type": "audio",
         "response_values": {"max_duration_s": 60}},
        {"name": "listen", "question": q, "response_type": "audioPlayer",
         "response_values": {"file": "https://cdn.example.org/tone.mp3"},
         "config": {"play_once": True}},
        {"name": "thanks", "question": {"en": "Thank you"}, "response_type": "message"},
        {"name": "flanker", "question": q, "response_type": "flanker",
         "config": {"stimulus_trials": [{"id": "left", "text": "<<<<<", "value": 0},
                                        {"id": "right", "text": ">>>>>", "value": 1}],
                    "blocks": [{"name": "block 1", "order": ["left", "right", "left"]}],
                    "buttons": [{"text": "L", "value": 0}, {"text": "R", "value": 1}],
                    "trial_duration_ms": 3000}},
        {"name": "tracker", "question": q, "response_type": "stabilityTracker",
         "config": {"user_input_type": "touch", "phase": "test",
                    "duration_minutes": 1.0, "lambda_slope": 0.2}},
        {"name": "trails", "question": q, "response_type": "ABTrails",
         "config": {"device_type": "mobile", "order_name": "first"}},
    ]  # fmt: skip


EVERY_RESPONSE_TYPE = sorted({item["response_type"] for item in item_of_every_type()})


def example_applet(organisation_id: str | None = None) -> dict[str, Any]:
    """A small applet: an activity with every response type, a short one, and a flow."""
    document: dict[str, Any] = {
        "display_name": "Daily wellbeing",
        "description": {"en": "A few questions a day", "fr": "Quelques questions par jour"},
        "about": {"en": "A study of sleep and mood"},
        "theme": {"primary_color": "#1f6feb"},
        "retention": {"period": "years", "amount": 2},
        "activities": [
            {
                "name": "Daily check",
                "description": {"en": "Every evening"},
                "is_reviewable": True,
                "items": item_of_every_type(),
                "scores_and_reports": {
                    "generate_report": True,
                    "reports": [
                        {"type": "score", "id": "wellbeing", "name": "Wellbeing",
                         "calculation_type": "sum", "items_score": ["mood", "energy"],
                         "conditional_logic": [
                             {"id": "low", "name": "Low", "flag_score": True,
                              "conditions": [{"item": "wellbeing", "type": "LESS_THAN",
                                              "payload": {"value": 2}}]}]},
                        {"type": "section", "name": "Summary", "items_print": ["notes"],
                         "conditional_logic": {"conditions": [
                             {"item": "low", "type": "EQUAL_TO_SCORE",
                              "payload": {"value": True}}]}},
                    ],
                },
            },
            {
                "name": "Weekly review",
                "items": [
                    {"name": "week", "question": {"en": "How was your week?"},
                     "response_type": "singleSelect",
                     "response_values": {"options": _OPTIONS[:2]}},
                ],
            },
        ],
        "flows": [{"name": "Evening", "activities": ["Daily check", "Weekly review"]}],
    }  # fmt: skip
    if organisation_id is not None:
        document["organisation_id"] = organisation_id
    return document


def large_applet(
    organisation_id: str, *, activities: int = 20, items: int = 30, name: str = "Large applet"
) -> dict[str, Any]:
    """``activities`` x ``items`` single-select items (the bench's applet)."""
    return {
        "organisation_id": organisation_id,
        "display_name": name,
        "activities": [
            {
                "name": f"Activity {a}",
                "items": [
                    {
                        "name": f"item_{a}_{i}",
                        "question": {"en": f"Question {i} of activity {a}?"},
                        "response_type": "singleSelect",
                        "response_values": {"options": _OPTIONS},
                        "config": {"add_scores": True},
                    }
                    for i in range(items)
                ],
            }
            for a in range(activities)
        ],
    }
