"""Writing an applet as a ReproSchema bundle (``GET /applets/{id}/export/reproschema``).

The layout is the ReproSchema library's::

    contexts/reproschema.jsonld            the ReproSchema 1.0.0 context (the shipped copy)
    contexts/tessera.jsonld                the tessera: extension terms
    protocol/<applet>_schema.jsonld        the protocol (the root), README_<lang>.md for about
    activities/<activity>/<activity>_schema.jsonld
    activities/<activity>/items/<item>.jsonld

Every document names its contexts by relative path (``../../contexts/reproschema.jsonld``),
so the bundle is complete offline: nothing in it is a URL a JSON-LD processor would fetch.

What ReproSchema has a term for is written with it (labels, questions, choices, bounds,
``isVis``, ``valueRequired``, ``allow``, ``compute``...). The rest goes into the part's
``tessera:applet`` / ``tessera:activity`` / ``tessera:item`` patch: the export reads its own
documents back and keeps only the difference (``patch.py``), so an import of the bundle
gives the same applet.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from tessera.applets.document import AppletContent
from tessera.applets.reproschema import vocabulary as v
from tessera.applets.reproschema.bundle import Bundle, pack_zip
from tessera.applets.reproschema.expressions import (
    Comparison,
    Includes,
    is_variable,
    score_text,
    visibility_text,
)
from tessera.applets.reproschema.jsonld import context_file
from tessera.applets.reproschema.patch import SAME, diff, diff_reports, trim
from tessera.applets.reproschema.reader import Reader
from tessera.applets.reproschema.records import ITEM, normal_item, one_item, strip_ids

__all__ = ["write_bundle", "write_files"]

CONTEXTS = {
    "contexts/reproschema.jsonld": "reproschema.jsonld",
    "contexts/tessera.jsonld": "tessera.jsonld",
}
SCHEMA_VERSION = "1.0.0"
_SKIP = ["reproschema:AllowSkip"]
_TESTS: dict[str, Any] = {
    "EQUAL_TO_OPTION": "==",
    "NOT_EQUAL_TO_OPTION": "!=",
    "GREATER_THAN": ">",
    "LESS_THAN": "<",
    "EQUAL": "==",
    "NOT_EQUAL": "!=",
}


def _slug(name: str, taken: set[str], fallback: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[:60] or fallback
    candidate, number = base, 1
    while candidate.casefold() in taken:
        number += 1
        candidate = f"{base}_{number}"
    taken.add(candidate.casefold())
    return candidate


def _contexts(path: str) -> list[str]:
    up = "../" * path.count("/")
    return [f"{up}{target}" for target in CONTEXTS]


def _visibility(item: dict[str, Any]) -> bool | str:
    """``isVis``: false when hidden, the conditions when ReproSchema can say them, else true."""
    if item["is_hidden"]:
        return False
    logic = item["conditional_logic"]
    if logic is None:
        return True
    tests: list[Comparison | Includes] = []
    for condition in logic["conditions"]:
        name, kind, payload = condition["item"], condition["type"], condition["payload"]
        number = payload.get("option_value", payload.get("value"))
        if not is_variable(name) or isinstance(number, bool) or not isinstance(number, int | float):
            return True
        if kind in ("INCLUDES_OPTION", "NOT_INCLUDES_OPTION"):
            tests.append(Includes(name, number, kind == "NOT_INCLUDES_OPTION"))
        elif kind in _TESTS:
            tests.append(Comparison(name, _TESTS[kind], number))
        else:
            return True
    return visibility_text(logic["match"], tests)


def _response_options(item: dict[str, Any]) -> dict[str, Any] | None:
    kind, values, config = item["response_type"], item["response_values"], item["config"]
    if kind in ("singleSelect", "multiSelect"):
        choices = []
        for option in values["options"]:
            choice: dict[str, Any] = {"name": {"en": option["text"]}, "value": option["value"]}
            if option["image"] is not None:
                choice["image"] = option["image"]
            choices.append(choice)
        return {
            "valueType": "xsd:integer",
            "multipleChoice": kind == "multiSelect",
            "choices": choices,
        }
    if kind == "slider":
        options: dict[str, Any] = {
            "valueType": "xsd:integer",
            "minValue": values["min_value"],
            "maxValue": values["max_value"],
        }
        ends = []
        for end in ("min", "max"):
            choice = {"value": values[f"{end}_value"]}
            if values[f"{end}_label"] is not None:
                choice["name"] = {"en": values[f"{end}_label"]}
            if values[f"{end}_image"] is not None:
                choice["image"] = values[f"{end}_image"]
            ends.append(choice)
        if any(len(choice) > 1 for choice in ends):
            options["choices"] = ends
        return options
    if kind == "numberSelect":
        return {
            "valueType": "xsd:integer",
            "minValue": values["min_value"],
            "maxValue": values["max_value"],
        }
    if kind in ("text", "paragraphText"):
        numeric = config.get("numerical_response_required", False)
        return {
            "valueType": "xsd:integer" if numeric else "xsd:string",
            "maxLength": config["max_response_length"],
        }
    if kind == "audio":
        return {
            "valueType": "schema:AudioObject",
            "minValue": 0,
            "maxValue": values["max_duration_s"] * 1000,
        }
    return None


def _properties(item: dict[str, Any], reference: str) -> dict[str, Any]:
    props: dict[str, Any] = {
        "isAbout": reference,
        "variableName": item["name"],
        "isVis": _visibility(item),
    }
    config = item["config"]
    if item["response_type"] in ("text", "paragraphText"):
        props["valueRequired"] = config["response_required"]
        if config["skippable"]:
            props["allow"] = _SKIP
    elif "skippable" in config:
        props["valueRequired"] = not config["skippable"]
        if config["skippable"]:
            props["allow"] = _SKIP
    return props


def _item_document(item: dict[str, Any], path: str) -> dict[str, Any]:
    document: dict[str, Any] = {
        "@context": _contexts(path),
        "@type": "reproschema:Field",
        "@id": posixpath.basename(path),
        "schemaVersion": SCHEMA_VERSION,
        "prefLabel": {"en": item["name"]},
    }
    if item["question"]:
        document["question"] = item["question"]
    document["ui"] = {"inputType": v.WRITTEN_INPUT_TYPES[item["response_type"]]}
    options = _response_options(item)
    if options is not None:
        document["responseOptions"] = options
    if item["response_type"] == "audioPlayer":
        document["audio"] = item["response_values"]["file"]
    return document


def _is_preamble(item: dict[str, Any]) -> bool:
    if item["response_type"] != "message" or item["name"] != "preamble" or not item["question"]:
        return False
    plain = {"name": "preamble", "question": item["question"], "response_type": "message"}
    return normal_item(plain) == item


def _computable(report: dict[str, Any], items: dict[str, dict[str, Any]]) -> bool:
    """Whether ReproSchema's ``compute`` can say this score (the import reads it back)."""
    if report["type"] != "score" or report["calculation_type"] not in ("sum", "average"):
        return False
    if not is_variable(report["id"]) or report["id"].casefold() in items:
        return False
    return all(
        is_variable(name)
        and name.casefold() in items
        and items[name.casefold()]["response_type"] in v.AUTO_SCORED
        for name in report["items_score"]
    )


@dataclass
class _Activity:
    part: dict[str, Any]
    document: dict[str, Any]
    items: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)


def _activity(
    part: dict[str, Any], folder: str, documents: dict[str, Any]
) -> tuple[str, _Activity]:
    path = f"{folder}/{posixpath.basename(folder)}_schema.jsonld"
    document: dict[str, Any] = {
        "@context": _contexts(path),
        "@type": "reproschema:Activity",
        "@id": posixpath.basename(path),
        "schemaVersion": SCHEMA_VERSION,
        "prefLabel": {"en": part["name"]},
    }
    if part["description"]:
        document["description"] = part["description"]
    if part["image"] is not None:
        document["image"] = part["image"]
    written = _Activity(part, document)
    items = part["items"]
    if len(items) > 1 and _is_preamble(items[0]):
        document["preamble"] = items[0]["question"]
        items = items[1:]
    order: list[str] = []
    properties: list[dict[str, Any]] = []
    taken: set[str] = set()
    by_name = {item["name"].casefold(): item for item in items}
    for index, item in enumerate(items):
        reference = f"items/{_slug(item['name'], taken, 'item')}.jsonld"
        item_document = _item_document(item, f"{folder}/{reference}")
        documents[f"{folder}/{reference}"] = item_document
        order.append(reference)
        properties.append(_properties(item, reference))
        written.items.append((str(index), item, item_document))
    compute = []
    reports = (part["scores_and_reports"] or {}).get("reports", [])
    for report in reports:
        if not _computable(report, by_name):
            continue
        reference = f"items/{_slug(report['id'], taken, 'score')}.jsonld"
        documents[f"{folder}/{reference}"] = {
            "@context": _contexts(f"{folder}/{reference}"),
            "@type": "reproschema:Field",
            "@id": posixpath.basename(reference),
            "schemaVersion": SCHEMA_VERSION,
            "prefLabel": {"en": report["name"]},
            "ui": {"inputType": "number", "readonlyValue": True},
        }
        properties.append({"isAbout": reference, "variableName": report["id"], "isVis": False})
        compute.append(
            {
                "variableName": report["id"],
                "jsExpression": score_text(report["calculation_type"], report["items_score"]),
            }
        )
    ui: dict[str, Any] = {"order": order, "addProperties": properties, "shuffle": False}
    if part["is_skippable"]:
        ui["allow"] = _SKIP
    document["ui"] = ui
    if compute:
        document["compute"] = compute
    documents[path] = document
    return path, written


def write_files(
    content: dict[str, Any], *, applet_id: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The bundle of ``content``: its root and its files (JSON-LD documents as dicts, text
    files as strings, the contexts as the shipped bytes)."""
    model = AppletContent.model_validate(content)
    applet = strip_ids(model.model_dump(mode="json", exclude={"organisation_id"}))
    files: dict[str, Any] = {path: context_file(name) for path, name in CONTEXTS.items()}
    root = f"protocol/{_slug(applet['display_name'], set(), 'applet')}_schema.jsonld"
    protocol: dict[str, Any] = {
        "@context": _contexts(root),
        "@type": "reproschema:Protocol",
        "@id": posixpath.basename(root),
        "schemaVersion": SCHEMA_VERSION,
        "prefLabel": {"en": applet["display_name"]},
    }
    if applet["description"]:
        protocol["description"] = applet["description"]
    pages = []
    for language, text in applet["about"].items():
        name = f"README_{language}.md"
        files[f"protocol/{name}"] = text
        pages.append({"@id": name, "inLanguage": language})
    if pages:
        protocol["landingPage"] = pages
    if applet["image"] is not None:
        protocol["image"] = applet["image"]
    if applet_id is not None:
        protocol["tessera:appletId"] = applet_id
    documents: dict[str, Any] = {root: protocol}
    order, properties, written = [], [], []
    taken: set[str] = {"contexts", "protocol"}
    for part in applet["activities"]:
        folder = f"activities/{_slug(part['name'], taken, 'activity')}"
        path, activity = _activity(part, folder, documents)
        reference = f"../{path}"
        order.append(reference)
        properties.append(
            {
                "isAbout": reference,
                "variableName": posixpath.basename(folder),
                "isVis": not part["is_hidden"],
            }
        )
        written.append(activity)
    protocol["ui"] = {"order": order, "addProperties": properties, "shuffle": False}
    _add_patches(model, applet, protocol, written, root, files, documents)
    files.update(documents)
    return root, files


def _add_patches(
    model: AppletContent,
    applet: dict[str, Any],
    protocol: dict[str, Any],
    written: list[_Activity],
    root: str,
    files: dict[str, Any],
    documents: dict[str, Any],
) -> None:
    """Read the documents back as ReproSchema alone says them; patch each part with what
    differs."""
    raw = {p: c.encode() if isinstance(c, str) else c for p, c in files.items()}
    record = Reader(Bundle(raw, root=root, documents=documents)).infer(root)
    own = {k: value for k, value in applet.items() if k != "activities"}
    lean = strip_ids(model.model_dump(mode="json", exclude_defaults=True, exclude={"activities"}))
    _put(protocol, "tessera:applet", trim(diff(own, record.base), lean, record.base))
    for activity, read, activity_model in zip(
        written, record.activities, model.activities, strict=True
    ):
        fields = {
            k: value
            for k, value in activity.part.items()
            if k not in ("items", "scores_and_reports")
        }
        base = {k: value for k, value in read.base.items() if k != "scores_and_reports"}
        lean = activity_model.model_dump(
            mode="json", exclude_defaults=True, exclude={"id", "items"}
        )
        patch = trim(diff(fields, base), lean, base)
        reports = diff_reports(
            activity.part["scores_and_reports"], read.base.get("scores_and_reports")
        )
        if reports is not SAME:
            patch = {**(patch if patch is not SAME else {}), "scores_and_reports": reports}
        _put(activity.document, "tessera:activity", patch)
        bases = {item.key: item.base for item in read.items}
        items = {item.name: item for item in activity_model.items}
        for key, item, document in activity.items:
            base = bases.get(key, {})
            lean = one_item(
                ITEM.dump_python(items[item["name"]], mode="json", exclude_defaults=True)
            )
            _put(document, "tessera:item", trim(diff(item, base), lean, base))


def _put(document: dict[str, Any], term: str, patch: Any) -> None:
    if patch is not SAME and patch != {}:
        document[term] = patch


def write_bundle(
    content: dict[str, Any], *, applet_id: str | None = None, media_type: str = "application/zip"
) -> bytes:
    """``content`` (an applet document, canonical or not) as a ReproSchema bundle: a zip, or
    with ``media_type="application/json"`` the JSON bundle ``{"root", "files"}``."""
    root, files = write_files(content, applet_id=applet_id)
    if media_type == "application/json":
        listed = {p: json.loads(c) if isinstance(c, bytes) else c for p, c in files.items()}
        return json.dumps({"root": root, "files": listed}, ensure_ascii=False).encode()
    return pack_zip({p: c if isinstance(c, bytes) else _encode(c) for p, c in files.items()})


def _encode(content: Any) -> bytes:
    if isinstance(content, str):
        return content.encode("utf-8")
    return (json.dumps(content, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
