"""Events the applets service publishes (the producer owns them; JSON Schemas in
``contracts/applets``), and the trimmed models of auth's events it consumes.

Every event that leads to an email carries what the mailer needs to write it (addresses,
names, locale, the single-use token), so the mailer never asks anyone.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tessera.common.messaging import Event

__all__ = [
    "PUBLISHED",
    "AccessGranted",
    "AccessRevoked",
    "AppletDeleted",
    "AppletUpdated",
    "InvitationAccepted",
    "InvitationCreated",
    "InvitationDeclined",
    "InvitationReissued",
    "InvitationRevoked",
    "MembershipGranted",
    "MembershipRevoked",
    "OrganisationCreated",
    "OrganisationUpdated",
    "OwnershipTransferRequested",
    "OwnershipTransferred",
    "SnapshotActivity",
    "SnapshotFlow",
    "SnapshotItem",
    "UserDeleted",
    "UserRegistered",
    "VersionPublished",
    "VersionSnapshot",
]

Role = Literal["owner", "manager", "coordinator", "editor", "reviewer", "respondent"]
InvitableRole = Literal["manager", "coordinator", "editor", "reviewer", "respondent"]


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SnapshotItem(_Part):
    """One item as a respondent's app shows it and the answers service validates it."""

    id: uuid.UUID
    order: int = Field(ge=0)
    name: str
    question: dict[str, str] = Field(description="text by language")
    is_hidden: bool = False
    allow_edit: bool = True
    conditional_logic: dict[str, Any] | None = None
    response_type: str = Field(description="one of the response types of the applets API")
    response_values: dict[str, Any] | None = Field(
        default=None, description="the allowed values (options, ranges), by response type"
    )
    config: dict[str, Any] = Field(default_factory=dict)


class SnapshotActivity(_Part):
    id: uuid.UUID
    order: int = Field(ge=0)
    name: str
    description: dict[str, str] = Field(default_factory=dict)
    splash_screen: str | None = None
    image: str | None = None
    show_all_at_once: bool = False
    is_skippable: bool = False
    is_reviewable: bool = False
    response_is_editable: bool = True
    is_hidden: bool = False
    scores_and_reports: dict[str, Any] | None = None
    items: list[SnapshotItem]


class SnapshotFlow(_Part):
    id: uuid.UUID
    order: int = Field(ge=0)
    name: str
    description: dict[str, str] = Field(default_factory=dict)
    is_single_report: bool = False
    hide_badge: bool = False
    is_hidden: bool = False
    activities: list[str] = Field(description="names of its activities, in order")
    activity_ids: list[uuid.UUID] = Field(description="in the order they are answered")


class VersionSnapshot(_Part):
    """Everything a version fixes (the applet's whole document as ``GET
    /applets/{id}/versions/{version}`` answers it): what the answers service validates
    submissions against."""

    display_name: str
    description: dict[str, str] = Field(default_factory=dict)
    about: dict[str, str] = Field(default_factory=dict)
    image: str | None = None
    watermark: str | None = None
    theme: dict[str, Any] | None = None
    encryption: dict[str, str] | None = Field(
        default=None, description="the owner's public key and its parameters; never a private key"
    )
    retention: dict[str, Any] = Field(
        description='{"period": "days|weeks|months|years|indefinitely", "amount": n}'
    )
    activities: list[SnapshotActivity]
    flows: list[SnapshotFlow] = Field(default_factory=list)


class VersionPublished(Event):
    """An applet was created or changed: a new immutable version with its full snapshot."""

    type: ClassVar[str] = "applets.applet.version_published"
    version: ClassVar[int] = 1

    applet_id: uuid.UUID
    organisation_id: uuid.UUID
    applet_version: str = Field(pattern=r"^\d+\.\d+\.\d+$", description="1.0.0, 1.0.1, ...")
    previous_version: str | None = None
    published_by: uuid.UUID | None = None
    snapshot: VersionSnapshot


class AppletUpdated(Event):
    """A change that is not a new version: published or concealed, public link on or off."""

    type: ClassVar[str] = "applets.applet.updated"
    version: ClassVar[int] = 1

    applet_id: uuid.UUID
    organisation_id: uuid.UUID
    change: Literal["published", "concealed", "public_link_enabled", "public_link_disabled"]
    published: bool
    public_link: bool


class AppletDeleted(Event):
    """An applet was deleted (softly: its versions stay for the answers given to them)."""

    type: ClassVar[str] = "applets.applet.deleted"
    version: ClassVar[int] = 1

    applet_id: uuid.UUID
    organisation_id: uuid.UUID
    deleted_by: uuid.UUID | None = None


class AccessGranted(Event):
    """A user holds a role on an applet (new, or its details changed: a respondent's nickname,
    a reviewer's respondents)."""

    type: ClassVar[str] = "applets.access.granted"
    version: ClassVar[int] = 1

    applet_id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    nickname: str | None = Field(default=None, description="respondents: how staff call them")
    secret_id: str | None = Field(default=None, description="respondents: the study's own id")
    respondents: list[uuid.UUID] = Field(
        default_factory=list, description="reviewers: the respondents whose answers they read"
    )


class AccessRevoked(Event):
    """A user no longer holds a role on an applet."""

    type: ClassVar[str] = "applets.access.revoked"
    version: ClassVar[int] = 1

    applet_id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    reason: str = Field(max_length=64, description="removed, user_deleted, ownership_transferred")


class InvitationCreated(Event):
    """Someone was invited to an applet with a role; the mailer sends the invitation."""

    type: ClassVar[str] = "applets.invitation.created"
    version: ClassVar[int] = 1

    invitation_id: uuid.UUID
    applet_id: uuid.UUID
    applet_name: str
    email: str = Field(max_length=320)
    role: InvitableRole
    locale: str = Field(default="en", max_length=35)
    invitee_has_account: bool = Field(description="false: the email asks them to register first")
    invitee_name: str | None = None
    inviter_id: uuid.UUID
    inviter_name: str
    accept_token: str = Field(
        min_length=20, description="single-use; mailed as a link, stored hashed by applets"
    )
    expires_at: str = Field(description="ISO 8601 UTC")


class InvitationReissued(InvitationCreated):
    """A pending invitation was sent again with a new token; the earlier one stops working."""

    type: ClassVar[str] = "applets.invitation.reissued"
    version: ClassVar[int] = 1


class InvitationAccepted(Event):
    """An invitee accepted: they hold the role now; the inviter is told."""

    type: ClassVar[str] = "applets.invitation.accepted"
    version: ClassVar[int] = 1

    invitation_id: uuid.UUID
    applet_id: uuid.UUID
    applet_name: str
    role: InvitableRole
    user_id: uuid.UUID
    invitee_name: str
    invitee_email: str
    inviter_id: uuid.UUID
    inviter_email: str | None = Field(default=None, description="none when the inviter is gone")
    inviter_name: str | None = None
    inviter_locale: str = Field(default="en", max_length=35)


class InvitationDeclined(Event):
    """An invitee declined the invitation."""

    type: ClassVar[str] = "applets.invitation.declined"
    version: ClassVar[int] = 1

    invitation_id: uuid.UUID
    applet_id: uuid.UUID
    role: InvitableRole
    user_id: uuid.UUID


class InvitationRevoked(Event):
    """A pending invitation was withdrawn; its link no longer works."""

    type: ClassVar[str] = "applets.invitation.revoked"
    version: ClassVar[int] = 1

    invitation_id: uuid.UUID
    applet_id: uuid.UUID
    revoked_by: uuid.UUID


class OwnershipTransferRequested(Event):
    """An owner offered their applet to someone; the mailer asks that person to accept."""

    type: ClassVar[str] = "applets.ownership.transfer_requested"
    version: ClassVar[int] = 1

    transfer_id: uuid.UUID
    applet_id: uuid.UUID
    applet_name: str
    email: str = Field(max_length=320)
    locale: str = Field(default="en", max_length=35)
    recipient_has_account: bool
    recipient_name: str | None = None
    owner_id: uuid.UUID
    owner_name: str
    accept_token: str = Field(
        min_length=20, description="single-use; mailed as a link, stored hashed by applets"
    )
    expires_at: str = Field(description="ISO 8601 UTC")


class OwnershipTransferred(Event):
    """An applet has a new owner: the offer was accepted, or the only owner's account was
    deleted and the organisation's admin took it over. Both sides are told."""

    type: ClassVar[str] = "applets.ownership.transferred"
    version: ClassVar[int] = 1

    applet_id: uuid.UUID
    applet_name: str
    reason: Literal["transfer_accepted", "owner_deleted"]
    previous_owner_id: uuid.UUID
    previous_owner_email: str | None = Field(default=None, description="none when deleted")
    previous_owner_name: str | None = None
    previous_owner_locale: str = Field(default="en", max_length=35)
    new_owner_id: uuid.UUID
    new_owner_email: str | None = None
    new_owner_name: str | None = None
    new_owner_locale: str = Field(default="en", max_length=35)


PUBLISHED: list[type[Event]] = [
    VersionPublished,
    AppletUpdated,
    AppletDeleted,
    AccessGranted,
    AccessRevoked,
    InvitationCreated,
    InvitationReissued,
    InvitationAccepted,
    InvitationDeclined,
    InvitationRevoked,
    OwnershipTransferRequested,
    OwnershipTransferred,
]


# --- trimmed models of auth's events, as applets reads them ------------------------------------


class UserRegistered(Event):
    """``auth.user.registered`` v1: who the user is, for invitations and emails."""

    type: ClassVar[str] = "auth.user.registered"
    version: ClassVar[int] = 1

    user_id: uuid.UUID
    email: str
    full_name: str
    locale: str = "en"


class UserDeleted(Event):
    """``auth.user.deleted`` v1: remove the user's roles; an applet left without an owner
    passes to its organisation's admins."""

    type: ClassVar[str] = "auth.user.deleted"
    version: ClassVar[int] = 1

    user_id: uuid.UUID


class OrganisationCreated(Event):
    type: ClassVar[str] = "auth.organisation.created"
    version: ClassVar[int] = 1

    organisation_id: uuid.UUID
    name: str


class OrganisationUpdated(Event):
    type: ClassVar[str] = "auth.organisation.updated"
    version: ClassVar[int] = 1

    organisation_id: uuid.UUID
    name: str


class MembershipGranted(Event):
    type: ClassVar[str] = "auth.membership.granted"
    version: ClassVar[int] = 1

    organisation_id: uuid.UUID
    user_id: uuid.UUID
    role: str


class MembershipRevoked(Event):
    type: ClassVar[str] = "auth.membership.revoked"
    version: ClassVar[int] = 1

    organisation_id: uuid.UUID
    user_id: uuid.UUID
