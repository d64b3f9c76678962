"""What changed from one version of an applet to the next, as lines a manager reads.

The lines name parts the way the editor shows them ("Item 'mood' of activity 'Daily
check' added", "Option 'Never' score changed from 0 to 1 (item 'mood', activity 'Daily
check')") and never print what must stay private (key material). Parts are matched by
identity, not by position or name: activities, items and flows by ``id``; options by ``id``
when both sides have one, else by ``value``; rows by ``id``, else by label, else by
position; scores by ``id`` and sections by name. So a renamed item reads as a rename and an
item dragged to another activity as a move, never as a removal and an addition (which
would tell a manager its answers were gone).

The lines come in the document's order (the applet's own fields, then the activities in
their current order with removed ones where they were, then the flows), so the same two
versions always give the same lines, and two equal versions give none.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from tessera.applets.canon import APPLET_FIELDS

__all__ = ["MAX_LINE", "describe_changes"]

MAX_LINE = 200
"""No line is longer (a long name or text is cut with "…")."""

_MAX_QUOTED = 60

Part = dict[str, Any]
Key = Callable[[int, Part], Hashable | None]


def describe_changes(previous: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """Lines a manager reads, saying what changed from ``previous`` to ``current`` (two
    canonical contents); ``previous`` is None for the first version (one line saying what
    was created)."""
    if previous is None:
        return [_created(current)]
    lines = [
        *_applet(previous, current),
        *_activities(previous.get("activities", []), current.get("activities", [])),
        *_flows(previous.get("flows", []), current.get("flows", [])),
    ]
    return [_clip(line) for line in lines]


# --- how values read ---------------------------------------------------------------------------


def _clip(text: str, limit: int = MAX_LINE) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _q(text: Any) -> str:
    """A name or text in quotes, cut short so that one long name cannot crowd out the line."""
    return f"'{_clip(str(text), _MAX_QUOTED)}'"


def _show(value: Any) -> str | None:
    """``value`` as a line prints it, or None when it is too big to read in a line (a
    list of stimuli, a dict): the line then only says that it changed."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return _q(value)
    if isinstance(value, list):
        shown = [_show(v) for v in value]
        text = "[" + ", ".join(s or "" for s in shown) + "]"
        if None not in shown and len(text) <= _MAX_QUOTED:
            return text
    return None


def _changed(what: str, old: Any, new: Any, suffix: str = "") -> list[str]:
    if old == new:
        return []
    before, after = _show(old), _show(new)
    if before is None or after is None:
        return [f"{what} changed{suffix}"]
    return [f"{what} changed from {before} to {after}{suffix}"]


def _presence(
    what: str, old: Any, new: Any, suffix: str = "", *, added: str = "added"
) -> list[str]:
    """A value whose content is not worth a line (a URL, a long text, a key): only whether
    it came, went or changed."""
    if old == new:
        return []
    verb = added if old is None else "removed" if new is None else "changed"
    return [f"{what} {verb}{suffix}"]


def _texts(
    label: str, old: dict[str, str] | None, new: dict[str, str] | None, where: str = ""
) -> list[str]:
    """One line per language of a localized text that came, went or changed."""
    old, new = old or {}, new or {}
    return [
        line
        for language in _keys(old, new)
        for line in _presence(f"{label} ({language}){where}", old.get(language), new.get(language))
    ]


def _flags(subject: str, old: Part, new: Part, table: dict[str, tuple[str, str]]) -> list[str]:
    return [
        f"{subject} {on if new.get(key) else off}"
        for key, (on, off) in table.items()
        if old.get(key) != new.get(key)
    ]


def _rest(old: Part, new: Part, known: Iterable[str], where: str) -> list[str]:
    """Fields this module has no words for yet still get a line, so a version that differs
    never reads as unchanged."""
    skip = set(known)
    return [
        line
        for key in _keys(old, new)
        if key not in skip
        for line in _changed(f"Field {_q(key)}{where}", old.get(key), new.get(key))
    ]


def _keys(old: Iterable[str], new: Iterable[str]) -> list[str]:
    """Keys of both, in ``old``'s order and then the new ones in ``new``'s."""
    before = list(old)
    return before + [key for key in new if key not in before]


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _renamed(kind: str, old: Part, new: Part, where: str = "", key: str = "name") -> list[str]:
    if old.get(key) == new.get(key):
        return []
    return [f"{kind} {_q(old.get(key))}{where} renamed to {_q(new.get(key))}"]


# --- matching the parts of two versions --------------------------------------------------------


@dataclass(frozen=True)
class _Pair:
    """A part as it was and as it is (None where it is missing), with its positions from 1."""

    old: Part | None
    new: Part | None
    old_position: int = 0
    new_position: int = 0
    moved: bool = False

    def move(self, subject: str, suffix: str = "") -> list[str]:
        if not self.moved:
            return []
        return [f"{subject} moved from position {self.old_position} to {self.new_position}{suffix}"]


def _by(field: str) -> Key:
    return lambda _index, part: part.get(field)


def _by_position(index: int, _part: Part) -> Hashable:
    return index


def _pairs(old: list[Part], new: list[Part], *keys: Key) -> list[_Pair]:
    """The parts of two lists matched by the first of ``keys`` that pairs them, in the
    current order with removed parts where they were."""
    matched = _match(old, new, keys)
    kept = _kept_in_order(matched)
    removed_after: dict[int | None, list[int]] = {}
    anchor: int | None = None
    paired = set(matched.values())
    for i in range(len(old)):
        if i in paired:
            anchor = i
        else:
            removed_after.setdefault(anchor, []).append(i)

    def gone(i: int) -> _Pair:
        return _Pair(old[i], None, old_position=i + 1)

    pairs = [gone(i) for i in removed_after.get(None, [])]
    for j, part in enumerate(new):
        was = matched.get(j)
        if was is None:
            pairs.append(_Pair(None, part, new_position=j + 1))
            continue
        pairs.append(_Pair(old[was], part, was + 1, j + 1, moved=j not in kept))
        pairs.extend(gone(k) for k in removed_after.get(was, []))
    return pairs


def _match(old: list[Part], new: list[Part], keys: Iterable[Key]) -> dict[int, int]:
    """Current index -> previous index. Two parts that both have an ``id`` pair only when
    it is the same, whatever the other keys say."""
    matched: dict[int, int] = {}
    for key in keys:
        used = set(matched.values())
        free: dict[Hashable, int] = {}
        for i, part in enumerate(old):
            k = key(i, part)
            if i not in used and k is not None:
                free.setdefault(k, i)
        for j, part in enumerate(new):
            k = key(j, part)
            if j in matched or k is None or k not in free:
                continue
            ids = (old[free[k]].get("id"), part.get("id"))
            if None in ids or ids[0] == ids[1]:
                matched[j] = free.pop(k)
    return matched


def _kept_in_order(matched: dict[int, int]) -> set[int]:
    """The current indices of a longest run of matched parts still in their previous
    relative order; the others moved. Dragging one part to the top is then one move, not a
    shift of every part it passed, and an insertion or removal moves nothing."""
    news = sorted(matched)
    olds = [matched[j] for j in news]
    tail_values: list[int] = []
    tail_at: list[int] = []
    before = [-1] * len(olds)
    for n, value in enumerate(olds):
        k = bisect_left(tail_values, value)
        before[n] = tail_at[k - 1] if k else -1
        if k == len(tail_values):
            tail_values.append(value)
            tail_at.append(n)
        else:
            tail_values[k], tail_at[k] = value, n
    kept: set[int] = set()
    n = tail_at[-1] if tail_at else -1
    while n >= 0:
        kept.add(news[n])
        n = before[n]
    return kept


# --- the applet --------------------------------------------------------------------------------


def _created(content: dict[str, Any]) -> str:
    activities = content.get("activities", [])
    counts = [
        _count(len(activities), "activity", "activities"),
        _count(sum(len(a.get("items", [])) for a in activities), "item", "items"),
    ]
    if flows := content.get("flows"):
        counts.append(_count(len(flows), "flow", "flows"))
    listed = ", ".join(counts[:-1]) + " and " + counts[-1]
    return f"Applet created with {listed}"


def _applet(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for field in APPLET_FIELDS:
        before, after = old.get(field), new.get(field)
        if before != after:
            describe = _APPLET_FIELDS.get(field)
            lines += (
                describe(before, after)
                if describe
                else _changed(f"Field {_q(field)}", before, after)
            )
    return lines


def _theme(old: Part | None, new: Part | None) -> list[str]:
    old, new = old or {}, new or {}
    lines: list[str] = []
    for key in _keys(old, new):
        before, after = old.get(key), new.get(key)
        what = f"Theme {key.replace('_', ' ').replace('color', 'colour')}"
        if before == after:
            continue
        if key.endswith("color") and before and after:
            lines.append(f"{what} changed from {before} to {after}")
        elif key.endswith("color") and after:
            lines.append(f"{what} set to {after}")
        else:
            lines += _presence(what, before, after)
    return lines


def _retention(retention: Part | None) -> str:
    if not retention or retention.get("period") == "indefinitely":
        return "indefinitely"
    amount, period = retention.get("amount"), str(retention.get("period"))
    return f"{amount} {period.removesuffix('s') if amount == 1 else period}"


_APPLET_FIELDS: dict[str, Callable[[Any, Any], list[str]]] = {
    "display_name": lambda old, new: _changed("Display name", old, new),
    "description": lambda old, new: _texts("Description", old, new),
    "about": lambda old, new: _texts("About", old, new),
    "image": lambda old, new: _presence("Image", old, new),
    "watermark": lambda old, new: _presence("Watermark", old, new),
    "theme": _theme,
    # The key is public, but a line is no place for key material: only that it changed.
    "encryption": lambda old, new: _presence("Encryption key", old, new, added="set"),
    "retention": lambda old, new: [
        f"Retention changed from {_retention(old)} to {_retention(new)}"
    ],
}


# --- activities --------------------------------------------------------------------------------

_ACTIVITY_FLAGS = {
    "show_all_at_once": ("now shows all items at once", "no longer shows all items at once"),
    "is_skippable": ("is now skippable", "is no longer skippable"),
    "is_reviewable": ("is now reviewable", "is no longer reviewable"),
    "response_is_editable": (
        "now lets respondents edit their responses",
        "no longer lets respondents edit their responses",
    ),
    "is_hidden": ("is now hidden", "is no longer hidden"),
}
_REPORT_FLAGS = {
    "generate_report": ("now generates a report", "no longer generates a report"),
    "show_score_summary": ("now shows a score summary", "no longer shows a score summary"),
}
_ACTIVITY_KNOWN = {"id", "order", "name", "items", "description", "splash_screen", "image"}
_NO_REPORTS: Part = {"generate_report": False, "show_score_summary": False, "reports": []}

Homes = dict[Any, tuple[Part, Part]]
"""Item id -> (the item, its activity) in one version."""


def _homes(activities: list[Part]) -> Homes:
    return {
        item["id"]: (item, activity)
        for activity in activities
        for item in activity.get("items", [])
        if item.get("id") is not None
    }


def _activities(old: list[Part], new: list[Part]) -> list[str]:
    was, now = _homes(old), _homes(new)
    lines: list[str] = []
    for pair in _pairs(old, new, _by("id")):
        if pair.new is None:
            assert pair.old is not None
            lines.append(f"Activity {_q(pair.old['name'])} removed")
            continue
        name = pair.new["name"]
        if pair.old is None:
            count = _count(len(pair.new.get("items", [])), "item", "items")
            lines.append(f"Activity {_q(name)} added with {count}")
            old_items: list[Part] | None = None
        else:
            lines += _renamed("Activity", pair.old, pair.new)
            lines += pair.move(f"Activity {_q(name)}")
            lines += _activity_fields(pair.old, pair.new)
            old_items = pair.old.get("items", [])
        lines += _items(old_items, pair.new.get("items", []), name, was=was, now=now)
    return lines


def _activity_fields(old: Part, new: Part) -> list[str]:
    name = new["name"]
    where = f" of activity {_q(name)}"
    return [
        *_texts("Description", old.get("description"), new.get("description"), where),
        *_presence(f"Splash screen{where}", old.get("splash_screen"), new.get("splash_screen")),
        *_presence(f"Image{where}", old.get("image"), new.get("image")),
        *_flags(f"Activity {_q(name)}", old, new, _ACTIVITY_FLAGS),
        *_reports(old.get("scores_and_reports"), new.get("scores_and_reports"), name),
        *_rest(old, new, {*_ACTIVITY_KNOWN, *_ACTIVITY_FLAGS, "scores_and_reports"}, where),
    ]


def _reports(old: Part | None, new: Part | None, activity: str) -> list[str]:
    old, new = old or _NO_REPORTS, new or _NO_REPORTS
    if old == new:
        return []
    where = f" of activity {_q(activity)}"
    lines = _flags(f"Activity {_q(activity)}", old, new, _REPORT_FLAGS)

    def key(_index: int, report: Part) -> Hashable:
        return (report.get("type"), report.get("id") or report.get("name"))

    for pair in _pairs(old.get("reports", []), new.get("reports", []), key):
        report = pair.new or pair.old or {}
        kind = "Score" if report.get("type") == "score" else "Section"
        if pair.old is None or pair.new is None:
            lines.append(
                f"{kind} {_q(report.get('name'))}{where} {'added' if pair.new else 'removed'}"
            )
            continue
        subject = f"{kind} {_q(pair.new.get('name'))}{where}"
        lines += _renamed(kind, pair.old, pair.new, where)
        lines += pair.move(subject)
        details = [
            field.replace("_", " ")
            for field in _keys(pair.old, pair.new)
            if field not in ("type", "id", "name") and pair.old.get(field) != pair.new.get(field)
        ]
        if details:
            lines.append(f"{subject} changed ({', '.join(details)})")
    lines += _rest(old, new, {*_REPORT_FLAGS, "reports"}, f" of the reports{where}")
    return lines


# --- items -------------------------------------------------------------------------------------

_ITEM_FLAGS = {
    "is_hidden": ("is now hidden", "is no longer hidden"),
    "allow_edit": (
        "now lets respondents edit the answer",
        "no longer lets respondents edit the answer",
    ),
}
_ITEM_KNOWN = {"id", "order", "name", "question", "conditional_logic", "response_type"}


def _items(
    old: list[Part] | None, new: list[Part], activity: str, *, was: Homes, now: Homes
) -> list[str]:
    """The items of one activity (``old`` None: a new one, whose own items its line
    counts); an item that came from another activity is a move, told here where it now is,
    and one that left for another is told there."""
    lines: list[str] = []
    for pair in _pairs(old or [], new, _by("id")):
        if pair.new is None:
            assert pair.old is not None
            if pair.old.get("id") not in now:
                lines.append(f"Item {_q(pair.old['name'])} of activity {_q(activity)} removed")
        elif pair.old is None:
            came_from = was.get(pair.new.get("id"))
            if came_from is None and old is not None:
                lines.append(f"Item {_q(pair.new['name'])} of activity {_q(activity)} added")
            elif came_from is not None:
                item, home = came_from
                lines.append(
                    f"Item {_q(item['name'])} moved from activity {_q(home['name'])}"
                    f" to activity {_q(activity)}"
                )
                lines += _item(_Pair(item, pair.new), activity)
        else:
            lines += _item(pair, activity)
    return lines


def _item(pair: _Pair, activity: str) -> list[str]:
    old, new = pair.old or {}, pair.new or {}
    at = _At(new["name"], activity)
    subject = f"Item {_q(at.item)} of activity {_q(activity)}"
    lines = _renamed("Item", old, new, f" of activity {_q(activity)}")
    lines += pair.move(subject)
    type_changed = old.get("response_type") != new.get("response_type")
    if type_changed:
        lines.append(
            f"{subject} changed type from {old.get('response_type')} to {new.get('response_type')}"
        )
    lines += _texts("Question", old.get("question"), new.get("question"), at.of)
    lines += _flags(subject, old, new, _ITEM_FLAGS)
    lines += _presence(
        f"Conditional logic{at.of}", old.get("conditional_logic"), new.get("conditional_logic")
    )
    lines += _setup(old, new, at, type_changed=type_changed)
    return lines + _rest(old, new, {*_ITEM_KNOWN, *_ITEM_FLAGS, "response_values", "config"}, at.of)


def _setup(old: Part, new: Part, at: _At, *, type_changed: bool) -> list[str]:
    """The item's values and settings. A new type has others: they are compared only when
    they keep their shape (singleSelect <-> multiSelect), else the type's line says it all."""
    lines: list[str] = []
    for field, label, describe in (
        ("response_values", "Response values", _values),
        ("config", "Settings", _config),
    ):
        before, after = old.get(field), new.get(field)
        same_shape = not type_changed or (
            isinstance(before, dict) and isinstance(after, dict) and before.keys() == after.keys()
        )
        if isinstance(before, dict) and isinstance(after, dict) and same_shape:
            lines += describe(before, after, at)
        elif not type_changed:
            lines += _changed(f"{label}{at.of}", before, after)
    return lines


def _config(old: Part, new: Part, at: _At) -> list[str]:
    return [
        line
        for key, before, after in _settings(old, new)
        for line in _changed(f"Setting {_q(key)}{at.of}", before, after)
    ]


def _settings(old: Part, new: Part, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Changed settings, nested ones named by their path (``a.b``); a list or a dict that
    is not on both sides is one setting, so a large config reads one line per key."""
    changes: list[tuple[str, Any, Any]] = []
    for key in _keys(old, new):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            changes += _settings(before, after, f"{prefix}{key}.")
        else:
            changes.append((f"{prefix}{key}", before, after))
    return changes


# --- response values ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _At:
    """Where a value is, as lines name it: "... of item 'mood' in activity 'Daily check'" for
    the item's own values, "... (item 'mood', activity 'Daily check')" for an option's."""

    item: str
    activity: str

    @property
    def of(self) -> str:
        return f" of item {_q(self.item)} in activity {_q(self.activity)}"

    @property
    def to(self) -> str:
        return f"item {_q(self.item)} of activity {_q(self.activity)}"

    @property
    def suffix(self) -> str:
        return f" (item {_q(self.item)}, activity {_q(self.activity)})"


_VALUE_LABELS = {
    "min_label": "minimum label",
    "max_label": "maximum label",
    "min_image": "minimum image",
    "max_image": "maximum image",
    "palette_name": "palette",
    "drawing_example": "drawing example",
    "drawing_background": "drawing background",
    "max_duration_s": "maximum duration (s)",
    "file": "audio file",
    "row_image": "image",
}
_UNPRINTED = {
    "min_image",
    "max_image",
    "drawing_example",
    "drawing_background",
    "file",
    "row_image",
    "image",
    "tooltip",
    "alert",
}
_NOT_VALUES = {"id", "label", "row_name", "text"}


def _values(old: Part, new: Part, at: _At, part: str | None = None) -> list[str]:
    """The values of an item (``part`` None) or of one of its rows, one line per key."""

    def what(label: str) -> str:
        return f"{part} {label}" if part else label[0].upper() + label[1:] + at.of

    suffix = at.suffix if part else ""
    lines: list[str] = []
    for key in _keys(old, new):
        before, after = old.get(key), new.get(key)
        if key == "min_value":
            lines += _range(what("range"), old, new, suffix)
        elif key in _NOT_VALUES or key == "max_value" or before == after:
            continue
        elif key == "options" and isinstance(before, list) and isinstance(after, list):
            lines += _options(before, after, at)
        elif key == "rows" and isinstance(before, list) and isinstance(after, list):
            lines += _rows(before, after, at)
        else:
            label = _VALUE_LABELS.get(key, key.replace("_", " "))
            describe = _presence if key in _UNPRINTED else _changed
            lines += describe(what(label), before, after, suffix)
    return lines


def _range(what: str, old: Part, new: Part, suffix: str) -> list[str]:
    def bounds(values: Part) -> str:
        return f"{_show(values.get('min_value'))}–{_show(values.get('max_value'))}"  # noqa: RUF001

    if bounds(old) == bounds(new):
        return []
    return [f"{what} changed from {bounds(old)} to {bounds(new)}{suffix}"]


def _options(old: list[Part], new: list[Part], at: _At) -> list[str]:
    lines: list[str] = []
    for pair in _pairs(old, new, _by("id"), _by("value")):
        if pair.old is None or pair.new is None:
            option = pair.new or pair.old or {}
            verb = "added to" if pair.new else "removed from"
            lines.append(f"Option {_q(option.get('text'))} {verb} {at.to}")
            continue
        subject = f"Option {_q(pair.new.get('text'))}"
        lines += [line + at.suffix for line in _renamed("Option", pair.old, pair.new, key="text")]
        lines += pair.move(subject, at.suffix)
        for key in _keys(pair.old, pair.new):
            before, after = pair.old.get(key), pair.new.get(key)
            if key in ("id", "text") or before == after:
                continue
            if key == "is_hidden":
                lines.append(f"{subject} is {'now' if after else 'no longer'} hidden{at.suffix}")
            else:
                describe = _presence if key in _UNPRINTED else _changed
                lines += describe(
                    f"{subject} {key.replace('color', 'colour')}", before, after, at.suffix
                )
    return lines


def _rows(old: list[Part], new: list[Part], at: _At) -> list[str]:
    """Rows of a slider-rows item (``label``) or of a grid (``row_name``)."""

    def name(_index: int, row: Part) -> Hashable | None:
        return row.get("label", row.get("row_name"))

    lines: list[str] = []
    for pair in _pairs(old, new, _by("id"), name, _by_position):
        row = pair.new or pair.old or {}
        if pair.old is None or pair.new is None:
            verb = "added to" if pair.new else "removed from"
            lines.append(f"Row {_q(name(0, row))} {verb} {at.to}")
            continue
        subject = f"Row {_q(name(0, row))}"
        if name(0, pair.old) != name(0, pair.new):
            lines.append(
                f"Row {_q(name(0, pair.old))} renamed to {_q(name(0, pair.new))}{at.suffix}"
            )
        lines += pair.move(subject, at.suffix)
        lines += _values(pair.old, pair.new, at, part=subject)
    return lines


# --- flows -------------------------------------------------------------------------------------

_FLOW_FLAGS = {
    "is_single_report": ("now makes a single report", "no longer makes a single report"),
    "hide_badge": ("now hides its badge", "no longer hides its badge"),
    "is_hidden": ("is now hidden", "is no longer hidden"),
}
_FLOW_KNOWN = {"id", "order", "name", "description", "activities", "activity_ids"}


def _flows(old: list[Part], new: list[Part]) -> list[str]:
    lines: list[str] = []
    for pair in _pairs(old, new, _by("id")):
        if pair.new is None:
            assert pair.old is not None
            lines.append(f"Flow {_q(pair.old['name'])} removed")
            continue
        subject = f"Flow {_q(pair.new['name'])}"
        runs = ", ".join(_q(name) for name in pair.new.get("activities", []))
        if pair.old is None:
            lines.append(f"{subject} added, running {runs}")
            continue
        lines += _renamed("Flow", pair.old, pair.new)
        lines += pair.move(subject)
        # Activities are followed by id: an activity's rename is told once, by the activity.
        runs_key = "activity_ids" if "activity_ids" in pair.new else "activities"
        if pair.old.get(runs_key) != pair.new.get(runs_key):
            lines.append(f"{subject} now runs {runs}")
        where = f" of flow {_q(pair.new['name'])}"
        lines += _texts(
            "Description", pair.old.get("description"), pair.new.get("description"), where
        )
        lines += _flags(subject, pair.old, pair.new, _FLOW_FLAGS)
        lines += _rest(pair.old, pair.new, {*_FLOW_KNOWN, *_FLOW_FLAGS}, where)
    return lines
