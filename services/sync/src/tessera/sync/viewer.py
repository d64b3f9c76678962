"""Who is calling, in MISP's terms: a user of one organisation with one of MISP's roles.

Users and organisations are auth's (this service keeps a projection of its events). A MISP
user belongs to exactly one organisation: here, the oldest organisation the user is still a
member of. The role comes from settings (``SYNC__ROLES``), by what the user is in that
organisation (admin or member), with overrides per organisation and per user (a remote
server's sync account, say); a superadmin is MISP's site admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

__all__ = ["MispRole", "Viewer"]


class MispRole(StrEnum):
    admin = "admin"
    """MISP's site admin: everything, every organisation"""
    org_admin = "org_admin"
    publisher = "publisher"
    user = "user"
    read_only = "read_only"
    sync_user = "sync_user"
    """a remote server's account: pulls and pushes"""


# MISP's role ids and names, as ``users/view/me`` shows them (MISP's default roles)
ROLE_IDS = {
    MispRole.admin: 1,
    MispRole.org_admin: 2,
    MispRole.user: 3,
    MispRole.publisher: 4,
    MispRole.sync_user: 5,
    MispRole.read_only: 6,
}
ROLE_NAMES = {
    MispRole.admin: "admin",
    MispRole.org_admin: "Org Admin",
    MispRole.user: "User",
    MispRole.publisher: "Publisher",
    MispRole.sync_user: "Sync user",
    MispRole.read_only: "Read Only",
}


@dataclass(frozen=True)
class Viewer:
    """The caller of a MISP route: their local ids, their organisation and their role."""

    user_id: int
    user_uuid: UUID
    email: str
    org_id: int
    org_uuid: UUID
    org_name: str
    role: MispRole

    @property
    def site_admin(self) -> bool:
        return self.role == MispRole.admin

    @property
    def org_admin(self) -> bool:
        return self.role in (MispRole.admin, MispRole.org_admin)

    @property
    def may_add(self) -> bool:
        """Create and edit events of their organisation, add attributes."""
        return self.role != MispRole.read_only

    @property
    def may_publish(self) -> bool:
        return self.role in (
            MispRole.admin, MispRole.org_admin, MispRole.publisher, MispRole.sync_user,
        )  # fmt: skip

    @property
    def may_sync(self) -> bool:
        return self.role in (MispRole.admin, MispRole.sync_user)

    @property
    def may_tag(self) -> bool:
        return self.role != MispRole.read_only

    @property
    def may_sight(self) -> bool:
        return self.role != MispRole.read_only

    def permissions(self) -> dict[str, bool]:
        """The ``perm_*`` flags MISP's ``Role`` carries."""
        return {
            "perm_add": self.may_add,
            "perm_modify": self.may_add,
            "perm_modify_org": self.may_add,
            "perm_publish": self.may_publish,
            "perm_delegate": self.may_publish,
            "perm_sync": self.may_sync,
            "perm_admin": self.org_admin,
            "perm_audit": self.org_admin,
            "perm_auth": True,
            "perm_site_admin": self.site_admin,
            "perm_regexp_access": self.site_admin,
            "perm_tagger": self.may_tag,
            "perm_template": self.org_admin,
            "perm_sharing_group": self.org_admin or self.may_sync,
            "perm_tag_editor": self.org_admin,
            "perm_sighting": self.may_sight,
            "perm_object_template": self.site_admin,
            "perm_publish_zmq": self.may_publish,
            "perm_publish_kafka": self.may_publish,
            "perm_decaying": self.may_add,
            "perm_galaxy_editor": self.org_admin,
            "perm_warninglist": self.site_admin,
            "perm_view_feed_correlations": True,
            "perm_analyst_data": self.may_add,
            "perm_skip_otp": False,
            "perm_server_sign": self.site_admin,
        }
