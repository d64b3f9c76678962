"""Who may do what on an applet, and the problems its rules raise.

Roles are per applet: ``owner``, ``manager``, ``coordinator``, ``editor``, ``reviewer``
(limited to the respondents assigned to them), ``respondent``. An admin of the applet's
organisation acts as a manager. A user may hold several roles; what one of them allows is
allowed. :data:`PERMISSIONS` is MindLogger's matrix; ``tests/test_role_matrix.py`` checks
every route against a table of its own.

Someone with no role on an applet (and no admin right over it) is told it does not exist
(404): an applet's existence is not revealed by guessing its id.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tessera.common.problems import Problem

__all__ = [
    "INVITABLE",
    "PERMISSIONS",
    "Access",
    "Action",
    "AppletNotFound",
    "Forbidden",
    "Role",
    "hash_token",
    "new_token",
    "version_text",
]


class Role(StrEnum):
    owner = "owner"
    manager = "manager"
    coordinator = "coordinator"
    editor = "editor"
    reviewer = "reviewer"
    respondent = "respondent"


class Action(StrEnum):
    read = "read the applet's content and settings"
    edit = "edit the applet"
    delete = "delete the applet"
    duplicate = "duplicate the applet"
    publish = "publish or conceal the applet, or change its public link"
    read_versions = "read the applet's versions"
    export = "export the applet"
    read_roles = "see who has a role on the applet"
    invite_staff = "invite managers, coordinators and editors"
    invite_participants = "invite respondents and reviewers"
    assign_respondents = "assign respondents to reviewers"
    transfer = "transfer the applet's ownership"


_R = Role
_STAFF_READ = {_R.owner, _R.manager, _R.coordinator, _R.editor, _R.reviewer}
PERMISSIONS: dict[Action, frozenset[Role]] = {
    Action.read: frozenset(_STAFF_READ),
    Action.edit: frozenset({_R.owner, _R.manager, _R.editor}),
    Action.delete: frozenset({_R.owner, _R.manager}),
    Action.duplicate: frozenset({_R.owner, _R.manager, _R.editor}),
    Action.publish: frozenset({_R.owner, _R.manager}),
    Action.read_versions: frozenset(_STAFF_READ),
    Action.export: frozenset({_R.owner, _R.manager, _R.editor}),
    Action.read_roles: frozenset({_R.owner, _R.manager, _R.coordinator}),
    Action.invite_staff: frozenset({_R.owner, _R.manager}),
    Action.invite_participants: frozenset({_R.owner, _R.manager, _R.coordinator}),
    Action.assign_respondents: frozenset({_R.owner, _R.manager, _R.coordinator}),
    Action.transfer: frozenset({_R.owner}),
}
"""The roles allowed each action; an organisation admin counts as a manager."""

INVITABLE: dict[Role, Action] = {
    Role.manager: Action.invite_staff,
    Role.coordinator: Action.invite_staff,
    Role.editor: Action.invite_staff,
    Role.reviewer: Action.invite_participants,
    Role.respondent: Action.invite_participants,
}
"""The roles one may invite to (or remove), and the action that allows it; nobody is
invited as owner (ownership is transferred, with consent)."""


class AppletNotFound(Problem):
    status = 404
    code = "applet_not_found"
    title = "No such applet"


class Forbidden(Problem):
    status = 403
    code = "forbidden_by_role"
    title = "Your role on this applet does not allow this"


@dataclass(frozen=True)
class Access:
    """What the caller is to one live applet."""

    applet: dict[str, Any]
    roles: frozenset[Role] = field(default_factory=frozenset)
    org_admin: bool = False

    @property
    def effective(self) -> frozenset[Role]:
        return self.roles | {Role.manager} if self.org_admin else self.roles

    @property
    def respondent_only(self) -> bool:
        """Sees only what respondents see: published content, never people."""
        return not (self.effective - {Role.respondent})

    def may(self, action: Action) -> bool:
        return bool(self.effective & PERMISSIONS[action])

    def require(self, action: Action) -> None:
        if not self.may(action):
            held = ", ".join(sorted(self.effective)) or "none"
            raise Forbidden(f"your role ({held}) may not {action.value}")


def version_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


def new_token() -> str:
    """A single-use secret for a link (256 bits); only its hash is stored."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
