"""MISP's ``restSearch``: the filters ``events/restSearch`` and ``attributes/restSearch``
accept, read from every loose form MISP and PyMISP use, the SQL selecting the matching rows
among those the viewer may see, and MISP's CSV export of attributes.

Forms (``AppModel::convert_filters``, ``AppController::_harvestParameters``): a value or a
list; ``{"OR": [...], "AND": [...], "NOT": [...]}``; ``"!x"`` for NOT (in a list or a
string); ``"a&&!b"`` and ``"a||b"`` strings; a body wrapped in ``{"request": {...}}``.
Booleans are ``0``/``1``/``"0"``/``"1"``/``true``/``false``; moments are Unix timestamps,
``YYYY-MM-DD``, ISO 8601 or ``7d``/``12h``/``30m``/``10s`` ago, ranges ``[from, to]``
(either order, ``0`` for "no lower bound"). Unknown parameters are ignored, as MISP does;
a known one with an invalid value raises :class:`FilterError` naming it.

Semantics, after ``Event::filterEventIds`` and ``MispAttribute::buildFilterConditions``:

* ``value`` (``value1`` or ``value2``; IPv6 compressed), ``value1``, ``value2``,
  ``comment``, ``type`` (``email-src``/``-dst`` bring ``email``), ``category``,
  ``object_relation``, ``to_ids``, ``deleted``: the attribute; in the events scope, the
  event has a visible attribute matching all of them (and one per AND term). A term
  starting or ending with ``%`` is a case-insensitive pattern (``_`` and ``\\`` literal),
  any other is exact.
* ``tags`` (names, ``%`` patterns or ids; case-insensitive): OR/AND an event tag or a tag of
  one of its visible attributes (events), the attribute's or its event's (attributes); NOT
  excludes events carrying it (events), attributes or events carrying it (attributes).
  ``event_tags`` (events): event tags only.
* ``org``: the creator organisation (``orgc_id``), by id, uuid, name or name pattern.
* ``eventid``: ids or uuids (``all``: any); ``uuid``: the event's or an attribute's uuid.
* ``eventinfo``, ``threat_level_id``, ``published``: the event.
* ``sharinggroup`` (ids): shared with one of those sharing groups (distribution 4): the event
  (events), the attribute (attributes).
* ``first_seen`` / ``last_seen``: the attribute's (stored in microseconds); a moment is a
  lower bound of ``first_seen``, an upper bound of ``last_seen``; ``[from, to]`` a range.
* ``searchall`` (MISP's wildcard, ``Event::set_filter_wildcard``): the event's info, a
  visible attribute's ``value1``, ``value2`` or ``comment``, or the name of a tag of the
  event or of a visible attribute (events); the same of the attribute and its event
  (attributes).
* ``from``/``date_from``, ``to``/``date_to`` (PyMISP's names), ``date`` (a moment or a
  range; MISP reads it in the events scope only): the event's ``date``. ``timestamp``: the
  event's (events) or attribute's (attributes) ``timestamp``; ``event_timestamp``: the
  event's; ``attribute_timestamp`` (attributes): the attribute's; ``publish_timestamp`` and
  ``last``: the event's ``publish_timestamp``. A single moment is a lower bound.
* ``deleted``: ``0`` (the default), ``1``/``"only"`` or ``[0, 1]``, on attributes and their
  objects. ``limit``/``page``: ``LIMIT``/``OFFSET`` by id (``limit`` ``0``: none).
* ``returnFormat``: ``json`` (``download``), ``csv`` or ``text``; ``requested_attributes``,
  ``includeContext``, ``headerless`` shape the CSV; ``includeEventTags`` and ``metadata``
  (events) shape the JSON.
* ``withAttachments`` and ``enforceWarninglist`` are accepted and not applied (no
  attachments are served, no warninglists are kept): :attr:`Filters.ignored` names them.

Where MISP is careless this module is not: an attribute filter in the events scope matches
one attribute the viewer may see (MISP tests each filter on any attribute, visible or not);
``AND`` terms must each match (MISP reads ``AND`` on a one-valued field as ``IN``); exact
values compare case-sensitively (MISP's MySQL collation folds case; MISP lower-cases
hashes and host names on save). Tags match whether local or not, as in MISP.

Not supported: ``searchall``/``quickFilter``, ``sharinggroup``, ``first_seen``/``last_seen``,
``value1``/``value2``, ``comment``, ``org.*``/``galaxy.*``, ``order``,
``requested_obj_attributes``, decaying and correlation options.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from tessera.sync.access import element_filter, event_filter
from tessera.sync.viewer import Viewer

__all__ = [
    "CSV_CONTEXT_FIELDS",
    "CSV_DEFAULT_FIELDS",
    "CSV_OBJECT_FIELDS",
    "FilterError",
    "Filters",
    "Scope",
    "Span",
    "Terms",
    "attributes_query",
    "csv_fields",
    "csv_header",
    "csv_row",
    "events_query",
    "parse_filters",
    "render_csv",
]

Scope = Literal["events", "attributes"]
T = TypeVar("T")


class FilterError(ValueError):
    """A restSearch parameter with a value MISP's forms do not allow."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"Invalid {parameter}: {problem}")
        self.parameter = parameter
        self.problem = problem


@dataclass(frozen=True)
class Terms(Generic[T]):
    """One parameter's terms: a row matches one of ``any_of``, each of ``all_of`` and none
    of ``none_of`` (the groups left empty do not constrain)."""

    any_of: tuple[T, ...] = ()
    all_of: tuple[T, ...] = ()
    none_of: tuple[T, ...] = ()


@dataclass(frozen=True)
class Span:
    """Unix seconds, both bounds inclusive; ``None`` is open."""

    start: int | None = None
    end: int | None = None

    def __and__(self, other: Span) -> Span:
        starts = [s for s in (self.start, other.start) if s is not None]
        ends = [e for e in (self.end, other.end) if e is not None]
        return Span(max(starts) if starts else None, min(ends) if ends else None)


@dataclass(frozen=True)
class Filters:
    """A restSearch request, read: ``None`` (or empty) is "not filtered on"."""

    scope: Scope
    return_format: Literal["json", "csv", "text"] = "json"
    value: Terms[str] | None = None
    value1: Terms[str] | None = None
    value2: Terms[str] | None = None
    comment: Terms[str] | None = None
    searchall: Terms[str] | None = None
    """MISP's wildcard: the event's info, an attribute's value or comment, or a tag's name"""
    type: Terms[str] | None = None
    category: Terms[str] | None = None
    object_relation: Terms[str] | None = None
    tags: Terms[int | str] | None = None
    event_tags: Terms[int | str] | None = None
    org: Terms[int | UUID | str] | None = None
    eventid: Terms[int | UUID] | None = None
    uuid: Terms[UUID] | None = None
    eventinfo: Terms[str] | None = None
    sharinggroup: Terms[int] | None = None
    """sharing group ids: of the event (events scope) or of the attribute (attributes)"""
    threat_level_id: frozenset[int] | None = None
    date_from: str | None = None
    """``YYYY-MM-DD``, inclusive"""
    date_to: str | None = None
    event_timestamp: Span | None = None
    attribute_timestamp: Span | None = None
    first_seen: Span | None = None
    """of the attribute, in microseconds (as stored); a single moment is a lower bound"""
    last_seen: Span | None = None
    """of the attribute, in microseconds; a single moment is an upper bound"""
    publish_timestamp: Span | None = None
    to_ids: frozenset[bool] | None = None
    published: frozenset[bool] | None = None
    deleted: frozenset[bool] | None = None
    """``None``: not deleted, as ``frozenset({False})``"""
    include_event_tags: bool = False
    include_context: bool = False
    headerless: bool = False
    requested_attributes: tuple[str, ...] | None = None
    metadata: bool = False
    limit: int | None = None
    page: int | None = None
    ignored: tuple[str, ...] = ()
    """parameters given that this service accepts and does not apply"""

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit if self.limit and self.page else 0


# --- reading ----------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_RELATIVE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([dhms])", re.IGNORECASE)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_MOMENT_FORMS = "a Unix timestamp, YYYY-MM-DD, ISO 8601 or a relative time (7d, 12h, 30m)"
_THREAT_LEVELS = {1: "High", 2: "Medium", 3: "Low", 4: "Undefined"}
_IGNORED = ("withAttachments", "enforceWarninglist")
_BIGINT = 2**63 - 1
_LATEST = 253402300799  # 9999-12-31T23:59:59Z


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | tuple | dict) and not value)


def _harvest(value: Any) -> Any:
    """``_harvestParameters``: strings are trimmed, ``a||b`` is a list."""
    if isinstance(value, str):
        value = value.strip()
        if "||" in value:
            return [part.strip() for part in value.split("||") if part.strip()]
    return value


def _flag(name: str, value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("", "0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise FilterError(name, f"{value!r} is not a boolean (0, 1, true or false)")


def _states(name: str, value: Any, words: Mapping[str, bool] | None = None) -> frozenset[bool]:
    found = set()
    for item in value if isinstance(value, list | tuple) else [value]:
        if words and isinstance(item, str) and item.strip().lower() in words:
            found.add(words[item.strip().lower()])
        else:
            found.add(_flag(name, item))
    return frozenset(found)


def _whole(name: str, value: Any, *, minimum: int, maximum: int = 2**31 - 1) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        number = int(value)
    else:
        raise FilterError(name, f"{value!r} is not a whole number")
    if not minimum <= number <= maximum:
        raise FilterError(name, f"{number} is not between {minimum} and {maximum}")
    return number


def _moment(name: str, value: Any, now: int) -> int:
    """``AppModel::resolveTimeDelta``, refusing what it would silently turn into "never"."""
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        text = value.strip()
        relative = _RELATIVE.fullmatch(text)
        if _NUMBER.fullmatch(text):
            seconds = float(text)
        elif relative:
            seconds = now - float(relative[1]) * _SECONDS[relative[2].lower()]
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                pass
            else:
                seconds = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if seconds is None:
        raise FilterError(name, f"{value!r} is not {_MOMENT_FORMS}")
    if not math.isfinite(seconds) or not 0 <= seconds <= _LATEST:
        raise FilterError(name, f"{value!r} is before 1970 or after 9999")
    return int(seconds)


def _span(name: str, value: Any, now: int) -> Span:
    """``MispAttribute::setTimestampConditions``: a moment is a lower bound; ``[a, b]`` a
    range in either order; ``0`` bounds nothing."""
    if isinstance(value, list | tuple):
        if len(value) != 2:
            raise FilterError(name, "a range is a list of two moments, [from, to]")
        start, end = sorted(_moment(name, v, now) for v in value)
        return Span(start or None, end)
    return Span(_moment(name, value, now) or None)


def _day(name: str, value: Any, now: int) -> str:
    if isinstance(value, str) and _DAY.fullmatch(value.strip()):
        try:
            datetime.strptime(value.strip(), "%Y-%m-%d")
        except ValueError:
            raise FilterError(name, f"{value!r} is not a date") from None
        return value.strip()
    return _utc_day(_moment(name, value, now))


def _elements(name: str, value: Any) -> list[Any]:
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float | type(None)):
            raise FilterError(name, f"{item!r} is neither a string nor a number")
    return [item for item in items if not _blank(item)]


def _terms(name: str, value: Any, read: Callable[[Any], T]) -> Terms[T] | None:
    """``convert_filters``: a value, a list, ``"a&&!b"`` or an ``OR``/``AND``/``NOT`` dict."""
    groups: dict[str, list[T]] = {"OR": [], "AND": [], "NOT": []}
    if isinstance(value, Mapping):
        for key, group in value.items():
            operator = str(key).upper()
            if operator not in groups:
                raise FilterError(name, f"{key!r}: a dict takes only OR, AND and NOT")
            groups[operator] += [read(item) for item in _elements(name, group)]
    else:
        items = value.split("&&") if isinstance(value, str) else _elements(name, value)
        for item in items:
            if isinstance(item, str):
                item = item.strip()
                if not item or item == "!":
                    continue
                if item.startswith("!"):
                    groups["NOT"].append(read(item[1:]))
                    continue
            groups["OR"].append(read(item))
    if not any(groups.values()):
        return None
    return Terms(tuple(groups["OR"]), tuple(groups["AND"]), tuple(groups["NOT"]))


def _as_text(item: Any) -> str:
    return item if isinstance(item, str) else str(item)


def _as_value(item: Any) -> str:
    """``set_filter_value``: IPv6 addresses are searched compressed, as MISP stores them."""
    text = _as_text(item)
    if ":" in text and not _is_pattern(text):
        try:
            return str(ipaddress.IPv6Address(text))
        except ValueError:
            pass
    return text


def _as_uuid(name: str) -> Callable[[Any], UUID]:
    def read(item: Any) -> UUID:
        try:
            return UUID(_as_text(item))
        except ValueError:
            raise FilterError(name, f"{item!r} is not a uuid") from None

    return read


def _as_id_or_uuid(name: str) -> Callable[[Any], int | UUID]:
    def read(item: Any) -> int | UUID:
        text = _as_text(item).strip()
        if re.fullmatch(r"[0-9]+", text) and int(text) <= _BIGINT:
            return int(text)
        try:
            return UUID(text)
        except ValueError:
            raise FilterError(name, f"{item!r} is neither an id nor a uuid") from None

    return read


def _as_id(name: str) -> Callable[[Any], int]:
    def read(item: Any) -> int:
        return _whole(name, item, minimum=0, maximum=_BIGINT)

    return read


def _as_tag(item: Any) -> int | str:
    """``Tag::findTagIdsByTagNames``: a number is a tag id."""
    text = _as_text(item)
    return int(text) if re.fullmatch(r"[0-9]+", text) and int(text) <= _BIGINT else text


def _as_org(item: Any) -> int | UUID | str:
    text = _as_text(item)
    if re.fullmatch(r"[0-9]+", text) and int(text) <= _BIGINT:
        return int(text)
    try:
        return UUID(text)
    except ValueError:
        return text


def parse_filters(body: Mapping[str, Any], *, scope: Scope, now: datetime | None = None) -> Filters:
    """Read a restSearch body for ``scope``; relative moments count back from ``now``."""
    if scope not in ("events", "attributes"):
        raise ValueError(f"scope must be events or attributes, not {scope!r}")
    inner = body.get("request")
    params = {k: _harvest(v) for k, v in (inner if isinstance(inner, Mapping) else body).items()}
    given = {k: v for k, v in params.items() if not _blank(v)}
    clock = int((now or datetime.now(UTC)).timestamp())
    events = scope == "events"
    out: dict[str, Any] = {"scope": scope}

    fmt = str(given.get("returnFormat", "json")).lower()
    out["return_format"] = "json" if fmt == "download" else fmt
    if out["return_format"] not in ("json", "csv", "text"):
        raise FilterError("returnFormat", f"{fmt!r} is not served here; use json, csv or text")

    readers: dict[str, Callable[[Any], Any]] = {
        "value": _as_value,
        "value1": _as_value,
        "value2": _as_value,
        "comment": _as_text,
        "searchall": _as_text,
        "type": _as_text,
        "category": _as_text,
        "object_relation": _as_text,
        "tags": _as_tag,
        "org": _as_org,
        "eventid": _as_id_or_uuid("eventid"),
        "uuid": _as_uuid("uuid"),
        "eventinfo": _as_text,
        "sharinggroup": _as_id("sharinggroup"),
    }
    if events:
        readers["event_tags"] = _as_tag
        if "tags" not in given and "tag" in given:
            given["tags"] = given["tag"]
    for name, read in readers.items():
        if name in given and not (name == "eventid" and given[name] == "all"):
            out[name] = _terms(name, given[name], read)

    if "threat_level_id" in given:
        name = "threat_level_id"
        levels = [_whole(name, v, minimum=1, maximum=4) for v in _elements(name, given[name])]
        out[name] = frozenset(levels) or None

    lows = [_day(k, given[k], clock) for k in ("from", "date_from") if k in given]
    highs = [_day(k, given[k], clock) for k in ("to", "date_to") if k in given]
    if "date" in given:
        days = _span("date", given["date"], clock)
        lows += [_utc_day(days.start)] if days.start is not None else []
        highs += [_utc_day(days.end)] if days.end is not None else []
    out["date_from"], out["date_to"] = max(lows, default=None), min(highs, default=None)

    spans: dict[str, list[Span]] = {}
    for name, target in (
        ("timestamp", "event_timestamp" if events else "attribute_timestamp"),
        ("event_timestamp", "event_timestamp"),
        ("attribute_timestamp", None if events else "attribute_timestamp"),
        ("publish_timestamp", "publish_timestamp"),
        ("last", "publish_timestamp"),
    ):
        if target and name in given:
            spans.setdefault(target, []).append(_span(name, given[name], clock))
    out |= {target: _meet(found) for target, found in spans.items()}

    for name in ("first_seen", "last_seen"):  # ``MispAttribute::setTimestampSeenConditions``
        if name in given:
            span = _span(name, given[name], clock)
            if name == "last_seen" and not isinstance(given[name], list | tuple):
                span = Span(None, span.start)
            out[name] = Span(
                *(None if b is None else b * 1_000_000 for b in (span.start, span.end))
            )

    if "to_ids" in given:
        out["to_ids"] = _states("to_ids", given["to_ids"], {"exclude": False})
    if "published" in given:
        out["published"] = _states("published", given["published"])
    if "deleted" in given:
        out["deleted"] = _states("deleted", given["deleted"], {"only": True})

    out["include_event_tags"] = _flag("includeEventTags", params.get("includeEventTags"))
    out["include_context"] = _flag("includeContext", params.get("includeContext"))
    out["headerless"] = _flag("headerless", params.get("headerless"))
    out["metadata"] = events and _flag("metadata", params.get("metadata"))
    if "requested_attributes" in given:
        requested = given["requested_attributes"]
        if isinstance(requested, str):
            requested = requested.split(",")
        columns = [c.strip() for c in _elements("requested_attributes", requested)]
        out["requested_attributes"] = tuple(c for c in columns if c) or None

    limit = _whole("limit", given["limit"], minimum=0) if "limit" in given else None
    page = _whole("page", given["page"], minimum=1) if "page" in given else None
    out["limit"], out["page"] = limit or None, (page or 1) if limit else None
    out["ignored"] = tuple(n for n in _IGNORED if given.get(n) not in (None, 0, "0", False))
    return Filters(**out)


def _utc_day(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")


def _meet(spans: Iterable[Span]) -> Span:
    result = Span()
    for span in spans:
        result = result & span
    return result


# --- SQL --------------------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _is_pattern(term: str) -> bool:
    """``generic_add_filter``: a term is a pattern when it starts or ends with ``%``."""
    return term.startswith("%") or term.endswith("%")


def _like(pattern: str) -> str:
    """``%`` stays a wildcard; ``_`` and ``\\`` match themselves."""
    return pattern.replace("\\", "\\\\").replace("_", "\\_")


class _Sql:
    """Placeholders numbered from ``first``, and the values they stand for."""

    def __init__(self, first: int, schema: str | None) -> None:
        if schema is not None and not _IDENTIFIER.match(schema):
            raise ValueError(f"schema must be a plain SQL identifier, not {schema!r}")
        self.first = first
        self.schema = schema
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${self.first + len(self.values) - 1}"

    @property
    def next(self) -> int:
        return self.first + len(self.values)

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else name

    def access(self, fragment: tuple[str, list[Any]]) -> str:
        sql, values = fragment
        self.values += values
        return sql


def _text_match(q: _Sql, columns: Sequence[str], terms: Sequence[str]) -> str:
    exact = [t for t in terms if not _is_pattern(t)]
    parts = []
    if exact:
        p = q(exact)
        # the indexes hold a 200-character prefix of a value (values reach 64 KB): the prefix
        # finds the rows through them, the whole value decides
        prefixes = q([t[:200] for t in exact])
        parts += [f"(left({c}, 200) = ANY({prefixes}) AND {c} = ANY({p}))" for c in columns]
    for pattern in (t for t in terms if _is_pattern(t)):
        p = q(_like(pattern))
        parts += [f"{c} ILIKE {p}" for c in columns]
    return f"({' OR '.join(parts)})"


def _split(
    terms: Terms[T] | None, match: Callable[[Sequence[T]], str]
) -> tuple[list[str], list[str]]:
    """The conditions of ``terms``: those of OR and NOT, and one per AND term."""
    if terms is None:
        return [], []
    base = [match(terms.any_of)] if terms.any_of else []
    if terms.none_of:
        base.append(f"NOT coalesce({match(terms.none_of)}, false)")
    return base, [match([t]) for t in terms.all_of]


def _all(terms: Terms[T] | None, match: Callable[[Sequence[T]], str]) -> list[str]:
    base, each = _split(terms, match)
    return base + each


def _with_email(types: Sequence[str]) -> list[str]:
    """``set_filter_type``: ``email-src``/``email-dst`` also find the older ``email`` type."""
    found = list(types)
    if {"email-src", "email-dst"} & set(found) and "email" not in found:
        found.append("email")
    return found


def _attribute_visible(q: _Sql, viewer: Viewer, *, a: str, o: str, e: str) -> str:
    """The attribute and, when in an object, its object (``MispAttribute::buildConditions``)."""
    own = q.access(element_filter(viewer, alias=a, event_alias=e, first_param=q.next,
                                  schema=q.schema))  # fmt: skip
    obj = q.access(element_filter(viewer, alias=o, event_alias=e, first_param=q.next,
                                  schema=q.schema))  # fmt: skip
    return f"{own} AND ({a}.object_id IS NULL OR {obj})"


def _deletion(q: _Sql, deleted: frozenset[bool] | None, *, a: str, o: str) -> list[str]:
    states = deleted if deleted is not None else frozenset({False})
    if len(states) != 1:
        return []
    p = q(next(iter(states)))
    return [f"{a}.deleted = {p} AND ({o}.id IS NULL OR {o}.deleted = {p})"]


def _attribute_terms(q: _Sql, f: Filters, a: str) -> tuple[list[str], list[str]]:
    base: list[str] = []
    each: list[str] = []
    for terms, match in (
        (f.value, lambda ts: _text_match(q, [f"{a}.value1", f"{a}.value2"], ts)),
        (f.value1, lambda ts: _text_match(q, [f"{a}.value1"], ts)),
        (f.value2, lambda ts: _text_match(q, [f"{a}.value2"], ts)),
        (f.comment, lambda ts: _text_match(q, [f"{a}.comment"], ts)),
        (f.type, lambda ts: _text_match(q, [f"{a}.type"], _with_email(ts))),
        (f.category, lambda ts: _text_match(q, [f"{a}.category"], ts)),
        (f.object_relation, lambda ts: _text_match(q, [f"{a}.object_relation"], ts)),
    ):
        b, e = _split(terms, match)
        base += b
        each += e
    if f.to_ids is not None and len(f.to_ids) == 1:
        base.append(f"{a}.to_ids = {q(next(iter(f.to_ids)))}")
    base += _between(q, f"{a}.first_seen", f.first_seen)
    base += _between(q, f"{a}.last_seen", f.last_seen)
    return base, each


def _tag_match(q: _Sql, t: str, terms: Sequence[int | str]) -> str:
    """``Tag.name LIKE``: case-insensitive names and patterns, or tag ids."""
    ids = [x for x in terms if isinstance(x, int)]
    names = [x.lower() for x in terms if isinstance(x, str) and "%" not in x]
    parts = [f"{t}.id = ANY({q(ids)})"] if ids else []
    if names:
        parts.append(f"lower({t}.name) = ANY({q(names)})")
    parts += [f"{t}.name ILIKE {q(_like(x))}" for x in terms if isinstance(x, str) and "%" in x]
    return f"({' OR '.join(parts)})"


def _event_tagged(q: _Sql, e: str, terms: Sequence[int | str]) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {q.table('event_tags')} etg"  # noqa: S608 - placeholders only
        f" JOIN {q.table('tags')} etgt ON etgt.id = etg.tag_id"
        f" WHERE etg.event_id = {e}.id AND {_tag_match(q, 'etgt', terms)})"
    )


def _attribute_tagged(q: _Sql, a: str, terms: Sequence[int | str]) -> str:
    return (
        f"EXISTS (SELECT 1 FROM {q.table('attribute_tags')} atg"  # noqa: S608
        f" JOIN {q.table('tags')} atgt ON atgt.id = atg.tag_id"
        f" WHERE atg.attribute_id = {a}.id AND {_tag_match(q, 'atgt', terms)})"
    )


def _org_match(q: _Sql, column: str, terms: Sequence[int | UUID | str]) -> str:
    ids = [x for x in terms if isinstance(x, int)]
    uuids = [x for x in terms if isinstance(x, UUID)]
    names = [x.lower() for x in terms if isinstance(x, str) and "%" not in x]
    parts = [f"og.id = ANY({q(ids)})"] if ids else []
    if uuids:
        parts.append(f"og.uuid = ANY({q(uuids)})")
    if names:
        parts.append(f"lower(og.name) = ANY({q(names)})")
    parts += [f"og.name ILIKE {q(_like(x))}" for x in terms if isinstance(x, str) and "%" in x]
    return (
        f"EXISTS (SELECT 1 FROM {q.table('organisations')} og"  # noqa: S608
        f" WHERE og.id = {column} AND ({' OR '.join(parts)}))"
    )


def _id_match(q: _Sql, e: str, terms: Sequence[int | UUID]) -> str:
    ids = [x for x in terms if isinstance(x, int)]
    uuids = [x for x in terms if isinstance(x, UUID)]
    parts = [f"{e}.id = ANY({q(ids)})"] if ids else []
    if uuids:
        parts.append(f"{e}.uuid = ANY({q(uuids)})")
    return f"({' OR '.join(parts)})"


def _between(q: _Sql, column: str, span: Span | None) -> list[str]:
    if span is None:
        return []
    found = [f"{column} >= {q(span.start)}"] if span.start is not None else []
    if span.end is not None:
        found.append(f"{column} <= {q(span.end)}")
    return found


def _event_conditions(q: _Sql, f: Filters, e: str) -> list[str]:
    """What both scopes ask of the event itself."""
    found = _all(f.eventid, lambda ts: _id_match(q, e, ts))
    found += _all(f.org, lambda ts: _org_match(q, f"{e}.orgc_id", ts))
    found += _all(f.eventinfo, lambda ts: _text_match(q, [f"{e}.info"], ts))
    if f.threat_level_id:
        found.append(f"{e}.threat_level_id = ANY({q(sorted(f.threat_level_id))})")
    if f.published is not None and len(f.published) == 1:
        found.append(f"{e}.published = {q(next(iter(f.published)))}")
    if f.date_from is not None:
        found.append(f"{e}.date >= {q(f.date_from)}")
    if f.date_to is not None:
        found.append(f"{e}.date <= {q(f.date_to)}")
    found += _between(q, f"{e}.timestamp", f.event_timestamp)
    found += _between(q, f"{e}.publish_timestamp", f.publish_timestamp)
    return found


def _in_group(q: _Sql, row: str, terms: Sequence[int]) -> str:
    """The row (an event, an attribute) is shared with one of the sharing groups (its
    distribution 4 and its ``sharing_group_id``), as MISP's ``sharinggroup`` filter reads."""
    return f"({row}.distribution = 4 AND {row}.sharing_group_id = ANY({q(list(terms))}))"


def _page(q: _Sql, f: Filters, paginate: bool) -> str:
    if not paginate or not f.limit:
        return ""
    return f" LIMIT {q(f.limit)} OFFSET {q(f.offset)}"


def _where(conditions: Sequence[str]) -> str:
    return " AND ".join(f"({c})" for c in conditions)


def events_query(
    filters: Filters,
    viewer: Viewer,
    *,
    first_param: int = 1,
    schema: str | None = None,
    paginate: bool = True,
) -> tuple[str, list[Any]]:
    """``SELECT e.id`` of the events ``filters`` (events scope) match among those ``viewer``
    may see, by id, one page of them unless ``paginate`` is false (to count them); tables of
    the search path unless ``schema`` is given. Values are parameters only."""
    if filters.scope != "events":
        raise ValueError("events_query takes filters read for the events scope")
    q = _Sql(first_param, schema)
    f = filters
    conditions = [q.access(event_filter(viewer, alias="e", first_param=q.next, schema=schema))]
    conditions += _event_conditions(q, f, "e")
    conditions += _all(f.sharinggroup, lambda ts: _in_group(q, "e", ts))

    def visible(a: str, o: str) -> str:
        found = [_attribute_visible(q, viewer, a=a, o=o, e="e")]
        return _where(found + _deletion(q, f.deleted, a=a, o=o))

    def has_attribute(a: str, o: str, *extra: str) -> str:
        return (
            f"EXISTS (SELECT 1 FROM {q.table('attributes')} {a}"  # noqa: S608
            f" LEFT JOIN {q.table('objects')} {o} ON {o}.id = {a}.object_id"
            f" WHERE {a}.event_id = e.id AND {_where(extra)})"
        )

    def uuid_match(ts: Sequence[UUID]) -> str:
        p = q(list(ts))
        seen = _attribute_visible(q, viewer, a="ua", o="uo", e="e")
        return f"(e.uuid = ANY({p}) OR {has_attribute('ua', 'uo', f'ua.uuid = ANY({p})', seen)})"

    conditions += _all(f.uuid, uuid_match)

    def tagged(ts: Sequence[int | str]) -> str:
        by_attribute = (
            f"EXISTS (SELECT 1 FROM {q.table('attribute_tags')} atg"  # noqa: S608
            f" JOIN {q.table('tags')} atgt ON atgt.id = atg.tag_id"
            f" JOIN {q.table('attributes')} ta ON ta.id = atg.attribute_id"
            f" LEFT JOIN {q.table('objects')} tob ON tob.id = ta.object_id"
            f" WHERE atg.event_id = e.id AND {_tag_match(q, 'atgt', ts)}"
            f" AND {visible('ta', 'tob')})"
        )
        return f"({_event_tagged(q, 'e', ts)} OR {by_attribute})"

    if f.tags is not None:
        base, each = _split(replace(f.tags, none_of=()), tagged)
        conditions += base + each
        if f.tags.none_of:
            conditions.append(f"NOT {_event_tagged(q, 'e', f.tags.none_of)}")
    conditions += _all(f.event_tags, lambda ts: _event_tagged(q, "e", ts))

    def anywhere(ts: Sequence[str]) -> str:
        text = _text_match(q, ["wa.value1", "wa.value2", "wa.comment"], ts)
        in_attribute = has_attribute("wa", "wo", visible("wa", "wo"), text)
        return f"({_text_match(q, ['e.info'], ts)} OR {in_attribute} OR {tagged(list(ts))})"

    conditions += _all(f.searchall, anywhere)

    attribute_filtered = (
        any(
            (
                f.value,
                f.value1,
                f.value2,
                f.comment,
                f.type,
                f.category,
                f.object_relation,
                f.first_seen,
                f.last_seen,
            )
        )
        or len(f.to_ids or ()) == 1
        or f.deleted == frozenset({True})
    )
    if attribute_filtered:
        base, each = _attribute_terms(q, f, "sa")
        core = [visible("sa", "so"), *base]
        conditions += [has_attribute("sa", "so", *core, t) for t in each] or [
            has_attribute("sa", "so", *core)
        ]

    sql = (
        f"SELECT e.id FROM {q.table('events')} e"  # noqa: S608 - placeholders only
        f" WHERE {_where(conditions)} ORDER BY e.id"
    )
    return sql + _page(q, f, paginate), q.values


def attributes_query(
    filters: Filters,
    viewer: Viewer,
    *,
    first_param: int = 1,
    schema: str | None = None,
    paginate: bool = True,
) -> tuple[str, list[Any]]:
    """``SELECT a.id`` of the attributes ``filters`` (attributes scope) match among those
    ``viewer`` may see (their event, their object and themselves), by id, one page of them
    unless ``paginate`` is false; tables as :func:`events_query`."""
    if filters.scope != "attributes":
        raise ValueError("attributes_query takes filters read for the attributes scope")
    q = _Sql(first_param, schema)
    f = filters
    conditions = [
        q.access(event_filter(viewer, alias="e", first_param=q.next, schema=schema)),
        _attribute_visible(q, viewer, a="a", o="o", e="e"),
        *_deletion(q, f.deleted, a="a", o="o"),
    ]
    conditions += _event_conditions(q, f, "e")
    conditions += _all(f.sharinggroup, lambda ts: _in_group(q, "a", ts))
    conditions += _between(q, "a.timestamp", f.attribute_timestamp)
    base, each = _attribute_terms(q, f, "a")
    conditions += base + each

    def uuid_match(ts: Sequence[UUID]) -> str:
        p = q(list(ts))
        return f"(a.uuid = ANY({p}) OR e.uuid = ANY({p}))"

    conditions += _all(f.uuid, uuid_match)

    def tagged(ts: Sequence[int | str]) -> str:
        return f"({_attribute_tagged(q, 'a', ts)} OR {_event_tagged(q, 'e', ts)})"

    conditions += _all(f.tags, tagged)

    def anywhere(ts: Sequence[str]) -> str:
        text = _text_match(q, ["e.info", "a.value1", "a.value2", "a.comment"], ts)
        return f"({text} OR {tagged(list(ts))})"

    conditions += _all(f.searchall, anywhere)
    sql = (
        f"SELECT a.id FROM {q.table('attributes')} a"  # noqa: S608 - placeholders only
        f" JOIN {q.table('events')} e ON e.id = a.event_id"
        f" LEFT JOIN {q.table('objects')} o ON o.id = a.object_id"
        f" WHERE {_where(conditions)} ORDER BY a.id"
    )
    return sql + _page(q, f, paginate), q.values


# --- CSV --------------------------------------------------------------------------------------

CSV_DEFAULT_FIELDS = (
    "uuid", "event_id", "category", "type", "value", "comment", "to_ids", "timestamp",
    "object_relation", "attribute_tag",
)  # fmt: skip
"""``CsvExport::$default_fields``"""
CSV_OBJECT_FIELDS = ("object_uuid", "object_name", "object_meta-category")
CSV_CONTEXT_FIELDS = (
    "event_info", "event_member_org", "event_source_org", "event_distribution",
    "event_threat_level_id", "event_analysis", "event_date", "event_tag", "event_timestamp",
)  # fmt: skip
"""what ``includeContext`` adds"""

_PHP_NUMERIC = re.compile(r"\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*")


def csv_fields(requested: Sequence[str] | None, include_context: bool) -> list[str]:
    """The fields of each line (``CsvExport::header``): the requested attributes, or the
    default ones and the object's; then the event's when ``include_context``."""
    fields = list(requested) if requested else [*CSV_DEFAULT_FIELDS, *CSV_OBJECT_FIELDS]
    return fields + list(CSV_CONTEXT_FIELDS) if include_context else fields


def csv_header(requested: Sequence[str] | None, include_context: bool) -> list[str]:
    """The header's names: ``-`` becomes ``_`` and ``timestamp`` is called ``date``."""
    return [
        "date" if name == "timestamp" else name.replace("-", "_")
        for name in csv_fields(requested, include_context)
    ]


def _cell(value: Any) -> str:
    """``CsvExport::__escapeCSVField``: booleans 1/0, numbers bare, the rest quoted; a field
    the line lacks is ``""``."""
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value)
    if isinstance(value, int) or _PHP_NUMERIC.fullmatch(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def _iso(micro: int | None) -> str | None:
    if micro is None:
        return None
    moment = datetime.fromtimestamp(micro // 1_000_000, UTC).replace(microsecond=micro % 1_000_000)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"


def _mapping(row: Any) -> Mapping[str, Any]:
    if row is None or isinstance(row, Mapping):
        return row or {}
    mapping = getattr(row, "_mapping", None)  # sqlalchemy's Row
    if isinstance(mapping, Mapping):
        return mapping
    dump = getattr(row, "model_dump", None)  # SQLModel
    if callable(dump):
        return dump()
    return dict(row.items()) if hasattr(row, "items") else vars(row)  # asyncpg's Record


def csv_row(
    attribute_row: Any,
    event_row: Any,
    *,
    requested: Sequence[str] | None = None,
    include_context: bool = False,
    object_row: Any = None,
    attribute_tags: Sequence[str] = (),
    event_tags: Sequence[str] = (),
    org_name: str | None = None,
    orgc_name: str | None = None,
) -> list[str]:
    """One attribute's cells, already escaped as MISP writes them (join them with ``,``, or
    use :func:`render_csv`). Rows are mappings or model instances with the columns of
    :mod:`tessera.sync.models`; tags are the names of the tags to show, in order;
    ``org_name``/``orgc_name`` are the event's holder and creator (``event_member_org``,
    ``event_source_org``)."""
    a, e, o = _mapping(attribute_row), _mapping(event_row), _mapping(object_row)
    value2 = a.get("value2") or ""
    line: dict[str, Any] = {
        **{k: v for k, v in a.items() if not isinstance(v, bytes)},
        "uuid": str(a["uuid"]),
        "value": f"{a['value1']}|{value2}" if value2 else a["value1"],
        "object_id": a.get("object_id") or 0,
        "sharing_group_id": a.get("sharing_group_id") or 0,
        "first_seen": _iso(a.get("first_seen")),
        "last_seen": _iso(a.get("last_seen")),
        "attribute_tag": ",".join(attribute_tags) if attribute_tags else None,
        "event_info": e.get("info"),
        "event_member_org": org_name,
        "event_source_org": orgc_name,
        "event_distribution": e.get("distribution"),
        "event_threat_level_id": _THREAT_LEVELS.get(e.get("threat_level_id", 4)),
        "event_analysis": e.get("analysis"),
        "event_date": e.get("date"),
        "event_tag": ",".join(event_tags) if event_tags else None,
        "event_timestamp": e.get("timestamp"),
    }
    if o:
        line |= {
            "object_uuid": str(o["uuid"]),
            "object_name": o.get("name"),
            "object_meta-category": o.get("meta_category"),
        }
    return [_cell(line.get(name)) for name in csv_fields(requested, include_context)]


def render_csv(header: Sequence[str], rows: Iterable[Sequence[str]], *, headerless: bool) -> str:
    """The whole export as MISP writes it: the header (unless ``headerless``), a line per
    row, and the empty last line of ``CsvExport::footer``."""
    lines = [] if headerless else [",".join(header) + "\n"]
    lines += [",".join(row) + "\n" for row in rows]
    return "".join(lines) + "\n"
