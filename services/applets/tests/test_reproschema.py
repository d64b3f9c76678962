"""ReproSchema import and export: real published activities (PHQ-9 and GAD-7 from the
ReproSchema library, in ``data/reproschema`` with their licence), hostile bundles, and the
round trip. Pure unit tests: no database, no network."""

from __future__ import annotations

import io
import json
import posixpath
import socket
import zipfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tessera.applets import canon
from tessera.applets.document import AppletContent
from tessera.applets.examples import example_applet
from tessera.applets.logic import check_applet
from tessera.applets.reproschema import (
    BundleError,
    Imported,
    context_file,
    read_bundle,
    write_bundle,
    write_files,
)

DATA = Path(__file__).parent / "data" / "reproschema"
PHQ9 = "activities/PHQ-9"
GAD7 = "activities/GAD7"
ZIP = "application/zip"
JSON = "application/json"
LIBRARY_CONTEXT = (
    "https://raw.githubusercontent.com/ReproNim/reproschema/main/releases/1.0.0/reproschema"
)


def _files(*folders: str) -> dict[str, bytes]:
    return {
        path.relative_to(DATA).as_posix(): path.read_bytes()
        for folder in folders
        for path in sorted((DATA / folder).rglob("*"))
        if path.is_file()
    }


def _zip(files: Mapping[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, content in files.items():
            archive.writestr(path, content)
    return buffer.getvalue()


def _library(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _import(
    *folders: str, extra: dict[str, Any] | None = None, root: str | None = None
) -> Imported:
    files: dict[str, bytes | str] = dict(_files(*folders))
    for path, content in (extra or {}).items():
        files[path] = content if isinstance(content, str | bytes) else json.dumps(content)
    return read_bundle(_zip(files), content_type=ZIP, root=root)


def _valid(imported: Imported) -> AppletContent:
    model = AppletContent.model_validate(imported.document)
    check_applet(model)
    return model


def _without_ids(content: dict[str, Any]) -> dict[str, Any]:
    """A canonical applet without the ids an import assigns afresh."""
    copy = json.loads(json.dumps(content))
    for activity in copy["activities"]:
        activity.pop("id")
        for item in activity["items"]:
            item.pop("id")
    for flow in copy["flows"]:
        flow.pop("id")
        flow.pop("activity_ids")
    return copy


def _canonical(document: dict[str, Any]) -> dict[str, Any]:
    return canon.canonical(AppletContent.model_validate(document))


def _items(imported: Imported, activity: int = 0) -> dict[str, dict[str, Any]]:
    return {i["name"]: i for i in imported.document["activities"][activity]["items"]}


def _options(item: dict[str, Any]) -> list[tuple[str, int]]:
    return [(o["text"], o["value"]) for o in item["response_values"]["options"]]


FREQUENCY = [
    ("Not at all", 0),
    ("Several days", 1),
    ("More than half the days", 2),
    ("Nearly every day", 3),
]


# --- the real activities ----------------------------------------------------------------------


def test_phq9_imports_its_ten_questions_as_single_select_items_after_its_preamble() -> None:
    imported = _import(PHQ9)

    _valid(imported)
    activity = imported.document["activities"][0]
    assert imported.document["display_name"] == activity["name"] == "PHQ-9 Assessment"
    assert activity["description"] == {"en": "PHQ-9 assessment schema"}
    names = [i["name"] for i in activity["items"]]
    assert names == ["preamble"] + [f"phq9_{n}" for n in range(1, 11)]
    preamble, *questions = activity["items"]
    assert preamble["response_type"] == "message"
    assert preamble["question"]["en"] == (
        "Over the last 2 weeks, how often have you been bothered by any of the following problems?"
    )
    assert all(item["response_type"] == "singleSelect" for item in questions)
    for item in questions:
        published = _library(f"{PHQ9}/items/{item['name']}")
        assert item["question"] == published["question"]  # every language, as published
    assert _options(questions[0]) == FREQUENCY
    assert _options(questions[9]) == [
        ("Not difficult at all", 0),
        ("Somewhat difficult", 1),
        ("Very difficult", 2),
        ("Extremely difficult", 3),
    ]


def test_phq9_total_score_is_a_sum_of_the_nine_symptom_items_scored_by_value() -> None:
    imported = _import(PHQ9)

    report = imported.document["activities"][0]["scores_and_reports"]["reports"]
    assert [(r["id"], r["name"], r["calculation_type"]) for r in report] == [
        ("phq9_total_score", "PHQ-9 Score", "sum")
    ]
    assert report[0]["items_score"] == [f"phq9_{n}" for n in range(1, 10)]
    items = _items(imported)
    for n in range(1, 10):
        item = items[f"phq9_{n}"]
        assert item["config"]["add_scores"] is True
        assert all(o["score"] == o["value"] for o in item["response_values"]["options"])
    assert items["phq9_10"]["config"]["add_scores"] is False


def test_phq9_difficulty_question_shows_when_any_symptom_is_present() -> None:
    logic = _items(_import(PHQ9))["phq9_10"]["conditional_logic"]

    # "phq9_1 > 0 || ... || phq9_9 > 0": any answer but "Not at all" to any of the nine
    assert logic["match"] == "any"
    assert {(c["item"], c["type"], c["payload"]["option_value"]) for c in logic["conditions"]} == {
        (f"phq9_{n}", "EQUAL_TO_OPTION", value) for n in range(1, 10) for value in (1, 2, 3)
    }


def test_phq9_answers_are_required_as_published() -> None:
    items = _items(_import(PHQ9))

    assert all(items[f"phq9_{n}"]["config"]["skippable"] is False for n in range(1, 11))


def test_gad7_imports_seven_scored_single_select_items_and_its_total() -> None:
    imported = _import(GAD7)

    _valid(imported)
    activity = imported.document["activities"][0]
    assert activity["name"] == "GAD7"
    items = activity["items"][1:]
    assert activity["items"][0]["name"] == "preamble"
    assert [i["name"] for i in items] == [f"gad7_{n}" for n in range(1, 8)]
    assert all(i["response_type"] == "singleSelect" and _options(i) == FREQUENCY for i in items)
    assert items[0]["question"]["en"] == "Feeling nervous, anxious or on edge"
    assert items[6]["question"]["en"] == "Feeling afraid as if something awful might happen"
    [report] = activity["scores_and_reports"]["reports"]
    assert (report["id"], report["name"], report["items_score"]) == (
        "gad7_total_score",
        "GAD7 Score",
        [f"gad7_{n}" for n in range(1, 8)],
    )


def test_a_protocol_of_phq9_and_gad7_imports_both_activities_in_order() -> None:
    protocol = {
        "@context": LIBRARY_CONTEXT,
        "@type": "reproschema:Protocol",
        "@id": "screening_schema",
        "prefLabel": {"en": "Screening", "fr": "Dépistage"},
        "description": {"en": "Mood and anxiety", "fr": "Humeur et anxiété"},
        "landingPage": [{"@id": "README_en.md", "inLanguage": "en"}],
        "ui": {
            "order": ["../activities/PHQ-9/PHQ9_schema", "../activities/GAD7/GAD7_schema"],
            "addProperties": [
                {
                    "isAbout": "../activities/PHQ-9/PHQ9_schema",
                    "variableName": "phq9",
                    "isVis": True,
                },
                {
                    "isAbout": "../activities/GAD7/GAD7_schema",
                    "variableName": "gad7",
                    "isVis": False,
                },
            ],
        },
    }
    imported = _import(
        PHQ9,
        GAD7,
        extra={
            "protocol/screening_schema": protocol,
            "protocol/README_en.md": "# About\nTwo screeners.\n",
        },
    )

    _valid(imported)
    document = imported.document
    assert document["display_name"] == "Screening"
    assert document["description"] == {"en": "Mood and anxiety", "fr": "Humeur et anxiété"}
    assert document["about"] == {"en": "# About\nTwo screeners.\n"}
    assert [(a["name"], a["is_hidden"]) for a in document["activities"]] == [
        ("PHQ-9 Assessment", False),
        ("GAD7", True),
    ]
    assert ("protocol/screening_schema", "prefLabel", "fr") in {
        (u.where, u.field, u.value) for u in imported.unsupported
    }


def test_every_field_of_phq9_an_applet_cannot_hold_is_named() -> None:
    named = {(u.where, u.field) for u in _import(PHQ9).unsupported}

    items = [f"{PHQ9}/items/phq9_{n}" for n in range(1, 11)]
    assert named == {
        (f"{PHQ9}/PHQ9_schema", "prefLabel"),  # the Spanish name
        (f"{PHQ9}/PHQ9_schema", "citation"),
        (f"{PHQ9}/valueConstraints", "choices.name"),  # option texts in 19 more languages
        (f"{PHQ9}/items/phq9_10", "responseOptions.choices.name"),
        *((item, "prefLabel") for item in items),  # "PHQ9-1": items have no label
        *((item, "description") for item in items),
    }


def test_what_has_no_place_in_an_applet_is_named_and_the_rest_imported() -> None:
    def item(name: str, input_type: str, **more: Any) -> dict[str, Any]:
        return {
            "@context": LIBRARY_CONTEXT,
            "@type": "reproschema:Field",
            "@id": name,
            "question": {"en": f"{name}?"},
            "ui": {"inputType": input_type},
            **more,
        }

    activity = {
        "@context": [LIBRARY_CONTEXT, "https://example.org/other-context.jsonld"],
        "@type": "reproschema:Activity",
        "@id": "survey_schema",
        "prefLabel": "Survey",
        "messages": [{"jsExpression": "mood > 1", "message": "Take care"}],
        "compute": [{"variableName": "odd", "jsExpression": "mood * 2"}],
        "ui": {
            "order": ["items/mood", "items/mic", "items/upload", "items/country", "items/later"],
            "addProperties": [
                {
                    "isAbout": "items/mood",
                    "variableName": "mood",
                    "isVis": True,
                    "schedule": "R/P1D",
                },
                {
                    "isAbout": "items/later",
                    "variableName": "later",
                    "isVis": "mood > 1 && (country == 'FR' || mood < 3)",
                },
            ],
            "shuffle": True,
        },
    }
    files = {
        "survey/survey_schema": activity,
        "survey/items/mood": item("mood", "slider", responseOptions={"minValue": 0, "maxValue": 4}),
        "survey/items/mic": item("mic", "audioCheck"),
        "survey/items/upload": item("upload", "documentUpload"),
        "survey/items/country": item("country", "selectCountry"),
        "survey/items/later": item("later", "date"),
    }
    imported = _import(extra=files)

    _valid(imported)
    assert [
        (i["name"], i["response_type"]) for i in imported.document["activities"][0]["items"]
    ] == [("mood", "slider"), ("country", "text"), ("later", "date")]
    named = {(u.where, u.field, u.value) for u in imported.unsupported}
    assert named >= {
        ("survey/survey_schema", "@context", "https://example.org/other-context.jsonld"),
        (
            "survey/survey_schema",
            "messages",
            '[{"jsExpression": "mood > 1", "message": "Take care"}]',
        ),
        ("survey/survey_schema", "compute.jsExpression", "mood * 2"),
        ("survey/survey_schema", "ui.shuffle", "true"),
        ("survey/survey_schema", "ui.addProperties.schedule", "R/P1D"),
        ("survey/items/mic", "ui.inputType", "audioCheck"),
        ("survey/items/upload", "ui.inputType", "documentUpload"),
        ("survey/items/country", "ui.inputType", "selectCountry"),
        (
            "survey/survey_schema",
            "ui.addProperties.isVis",
            "mood > 1 && (country == 'FR' || mood < 3)",
        ),
    }
    reasons = {u.value: u.reason for u in imported.unsupported}
    assert "skipped" in reasons["audioCheck"]
    assert "text" in reasons["selectCountry"]


def test_a_condition_or_score_that_does_not_fit_the_imported_items_is_dropped_and_named() -> None:
    document = {
        "@context": LIBRARY_CONTEXT,
        "@type": "reproschema:Activity",
        "prefLabel": "Checks",
        "compute": [{"variableName": "total", "jsExpression": "level + pick"}],
        "ui": {
            "order": [
                {
                    "@id": "level",
                    "ui": {"inputType": "slider"},
                    "responseOptions": {"minValue": 0, "maxValue": 3},
                },
                {
                    "@id": "pick",
                    "ui": {"inputType": "radio"},
                    "responseOptions": {"choices": "https://example.org/choices.json"},
                },
                {"@id": "why", "ui": {"inputType": "text"}},
            ],
            "addProperties": [{"isAbout": "why", "variableName": "why", "isVis": "level >= 0"}],
        },
    }

    imported = read_bundle(json.dumps(document).encode(), content_type=JSON)

    _valid(imported)
    items = _items(imported)
    assert items["pick"]["response_type"] == "text"  # its choices are elsewhere: not fetched
    assert items["why"]["conditional_logic"] is None  # "level > -1" is outside the slider
    assert imported.document["activities"][0]["scores_and_reports"]["reports"] == []
    named = {(u.where, u.field, u.value) for u in imported.unsupported}
    assert named >= {
        ("pick", "responseOptions.choices", "https://example.org/choices.json"),
        ("why", "isVis", "level >= 0"),
        ("document.jsonld", "compute", "total"),
    }


def test_a_patch_that_does_not_fit_is_ignored_and_named() -> None:
    root, files = write_files(example_applet())
    files["activities/Daily_check/items/mood.jsonld"]["tessera:item"] = {
        "response_values": {"options": "not a list"}
    }
    files[root]["tessera:applet"]["flows"] = [{"name": "F", "activities": ["No such"]}]
    body = json.dumps(
        {
            "root": root,
            "files": {p: json.loads(c) if isinstance(c, bytes) else c for p, c in files.items()},
        }
    ).encode()

    imported = read_bundle(body, content_type=JSON)

    _valid(imported)
    assert _items(imported)["mood"]["response_values"]["options"][2]["alert"] is None
    assert imported.document["flows"] == []
    named = {(u.where, u.field) for u in imported.unsupported}
    assert named == {
        ("activities/Daily_check/items/mood.jsonld", "tessera:item"),
        (root, "tessera:applet"),
    }


# --- the two bundle formats -------------------------------------------------------------------


def test_a_json_bundle_reads_as_the_same_zip() -> None:
    files = {path: json.loads(content) for path, content in _files(PHQ9).items()}
    body = json.dumps({"root": f"{PHQ9}/PHQ9_schema", "files": files}).encode()

    from_json = read_bundle(body, content_type="application/json; charset=utf-8")

    assert from_json == _import(PHQ9)


def test_one_self_contained_document_with_embedded_items_is_a_bundle() -> None:
    choices = [{"name": {"en": "No"}, "value": 0}, {"name": {"en": "Yes"}, "value": 1}]
    document = {
        "@context": LIBRARY_CONTEXT,
        "@type": "reproschema:Activity",
        "@id": "sleep_schema",
        "prefLabel": "Sleep",
        "ui": {
            "order": [
                {
                    "@type": "reproschema:Field",
                    "@id": "items/napped",
                    "question": "Did you nap?",
                    "ui": {"inputType": "radio"},
                    "responseOptions": {"choices": choices},
                },
                {
                    "@type": "reproschema:Field",
                    "@id": "items/hours",
                    "question": "Hours slept",
                    "ui": {"inputType": "number"},
                    "responseOptions": {"minValue": 0, "maxValue": 16},
                },
            ],
            "addProperties": [
                {"isAbout": "items/hours", "variableName": "hours", "isVis": "napped == 0"}
            ],
        },
    }

    imported = read_bundle(json.dumps(document).encode(), content_type=JSON)

    _valid(imported)
    napped, hours = imported.document["activities"][0]["items"]
    assert (napped["name"], napped["response_type"], _options(napped)) == (
        "napped",
        "singleSelect",
        [("No", 0), ("Yes", 1)],
    )
    assert napped["question"] == {"en": "Did you nap?"}  # a plain string is in @language: en
    assert hours["response_values"] == {"min_value": 0, "max_value": 16}
    assert hours["conditional_logic"]["conditions"] == [
        {"item": "napped", "type": "EQUAL_TO_OPTION", "payload": {"option_value": 0}}
    ]
    assert imported.unsupported == []


def test_files_that_are_not_json_are_ignored() -> None:
    imported = _import(PHQ9, extra={"README.md": "# PHQ-9\n", "logo.png": b"\x89PNG\r\n\x1a\n\x00"})

    assert len(imported.document["activities"][0]["items"]) == 11


def test_a_zip_with_several_activities_and_no_protocol_imports_the_one_named_root() -> None:
    with pytest.raises(BundleError) as refused:
        _import(PHQ9, GAD7)
    assert refused.value.field == "root"

    imported = _import(PHQ9, GAD7, root=f"{GAD7}/GAD7_schema")

    assert imported.document["display_name"] == "GAD7"


# --- hostile bundles --------------------------------------------------------------------------


def _refused(body: bytes, content_type: str = ZIP) -> BundleError:
    with pytest.raises(BundleError) as refused:
        read_bundle(body, content_type=content_type)
    assert refused.value.status == 422
    assert refused.value.errors[0]["field"] == refused.value.field
    return refused.value


def test_a_zip_bomb_is_refused_before_it_is_unpacked() -> None:
    bomb = _zip({"bomb.json": b"\x00" * (21 * 1024 * 1024)})
    assert len(bomb) < 100_000

    assert "more than 20 MB" in _refused(bomb).message


def test_a_zip_that_lies_about_its_sizes_is_refused() -> None:
    body = bytearray(_zip({"a.json": b"{}" + b" " * 5_000_000}))
    central = body.index(b"PK\x01\x02")
    body[central + 24 : central + 28] = (10).to_bytes(4, "little")  # "10 bytes unpacked"

    assert "a.json" in _refused(bytes(body)).message


def test_too_many_files_are_refused() -> None:
    many = _zip({f"f{n}.json": "{}" for n in range(2_001)})

    assert "2001 files" in _refused(many).message


def test_a_path_leaving_the_bundle_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("../evil.json"), "{}")

    refused = _refused(buffer.getvalue())

    assert refused.field == "../evil.json"
    assert "leaves the bundle" in refused.message


def test_a_reference_leaving_the_bundle_is_refused() -> None:
    activity = _library(f"{PHQ9}/PHQ9_schema")
    activity["ui"]["order"][0] = "../../../etc/passwd"
    files: dict[str, bytes | str] = {**_files(PHQ9), f"{PHQ9}/PHQ9_schema": json.dumps(activity)}

    refused = _refused(_zip(files))

    assert "../../../etc/passwd" in refused.message
    assert "leaves the bundle" in refused.message


def test_a_dangling_reference_is_refused_naming_it() -> None:
    files = _files(PHQ9)
    del files[f"{PHQ9}/items/phq9_3"]

    refused = _refused(_zip(files))

    assert f"{PHQ9}/items/phq9_3" in refused.message
    assert refused.field == f"{PHQ9}/PHQ9_schema: ui.order"


def test_a_reference_to_the_web_is_refused_not_fetched() -> None:
    activity = _library(f"{PHQ9}/PHQ9_schema")
    activity["ui"]["order"][0] = "https://example.org/items/phq9_1"
    files: dict[str, bytes | str] = {**_files(PHQ9), f"{PHQ9}/PHQ9_schema": json.dumps(activity)}

    assert "never fetched" in _refused(_zip(files)).message


def test_a_referenced_file_that_is_not_json_is_refused() -> None:
    files = {**_files(PHQ9), f"{PHQ9}/valueConstraints": b"choices: not JSON"}

    refused = _refused(_zip(files))

    assert refused.field == f"{PHQ9}/valueConstraints"
    assert "not JSON" in refused.message


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b"not a zip", ZIP, "body"),
        (b"{not json", JSON, "body"),
        (b"[1, 2]", JSON, "body"),
        (json.dumps({"root": "a.jsonld", "files": {"b.jsonld": {}}}).encode(), JSON, "root"),
        (json.dumps({"root": "a", "files": {"../a": {}}}).encode(), JSON, "../a"),
        (_zip({"notes.txt": "hello"}), ZIP, "root"),
        (b"{}", "text/plain", "content-type"),
    ],
)
def test_malformed_bodies_are_refused_naming_the_field(
    body: bytes, content_type: str, field: str
) -> None:
    assert _refused(body, content_type).field == field


# --- export and round trip --------------------------------------------------------------------


@pytest.mark.parametrize("media_type", [ZIP, JSON])
def test_example_applet_round_trips_losslessly(media_type: str) -> None:
    content = _canonical(example_applet())

    imported = read_bundle(write_bundle(content, media_type=media_type), content_type=media_type)

    _valid(imported)
    assert _without_ids(_canonical(imported.document)) == _without_ids(content)
    assert imported.unsupported == []


def _awkward_applet() -> dict[str, Any]:
    """Names ReproSchema cannot write as variables, logic and scores it can say only in part,
    a first message that is not a preamble, slugs that collide, every applet-level field."""
    options = [
        {
            "text": " Never ",
            "value": 5,
            "score": 3,
            "tooltip": "t",
            "color": "#abc",
            "image": "https://cdn.example.org/i.png",
        },
        {"text": "Always", "value": -2, "is_hidden": True},
    ]
    return {
        "display_name": "  Awkward: applet/ü ",
        "description": {"en": "d", "pt-BR": "p"},
        "about": {"en": "# A\n\n", "fr": "B"},
        "image": "https://cdn.example.org/a.png",
        "watermark": "https://cdn.example.org/w.png",
        "encryption": {"public_key": "k", "prime": "p", "base": "b", "account_id": "a"},
        "retention": {"period": "days", "amount": 3},
        "activities": [
            {
                "name": "A b",
                "is_hidden": True,
                "is_skippable": True,
                "show_all_at_once": True,
                "splash_screen": "https://cdn.example.org/s.png",
                "response_is_editable": False,
                "items": [
                    {
                        "name": "preamble",
                        "question": {"en": "Hi"},
                        "response_type": "message",
                        "config": {"timer_s": 5},
                    },
                    {
                        "name": "first q",
                        "question": {"en": "Q"},
                        "response_type": "singleSelect",
                        "response_values": {"options": options},
                        "config": {"skippable": True, "randomize_options": True},
                    },
                    {
                        "name": "multi",
                        "response_type": "multiSelect",
                        "allow_edit": False,
                        "response_values": {"options": options},
                        "conditional_logic": {
                            "match": "any",
                            "conditions": [
                                {
                                    "item": "first q",
                                    "type": "EQUAL_TO_OPTION",
                                    "payload": {"option_value": 5},
                                }
                            ],
                        },
                    },
                    {
                        "name": "m2",
                        "response_type": "singleSelect",
                        "response_values": {"options": options},
                        "conditional_logic": {
                            "conditions": [
                                {
                                    "item": "multi",
                                    "type": "INCLUDES_OPTION",
                                    "payload": {"option_value": 5},
                                },
                                {
                                    "item": "multi",
                                    "type": "NOT_INCLUDES_OPTION",
                                    "payload": {"option_value": -2},
                                },
                            ]
                        },
                    },
                    {
                        "name": "sl",
                        "response_type": "slider",
                        "is_hidden": True,
                        "response_values": {
                            "min_value": -3,
                            "max_value": 3,
                            "max_label": "hi",
                            "min_image": "https://cdn.example.org/m.png",
                        },
                        "config": {"continuous_slider": True},
                    },
                    {
                        "name": "num",
                        "response_type": "numberSelect",
                        "response_values": {"min_value": 1, "max_value": 5},
                        "conditional_logic": {
                            "conditions": [
                                {"item": "sl", "type": "GREATER_THAN", "payload": {"value": 1}},
                                {"item": "sl", "type": "NOT_EQUAL", "payload": {"value": 2}},
                            ]
                        },
                    },
                    {
                        "name": "txt",
                        "response_type": "text",
                        "config": {
                            "numerical_response_required": True,
                            "response_required": True,
                            "skippable": True,
                            "max_response_length": 7,
                            "correct_answer_required": True,
                            "correct_answer": "3",
                        },
                    },
                    {
                        "name": "para",
                        "response_type": "paragraphText",
                        "config": {"max_response_length": 50_000},
                    },
                    {
                        "name": "voice",
                        "response_type": "audio",
                        "response_values": {"max_duration_s": 3_600},
                        "config": {"additional_response_option": {"text_input_option": True}},
                    },
                    {
                        "name": "play",
                        "response_type": "audioPlayer",
                        "response_values": {"file": "https://cdn.example.org/a.mp3"},
                    },
                    {"name": "Preamble ", "question": {"en": "x"}, "response_type": "message"},
                    {
                        "name": "s1",
                        "response_type": "singleSelect",
                        "config": {"add_scores": True},
                        "response_values": {
                            "options": [
                                {"text": "a", "value": 0, "score": 0},
                                {"text": "b", "value": 1, "score": 1},
                            ]
                        },
                    },
                ],
                "scores_and_reports": {
                    "show_score_summary": True,
                    "reports": [
                        {
                            "type": "score",
                            "id": "pct",
                            "name": "P",
                            "calculation_type": "percentage",
                            "items_score": ["s1"],
                        },
                        {
                            "type": "score",
                            "id": "avg",
                            "name": "Avg",
                            "calculation_type": "average",
                            "items_score": ["s1"],
                            "message": "m",
                        },
                        {"type": "section", "name": "S", "items_print": ["txt"]},
                    ],
                },
            },
            {"name": "A_b", "items": [{"name": "x", "response_type": "date"}]},
            {
                "name": "Three",
                "items": [
                    {"name": "preamble", "question": {"en": "only"}, "response_type": "message"},
                    {"name": "t", "response_type": "time"},
                ],
            },
        ],
        "flows": [{"name": "F", "activities": ["A_b", "A b"], "hide_badge": True}],
    }


def test_an_applet_reproschema_can_say_only_in_part_round_trips_losslessly() -> None:
    content = _canonical(_awkward_applet())
    check_applet(AppletContent.model_validate(content))

    imported = read_bundle(write_bundle(content), content_type=ZIP)

    assert _without_ids(_canonical(imported.document)) == _without_ids(content)
    assert imported.unsupported == []


@pytest.mark.parametrize("folder", [PHQ9, GAD7])
def test_imported_phq9_and_gad7_round_trip_losslessly(folder: str) -> None:
    content = _canonical(_import(folder).document)

    imported = read_bundle(write_bundle(content), content_type=ZIP)

    assert _without_ids(_canonical(imported.document)) == _without_ids(content)
    assert imported.unsupported == []


def test_phq9_exports_in_reproschema_terms_alone() -> None:
    _, files = write_files(_import(PHQ9).document)

    written = json.dumps([c for c in files.values() if isinstance(c, dict)])
    assert "tessera:item" not in written
    assert "tessera:activity" not in written
    activity = files["activities/PHQ-9_Assessment/PHQ-9_Assessment_schema.jsonld"]
    assert activity["compute"] == [
        {
            "variableName": "phq9_total_score",
            "jsExpression": " + ".join(f"phq9_{n}" for n in range(1, 10)),
        }
    ]
    assert activity["preamble"]["en"].startswith("Over the last 2 weeks")
    item = files["activities/PHQ-9_Assessment/items/phq9_1.jsonld"]
    assert item["ui"] == {"inputType": "radio"}
    assert [c["value"] for c in item["responseOptions"]["choices"]] == [0, 1, 2, 3]


def test_the_extension_holds_only_what_reproschema_cannot_say() -> None:
    _, files = write_files(example_applet())

    mood = files["activities/Daily_check/items/mood.jsonld"]
    assert mood["tessera:item"] == {
        "response_values": {"options": [{}, {}, {"alert": "Reported often"}]},
        "config": {"set_alerts": True},
    }
    thanks = files["activities/Daily_check/items/thanks.jsonld"]
    assert "tessera:item" not in thanks
    assert thanks["ui"] == {"inputType": "static"}


def test_an_edit_to_the_reproschema_terms_of_an_export_is_imported() -> None:
    root, files = write_files(example_applet())
    files["activities/Daily_check/items/mood.jsonld"]["question"]["en"] = "How was today?"
    files[root]["prefLabel"] = {"en": "Evening wellbeing"}

    imported = read_bundle(
        json.dumps(
            {
                "root": root,
                "files": {
                    p: json.loads(c) if isinstance(c, bytes) else c for p, c in files.items()
                },
            }
        ).encode(),
        content_type=JSON,
    )

    assert imported.document["display_name"] == "Evening wellbeing"
    assert _items(imported)["mood"]["question"]["en"] == "How was today?"
    assert _items(imported)["mood"]["response_values"]["options"][2]["alert"] == "Reported often"


def test_an_export_without_its_extension_reads_as_reproschema_says_it() -> None:
    root, files = write_files(example_applet())
    for content in files.values():
        if isinstance(content, dict):
            for term in ("tessera:applet", "tessera:activity", "tessera:item"):
                content.pop(term, None)
    body = json.dumps(
        {
            "root": root,
            "files": {p: json.loads(c) if isinstance(c, bytes) else c for p, c in files.items()},
        }
    ).encode()

    imported = read_bundle(body, content_type=JSON)

    _valid(imported)
    kept = {i["name"] for i in imported.document["activities"][0]["items"]}
    assert {"mood", "feelings", "energy", "cups", "notes", "voice", "listen", "thanks"} <= kept
    skipped = {u.where.rsplit("/", 1)[-1] for u in imported.unsupported if "skipped" in u.reason}
    assert skipped == {
        "rows.jsonld",
        "grid.jsonld",
        "grid_many.jsonld",
        "flanker.jsonld",
        "tracker.jsonld",
        "trails.jsonld",
    }


# --- offline ----------------------------------------------------------------------------------


def test_nothing_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", offline)
    monkeypatch.setattr(socket.socket, "connect_ex", offline)
    monkeypatch.setattr(socket, "create_connection", offline)
    monkeypatch.setattr(socket, "getaddrinfo", offline)

    imported = _import(PHQ9)  # names its context by an https URL
    again = read_bundle(write_bundle(imported.document), content_type=ZIP)

    assert len(again.document["activities"][0]["items"]) == 11


def test_the_written_bundle_refers_to_the_shipped_context_inside_itself() -> None:
    shipped = resources.files("tessera.applets.reproschema") / "context" / "reproschema.jsonld"
    assert shipped.is_file()
    assert (
        json.loads(shipped.read_bytes())["@context"]["reproschema"] == "http://schema.repronim.org/"
    )

    archive = zipfile.ZipFile(io.BytesIO(write_bundle(example_applet())))
    names = set(archive.namelist())

    assert archive.read("contexts/reproschema.jsonld") == shipped.read_bytes()
    assert archive.read("contexts/tessera.jsonld") == context_file("tessera.jsonld")
    documents = [n for n in names if n.endswith(".jsonld") and not n.startswith("contexts/")]
    assert len(documents) > 20
    for name in documents:
        contexts = json.loads(archive.read(name))["@context"]
        assert all(not c.startswith(("http:", "https:")) for c in contexts)
        resolved = {
            posixpath.normpath(posixpath.join(posixpath.dirname(name), c)) for c in contexts
        }
        assert resolved == {"contexts/reproschema.jsonld", "contexts/tessera.jsonld"}
