"""Tables of schema ``sync``: MISP's data model, in PostgreSQL.

MISP clients address everything by a numeric ``id`` (or a ``uuid``), and MISP servers
exchange by ``uuid``: every table has both, the id an identity column. Timestamps that MISP
writes as Unix seconds (``timestamp``, ``publish_timestamp``, ``date_sighting``...) stay
integers, so what is synced compares exactly as MISP compares it.

* ``organisations``: auth's organisations (``local``, from its events) and every other
  organisation that created (``Orgc``) or holds (``Org``) an event synced here, by uuid.
* ``users``, ``api_keys``, ``memberships``: this service's projection of auth's events, to
  authenticate MISP clients (``Authorization: <key>``) without asking auth.
* ``events``, ``attributes``, ``objects``, ``object_references``, ``tags`` (with
  ``event_tags``, ``attribute_tags``), ``sightings``, ``event_reports``,
  ``sharing_groups`` (with their organisations and servers).
* ``servers``, ``feeds``, ``event_blocklists``, ``org_blocklists``, ``jobs``: sync.
* ``cryptographic_keys`` (the keys a protected event trusts), ``instance_keys`` (this
  instance's OpenPGP signing keys, their secret half sealed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from tessera.common.db import make_metadata
from tessera.common.runtime import MessagingTables

__all__ = [
    "ApiKey",
    "Attribute",
    "AttributeTag",
    "CryptographicKey",
    "Event",
    "EventBlocklist",
    "EventReport",
    "EventTag",
    "Feed",
    "InstanceKey",
    "Job",
    "Membership",
    "MispObject",
    "ObjectReference",
    "OrgBlocklist",
    "Organisation",
    "Server",
    "SharingGroup",
    "SharingGroupOrg",
    "SharingGroupServer",
    "Sighting",
    "Tag",
    "User",
    "messaging",
    "metadata",
]

metadata = make_metadata("sync")
messaging = MessagingTables(metadata)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _id() -> Any:
    return Field(
        default=None,
        sa_column=Column(BigInteger, Identity(always=False), primary_key=True),
    )


def _ref(target: str, *, nullable: bool = False, cascade: bool = True, index: bool = True) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            BigInteger,
            ForeignKey(target, ondelete="CASCADE" if cascade else "SET NULL"),
            nullable=nullable,
            index=index,
        ),
    )


def _when(nullable: bool = False) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(DateTime(timezone=True), nullable=nullable),
    )


def _epoch(default: int = 0) -> Any:
    """MISP's Unix-seconds timestamps."""
    return Field(
        default=default,
        sa_column=Column(BigInteger, nullable=False, server_default=str(default)),
    )


def _text(nullable: bool = False, default: str = "") -> Any:
    return Field(
        default=None if nullable else default,
        sa_column=Column(Text, nullable=nullable, server_default=None if nullable else default),
    )


def _name(length: int, default: str = "") -> Any:
    return Field(
        default=default,
        sa_column=Column(String(length), nullable=False, server_default=default),
    )


def _flag(default: bool) -> Any:
    """A boolean with its default in the table too (rows are inserted by SQL, not the ORM)."""
    return Field(
        default=default,
        sa_column=Column(Boolean, nullable=False, server_default="true" if default else "false"),
    )


def _int(default: int) -> Any:
    return Field(
        default=default, sa_column=Column(Integer, nullable=False, server_default=str(default))
    )


def _small(default: int) -> Any:
    return Field(
        default=default,
        sa_column=Column(SmallInteger, nullable=False, server_default=str(default)),
    )


class SyncTable(SQLModel, registry=registry(metadata=metadata)):
    pass


# --- who ---------------------------------------------------------------------------------------


class Organisation(SyncTable, table=True):
    __tablename__ = "organisations"

    id: int | None = _id()
    uuid: UUID = Field(unique=True)
    name: str = Field(max_length=255, unique=True)
    description: str | None = _text(nullable=True)
    type: str = _text()
    nationality: str = _text()
    sector: str = _text()
    contacts: str | None = _text(nullable=True)
    local: bool = _flag(False)
    """one of auth's (its members use this service)"""
    created_at: datetime = _when()
    updated_at: datetime = _when()


class User(SyncTable, table=True):
    """auth's users as MISP clients see them (``users/view/me``); emptied when deleted."""

    __tablename__ = "users"

    id: int | None = _id()
    uuid: UUID = Field(unique=True, description="auth's user id")
    email: str | None = Field(default=None, max_length=320)
    full_name: str | None = Field(default=None, max_length=200)
    created_at: datetime = _when()
    deleted_at: datetime | None = _when(nullable=True)


class Membership(SyncTable, table=True):
    """A user's role in an (auth) organisation; a revoked one stays so that it outweighs a
    membership an older access token still claims."""

    __tablename__ = "memberships"

    user_uuid: UUID = Field(primary_key=True)
    organisation_uuid: UUID = Field(primary_key=True)
    role: str = Field(max_length=20)
    revoked_at: datetime | None = _when(nullable=True)
    updated_at: datetime = _when()


class ApiKey(SyncTable, table=True):
    """auth's API keys (``auth.api_key.created/revoked``): only their SHA-256."""

    __tablename__ = "api_keys"

    id: UUID = Field(primary_key=True, description="auth's api key id")
    user_uuid: UUID = Field(index=True)
    key_hash: str = Field(max_length=64, unique=True)
    prefix: str = Field(max_length=16)
    expires_at: datetime | None = _when(nullable=True)
    allowed_cidrs: list[str] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default="[]")
    )
    revoked_at: datetime | None = _when(nullable=True)


# --- what is shared ---------------------------------------------------------------------------


class SharingGroup(SyncTable, table=True):
    __tablename__ = "sharing_groups"

    id: int | None = _id()
    uuid: UUID = Field(unique=True)
    name: str = Field(max_length=255)
    releasability: str = _text()
    description: str = _text()
    org_id: int = _ref("sync.organisations.id", cascade=False)
    active: bool = _flag(True)
    roaming: bool = _flag(False)
    local: bool = _flag(True)
    created_at: datetime = _when()
    updated_at: datetime = _when()


class SharingGroupOrg(SyncTable, table=True):
    __tablename__ = "sharing_group_orgs"
    __table_args__ = (UniqueConstraint("sharing_group_id", "org_id"),)

    id: int | None = _id()
    sharing_group_id: int = _ref("sync.sharing_groups.id")
    org_id: int = _ref("sync.organisations.id")
    extend: bool = _flag(False)


class SharingGroupServer(SyncTable, table=True):
    __tablename__ = "sharing_group_servers"
    __table_args__ = (UniqueConstraint("sharing_group_id", "server_id"),)

    id: int | None = _id()
    sharing_group_id: int = _ref("sync.sharing_groups.id")
    server_id: int = Field(description="0: this instance", sa_column=Column(BigInteger))
    all_orgs: bool = _flag(False)


class Event(SyncTable, table=True):
    __tablename__ = "events"
    __table_args__ = (Index(None, "orgc_id", "timestamp"), Index(None, "timestamp"))

    id: int | None = _id()
    uuid: UUID = Field(unique=True)
    org_id: int = _ref("sync.organisations.id", cascade=False, index=False)
    orgc_id: int = _ref("sync.organisations.id", cascade=False, index=False)
    user_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    date: str = Field(max_length=10, description="YYYY-MM-DD")
    info: str = _text()
    threat_level_id: int = _small(4)
    analysis: int = _small(0)
    distribution: int = _small(0)
    sharing_group_id: int | None = _ref("sync.sharing_groups.id", nullable=True, cascade=False)
    published: bool = _flag(False)
    publish_timestamp: int = _epoch()
    timestamp: int = _epoch()
    sighting_timestamp: int = _epoch()
    attribute_count: int = Field(default=0, sa_column=Column(Integer, nullable=False,
                                                            server_default="0"))  # fmt: skip
    locked: bool = _flag(False)
    protected: bool = _flag(False)
    disable_correlation: bool = _flag(False)
    extends_uuid: UUID | None = None
    proposal_email_lock: bool = _flag(False)
    source_server_id: int | None = _ref("sync.servers.id", nullable=True, cascade=False)
    """the server it was pulled from: a push never sends it back there (MISP's pass-along)"""


class MispObject(SyncTable, table=True):
    __tablename__ = "objects"

    id: int | None = _id()
    uuid: UUID = Field(unique=True)
    event_id: int = _ref("sync.events.id")
    name: str = Field(max_length=255)
    meta_category: str = _name(255, "")
    description: str = _text()
    template_uuid: UUID | None = None
    template_version: int = _int(0)
    comment: str = _text()
    distribution: int = _small(5)
    sharing_group_id: int | None = _ref("sync.sharing_groups.id", nullable=True, cascade=False)
    timestamp: int = _epoch()
    first_seen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_seen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    deleted: bool = _flag(False)


class Attribute(SyncTable, table=True):
    __tablename__ = "attributes"
    # values reach 64 KB (a text attribute): indexed by a prefix (searches) and by a hash
    # (MISP's duplicate rule: one type, category and value per event), never whole
    __table_args__ = (
        Index(None, "event_id"),
        Index("ix_attributes_value_prefix", text("left(value1, 200)")),
        Index("ix_attributes_value2_prefix", text("left(value2, 200)")),
        Index(
            "ix_attributes_same_value",
            "event_id",
            "type",
            "category",
            text("md5(value1)"),
            text("md5(value2)"),
        ),
        Index(None, "timestamp"),
    )

    id: int | None = _id()
    uuid: UUID = Field(unique=True)
    event_id: int = _ref("sync.events.id", index=False)
    object_id: int | None = _ref("sync.objects.id", nullable=True)
    object_relation: str | None = Field(default=None, max_length=255)
    category: str = Field(max_length=255)
    type: str = Field(max_length=100)
    value1: str = _text()
    value2: str = _text()
    to_ids: bool = _flag(True)
    comment: str = _text()
    distribution: int = _small(5)
    sharing_group_id: int | None = _ref("sync.sharing_groups.id", nullable=True, cascade=False)
    timestamp: int = _epoch()
    first_seen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    last_seen: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    deleted: bool = _flag(False)
    disable_correlation: bool = _flag(False)


class ObjectReference(SyncTable, table=True):
    __tablename__ = "object_references"

    id: int | None = _id()
    uuid: UUID = Field(unique=True)
    object_id: int = _ref("sync.objects.id")
    event_id: int = _ref("sync.events.id", index=False)
    source_uuid: UUID
    referenced_uuid: UUID
    referenced_type: int = _small(0)
    relationship_type: str = _name(255, "")
    comment: str = _text()
    timestamp: int = _epoch()
    deleted: bool = _flag(False)


class Tag(SyncTable, table=True):
    __tablename__ = "tags"

    id: int | None = _id()
    name: str = Field(max_length=255, unique=True)
    colour: str = _name(7, "#ffffff")
    exportable: bool = _flag(True)
    local_only: bool = _flag(False)
    hide_tag: bool = _flag(False)
    numerical_value: int | None = None
    org_id: int | None = _ref("sync.organisations.id", nullable=True, cascade=False, index=False)
    is_galaxy: bool = _flag(False)


class EventTag(SyncTable, table=True):
    __tablename__ = "event_tags"
    __table_args__ = (UniqueConstraint("event_id", "tag_id"),)

    id: int | None = _id()
    event_id: int = _ref("sync.events.id", index=False)
    tag_id: int = _ref("sync.tags.id")
    local: bool = _flag(False)
    relationship_type: str = _name(191, "")


class AttributeTag(SyncTable, table=True):
    __tablename__ = "attribute_tags"
    __table_args__ = (UniqueConstraint("attribute_id", "tag_id"),)

    id: int | None = _id()
    attribute_id: int = _ref("sync.attributes.id", index=False)
    event_id: int = _ref("sync.events.id")
    tag_id: int = _ref("sync.tags.id")
    local: bool = _flag(False)
    relationship_type: str = _name(191, "")


class Sighting(SyncTable, table=True):
    __tablename__ = "sightings"

    id: int | None = _id()
    uuid: UUID = Field(unique=True)
    attribute_id: int = _ref("sync.attributes.id")
    event_id: int = _ref("sync.events.id")
    org_id: int | None = _ref("sync.organisations.id", nullable=True, cascade=False, index=False)
    date_sighting: int = _epoch()
    source: str = _name(255, "")
    type: int = _small(0)


class EventReport(SyncTable, table=True):
    __tablename__ = "event_reports"

    id: int | None = _id()
    uuid: UUID = Field(unique=True)
    event_id: int = _ref("sync.events.id")
    name: str = Field(max_length=255)
    content: str = _text()
    distribution: int = _small(5)
    sharing_group_id: int | None = _ref("sync.sharing_groups.id", nullable=True, cascade=False)
    timestamp: int = _epoch()
    deleted: bool = _flag(False)


class CryptographicKey(SyncTable, table=True):
    """An OpenPGP public key a protected event trusts (MISP's ``CryptographicKey`` with
    ``parent_type`` Event): a signature over the event must verify with one of them."""

    __tablename__ = "cryptographic_keys"
    __table_args__ = (UniqueConstraint("event_id", "fingerprint"),)

    id: int | None = _id()
    uuid: UUID = Field(unique=True)
    event_id: int = _ref("sync.events.id", index=False)
    type: str = _name(40, "pgp")
    key_data: str = _text()
    fingerprint: str = _name(255, "")
    revoked: bool = _flag(False)
    timestamp: int = _epoch()


# --- sync -------------------------------------------------------------------------------------


class Server(SyncTable, table=True):
    """A remote MISP (or Tessera) instance: its key is stored encrypted, never logged."""

    __tablename__ = "servers"

    id: int | None = _id()
    name: str = Field(max_length=255)
    url: str = Field(max_length=1024)
    authkey: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    org_id: int = _ref("sync.organisations.id", cascade=False, index=False)
    remote_org_id: int | None = _ref("sync.organisations.id", nullable=True, cascade=False,
                                     index=False)  # fmt: skip
    push: bool = _flag(False)
    pull: bool = _flag(False)
    push_sightings: bool = _flag(False)
    pull_rules: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    push_rules: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    internal: bool = _flag(False)
    unpublish_event: bool = _flag(False)
    publish_without_email: bool = _flag(False)
    self_signed: bool = _flag(False)
    allow_private_addresses: bool = _flag(False)
    """lets the SSRF guard reach a private address (tests, LANs)"""
    index_etag: str | None = Field(default=None, max_length=255)
    lastpulledid: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    lastpushedid: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    priority: int = _int(0)
    created_at: datetime = _when()


class Feed(SyncTable, table=True):
    """A MISP feed (``source_format`` ``misp``: ``manifest.json`` and ``<uuid>.json``) fetched
    over http(s): its headers are sealed at rest like servers' keys (they may carry one)."""

    __tablename__ = "feeds"

    id: int | None = _id()
    name: str = Field(max_length=255)
    provider: str = Field(max_length=255)
    url: str = Field(max_length=1024)
    rules: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    enabled: bool = _flag(False)
    distribution: int = _small(0)
    sharing_group_id: int | None = _ref("sync.sharing_groups.id", nullable=True, cascade=False)
    tag_id: int | None = _ref("sync.tags.id", nullable=True, cascade=False, index=False)
    source_format: str = _name(20, "misp")
    fixed_event: bool = _flag(False)
    delta_merge: bool = _flag(False)
    publish: bool = _flag(False)
    override_ids: bool = _flag(False)
    lookup_visible: bool = _flag(False)
    caching_enabled: bool = _flag(False)
    input_source: str = _name(20, "network")
    settings: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSONB, nullable=False, server_default="{}")
    )
    allow_private_addresses: bool = _flag(False)
    headers: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    """MISP's ``Name: value`` lines, sealed (``crypto.KeyBox``)"""
    manifest_etag: str | None = Field(default=None, max_length=255)
    fetch_every_s: int | None = Field(default=None, description="on a schedule when set")
    last_fetched_at: datetime | None = _when(nullable=True)
    orgc_id: int | None = _ref("sync.organisations.id", nullable=True, cascade=False, index=False)
    org_id: int | None = _ref("sync.organisations.id", nullable=True, cascade=False, index=False)
    """the organisation that holds what the feed brings in (its adder's)"""
    created_at: datetime | None = _when(nullable=True)


class InstanceKey(SyncTable, table=True):
    """One of this instance's OpenPGP keys: the oldest that is not retired signs protected
    events; its secret half sealed with ``SYNC__SERVER_KEY`` (as servers' keys are)."""

    __tablename__ = "instance_keys"

    id: int | None = _id()
    fingerprint: str = Field(max_length=255, unique=True)
    key_data: str = _text()
    secret: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = _when()
    retired_at: datetime | None = _when(nullable=True)


class EventBlocklist(SyncTable, table=True):
    __tablename__ = "event_blocklists"

    id: int | None = _id()
    event_uuid: UUID = Field(unique=True)
    event_info: str = _text()
    event_orgc: str = _name(255, "")
    comment: str | None = _text(nullable=True)
    created_at: datetime = _when()


class OrgBlocklist(SyncTable, table=True):
    __tablename__ = "org_blocklists"

    id: int | None = _id()
    org_uuid: UUID = Field(unique=True)
    org_name: str = _name(255, "")
    comment: str | None = _text(nullable=True)
    created_at: datetime = _when()


class Job(SyncTable, table=True):
    """A pull, a push or a feed fetch, with its progress (``GET /sync/jobs/{id}``)."""

    __tablename__ = "jobs"
    __table_args__ = (Index(None, "created_at"),)

    id: UUID = Field(primary_key=True)
    kind: str = Field(max_length=20, description="pull, push, feed")
    server_id: int | None = _ref("sync.servers.id", nullable=True, cascade=False)
    feed_id: int | None = _ref("sync.feeds.id", nullable=True, cascade=False)
    event_uuid: UUID | None = Field(default=None, description="one event only")
    status: str = Field(max_length=20, description="queued, running, done, failed")
    seen: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    skipped: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    fetched: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    pushed: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    failed: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # sightings a push sent on their own (MISP's Sighting::pushSightings)
    sightings: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    total: int | None = None
    error: str | None = _text(nullable=True)
    requested_by: UUID | None = None
    created_at: datetime = _when()
    started_at: datetime | None = _when(nullable=True)
    finished_at: datetime | None = _when(nullable=True)
