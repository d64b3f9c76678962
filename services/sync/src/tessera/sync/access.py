"""Who may see, edit and exchange what: MISP's rules by distribution level.

An event, and each attribute, object and event report inside it, has a distribution:

====  =====================  ==========================================================
 0    your organisation only  the event's organisation (``org_id``, who holds it here)
 1    this community only     every organisation on this instance; pulled, it becomes 0
 2    connected communities   everyone here; pushed or pulled, it becomes 1
 3    all communities         everyone, everywhere
 4    sharing group           the group's organisations (and servers, to leave here)
 5    inherit event           elements only: whoever sees the event
====  =====================  ==========================================================

The pure rules take plain values (no ORM, no I/O); the SQL predicates select exactly the
rows the pure rules allow, for asyncpg queries over this service's tables. They follow
MISP 2.5 (``Event::createEventConditions``, ``Event::fetchEvent``,
``MispAttribute::buildConditions``, ``SharingGroup::authorizedIds``,
``SharingGroup::checkIfServerInSG``, ``Event::__prepareForPushToServer``,
``Event::checkDistributionForPush``, ``Server::__updatePulledEventBeforeInsert``,
``Event::_edit``); where MISP disagrees with itself, the docstring says which one wins.

Not modelled: ``MISP.unpublishedprivate`` (unpublished events private to their
organisation) and ``MISP.delegation``; both are off in MISP's defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from tessera.sync.viewer import Viewer

__all__ = [
    "LOCAL_SERVER_ID",
    "Distribution",
    "RemoteServer",
    "SharingGroupView",
    "element_filter",
    "event_filter",
    "may_edit_event",
    "may_push_element",
    "may_push_event",
    "may_see_element",
    "may_see_event",
    "may_use_sharing_group",
    "pulled_distribution",
    "pushed_distribution",
    "received_distribution",
]

LOCAL_SERVER_ID = 0
"""``sharing_group_servers.server_id`` of this instance"""


class Distribution(IntEnum):
    ORGANISATION = 0
    COMMUNITY = 1
    CONNECTED_COMMUNITIES = 2
    ALL_COMMUNITIES = 3
    SHARING_GROUP = 4
    INHERIT_EVENT = 5


_OPEN_EVENT = frozenset({1, 2, 3})
_OPEN_ELEMENT = frozenset({1, 2, 3, 5})


@dataclass(frozen=True)
class RemoteServer:
    """A row of ``servers`` as the push and pull rules need it."""

    id: int
    org_id: int
    """the local organisation the link belongs to (``servers.org_id``)"""
    remote_org_id: int | None
    """the organisation of the sync user on the other side"""
    internal: bool = False

    def keeps_distribution_on_pull(self, *, host_org_id: int | None) -> bool:
        """Pulled data keeps its distribution only from an internal server whose link
        belongs to this instance's host organisation (``Server::__updatePulledEventBeforeInsert``
        compares ``servers.org_id``): the ``internal`` of :func:`pulled_distribution`."""
        return self.internal and host_org_id is not None and host_org_id == self.org_id

    def takes_private_events(self, *, host_org_id: int | None) -> bool:
        """Events of distribution 0 and 1 may be pushed only to an internal server whose
        remote organisation is the host organisation (``Event::checkDistributionForPush``
        compares ``servers.remote_org_id``)."""
        return self.internal and host_org_id is not None and host_org_id == self.remote_org_id


@dataclass(frozen=True)
class SharingGroupView:
    """A sharing group: its owner, its organisations (``sharing_group_orgs``) and its servers
    (``sharing_group_servers``, :data:`LOCAL_SERVER_ID` being this instance), those flagged
    "all organisations" in ``all_orgs_server_ids``. ``active`` plays no part: MISP hides
    inactive groups from the pickers, not the data shared with them."""

    id: int
    org_id: int
    org_ids: frozenset[int] = frozenset()
    server_ids: frozenset[int] = frozenset()
    all_orgs_server_ids: frozenset[int] = frozenset()
    roaming: bool = False

    def __post_init__(self) -> None:
        if not self.all_orgs_server_ids <= self.server_ids:
            raise ValueError("all_orgs_server_ids must be servers of the group")

    def grants(self, org_id: int) -> bool:
        """Whether users of ``org_id`` here see what is shared with the group
        (``SharingGroup::authorizedIds``): a member organisation, or anyone when this
        instance is in the group with "all organisations". Owning the group is not enough
        (MISP's pickers list the creator among the organisations; a group that leaves it out
        shows it only its own events)."""
        return org_id in self.org_ids or LOCAL_SERVER_ID in self.all_orgs_server_ids

    def admits_server(self, server: RemoteServer) -> bool:
        """``SharingGroup::checkIfServerInSG``: a group that lists servers (and does not roam)
        lets its data go to a listed server with "all organisations"; otherwise to a listed
        (or internal) server whose remote organisation is a member."""
        if self.server_ids and not self.roaming:
            if server.id in self.all_orgs_server_ids:
                return True
            if server.id not in self.server_ids and not server.internal:
                return False
        return server.remote_org_id is not None and server.remote_org_id in self.org_ids


# --- seeing and editing -----------------------------------------------------------------------


def may_see_event(
    viewer: Viewer, *, org_id: int, distribution: int, sharing_group: SharingGroupView | None
) -> bool:
    """``Event::createEventConditions``: a site admin sees every event; anyone the events of
    their organisation (``org_id``, the holder, not the creator ``orgc_id``) and those of
    distribution 1 to 3; a sharing group's events go to the organisations it grants.

    A sync user is a user of the remote's organisation here, nothing more: it sees what that
    organisation sees, distribution 1 included (the pulling side turns that into 0)."""
    if viewer.site_admin or org_id == viewer.org_id:
        return True
    if distribution in _OPEN_EVENT:
        return True
    if distribution == Distribution.SHARING_GROUP:
        return sharing_group is not None and sharing_group.grants(viewer.org_id)
    return False


def may_see_element(
    viewer: Viewer,
    *,
    event_org_id: int,
    distribution: int,
    sharing_group: SharingGroupView | None,
) -> bool:
    """An attribute, object or event report, by its own distribution, once its event is
    visible (``Event::fetchEvent``): the event's organisation sees all of it; others see
    distribution 1, 2, 3 and 5 (inherit) and the sharing groups granting them.

    Never call it alone: an element is seen only when :func:`may_see_event` allows its event,
    and an object's attribute only when its object is seen as well
    (``MispAttribute::buildConditions``)."""
    if viewer.site_admin or event_org_id == viewer.org_id:
        return True
    if distribution in _OPEN_ELEMENT:
        return True
    if distribution == Distribution.SHARING_GROUP:
        return sharing_group is not None and sharing_group.grants(viewer.org_id)
    return False


def may_use_sharing_group(viewer: Viewer, sharing_group: SharingGroupView) -> bool:
    """Whether the viewer may view the group itself and give it as an event's or element's
    distribution (``SharingGroup::checkIfAuthorised``): unlike seeing data, owning it counts."""
    return (
        viewer.site_admin
        or viewer.org_id == sharing_group.org_id
        or sharing_group.grants(viewer.org_id)
    )


def may_edit_event(viewer: Viewer, *, orgc_id: int, locked: bool) -> bool:
    """Whether the viewer may change the event (``Event::_edit`` with
    ``ACLComponent::canModifyEvent``): a site admin, any; a user who may modify, the events
    their organisation *created* (``orgc_id``; holding a pulled copy is not enough).

    ``locked`` marks an event that arrived by sync (pulled or pushed in). It restricts no
    one; it lets a sync user update an event another organisation created, which is how a
    remote pushes its newer version. A sync user may not overwrite an unlocked event (made
    here) unless its own organisation created it."""
    if viewer.site_admin:
        return True
    if not viewer.may_add:
        return False
    return orgc_id == viewer.org_id or (viewer.may_sync and locked)


# --- what leaves and what arrives -------------------------------------------------------------


def pulled_distribution(distribution: int, *, internal: bool) -> int:
    """The distribution a pulled event or element is stored with: the community it was
    shared with was the remote's, so 1 becomes 0 and 2 becomes 1
    (``Server::__updatePulledEventBeforeInsert``); nothing changes from an internal server
    (see :meth:`RemoteServer.keeps_distribution_on_pull`). Then :func:`received_distribution`."""
    if internal:
        return distribution
    return {1: 0, 2: 1}.get(distribution, distribution)


def pushed_distribution(distribution: int, *, internal: bool) -> int:
    """The distribution an event or element is sent with when pushed: connected communities
    (2) becomes community only (1) unless the server is internal (``Event::__updateEventForSync``
    and the ``__update*ForSync`` of elements); 3, 4 and 5 go as they are, and 0 and 1 go to
    internal servers only (:func:`may_push_event`, :func:`may_push_element`). The
    receiving side keeps what it gets, but for :func:`received_distribution`."""
    if not internal and distribution == Distribution.CONNECTED_COMMUNITIES:
        return int(Distribution.COMMUNITY)
    return distribution


def received_distribution(distribution: int, *, sharing_group_resolved: bool) -> int:
    """An event or element received (pulled or pushed in) with a sharing group that cannot be
    stored or that the sender may not use falls back to your organisation only
    (``Event::captureSGForElement``)."""
    if distribution == Distribution.SHARING_GROUP and not sharing_group_resolved:
        return int(Distribution.ORGANISATION)
    return distribution


def may_push_event(
    distribution: int,
    *,
    sharing_group: SharingGroupView | None,
    server: RemoteServer,
    host_org_id: int | None,
) -> bool:
    """Whether an event goes to ``server`` at all (the server's push rules aside).

    * 0 and 1: only to an internal server of the host organisation
      (:meth:`RemoteServer.takes_private_events`);
    * 2 and 3: yes (2 is sent as 1, :func:`pushed_distribution`);
    * 4: the remote organisation must be in the group, and the server listed in it unless the
      group roams or the server is internal. MISP checks both
      ``Event::__prepareForPushToServer`` and ``checkIfServerInSG``; the first is stricter (a
      server flagged "all organisations" still needs its organisation in the group, a group
      listing no server does not roam), and a push passes both, so that one decides;
    * 5 (not an event's level) or unknown: no.
    """
    if distribution in (Distribution.ORGANISATION, Distribution.COMMUNITY):
        return server.takes_private_events(host_org_id=host_org_id)
    if distribution in (Distribution.CONNECTED_COMMUNITIES, Distribution.ALL_COMMUNITIES):
        return True
    if distribution == Distribution.SHARING_GROUP:
        if sharing_group is None or server.remote_org_id not in sharing_group.org_ids:
            return False
        return sharing_group.roaming or server.internal or server.id in sharing_group.server_ids
    return False


def may_push_element(
    distribution: int, *, sharing_group: SharingGroupView | None, server: RemoteServer
) -> bool:
    """Whether an attribute, object or event report of a pushed event goes with it
    (``Event::__updateAttributeForSync`` and siblings): everything to an internal server;
    otherwise 2, 3 and 5, and a sharing group's if :meth:`SharingGroupView.admits_server`
    (laxer than for events: "all organisations" suffices, and a group listing no server
    roams)."""
    if server.internal:
        return True
    if distribution in (
        Distribution.CONNECTED_COMMUNITIES,
        Distribution.ALL_COMMUNITIES,
        Distribution.INHERIT_EVENT,
    ):
        return True
    if distribution == Distribution.SHARING_GROUP:
        return sharing_group is not None and sharing_group.admits_server(server)
    return False


# --- SQL --------------------------------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _name(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(f"{what} must be a plain SQL identifier, not {value!r}")
    return value


def _granted(column: str, org: str, schema: str | None) -> str:
    """The sharing group in ``column`` grants organisation ``org`` (``SharingGroupView.grants``)."""
    prefix = f"{_name(schema, 'schema')}." if schema is not None else ""
    # identifiers checked by _name, values passed as parameters
    return (
        f"(EXISTS (SELECT 1 FROM {prefix}sharing_group_orgs access_sgo"  # noqa: S608
        f" WHERE access_sgo.sharing_group_id = {column} AND access_sgo.org_id = {org})"
        f" OR EXISTS (SELECT 1 FROM {prefix}sharing_group_servers access_sgs"
        f" WHERE access_sgs.sharing_group_id = {column}"
        f" AND access_sgs.server_id = {LOCAL_SERVER_ID} AND access_sgs.all_orgs))"
    )


def event_filter(
    viewer: Viewer, *, alias: str = "e", first_param: int, schema: str | None = None
) -> tuple[str, list[Any]]:
    """A ``WHERE`` fragment selecting the rows of ``events`` (as ``alias``) that
    :func:`may_see_event` allows, and its parameters (``$first_param`` onwards). Tables are
    those of the search path unless ``schema`` is given. A site admin gets ``TRUE``."""
    e = _name(alias, "alias")
    if viewer.site_admin:
        return "TRUE", []
    org = f"${first_param}"
    sql = (
        f"({e}.org_id = {org} OR {e}.distribution IN (1, 2, 3)"
        f" OR ({e}.distribution = 4 AND {_granted(f'{e}.sharing_group_id', org, schema)}))"
    )
    return sql, [viewer.org_id]


def element_filter(
    viewer: Viewer,
    *,
    alias: str,
    event_alias: str = "e",
    first_param: int,
    schema: str | None = None,
) -> tuple[str, list[Any]]:
    """A ``WHERE`` fragment selecting the rows of ``attributes``, ``objects`` or
    ``event_reports`` (as ``alias``, joined to their ``events`` as ``event_alias``) that
    :func:`may_see_element` allows, and its parameters.

    AND it with :func:`event_filter` on ``event_alias`` (and, for an object's attributes,
    with this filter on the object); both take the viewer's organisation as their only
    parameter, so giving them the same ``first_param`` lets them share it."""
    a = _name(alias, "alias")
    e = _name(event_alias, "event_alias")
    if viewer.site_admin:
        return "TRUE", []
    org = f"${first_param}"
    sql = (
        f"({e}.org_id = {org} OR {a}.distribution IN (1, 2, 3, 5)"
        f" OR ({a}.distribution = 4 AND {_granted(f'{a}.sharing_group_id', org, schema)}))"
    )
    return sql, [viewer.org_id]
