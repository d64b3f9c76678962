"""Attributes, objects, object references and event reports, as events carry them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Self
from uuid import uuid4

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

from tessera.sync.misp_types import InvalidAttribute, check, describe_types

from .parts import (
    SharingGroupIn,
    SightingIn,
    TagIn,
    WireModel,
    blank,
    listify,
    merged_tags,
    seen_in_order,
    shared,
    some_text,
    unique_tags,
)
from .problems import fail
from .scalars import (
    Absent,
    AttributeDistribution,
    Bool,
    Int,
    MaybeInt,
    MaybeName,
    MaybeUuid,
    Name,
    NewUuid,
    ReferencedType,
    Seen,
    Stamp,
    Text,
    Uuid,
)

__all__ = [
    "NO_RELATION",
    "SETTLED",
    "AttributeIn",
    "EventReportIn",
    "ObjectIn",
    "ObjectReferenceIn",
]

NO_RELATION = "Object attribute sent, but no object_relation set."

SETTLED = "tessera.sync.settled_attributes"
"""A key of pydantic's validation context (``model_validate(data, context={SETTLED: set()})``)
for reading attributes on their own and then the event they are handed to, as
``parse_event(drop_invalid=True)`` does: pydantic runs :meth:`AttributeIn._misp_rules` again
on an instance it is handed. Under this key are the ``type``, ``category``, ``value``,
``value1``, ``value2`` and ``to_ids`` that :func:`~tessera.sync.misp_types.check` gave back
with the value unchanged: checking them again is the same call (the same type, value,
category and ``to_ids``), so its result is known and the check is skipped (a third of a
pulled event's parse). Where ``check`` changed the value (it is not idempotent: re-fanging
``[[.].]``, the ``00`` of a phone number), the attribute is checked again, as it always was."""
_CHECKED = ("category", "value", "value1", "value2", "to_ids")


class AttributeIn(WireModel):
    """An attribute, checked and normalised: ``value`` as MISP stores it, split into
    ``value1``/``value2`` (``value2`` is ``""`` unless the type is a composite)."""

    uuid: NewUuid = Field(default_factory=uuid4)
    type: Text
    category: Text = ""
    """missing or empty: the type's default category"""
    value: Text = ""
    value1: Text = ""
    value2: Text = ""
    to_ids: Bool = True
    """missing: the type's default"""
    comment: Text = ""
    distribution: AttributeDistribution = 5
    sharing_group_id: MaybeInt = None
    """the sender's id of the sharing group (``0`` is none)"""
    sharing_group: Annotated[SharingGroupIn | None, Absent] = Field(
        default=None, alias="SharingGroup"
    )
    timestamp: Stamp = None
    """Unix seconds; ``None``: now"""
    first_seen: Seen = None
    """microseconds since the epoch"""
    last_seen: Seen = None
    deleted: Bool = False
    disable_correlation: Bool = False
    object_relation: MaybeName = None
    data: Annotated[str | None, BeforeValidator(some_text)] = None
    """base64 of an ``attachment`` or a ``malware-sample`` (MISP's zip)"""
    tags: Annotated[list[TagIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="Tag"
    )
    sightings: Annotated[list[SightingIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="Sighting"
    )

    @model_validator(mode="before")
    @classmethod
    def _misp_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        data["Tag"] = merged_tags(data.get("Tag"), data.get("AttributeTag"))
        if blank(data.get("value")) and not blank(data.get("value1")):
            second = data.get("value2")
            data["value"] = f"{data['value1']}|{second}" if not blank(second) else data["value1"]
        kind = data.get("type")
        if data.get("to_ids") is None and isinstance(kind, str):
            defaults = describe_types()["sane_defaults"].get(kind)
            if defaults is not None:  # else ``check`` refuses the type
                data["to_ids"] = bool(defaults["to_ids"])
        return data

    @model_validator(mode="after")
    def _misp_rules(self, info: ValidationInfo) -> Self:
        settled = info.context.get(SETTLED) if isinstance(info.context, dict) else None
        if settled is None or self._checked_fields() not in settled:
            try:
                checked = check(
                    self.type, self.value, category=self.category or None, to_ids=self.to_ids
                )
            except InvalidAttribute as invalid:
                raise fail(invalid.field, invalid.message) from None
            unchanged = checked.value == self.value
            self.category, self.value = checked.category, checked.value
            self.value1, self.value2, self.to_ids = checked.value1, checked.value2, checked.to_ids
            if settled is not None and unchanged:
                settled.add(self._checked_fields())
        else:  # what assigning check's result, the values these fields hold, would do
            self.__pydantic_fields_set__.update(_CHECKED)
        seen_in_order(self)
        shared(self)
        self.tags = unique_tags(self.tags)
        return self

    def _checked_fields(self) -> tuple[str, str, str, str, str, bool]:
        return (self.type, self.category, self.value, self.value1, self.value2, self.to_ids)

    def columns(self, *, now: int) -> dict[str, Any]:
        """The ``attributes`` row besides its ids (``event_id``, ``object_id``,
        ``sharing_group_id`` are the caller's)."""
        return {
            "uuid": self.uuid,
            "category": self.category,
            "type": self.type,
            "value1": self.value1,
            "value2": self.value2,
            "to_ids": self.to_ids,
            "comment": self.comment,
            "distribution": self.distribution,
            "timestamp": self.timestamp or now,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "deleted": self.deleted,
            "disable_correlation": self.disable_correlation,
            "object_relation": self.object_relation,
        }


class ObjectReferenceIn(WireModel):
    """A reference from an object to an attribute or object, by uuid."""

    uuid: NewUuid = Field(default_factory=uuid4)
    source_uuid: MaybeUuid = None
    """the object it belongs to (PyMISP says ``object_uuid``)"""
    referenced_uuid: Uuid
    referenced_type: ReferencedType = None
    """0: an attribute, 1: an object; ``None``: not in this event (resolve it by uuid)"""
    relationship_type: Name = ""
    comment: Text = ""
    timestamp: Stamp = None
    deleted: Bool = False

    @model_validator(mode="before")
    @classmethod
    def _pymisp_names(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and blank(data.get("source_uuid")):
            data = {**data, "source_uuid": data.get("object_uuid")}
        return data

    def columns(self, *, now: int) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "source_uuid": self.source_uuid,
            "referenced_uuid": self.referenced_uuid,
            "referenced_type": self.referenced_type or 0,
            "relationship_type": self.relationship_type,
            "comment": self.comment,
            "timestamp": self.timestamp or now,
            "deleted": self.deleted,
        }


class ObjectIn(WireModel):
    """A MISP object: its attributes (each with an ``object_relation``) and references."""

    uuid: NewUuid = Field(default_factory=uuid4)
    name: Name
    meta_category: Name = Field(default="", alias="meta-category")
    description: Text = ""
    template_uuid: MaybeUuid = None
    template_version: Int = 1
    comment: Text = ""
    distribution: AttributeDistribution = 5
    sharing_group_id: MaybeInt = None
    sharing_group: Annotated[SharingGroupIn | None, Absent] = Field(
        default=None, alias="SharingGroup"
    )
    timestamp: Stamp = None
    first_seen: Seen = None
    last_seen: Seen = None
    deleted: Bool = False
    attributes: Annotated[list[AttributeIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="Attribute"
    )
    references: Annotated[list[ObjectReferenceIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="ObjectReference"
    )

    @model_validator(mode="after")
    def _misp_rules(self) -> Self:
        if not self.name.strip():
            raise fail("name", "Name cannot be empty.")
        if not self.meta_category.strip():
            raise fail("meta-category", "Meta-category cannot be empty.")
        for index, attribute in enumerate(self.attributes):
            if attribute.object_relation is None:
                raise fail(f"Attribute.{index}.object_relation", NO_RELATION)
            if self.deleted:  # MispObject::captureObject
                attribute.deleted = True
        for reference in self.references:  # Event::_add: the object's uuid wins
            reference.source_uuid = self.uuid
        self.template_version = self.template_version or 1
        seen_in_order(self)
        shared(self)
        return self

    def columns(self, *, now: int) -> dict[str, Any]:
        """The ``objects`` row besides its ids."""
        return {
            "uuid": self.uuid,
            "name": self.name,
            "meta_category": self.meta_category,
            "description": self.description,
            "template_uuid": self.template_uuid,
            "template_version": self.template_version,
            "comment": self.comment,
            "distribution": self.distribution,
            "timestamp": self.timestamp or now,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "deleted": self.deleted,
        }


class EventReportIn(WireModel):
    uuid: NewUuid = Field(default_factory=uuid4)
    name: Name
    content: Text = ""
    distribution: AttributeDistribution = 5
    sharing_group_id: MaybeInt = None
    sharing_group: Annotated[SharingGroupIn | None, Absent] = Field(
        default=None, alias="SharingGroup"
    )
    timestamp: Stamp = None
    deleted: Bool = False

    @model_validator(mode="after")
    def _misp_rules(self) -> Self:
        if not self.name.strip():
            raise fail("name", "Name cannot be empty.")
        shared(self)
        return self

    def columns(self, *, now: int) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "name": self.name,
            "content": self.content,
            "distribution": self.distribution,
            "timestamp": self.timestamp or now,
            "deleted": self.deleted,
        }
