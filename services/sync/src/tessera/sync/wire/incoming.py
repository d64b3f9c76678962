"""What MISP clients and servers send us, read into validated models.

* ``events/add`` and ``events/edit/{id}``: PyMISP posts ``MISPEvent.to_dict()`` flat; other
  clients, and MISP servers pushing, wrap it as ``{"Event": {...}}``. Both are read by
  :func:`parse_event`, as is a remote MISP's ``events/view`` during a pull.
* ``attributes/add/{event}``: one attribute, flat or as ``{"Attribute": {...}}``
  (:func:`parse_attribute`; a list is the caller's to split).

Values are read as MISP reads them (see :mod:`.scalars`): ``"1"``, ``1`` and ``true`` alike,
missing fields take MISP's defaults (``Event::beforeValidate``, ``MispAttribute::
beforeValidateMassage``, ``MispObject::beforeValidate``), and each attribute's category, type
and value go through :func:`tessera.sync.misp_types.check`, which normalises the value and
splits a composite into ``value1``/``value2``. Unknown keys are ignored (``id``, ``event_id``,
``Galaxy``, ``ShadowAttribute``, ``RelatedEvent``...): a sender's ids mean nothing here, and
what we do not store we do not read. ``CryptographicKey`` (a protected event's keys) is read
as sent; its ``fingerprint`` is the sender's claim, recomputed from ``key_data`` before use.

A problem raises :class:`InvalidPayload`, every problem named by its path below the event
(``Attribute.3.value``, ``Object.0.Attribute.2.type``) with MISP's wording. Where MISP's own
import is lenient (a pull keeps the event and drops the attribute MISP would refuse), pass
``drop_invalid=True``: invalid attributes, objects and reports are left out and listed in
:attr:`EventIn.dropped`.

Attributes repeated within one payload (same type, category and value, not deleted) are kept
once, as ``Event::_add`` does; MISP compares the values as sent, we compare them normalised.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Self
from uuid import UUID, uuid4

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .attributes import (
    NO_RELATION,
    SETTLED,
    AttributeIn,
    EventReportIn,
    ObjectIn,
    ObjectReferenceIn,
)
from .parts import (
    OrgIn,
    SharingGroupIn,
    SharingGroupOrgIn,
    SharingGroupServerIn,
    SightingIn,
    TagIn,
    WireModel,
    blank,
    listify,
    merged_tags,
    shared,
    unique_tags,
)
from .problems import InvalidPayload, Problem, fail, problems_of
from .scalars import (
    Absent,
    Analysis,
    Bool,
    Date,
    EventDistribution,
    MaybeInt,
    MaybeUuid,
    Stamp,
    Text,
    ThreatLevel,
)

__all__ = [
    "DEFAULT_EVENT_DISTRIBUTION",
    "AttributeIn",
    "CryptographicKeyIn",
    "EventIn",
    "EventReportIn",
    "InvalidPayload",
    "ObjectIn",
    "ObjectReferenceIn",
    "OrgIn",
    "Problem",
    "SharingGroupIn",
    "SharingGroupOrgIn",
    "SharingGroupServerIn",
    "SightingIn",
    "TagIn",
    "parse_attribute",
    "parse_event",
]

DEFAULT_EVENT_DISTRIBUTION = 1
"""MISP's ``MISP.default_event_distribution`` as a fresh MISP has it: this community only."""


# -- the event ---------------------------------------------------------------------------------


class CryptographicKeyIn(WireModel):
    """One of the keys a protected event trusts (MISP's ``CryptographicKey``)."""

    uuid: MaybeUuid = None
    type: Text = "pgp"
    key_data: Text = ""
    fingerprint: Text = ""
    revoked: Bool = False
    timestamp: Stamp = None


class EventIn(WireModel):
    """An event as a client or a server sent it, checked. ``uuid`` is ``None`` when the
    payload had none (a new event: make one; an edit: the event in the URL)."""

    uuid: MaybeUuid = None
    info: Text
    date: Date = None
    """``YYYY-MM-DD``; ``None``: today"""
    threat_level_id: ThreatLevel = 4
    analysis: Analysis = 0
    distribution: EventDistribution = DEFAULT_EVENT_DISTRIBUTION
    sharing_group_id: MaybeInt = None
    sharing_group: Annotated[SharingGroupIn | None, Absent] = Field(
        default=None, alias="SharingGroup"
    )
    published: Bool = False
    publish_timestamp: Stamp = None
    timestamp: Stamp = None
    """Unix seconds; ``None``: now"""
    locked: Bool = False
    disable_correlation: Bool = False
    protected: Bool = False
    extends_uuid: MaybeUuid = None
    org: Annotated[OrgIn | None, Absent] = Field(default=None, alias="Org")
    orgc: Annotated[OrgIn | None, Absent] = Field(default=None, alias="Orgc")
    """the creator organisation; ``None``: the sender's"""
    attributes: Annotated[list[AttributeIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="Attribute"
    )
    objects: Annotated[list[ObjectIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="Object"
    )
    tags: Annotated[list[TagIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="Tag"
    )
    reports: Annotated[list[EventReportIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="EventReport"
    )
    cryptographic_keys: Annotated[list[CryptographicKeyIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="CryptographicKey"
    )

    _collapsed: int = PrivateAttr(default=0)
    _dropped: list[Problem] = PrivateAttr(default_factory=list)

    @property
    def collapsed_duplicates(self) -> int:
        """How many repeated attributes were left out (the first one is kept)."""
        return self._collapsed

    @property
    def dropped(self) -> list[Problem]:
        """What ``drop_invalid=True`` left out, and why."""
        return self._dropped

    @property
    def attribute_count(self) -> int:
        """MISP's ``attribute_count``: attributes not deleted, in objects too."""
        inner = sum(1 for o in self.objects for a in o.attributes if not a.deleted)
        return inner + sum(1 for a in self.attributes if not a.deleted)

    @model_validator(mode="before")
    @classmethod
    def _event_tags(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            data = {**data, "Tag": merged_tags(data.get("Tag"), data.get("EventTag"))}
        return data

    @model_validator(mode="after")
    def _misp_rules(self) -> Self:
        if not self.info.strip():
            raise fail("info", "Info cannot be empty.")
        shared(self)
        self._unique_uuids()
        self.tags = unique_tags(self.tags)
        self._collapse_duplicates()
        self._resolve_references()
        return self

    def _unique_uuids(self) -> None:
        seen: set[UUID] = set()
        paths: list[tuple[str, UUID]] = [
            (f"Attribute.{i}", a.uuid) for i, a in enumerate(self.attributes)
        ]
        for i, obj in enumerate(self.objects):
            paths.append((f"Object.{i}", obj.uuid))
            paths += [(f"Object.{i}.Attribute.{j}", a.uuid) for j, a in enumerate(obj.attributes)]
        paths += [(f"EventReport.{i}", r.uuid) for i, r in enumerate(self.reports)]
        for path, uuid in paths:
            if uuid in seen:
                raise fail(f"{path}.uuid", "The UUID provided is not unique")
            seen.add(uuid)

    def _collapse_duplicates(self) -> None:
        seen: set[tuple[str, str, str]] = set()
        kept = []
        for attribute in self.attributes:
            key = (attribute.type, attribute.category, attribute.value)
            if not attribute.deleted:
                if key in seen:
                    continue
                seen.add(key)
            kept.append(attribute)
        self._collapsed = len(self.attributes) - len(kept)
        self.attributes = kept

    def _resolve_references(self) -> None:
        objects = {o.uuid for o in self.objects}
        attributes = {a.uuid for a in self.attributes}
        attributes |= {a.uuid for o in self.objects for a in o.attributes}
        for obj in self.objects:
            for reference in obj.references:
                if reference.referenced_uuid in attributes:
                    reference.referenced_type = 0
                elif reference.referenced_uuid in objects:
                    reference.referenced_type = 1

    def columns(self, *, now: int) -> dict[str, Any]:
        """The ``events`` row besides its ids (``org_id``, ``orgc_id``, ``user_id``,
        ``sharing_group_id``), with MISP's fill-ins for what was not sent."""
        return {
            "uuid": self.uuid or uuid4(),
            "date": self.date or datetime.fromtimestamp(now, UTC).date().isoformat(),
            "info": self.info,
            "threat_level_id": self.threat_level_id,
            "analysis": self.analysis,
            "distribution": self.distribution,
            "published": self.published,
            "publish_timestamp": self.publish_timestamp or 0,
            "timestamp": self.timestamp or now,
            "locked": self.locked,
            "protected": self.protected,
            "disable_correlation": self.disable_correlation,
            "extends_uuid": self.extends_uuid,
            "attribute_count": self.attribute_count,
        }


# -- entry points ------------------------------------------------------------------------------


def _unwrap(payload: Any, key: str) -> dict[str, Any]:
    if not isinstance(payload, Mapping):
        raise InvalidPayload([Problem("", f"The {key.lower()} must be a JSON object.")])
    inner = payload.get(key)
    return dict(inner if isinstance(inner, Mapping) else payload)


def parse_event(
    payload: Mapping[str, Any],
    *,
    default_distribution: int = DEFAULT_EVENT_DISTRIBUTION,
    drop_invalid: bool = False,
) -> EventIn:
    """Read an event, flat (as PyMISP posts it) or as ``{"Event": {...}}``.

    ``default_distribution`` applies when the payload has none (MISP's
    ``MISP.default_event_distribution``). With ``drop_invalid``, attributes, objects and
    reports that fail are left out (listed in :attr:`EventIn.dropped`) instead of failing
    the event, as MISP's import does; the event's own fields still have to be right.
    Raises :class:`InvalidPayload`.
    """
    body = _unwrap(payload, "Event")
    if blank(body.get("distribution")):
        body["distribution"] = default_distribution
    dropped: list[Problem] = []
    context: dict[str, Any] = {SETTLED: set()}
    if drop_invalid:
        body = _without_invalid(body, dropped, context)
    try:
        event = EventIn.model_validate(body, context=context)
    except ValidationError as error:
        raise InvalidPayload(problems_of(error)) from None
    event._dropped = dropped
    return event


def parse_attribute(payload: Mapping[str, Any]) -> AttributeIn:
    """Read one attribute, flat (as PyMISP posts it) or as ``{"Attribute": {...}}``.
    Raises :class:`InvalidPayload` with paths below the attribute (``value``)."""
    body = _unwrap(payload, "Attribute")
    try:
        return AttributeIn.model_validate(body)
    except ValidationError as error:
        raise InvalidPayload(problems_of(error)) from None


def _valid(
    model: type[BaseModel],
    items: Any,
    path: str,
    dropped: list[Problem],
    context: dict[str, Any],
    *,
    in_object: bool = False,
) -> Any:
    try:
        elements = listify(items)
    except PydanticCustomError:
        return items  # the event's validation names the problem
    kept = []
    for index, item in enumerate(elements):
        try:
            element = model.model_validate(item, context=context)
        except ValidationError as error:
            dropped += problems_of(error, f"{path}.{index}")
            continue
        if in_object and getattr(element, "object_relation", "") is None:
            dropped.append(Problem(f"{path}.{index}.object_relation", NO_RELATION))
            continue
        kept.append(element)
    return kept


def _without_invalid(
    body: dict[str, Any], dropped: list[Problem], context: dict[str, Any]
) -> dict[str, Any]:
    body["Attribute"] = _valid(AttributeIn, body.get("Attribute"), "Attribute", dropped, context)
    objects = []
    try:
        elements = listify(body.get("Object"))
    except PydanticCustomError:
        return body  # the event's validation names the problem
    for index, obj in enumerate(elements):
        if isinstance(obj, Mapping):
            path = f"Object.{index}.Attribute"
            attributes = _valid(
                AttributeIn, obj.get("Attribute"), path, dropped, context, in_object=True
            )
            obj = {**obj, "Attribute": attributes}
        objects.append((index, obj))
    body["Object"] = []
    for index, obj in objects:
        try:
            body["Object"].append(ObjectIn.model_validate(obj, context=context))
        except ValidationError as error:
            dropped += problems_of(error, f"Object.{index}")
    body["EventReport"] = _valid(
        EventReportIn, body.get("EventReport"), "EventReport", dropped, context
    )
    return body
