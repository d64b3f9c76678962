"""MISP's event JSON: reading what MISP clients and servers send, writing what they expect.

* :func:`parse_event` / :func:`parse_attribute` read ``events/add``, ``events/edit``,
  ``attributes/add`` bodies and a remote's ``events/view`` into checked models
  (:class:`EventIn`...), or raise :class:`InvalidPayload` naming each field by its path.
* :func:`render_event`, :func:`render_attribute`, :func:`render_index_entry` answer as
  MISP 2.5 does; :func:`render_feed_event` writes MISP's feed format.

Pure functions over our rows (:mod:`tessera.sync.models`): no database, no network.
"""

from .answers import render_attribute, render_index_entry
from .feed import render_feed_event
from .incoming import (
    DEFAULT_EVENT_DISTRIBUTION,
    AttributeIn,
    CryptographicKeyIn,
    EventIn,
    EventReportIn,
    InvalidPayload,
    ObjectIn,
    ObjectReferenceIn,
    OrgIn,
    Problem,
    SharingGroupIn,
    SharingGroupOrgIn,
    SharingGroupServerIn,
    SightingIn,
    TagIn,
    parse_attribute,
    parse_event,
)
from .outgoing import render_event, render_org, render_sharing_group
from .scalars import iso_to_micro, micro_to_iso

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
    "iso_to_micro",
    "micro_to_iso",
    "parse_attribute",
    "parse_event",
    "render_attribute",
    "render_event",
    "render_feed_event",
    "render_index_entry",
    "render_org",
    "render_sharing_group",
]
