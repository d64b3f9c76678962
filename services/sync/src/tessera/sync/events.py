"""Events the sync service publishes (JSON Schemas in ``contracts/sync``), and the trimmed
models of auth's events it consumes (its projection of users, organisations and API keys)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import Field

from tessera.common.messaging import Event

__all__ = [
    "PUBLISHED",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "EventDeleted",
    "EventPublished",
    "EventUpdated",
    "FeedFetchRequested",
    "FeedItemRequested",
    "MembershipGranted",
    "MembershipRevoked",
    "OrganisationCreated",
    "OrganisationUpdated",
    "PullItemRequested",
    "PullRequested",
    "PushItemRequested",
    "PushRequested",
    "UserDeleted",
    "UserRegistered",
]


class _EventFacts(Event):
    event_id: int = Field(description="this instance's numeric id")
    event_uuid: uuid.UUID
    info: str = Field(max_length=2000)
    orgc_uuid: uuid.UUID = Field(description="the organisation that created it")
    org_uuid: uuid.UUID = Field(description="the organisation that holds it here")
    distribution: int = Field(ge=0, le=4)
    timestamp: int = Field(description="MISP's Unix-seconds timestamp of the change")
    attribute_count: int = Field(ge=0)
    source: str = Field(
        description="api (a user or client), pull (from a server), push (a server's), feed"
    )


class EventPublished(_EventFacts):
    """A MISP event was published here (by a user, or synced in already published)."""

    type: ClassVar[str] = "sync.event.published"
    version: ClassVar[int] = 1


class EventUpdated(_EventFacts):
    """A MISP event was created or changed here (not a publication)."""

    type: ClassVar[str] = "sync.event.updated"
    version: ClassVar[int] = 1


class EventDeleted(Event):
    """A MISP event was deleted here (``events/delete``): gone with everything in it, its
    uuid blocklisted so that no pull brings it back. The facts are the event's last."""

    type: ClassVar[str] = "sync.event.deleted"
    version: ClassVar[int] = 1

    event_id: int = Field(description="this instance's numeric id (not reused)")
    event_uuid: uuid.UUID
    info: str = Field(max_length=2000)
    orgc_uuid: uuid.UUID = Field(description="the organisation that created it")
    org_uuid: uuid.UUID = Field(description="the organisation that held it here")
    source: str = Field(description="api (a user or client)")


class PullRequested(Event):
    """A pull from a remote server was asked for (a job): sync sends itself this work
    through its outbox, so no request is lost and any replica may take it."""

    type: ClassVar[str] = "sync.pull.requested"
    version: ClassVar[int] = 1

    job_id: uuid.UUID
    server_id: int
    event_uuid: uuid.UUID | None = Field(default=None, description="one event only")


class PullItemRequested(Event):
    """One event of a pull to download: one message per event, handled by as many
    consumers at once as their prefetch allows, on any replica."""

    type: ClassVar[str] = "sync.pull_item.requested"
    version: ClassVar[int] = 1

    job_id: uuid.UUID
    server_id: int
    event_uuid: uuid.UUID
    remote_timestamp: int


class PushRequested(Event):
    """A push to a remote server was asked for (a job): which events go is decided by its
    handler (the rules here, then the remote's ``events/filterEventIdsForPush``)."""

    type: ClassVar[str] = "sync.push.requested"
    version: ClassVar[int] = 1

    job_id: uuid.UUID
    server_id: int
    event_uuid: uuid.UUID | None = Field(default=None, description="one event only")


class PushItemRequested(Event):
    """One event of a push to send (``events/add``, or ``events/edit`` when the remote has
    it): one message per event, handled concurrently like a pull's items."""

    type: ClassVar[str] = "sync.push_item.requested"
    version: ClassVar[int] = 1

    job_id: uuid.UUID
    server_id: int
    event_uuid: uuid.UUID


class FeedFetchRequested(Event):
    """A fetch of a MISP feed was asked for (a job, by a user or the schedule): its manifest
    is read by whichever replica takes this."""

    type: ClassVar[str] = "sync.feed_fetch.requested"
    version: ClassVar[int] = 1

    job_id: uuid.UUID
    feed_id: int


class FeedItemRequested(Event):
    """One event of a feed fetch to download (``<uuid>.json``)."""

    type: ClassVar[str] = "sync.feed_item.requested"
    version: ClassVar[int] = 1

    job_id: uuid.UUID
    feed_id: int
    event_uuid: uuid.UUID
    feed_timestamp: int


PUBLISHED: list[type[Event]] = [
    EventPublished, EventUpdated, EventDeleted, PullRequested, PullItemRequested, PushRequested,
    PushItemRequested, FeedFetchRequested, FeedItemRequested,
]  # fmt: skip


# --- auth's events, as sync reads them ----------------------------------------------------------


class UserRegistered(Event):
    type: ClassVar[str] = "auth.user.registered"
    version: ClassVar[int] = 1

    user_id: uuid.UUID
    email: str
    full_name: str


class UserDeleted(Event):
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


class ApiKeyCreated(Event):
    type: ClassVar[str] = "auth.api_key.created"
    version: ClassVar[int] = 1

    api_key_id: uuid.UUID
    user_id: uuid.UUID
    key_hash: str
    prefix: str
    expires_at: str | None = None
    allowed_cidrs: list[str] = Field(default_factory=list)


class ApiKeyRevoked(Event):
    type: ClassVar[str] = "auth.api_key.revoked"
    version: ClassVar[int] = 1

    api_key_id: uuid.UUID
    user_id: uuid.UUID
    key_hash: str
