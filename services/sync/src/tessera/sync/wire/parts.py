"""The small parts of an event: organisations, sharing groups, tags, sightings; and what
every part shares (lists that may come as one element, MISP's sharing-group rule)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, Self
from uuid import uuid4

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from .problems import fail
from .scalars import (
    Absent,
    Bool,
    Int,
    MaybeUuid,
    Name,
    NewUuid,
    Number,
    SightingType,
    Stamp,
    TagRelationship,
    Text,
    Uuid,
    misp_error,
)

__all__ = [
    "OrgIn",
    "ServerRefIn",
    "SharingGroupIn",
    "SharingGroupOrgIn",
    "SharingGroupServerIn",
    "SightingIn",
    "TagIn",
    "WireModel",
    "blank",
    "listify",
    "merged_tags",
    "seen_in_order",
    "shared",
    "some_text",
    "unique_tags",
]

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


def listify(value: Any) -> list[Any]:
    """MISP's lists: ``null`` is none, and one element may come without its list (XML)."""
    if value is None or value == "":
        return []
    if isinstance(value, Mapping | BaseModel):
        return [value]
    if isinstance(value, list | tuple):
        return list(value)
    raise misp_error("Must be a list.")


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def some_text(value: Any) -> Any:
    return None if blank(value) else value


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)


# -- organisations, sharing groups, tags, sightings --------------------------------------------


class OrgIn(WireModel):
    """An organisation as events carry it (``Org``, ``Orgc``, a sighting's): found or
    created here by uuid, else by name (``Organisation::captureOrg``)."""

    uuid: MaybeUuid = None
    name: Name = ""

    @model_validator(mode="after")
    def _named(self) -> Self:
        if self.uuid is None and not self.name.strip():
            raise fail("name", "An organisation needs a name or a uuid.")
        return self


class ServerRefIn(WireModel):
    url: Text = ""
    name: Text = ""


class SharingGroupOrgIn(WireModel):
    extend: Bool = False
    organisation: OrgIn = Field(alias="Organisation")


class SharingGroupServerIn(WireModel):
    all_orgs: Bool = False
    server_id: Int = 0
    """``0``: the instance that sent the sharing group"""
    server: Annotated[ServerRefIn | None, Absent] = Field(default=None, alias="Server")


class SharingGroupIn(WireModel):
    """A sharing group as a pushed or pulled event carries it (``SharingGroup::captureSG``)."""

    uuid: Uuid
    name: Name = ""
    releasability: Text = ""
    description: Text = ""
    active: Bool = True
    roaming: Bool = False
    organisation: Annotated[OrgIn | None, Absent] = Field(default=None, alias="Organisation")
    orgs: Annotated[list[SharingGroupOrgIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="SharingGroupOrg"
    )
    servers: Annotated[list[SharingGroupServerIn], BeforeValidator(listify)] = Field(
        default_factory=list, alias="SharingGroupServer"
    )


class TagIn(WireModel):
    """A tag with how it is attached (``local``, ``relationship_type``)."""

    name: Name
    colour: Text = ""
    """``#rrggbb``; missing or malformed: derived from the name, as ``Tag::tagColor`` does"""
    exportable: Bool = True
    hide_tag: Bool = False
    local_only: Bool = False
    numerical_value: Number = None
    is_galaxy: Bool = False
    local: Bool = False
    relationship_type: TagRelationship = ""

    @model_validator(mode="after")
    def _misp_rules(self) -> Self:
        if not self.name.strip():
            raise fail("name", "Name cannot be empty.")
        if not _COLOUR.fullmatch(self.colour):
            digest = hashlib.md5(self.name.encode(), usedforsecurity=False).hexdigest()
            self.colour = f"#{digest[:6]}"
        self.is_galaxy = self.is_galaxy or self.name.startswith("misp-galaxy:")
        return self

    def columns(self) -> dict[str, Any]:
        """The ``tags`` row, when the tag is new here."""
        return self.model_dump(
            include={
                "name",
                "colour",
                "exportable",
                "hide_tag",
                "local_only",
                "numerical_value",
                "is_galaxy",
            },
        )

    def link_columns(self) -> dict[str, Any]:
        """The ``event_tags``/``attribute_tags`` row, besides its ids."""
        return {"local": self.local, "relationship_type": self.relationship_type}


def merged_tags(tags: Any, links: Any) -> Any:
    """``Tag: [{...}]`` and ``EventTag``/``AttributeTag: [{"Tag": {...}, "local": ...}]`` as
    one list of tags (``Event::__captureObjects``). ``Tag`` as it came when it is no list:
    its field names the problem."""
    if not isinstance(links, list | tuple) or not links:
        return tags
    try:
        merged = listify(tags)
    except PydanticCustomError:
        return tags
    for link in links:
        if isinstance(link, Mapping) and isinstance(link.get("Tag"), Mapping):
            tag = dict(link["Tag"])
            for key in ("local", "relationship_type"):
                if key in link:
                    tag.setdefault(key, link[key])
            merged.append(tag)
    return merged


def unique_tags(tags: list[TagIn]) -> list[TagIn]:
    """One link per tag: tags are matched by name, whatever its case (``Tag::captureTag``)."""
    seen: set[str] = set()
    kept = []
    for tag in tags:
        if tag.name.lower() not in seen:
            seen.add(tag.name.lower())
            kept.append(tag)
    return kept


class SightingIn(WireModel):
    uuid: NewUuid = Field(default_factory=uuid4)
    type: SightingType = 0
    """0: a sighting, 1: a false positive, 2: an expiration"""
    date_sighting: Stamp = None
    """Unix seconds (PyMISP says ``timestamp``); ``None``: now"""
    source: Name = ""
    org: Annotated[OrgIn | None, Absent] = Field(default=None, alias="Organisation")

    @model_validator(mode="before")
    @classmethod
    def _pymisp_names(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and blank(data.get("date_sighting")):
            data = {**data, "date_sighting": data.get("timestamp")}
        return data

    def columns(self, *, now: int) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "type": self.type,
            "date_sighting": self.date_sighting or now,
            "source": self.source,
        }


def seen_in_order(model: Any) -> None:
    first, last = model.first_seen, model.last_seen
    if first is not None and last is not None and last < first:
        raise fail("last_seen", "Last seen value should be greater than first seen value")


def shared(model: Any) -> None:
    if model.distribution == 4 and model.sharing_group_id is None and model.sharing_group is None:
        raise fail(
            "sharing_group_id",
            'If the distribution is set to "Sharing Group", a sharing group has to be selected.',
        )
