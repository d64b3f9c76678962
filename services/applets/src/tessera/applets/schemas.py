"""Request and response models of the applets API (the HTTP contract). The applet document
itself is in ``document.py`` (what is sent) and these ``*Out`` models (what comes back)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from tessera.applets.domain import Role

__all__ = [
    "ActivityOut",
    "AppletOut",
    "AppletSummary",
    "ChangesOut",
    "DuplicateIn",
    "FlowOut",
    "ImportOut",
    "InvitationIn",
    "InvitationOut",
    "ItemOut",
    "PublicLinkOut",
    "RespondentsIn",
    "RoleOut",
    "TokenIn",
    "TransferIn",
    "TransferOut",
    "VersionOut",
    "VersionSummary",
]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ItemOut(_Out):
    id: uuid.UUID
    order: int
    name: str
    question: dict[str, str]
    response_type: str
    response_values: dict[str, Any] | None = None
    config: dict[str, Any]
    is_hidden: bool
    allow_edit: bool
    conditional_logic: dict[str, Any] | None = None


class ActivityOut(_Out):
    id: uuid.UUID
    order: int
    name: str
    description: dict[str, str]
    splash_screen: str | None = None
    image: str | None = None
    show_all_at_once: bool
    is_skippable: bool
    is_reviewable: bool
    response_is_editable: bool
    is_hidden: bool
    scores_and_reports: dict[str, Any] | None = None
    items: list[ItemOut]


class FlowOut(_Out):
    id: uuid.UUID
    order: int
    name: str
    description: dict[str, str]
    is_single_report: bool
    hide_badge: bool
    is_hidden: bool
    activities: list[str] | None = Field(description="names of its activities, in order")
    activity_ids: list[uuid.UUID]


class AppletOut(_Out):
    """The applet's current content with its metadata; ``PUT`` takes it back as it is. A
    field without a value is left out (read it as null)."""

    id: uuid.UUID
    organisation_id: uuid.UUID
    version: str = Field(description="the current version, 1.0.0 at creation")
    published: bool = Field(description="respondents see it (POST .../publish, .../conceal)")
    public_link: bool = Field(description="anonymous respondents may answer through a link")
    created_at: datetime
    updated_at: datetime
    my_roles: list[str] = Field(
        default_factory=list, description="the caller's roles (manager for an organisation admin)"
    )
    display_name: str
    description: dict[str, str]
    about: dict[str, str]
    image: str | None = None
    watermark: str | None = None
    theme: dict[str, Any] | None = None
    encryption: dict[str, Any] | None = None
    retention: dict[str, Any]
    activities: list[ActivityOut]
    flows: list[FlowOut]


class AppletSummary(_Out):
    id: uuid.UUID
    organisation_id: uuid.UUID
    display_name: str
    version: str
    published: bool
    my_roles: list[str]
    created_at: datetime
    updated_at: datetime


class DuplicateIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"display_name": "Daily wellbeing (pilot 2)"}]},
    )

    display_name: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description='default: "<name> (copy)"'
    )


class PublicLinkOut(BaseModel):
    token: str = Field(description="shown once: only its hash is kept")
    path: str = Field(description="where anonymous respondents read the applet")


class VersionSummary(_Out):
    version: str
    created_at: datetime
    created_by: uuid.UUID | None


class VersionOut(VersionSummary):
    applet_id: uuid.UUID
    content: dict[str, Any] = Field(description="the applet document as this version fixed it")


class ChangesOut(BaseModel):
    applet_id: uuid.UUID
    version: str
    previous_version: str | None
    changes: list[str] = Field(description="what changed, one line each, as a manager reads it")


class RoleOut(_Out):
    user_id: uuid.UUID
    role: Role
    email: str | None = Field(description="none once the account is deleted")
    full_name: str | None
    nickname: str | None = None
    secret_id: str | None = None
    respondents: list[uuid.UUID] = Field(default_factory=list)
    granted_at: datetime


class InvitationIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "rosa@example.org",
                    "role": "respondent",
                    "nickname": "R-12",
                    "secret_id": "P-0012",
                    "locale": "es",
                }
            ]
        },
    )

    email: EmailStr
    role: Literal["manager", "coordinator", "editor", "reviewer", "respondent"]
    locale: Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None = Field(
        default=None,
        description="of the email; default: the invitee's own, else the inviter's",
    )
    nickname: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="respondents only: how staff see them"
    )
    secret_id: Annotated[str, Field(min_length=1, max_length=100)] | None = Field(
        default=None, description="respondents only: the study's own id, unique in the applet"
    )
    respondents: list[uuid.UUID] = Field(
        default_factory=list, max_length=10_000, description="reviewers only: whom they review"
    )


class InvitationOut(_Out):
    id: uuid.UUID
    applet_id: uuid.UUID
    email: str
    role: str
    locale: str
    nickname: str | None
    secret_id: str | None
    respondents: list[uuid.UUID]
    status: Literal["pending", "accepted", "declined", "revoked", "expired"]
    sent_count: int
    invited_by: uuid.UUID
    user_id: uuid.UUID | None
    expires_at: datetime
    created_at: datetime
    updated_at: datetime


class TokenIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"token": "k3Jx9q7sV1mQpW2eR5tY8uI0oP4aS6dF3gH1jK9lZ0c"}]},
    )

    token: Annotated[str, Field(min_length=20, max_length=200, description="from the email")]


class TransferIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "grace@example.org"}]}
    )

    email: EmailStr = Field(description="who is offered the applet; they accept by the email")


class TransferOut(BaseModel):
    id: uuid.UUID
    applet_id: uuid.UUID
    email: str
    status: str
    expires_at: datetime


class RespondentsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"respondents": ["3f1c2b9e-8a7d-4c6b-9e5f-1a2b3c4d5e6f"]}]},
    )

    respondents: list[uuid.UUID] = Field(max_length=10_000)


class UnsupportedOut(BaseModel):
    where: str
    field: str
    value: str
    reason: str


class ImportOut(BaseModel):
    applet: AppletOut
    unsupported: list[UnsupportedOut] = Field(
        description="each ReproSchema field the import could not map, and why"
    )
