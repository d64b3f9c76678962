"""One ReproSchema item (a ``Field``) read as an applet item: its response type from
``ui.inputType``, its values from ``responseOptions``, its config from the activity's
``ui.addProperties``, and its conditions from ``isVis``.

What comes out is the item as ReproSchema says it (a dict that may not validate yet: the
types ReproSchema has no input for need the ``tessera:item`` patch); what is read but has no
place in an item is noted on the node.
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from tessera.applets.reproschema import vocabulary as v
from tessera.applets.reproschema.expressions import Comparison, Includes, Visibility
from tessera.applets.reproschema.jsonld import Node

__all__ = [
    "ItemSource",
    "allow_tokens",
    "conditions_of",
    "infer_item",
    "note_leftovers",
    "stem",
    "url_of",
]

_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_NO_SKIP = frozenset({"message", "flanker", "stabilityTracker", "ABTrails"})
_TEXT_LIMITS = {"text": 10_000, "paragraphText": 50_000}


def stem(where: str) -> str:
    """A name from a path or an id: ``activities/PHQ-9/items/phq9_1`` -> ``phq9_1``."""
    name = posixpath.basename(where.split("#", 1)[0].rstrip("/"))
    return name.rsplit(".", 1)[0] if name.endswith((".jsonld", ".json")) else name


def url_of(node: Node, iris: tuple[str, ...]) -> str | None:
    """An http(s) URL given as a string, an ``@id`` or a media object's ``contentUrl``."""
    for value in node.values(iris):
        if isinstance(value, dict):
            value = value.get("@id") or value.get("contentUrl") or value.get("schema:contentUrl")
        if isinstance(value, str) and _URL.match(value) and len(value) <= 2048:
            return value
        node.note(node.key(iris), str(value), "not an http(s) URL: dropped")
    return None


def _integer(value: Any) -> int | None:
    if isinstance(value, dict):
        value = value.get("@value")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def allow_tokens(values: list[Any]) -> set[str]:
    """``allow`` values by their last segment: ``reproschema:AllowSkip`` -> ``allowskip``."""
    return {re.split(r"[:/#]", str(t))[-1].casefold() for t in values if isinstance(t, str)}


@dataclass
class ItemSource:
    """An item of an activity's ``ui.order``, with what the activity says of it."""

    node: Node
    props: Node | None
    options: Node | None
    name: str
    input_type: str
    kind: str | None
    hidden: bool
    expression: str | None = None


def infer_item(source: ItemSource, *, scored: bool) -> dict[str, Any] | None:
    """The item as ReproSchema says it, or ``None`` (noted) when no type fits."""
    node, kind = source.node, source.kind
    field = node.key(v.INPUT_TYPE)
    if kind is None:
        reason = (
            "no input type and no choices: the item is skipped"
            if not source.input_type
            else "no Tessera response type for this input: the item is skipped"
        )
        node.note(field, source.input_type, reason)
        return None
    if source.input_type.casefold() in v.INPUT_NOTES:
        node.note(field, source.input_type, v.INPUT_NOTES[source.input_type.casefold()])
    item: dict[str, Any] = {
        "name": source.name,
        "question": node.texts(v.QUESTION),
        "is_hidden": source.hidden,
    }
    config: dict[str, Any] = {}
    if kind == "select":
        item.update(_select(source, scored, config))
    elif kind == "slider":
        item.update(_slider(source, scored, config))
    elif kind == "number":
        item.update(_number(source, config))
    elif kind in ("message", "audioPlayer"):
        audio = url_of(node, v.AUDIO) if node.has(v.AUDIO) else None
        item["response_type"] = "audioPlayer" if audio or kind == "audioPlayer" else "message"
        if item["response_type"] == "audioPlayer":
            item["response_values"] = {"file": audio}
    elif kind == "audio":
        item.update(_audio(source.options))
    else:
        item["response_type"] = kind
    _text_config(source, item, config)
    _skipping(source, item["response_type"], config)
    if config:
        item["config"] = config
    readonly = node.scalar(v.READONLY)
    if readonly is True:
        node.note(node.key(v.READONLY), "true", "read-only items are imported as questions")
    label, _ = node.label(v.PREF_LABEL)
    if label is not None and label != source.name.strip():
        node.note(
            node.key(v.PREF_LABEL), label, "an item has no label apart from its name and question"
        )
    return item


def _choices(source: ItemSource) -> list[dict[str, Any]] | None:
    options = source.options
    if options is None:
        return None
    if len(options.values(v.CHOICES)) > 200:
        options.note(options.key(v.CHOICES), "", "more than 200 choices: an item has at most 200")
        return None
    entries = options.children(v.CHOICES)
    if not entries:
        return None
    if any(isinstance(e, str) for e in entries):
        options.note(
            options.key(v.CHOICES),
            next(str(e) for e in entries if isinstance(e, str)),
            "choices listed in another document are not fetched",
        )
        return None
    found, dropped = [], set()
    for choice in entries:
        assert isinstance(choice, Node)
        text, others = choice.label(v.NAME)
        dropped.update(others)
        found.append(
            {"text": text, "value": choice.scalar(v.VALUE), "image": url_of(choice, v.IMAGE)}
        )
        note_leftovers(choice)
    if dropped:
        options.note(
            f"{options.key(v.CHOICES)}.name",
            ", ".join(sorted(dropped)),
            "an option's text has one language: English (or the first) is kept",
        )
    values = [_integer(c["value"]) for c in found]
    if None in values or len(set(values)) != len(values):
        options.note(
            f"{options.key(v.CHOICES)}.value",
            ", ".join(str(c["value"]) for c in found),
            "option values are distinct integers: numbered 0, 1, 2... instead",
        )
        values = list(range(len(found)))
    for choice, value in zip(found, values, strict=True):
        choice["value"] = value
        if not choice["text"]:
            choice["text"] = str(value)
        if len(choice["text"]) > 500:
            options.note(
                f"{options.key(v.CHOICES)}.name", choice["text"][:40], "cut to 500 characters"
            )
            choice["text"] = choice["text"][:500]
    return found


def _select(source: ItemSource, scored: bool, config: dict[str, Any]) -> dict[str, Any]:
    options = _choices(source)
    if options is None:
        source.node.note(
            source.node.key(v.INPUT_TYPE),
            source.input_type,
            "no choices to pick from: read as a text answer",
        )
        return {"response_type": "text"}
    multiple = source.options.scalar(v.MULTIPLE_CHOICE) if source.options else None
    if scored:
        config["add_scores"] = True
        for option in options:
            option["score"] = option["value"]
    for option in options:
        if option["image"] is None:
            del option["image"]
    _consume(source.options, v.MIN_VALUE, v.MAX_VALUE, v.VALUE_TYPE)
    return {
        "response_type": "multiSelect" if multiple in (True, "true") else "singleSelect",
        "response_values": {"options": options},
    }


def _slider(source: ItemSource, scored: bool, config: dict[str, Any]) -> dict[str, Any]:
    options = source.options
    values: dict[str, Any] = {}
    if options is not None:
        given = options.scalar(v.MIN_VALUE), options.scalar(v.MAX_VALUE)
        low, high = _integer(given[0]), _integer(given[1])
        if (given[0] is not None and low is None) or (given[1] is not None and high is None):
            options.note(
                options.key(v.MIN_VALUE),
                f"{given[0]}..{given[1]}",
                "a slider moves in whole steps: bounds that are not integers are dropped",
            )
        many = len(options.values(v.CHOICES)) > 1_001
        choices = [] if many else [c for c in options.children(v.CHOICES) if isinstance(c, Node)]
        numbers = [n for n in (_integer(c.scalar(v.VALUE)) for c in choices) if n is not None]
        low = low if low is not None else min(numbers, default=None)
        high = high if high is not None else max(numbers, default=None)
        if low is not None and high is not None:
            values.update(min_value=low, max_value=high)
        for end, choice in (("min", choices[0]), ("max", choices[-1])) if choices else ():
            label, _ = choice.label(v.NAME)
            if label is not None:
                values[f"{end}_label"] = label[:100]
            image = url_of(choice, v.IMAGE) if choice.has(v.IMAGE) else None
            if image is not None:
                values[f"{end}_image"] = image
        for choice in choices[1:-1]:
            if choice.has(v.NAME):
                options.note(
                    options.key(v.CHOICES),
                    choice.label(v.NAME)[0] or "",
                    "a slider is labelled at its ends only",
                )
        for choice in choices:
            choice.use_all()
        _consume(options, v.VALUE_TYPE)
    if scored:
        config["add_scores"] = True
        low, high = values.get("min_value", 0), values.get("max_value", 10)
        values["scores"] = list(range(low, high + 1)) if 0 < high - low <= 1_000 else None
    return {"response_type": "slider", "response_values": values}


def _audio(options: Node | None) -> dict[str, Any]:
    """A recording; ReproSchema gives its longest duration in milliseconds (``maxValue``)."""
    if options is None:
        return {"response_type": "audio"}
    limit = _integer(options.scalar(v.MAX_VALUE))
    _consume(options, v.MIN_VALUE, v.VALUE_TYPE)
    if limit is None:
        return {"response_type": "audio"}
    seconds = min(max(round(limit / 1000), 1), 3_600)
    if seconds * 1000 != limit:
        options.note(options.key(v.MAX_VALUE), str(limit), f"read as {seconds} s")
    return {"response_type": "audio", "response_values": {"max_duration_s": seconds}}


def _number(source: ItemSource, config: dict[str, Any]) -> dict[str, Any]:
    options = source.options
    low = _integer(options.scalar(v.MIN_VALUE)) if options else None
    high = _integer(options.scalar(v.MAX_VALUE)) if options else None
    if low is not None and high is not None and low < high:
        _consume(options, v.VALUE_TYPE)
        return {
            "response_type": "numberSelect",
            "response_values": {"min_value": low, "max_value": high},
        }
    config["numerical_response_required"] = True
    return {"response_type": "text"}


def _text_config(source: ItemSource, item: dict[str, Any], config: dict[str, Any]) -> None:
    kind = item["response_type"]
    if kind not in _TEXT_LIMITS or source.options is None:
        return
    options = source.options
    length = options.scalar(v.MAX_LENGTH)
    if length is not None:
        number = _integer(length)
        if number is not None and 1 <= number <= _TEXT_LIMITS[kind]:
            config["max_response_length"] = number
        else:
            options.note(options.key(v.MAX_LENGTH), str(length), "not a length an answer may have")
    if kind == "text":
        types = allow_tokens(options.values(v.VALUE_TYPE))
        if types & v.NUMERIC_TYPES:
            config["numerical_response_required"] = True
    _consume(options, v.VALUE_TYPE, v.MIN_VALUE, v.MAX_VALUE)


def _skipping(source: ItemSource, kind: str, config: dict[str, Any]) -> None:
    """``allow`` skip and ``valueRequired``: a text answer is required when its value is;
    another is skippable when ``allow`` says so or its value is explicitly not required."""
    props, node = source.props, source.node
    allow = allow_tokens(node.values(v.ALLOW)) | (
        allow_tokens(props.values(v.ALLOW)) if props else set()
    )
    required = props.scalar(v.VALUE_REQUIRED) if props else None
    for token in sorted(allow - v.SKIP_TOKENS):
        (props or node).note("allow", token, "no counterpart on an item")
    if kind in _NO_SKIP:
        return
    skip = bool(allow & v.SKIP_TOKENS)
    if kind in _TEXT_LIMITS:
        config["response_required"] = required is True
        config["skippable"] = skip
    else:
        config["skippable"] = skip or required is False


def _consume(node: Node | None, *terms: tuple[str, ...]) -> None:
    if node is not None:
        for iris in terms:
            node.raw(iris)


def note_leftovers(node: Node) -> None:
    for key, value in node.leftovers(v.METADATA):
        node.note(key, _text(value), "no counterpart in a Tessera applet")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# --- isVis -> conditional logic ---------------------------------------------------------------


def conditions_of(
    visibility: Visibility, earlier: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any] | None, str]:
    """The conditional logic of ``visibility`` on the ``earlier`` items (by casefolded
    name), or ``None`` and why not."""
    match = visibility.match
    single = len(visibility.tests) == 1
    conditions: list[dict[str, Any]] = []
    for test in visibility.tests:
        item = earlier.get(test.variable.casefold())
        if item is None:
            return None, f"{test.variable} is not an earlier item of this activity"
        kind, name = item.get("response_type"), item["name"]
        if kind in ("singleSelect", "multiSelect"):
            values = [o["value"] for o in item["response_values"]["options"]]
            found, match = _on_options(test, kind, name, values, match, single)
        elif kind in ("slider", "numberSelect"):
            found = _on_number(test, name)
        else:
            return None, f"a {kind} item ({name}) cannot be tested"
        if found is None:
            return None, f"{test.variable}: this test does not fit a {kind} item"
        conditions.extend(found)
    if not conditions:
        return None, "always or never true"
    if len(conditions) > 50:
        return None, f"{len(conditions)} conditions: at most 50"
    return {"match": match, "conditions": conditions}, ""


def _holds(value: int, test: Comparison) -> bool:
    return {
        ">": value > test.value,
        "<": value < test.value,
        ">=": value >= test.value,
        "<=": value <= test.value,
        "==": value == test.value,
        "!=": value != test.value,
    }[test.op]


def _on_options(
    test: Comparison | Includes, kind: str, name: str, values: list[int], match: str, single: bool
) -> tuple[list[dict[str, Any]] | None, Any]:
    def each(operator: str, chosen: list[int]) -> list[dict[str, Any]]:
        return [{"item": name, "type": operator, "payload": {"option_value": o}} for o in chosen]

    if kind == "multiSelect":
        if not isinstance(test, Includes) or test.value not in values:
            return None, match
        chosen = [o for o in values if o == test.value]
        return each("NOT_INCLUDES_OPTION" if test.negated else "INCLUDES_OPTION", chosen), match
    if isinstance(test, Includes):
        return None, match
    if test.op in ("==", "!="):
        chosen = [o for o in values if o == test.value]
        if not chosen:
            return None, match
        return each("EQUAL_TO_OPTION" if test.op == "==" else "NOT_EQUAL_TO_OPTION", chosen), match
    holding = [o for o in values if _holds(o, test)]
    others = [o for o in values if o not in holding]
    if single:
        if not holding:
            return None, match
        if others and len(others) < len(holding):
            return each("NOT_EQUAL_TO_OPTION", others), "all"
        return each("EQUAL_TO_OPTION", holding), "any" if len(holding) > 1 else "all"
    if match == "any":
        return each("EQUAL_TO_OPTION", holding), match
    return each("NOT_EQUAL_TO_OPTION", others), match


_NUMERIC = {">": "GREATER_THAN", "<": "LESS_THAN", "==": "EQUAL", "!=": "NOT_EQUAL"}


def _on_number(test: Comparison | Includes, name: str) -> list[dict[str, Any]] | None:
    if isinstance(test, Includes):
        return None
    value, op = test.value, test.op
    if op in (">=", "<="):
        if not isinstance(value, int):
            return None
        value, op = (value - 1, ">") if op == ">=" else (value + 1, "<")
    return [{"item": name, "type": _NUMERIC[op], "payload": {"value": value}}]
