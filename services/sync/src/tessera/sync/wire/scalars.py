"""MISP's loose JSON scalars, read strictly and written the way MISP writes them.

A MISP server reads PHP arrays, so ``"1"``, ``1`` and ``true`` are one value to it, and it
answers with what MySQL gave back: every integer column as a string (``"distribution": "5"``,
``PDO::ATTR_STRINGIFY_FETCHES``, "the pre 2.5 behaviour" 2.5 keeps), every ``tinyint(1)``
as a JSON boolean. The readers here accept every spelling MISP and PyMISP send and refuse
anything else with MISP's wording; the writers give back MISP's spelling.

``first_seen``/``last_seen`` are microseconds since the epoch in MISP's database (and in
ours) and ISO 8601 on the wire (``2019-06-24T12:34:56.123456+00:00``,
``AppModel::microTimestampToIso``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError, PydanticUseDefault

__all__ = [
    "Absent",
    "Analysis",
    "AttributeDistribution",
    "Bool",
    "Date",
    "EventDistribution",
    "Int",
    "MaybeInt",
    "MaybeName",
    "MaybeUuid",
    "Name",
    "NewUuid",
    "Number",
    "ReferencedType",
    "Seen",
    "SightingType",
    "Stamp",
    "TagRelationship",
    "Text",
    "ThreatLevel",
    "Uuid",
    "iso_to_micro",
    "micro_to_iso",
    "misp_error",
    "wire_int",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_MICRO = (datetime(1, 1, 2, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_LAST_MICRO = (datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_WHOLE = re.compile(r"[+-]?[0-9]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ANALYSIS_NAMES = {"Initial": 0, "Ongoing": 1, "Completed": 2}  # Event::beforeValidate


def misp_error(message: str) -> PydanticCustomError:
    """A validation error whose text is exactly ``message`` (MISP's wording)."""
    return PydanticCustomError("misp", message)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# -- readers -----------------------------------------------------------------------------------


def _read_int(value: Any, *, bits: int = 32) -> int:
    """A whole number that fits a signed column of ``bits`` (MISP's ``int(11)``: 32)."""
    number: int | None = None
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        number = int(value)  # a bool too: PHP's true is 1
    elif isinstance(value, str):
        text = value.strip()
        if _WHOLE.fullmatch(text):
            number = int(text)
    if number is None:
        raise misp_error("Must be a whole number.")
    limit = _LIMITS.get(bits) or 2 ** (bits - 1)
    if not -limit <= number < limit:
        raise misp_error("Out of range.")
    return number


_LIMITS = {32: 2**31, 64: 2**63}


def _int_or_default(value: Any) -> int:
    """Missing, ``null`` and ``""`` take the field's default, as PHP's ``empty()`` does."""
    if _blank(value):
        raise PydanticUseDefault()
    return _read_int(value)


def _maybe_number(value: Any) -> int | None:
    if _blank(value):
        return None
    return _read_int(value)


def _maybe_int(value: Any) -> int | None:
    """A reference to a row of the sender (``sharing_group_id``): ``0`` means none."""
    if _blank(value):
        return None
    number = _read_int(value)
    return number or None


def _ranged(low: int, high: int, message: str, names: Mapping[str, int] | None = None) -> Any:
    def read(value: Any) -> int:
        if _blank(value):
            raise PydanticUseDefault()
        if names and isinstance(value, str) and value.strip() in names:
            return names[value.strip()]
        try:
            number = _read_int(value)
        except PydanticCustomError:
            raise misp_error(message) from None
        if not low <= number <= high:
            raise misp_error(message)
        return number

    return read


def _read_bool(value: Any) -> bool:
    """``true``/``false``, ``1``/``0`` as numbers or strings; ``null`` and ``""`` are false
    (the ``boolean`` rule of CakePHP, and PHP's ``empty()``)."""
    if isinstance(value, bool):
        return value
    if _blank(value):
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("0", "1", "true", "false"):
        return value.strip().lower() in ("1", "true")
    raise misp_error("Must be a boolean: true, false, 1 or 0.")


def _read_text(value: Any) -> str:
    """``null`` is ``""``; numbers become their decimal text (PyMISP sends ``"4"`` or ``4``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, datetime):  # a ``datetime`` attribute from MISPEvent.to_dict()
        return value.isoformat()
    raise misp_error("Must be text.")


def _maybe_text(value: Any) -> str | None:
    return None if _blank(value) else _read_text(value)


def _read_uuid(value: Any) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str) and _UUID.fullmatch(value.strip()):
        return UUID(value.strip())
    raise misp_error("Please provide a valid RFC 4122 UUID")


def _maybe_uuid(value: Any) -> UUID | None:
    if _blank(value):
        return None
    return _read_uuid(value)


def _new_uuid(value: Any) -> UUID:
    """A child's uuid: when it is missing MISP makes one up (``beforeSave``), so do we."""
    if _blank(value):
        raise PydanticUseDefault()
    return _read_uuid(value)


def _read_stamp(value: Any) -> int | None:
    """Unix seconds; missing, ``""`` and ``0`` mean "now" to MISP (``empty()``): ``None``."""
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    try:
        number = _read_int(value, bits=64)
    except PydanticCustomError:
        raise misp_error("Must be a Unix timestamp (seconds).") from None
    if number < 0:
        raise misp_error("Must be a Unix timestamp (seconds).")
    return number or None


def _read_date(value: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and _DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise misp_error("Expected date format: YYYY-MM-DD")


def iso_to_micro(moment: datetime) -> int:
    """Microseconds since the epoch; a moment without a zone is UTC (MISP reads it as GMT)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _read_seen(value: Any) -> int | None:
    """``first_seen``/``last_seen``: ISO 8601 text or a datetime, or microseconds (MISP's
    storage) as a number or digits; ``null`` and ``""`` are none."""
    if _blank(value):
        return None
    micro: int | None = None
    if isinstance(value, datetime):
        micro = iso_to_micro(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        micro = int(value) if float(value).is_integer() else None
    elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
        micro = int(value.strip())
    elif isinstance(value, str):
        try:
            micro = iso_to_micro(datetime.fromisoformat(value.strip()))
        except ValueError:
            micro = None
    if micro is None or not _FIRST_MICRO <= micro < _LAST_MICRO:
        raise misp_error("Invalid ISO 8601 format")
    return micro


def _at_most(limit: int) -> AfterValidator:
    """What fits our ``varchar`` columns (MISP's are the same size)."""

    def bounded(text: str | None) -> str | None:
        if text is not None and len(text) > limit:
            raise misp_error(f"Must be at most {limit} characters.")
        return text

    return AfterValidator(bounded)


def _absent(value: Any) -> Any:
    """``null``, ``""``, and PHP's empty array (``[]`` or ``{}``) for a missing object."""
    return None if value in (None, "", [], {}) else value


def _maybe_referenced_type(value: Any) -> int | None:
    return None if _blank(value) else int(_referenced_type(value))


_EVENT_DISTRIBUTIONS = (
    "Options : Your organisation only, This community only, Connected communities, "
    "All communities, Sharing group"
)
_DISTRIBUTIONS = (
    "Options: Your organisation only, This community only, Connected communities, "
    "All communities, Sharing group, Inherit event"
)
_THREAT_LEVELS = "Options : 1, 2, 3, 4 (for High, Medium, Low, Undefined)"
_ANALYSES = "Options : 0, 1, 2 (for Initial, Ongoing, Completed)"
_SIGHTINGS = "Invalid type, please change it before you POST 1000000 sightings."
_referenced_type = _ranged(0, 1, "Options : 0, 1 (for Attribute, Object)")

Int = Annotated[int, BeforeValidator(_int_or_default)]
MaybeInt = Annotated[int | None, BeforeValidator(_maybe_int)]
"""the sender's id of a row: ``0`` and missing are ``None``"""
Number = Annotated[int | None, BeforeValidator(_maybe_number)]
Bool = Annotated[bool, BeforeValidator(_read_bool)]
Text = Annotated[str, BeforeValidator(_read_text)]
Name = Annotated[str, BeforeValidator(_read_text), _at_most(255)]
"""text of a ``varchar(255)`` column: names, categories, relationships"""
MaybeName = Annotated[str | None, BeforeValidator(_maybe_text), _at_most(255)]
TagRelationship = Annotated[str, BeforeValidator(_read_text), _at_most(191)]
Absent = BeforeValidator(_absent)
"""for an optional object (``Annotated[OrgIn | None, Absent]``)"""
Uuid = Annotated[UUID, BeforeValidator(_read_uuid)]
MaybeUuid = Annotated[UUID | None, BeforeValidator(_maybe_uuid)]
NewUuid = Annotated[UUID, BeforeValidator(_new_uuid)]
Stamp = Annotated[int | None, BeforeValidator(_read_stamp)]
Date = Annotated[str | None, BeforeValidator(_read_date)]
Seen = Annotated[int | None, BeforeValidator(_read_seen)]
EventDistribution = Annotated[int, BeforeValidator(_ranged(0, 4, _EVENT_DISTRIBUTIONS))]
AttributeDistribution = Annotated[int, BeforeValidator(_ranged(0, 5, _DISTRIBUTIONS))]
ThreatLevel = Annotated[int, BeforeValidator(_ranged(1, 4, _THREAT_LEVELS))]
Analysis = Annotated[int, BeforeValidator(_ranged(0, 2, _ANALYSES, _ANALYSIS_NAMES))]
SightingType = Annotated[int, BeforeValidator(_ranged(0, 2, _SIGHTINGS))]
ReferencedType = Annotated[int | None, BeforeValidator(_maybe_referenced_type)]


# -- writers -----------------------------------------------------------------------------------


def wire_int(value: int | None) -> str:
    """An integer column as MISP answers it: ``"5"``; ``None`` is ``"0"`` (MISP's columns
    are ``NOT NULL DEFAULT 0``)."""
    return str(value or 0)


def micro_to_iso(micro: int | None) -> str | None:
    """``AppModel::microTimestampToIso``: ``Y-m-d\\TH:i:s.uP`` in UTC."""
    if micro is None:
        return None
    moment = _EPOCH + timedelta(microseconds=micro)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00"
