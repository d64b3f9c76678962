"""MISP's object templates, as pymisp ships them (``pymisp/data/misp-objects/objects``), and
the rules ``objects/add`` checks an object against (``ObjectTemplate::checkTemplateConformity``).

An object names its template by ``template_uuid`` and ``template_version``. When this instance
knows that template at that version, ``objects/add`` takes the object's name, meta-category and
description from it (``MispObject::saveObject``) and refuses an object that lacks a required
attribute, has none of the "one of" attributes, repeats a relation the template allows only
once, or (stricter than MISP, which saves it) has a relation the template does not define.
An object whose template is unknown here, or known at another version, is saved as it came,
as MISP does.

Pure: reading the templates is file I/O, done once (:func:`load_templates`, in a thread
from async code), then kept.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from tessera.sync.misp_types import pymisp_data

__all__ = [
    "NO_ATTRIBUTES",
    "Element",
    "Template",
    "conformity",
    "load_templates",
    "unknown_relations",
]

NO_ATTRIBUTES = "Could not save the object as no attributes were set."
UNKNOWN_RELATION = "The object template {name} (version {version}) has no relation {relation}."
REQUIRED = "Could not save the object as a required attribute is not set ({relation})"
ONE_OF = (
    "Could not save the object as it requires at least one of the following attributes to "
    "be set: {relations}"
)
ONLY_ONCE = (
    "Could not save the object as a unique relationship within the object was assigned to more "
    "than one attribute. This is only allowed if the multiple flag is set in the object template."
)


@dataclass(frozen=True)
class Element:
    """One attribute a template defines: its relation, MISP type and whether it may repeat."""

    relation: str
    type: str
    multiple: bool


@dataclass(frozen=True)
class Template:
    uuid: UUID
    version: int
    name: str
    meta_category: str
    description: str
    elements: Mapping[str, Element]
    required: tuple[str, ...] = ()
    required_one_of: tuple[str, ...] = ()

    def fills(self) -> dict[str, Any]:
        """What the template decides of an object it describes (``saveObject``)."""
        return {
            "name": self.name,
            "meta-category": self.meta_category,
            "description": self.description,
            "template_uuid": str(self.uuid),
            "template_version": self.version,
        }


def _template(document: Mapping[str, Any]) -> Template:
    elements = {
        relation: Element(relation, str(spec.get("misp-attribute", "")),
                          bool(spec.get("multiple", False)))
        for relation, spec in (document.get("attributes") or {}).items()
    }  # fmt: skip
    return Template(
        uuid=UUID(str(document["uuid"])),
        version=int(document["version"]),
        name=str(document["name"]),
        meta_category=str(document.get("meta-category", "")),
        description=str(document.get("description", "")),
        elements=elements,
        required=tuple(document.get("required") or ()),
        required_one_of=tuple(document.get("requiredOneOf") or ()),
    )


@functools.cache
def load_templates() -> Mapping[UUID, Template]:
    """Every template pymisp ships, by uuid (read once, then shared; blocking file I/O)."""
    found: dict[UUID, Template] = {}
    for path in sorted(pymisp_data("misp-objects", "objects").glob("*/definition.json")):
        try:
            template = _template(json.loads(path.read_text("utf-8")))
        except (KeyError, ValueError, TypeError):  # a malformed definition is no template
            continue
        found[template.uuid] = template
    return found


def unknown_relations(template: Template, relations: Iterable[str | None]) -> dict[str, list[str]]:
    """``{"Attribute.<n>.object_relation": [message]}`` for each relation the template lacks."""
    errors: dict[str, list[str]] = {}
    for index, relation in enumerate(relations):
        if relation is not None and relation not in template.elements:
            message = UNKNOWN_RELATION.format(
                name=template.name, version=template.version, relation=relation
            )
            errors[f"Attribute.{index}.object_relation"] = [message]
    return errors


def conformity(template: Template, relations: list[str | None]) -> dict[str, list[str]]:
    """What ``checkTemplateConformity`` refuses (and relations the template lacks), by the
    field at fault; empty when the object conforms."""
    errors = unknown_relations(template, relations)
    present = set(relations)
    missing = [r for r in template.required if r not in present]
    if missing:
        errors["Attribute"] = [REQUIRED.format(relation=missing[0])]
    elif template.required_one_of and not present & set(template.required_one_of):
        errors["Attribute"] = [ONE_OF.format(relations=", ".join(template.required_one_of))]
    seen: set[str] = set()
    for index, relation in enumerate(relations):
        element = template.elements.get(relation or "")
        if element is None or element.multiple:
            continue
        if relation in seen:
            errors.setdefault(f"Attribute.{index}.object_relation", []).append(ONLY_ONCE)
        seen.add(element.relation)
    return errors
