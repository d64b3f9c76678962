"""MISP's data model

Revision ID: 0003_sync_misp
Revises: 0002_sync_outbox_v2
Create Date: 2026-12-05 08:54:36.034924
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_sync_misp"
down_revision: str | None = "0002_sync_outbox_v2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ = (sa, sqlmodel)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_uuid", sa.Uuid(), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "allowed_cidrs",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_api_keys_user_uuid"), "api_keys", ["user_uuid"], unique=False, schema="sync"
    )
    op.create_table(
        "event_blocklists",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_uuid", sa.Uuid(), nullable=False),
        sa.Column("event_info", sa.Text(), server_default="", nullable=False),
        sa.Column("event_orgc", sa.String(length=255), server_default="", nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_blocklists")),
        sa.UniqueConstraint("event_uuid", name=op.f("uq_event_blocklists_event_uuid")),
        schema="sync",
    )
    op.create_table(
        "memberships",
        sa.Column("user_uuid", sa.Uuid(), nullable=False),
        sa.Column("organisation_uuid", sa.Uuid(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_uuid", "organisation_uuid", name=op.f("pk_memberships")),
        schema="sync",
    )
    op.create_table(
        "org_blocklists",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("org_uuid", sa.Uuid(), nullable=False),
        sa.Column("org_name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_blocklists")),
        sa.UniqueConstraint("org_uuid", name=op.f("uq_org_blocklists_org_uuid")),
        schema="sync",
    )
    op.create_table(
        "organisations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), server_default="", nullable=False),
        sa.Column("nationality", sa.Text(), server_default="", nullable=False),
        sa.Column("sector", sa.Text(), server_default="", nullable=False),
        sa.Column("contacts", sa.Text(), nullable=True),
        sa.Column("local", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
        sa.UniqueConstraint("uuid", name=op.f("uq_organisations_uuid")),
        schema="sync",
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("full_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("uuid", name=op.f("uq_users_uuid")),
        schema="sync",
    )
    op.create_table(
        "servers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("authkey", sa.LargeBinary(), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("remote_org_id", sa.BigInteger(), nullable=True),
        sa.Column("push", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("pull", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("push_sightings", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "pull_rules",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "push_rules",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("internal", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("unpublish_event", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("publish_without_email", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("self_signed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("allow_private_addresses", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("index_etag", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("lastpulledid", sa.BigInteger(), nullable=True),
        sa.Column("lastpushedid", sa.BigInteger(), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["sync.organisations.id"],
            name=op.f("fk_servers_org_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["remote_org_id"],
            ["sync.organisations.id"],
            name=op.f("fk_servers_remote_org_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_servers")),
        schema="sync",
    )
    op.create_table(
        "sharing_groups",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("releasability", sa.Text(), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("roaming", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("local", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["sync.organisations.id"],
            name=op.f("fk_sharing_groups_org_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_groups")),
        sa.UniqueConstraint("uuid", name=op.f("uq_sharing_groups_uuid")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_sharing_groups_org_id"), "sharing_groups", ["org_id"], unique=False, schema="sync"
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("colour", sa.String(length=7), server_default="#ffffff", nullable=False),
        sa.Column("exportable", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("local_only", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("hide_tag", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("numerical_value", sa.Integer(), nullable=True),
        sa.Column("org_id", sa.BigInteger(), nullable=True),
        sa.Column("is_galaxy", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["sync.organisations.id"],
            name=op.f("fk_tags_org_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name", name=op.f("uq_tags_name")),
        schema="sync",
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("orgc_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("date", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("info", sa.Text(), server_default="", nullable=False),
        sa.Column("threat_level_id", sa.SmallInteger(), server_default="4", nullable=False),
        sa.Column("analysis", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("distribution", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("sharing_group_id", sa.BigInteger(), nullable=True),
        sa.Column("published", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("publish_timestamp", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("timestamp", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("sighting_timestamp", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("attribute_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("protected", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("disable_correlation", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("extends_uuid", sa.Uuid(), nullable=True),
        sa.Column("proposal_email_lock", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["sync.organisations.id"],
            name=op.f("fk_events_org_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["orgc_id"],
            ["sync.organisations.id"],
            name=op.f("fk_events_orgc_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sharing_group_id"],
            ["sync.sharing_groups.id"],
            name=op.f("fk_events_sharing_group_id_sharing_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("uuid", name=op.f("uq_events_uuid")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_events_orgc_id_timestamp"),
        "events",
        ["orgc_id", "timestamp"],
        unique=False,
        schema="sync",
    )
    op.create_index(
        op.f("ix_events_sharing_group_id"),
        "events",
        ["sharing_group_id"],
        unique=False,
        schema="sync",
    )
    op.create_index(
        op.f("ix_events_timestamp"), "events", ["timestamp"], unique=False, schema="sync"
    )
    op.create_table(
        "feeds",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column(
            "rules", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("distribution", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("sharing_group_id", sa.BigInteger(), nullable=True),
        sa.Column("tag_id", sa.BigInteger(), nullable=True),
        sa.Column("source_format", sa.String(length=20), server_default="misp", nullable=False),
        sa.Column("fixed_event", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("publish", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("override_ids", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("allow_private_addresses", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "headers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("manifest_etag", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("fetch_every_s", sa.Integer(), nullable=True),
        sa.Column("last_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("orgc_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["orgc_id"],
            ["sync.organisations.id"],
            name=op.f("fk_feeds_orgc_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sharing_group_id"],
            ["sync.sharing_groups.id"],
            name=op.f("fk_feeds_sharing_group_id_sharing_groups"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["sync.tags.id"], name=op.f("fk_feeds_tag_id_tags"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_feeds_sharing_group_id"),
        "feeds",
        ["sharing_group_id"],
        unique=False,
        schema="sync",
    )
    op.create_table(
        "sharing_group_orgs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sharing_group_id", sa.BigInteger(), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=False),
        sa.Column("extend", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["sync.organisations.id"],
            name=op.f("fk_sharing_group_orgs_org_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sharing_group_id"],
            ["sync.sharing_groups.id"],
            name=op.f("fk_sharing_group_orgs_sharing_group_id_sharing_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_group_orgs")),
        sa.UniqueConstraint(
            "sharing_group_id", "org_id", name=op.f("uq_sharing_group_orgs_sharing_group_id_org_id")
        ),
        schema="sync",
    )
    op.create_index(
        op.f("ix_sharing_group_orgs_org_id"),
        "sharing_group_orgs",
        ["org_id"],
        unique=False,
        schema="sync",
    )
    op.create_index(
        op.f("ix_sharing_group_orgs_sharing_group_id"),
        "sharing_group_orgs",
        ["sharing_group_id"],
        unique=False,
        schema="sync",
    )
    op.create_table(
        "sharing_group_servers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("sharing_group_id", sa.BigInteger(), nullable=False),
        sa.Column("server_id", sa.BigInteger(), nullable=True),
        sa.Column("all_orgs", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["sharing_group_id"],
            ["sync.sharing_groups.id"],
            name=op.f("fk_sharing_group_servers_sharing_group_id_sharing_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_group_servers")),
        sa.UniqueConstraint(
            "sharing_group_id",
            "server_id",
            name=op.f("uq_sharing_group_servers_sharing_group_id_server_id"),
        ),
        schema="sync",
    )
    op.create_index(
        op.f("ix_sharing_group_servers_sharing_group_id"),
        "sharing_group_servers",
        ["sharing_group_id"],
        unique=False,
        schema="sync",
    )
    op.create_table(
        "event_reports",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("content", sa.Text(), server_default="", nullable=False),
        sa.Column("distribution", sa.SmallInteger(), server_default="5", nullable=False),
        sa.Column("sharing_group_id", sa.BigInteger(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["sync.events.id"],
            name=op.f("fk_event_reports_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sharing_group_id"],
            ["sync.sharing_groups.id"],
            name=op.f("fk_event_reports_sharing_group_id_sharing_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_reports")),
        sa.UniqueConstraint("uuid", name=op.f("uq_event_reports_uuid")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_event_reports_event_id"),
        "event_reports",
        ["event_id"],
        unique=False,
        schema="sync",
    )
    op.create_index(
        op.f("ix_event_reports_sharing_group_id"),
        "event_reports",
        ["sharing_group_id"],
        unique=False,
        schema="sync",
    )
    op.create_table(
        "event_tags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("tag_id", sa.BigInteger(), nullable=False),
        sa.Column("local", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("relationship_type", sa.String(length=191), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["sync.events.id"],
            name=op.f("fk_event_tags_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["sync.tags.id"], name=op.f("fk_event_tags_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_tags")),
        sa.UniqueConstraint("event_id", "tag_id", name=op.f("uq_event_tags_event_id_tag_id")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_event_tags_tag_id"), "event_tags", ["tag_id"], unique=False, schema="sync"
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("server_id", sa.BigInteger(), nullable=True),
        sa.Column("feed_id", sa.BigInteger(), nullable=True),
        sa.Column("event_uuid", sa.Uuid(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("seen", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("fetched", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bytes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["sync.feeds.id"], name=op.f("fk_jobs_feed_id_feeds"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["server_id"],
            ["sync.servers.id"],
            name=op.f("fk_jobs_server_id_servers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        schema="sync",
    )
    op.create_index(op.f("ix_jobs_created_at"), "jobs", ["created_at"], unique=False, schema="sync")
    op.create_index(op.f("ix_jobs_feed_id"), "jobs", ["feed_id"], unique=False, schema="sync")
    op.create_index(op.f("ix_jobs_server_id"), "jobs", ["server_id"], unique=False, schema="sync")
    op.create_table(
        "objects",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("meta_category", sa.String(length=255), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("template_uuid", sa.Uuid(), nullable=True),
        sa.Column("template_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("distribution", sa.SmallInteger(), server_default="5", nullable=False),
        sa.Column("sharing_group_id", sa.BigInteger(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("first_seen", sa.BigInteger(), nullable=True),
        sa.Column("last_seen", sa.BigInteger(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["sync.events.id"],
            name=op.f("fk_objects_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sharing_group_id"],
            ["sync.sharing_groups.id"],
            name=op.f("fk_objects_sharing_group_id_sharing_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_objects")),
        sa.UniqueConstraint("uuid", name=op.f("uq_objects_uuid")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_objects_event_id"), "objects", ["event_id"], unique=False, schema="sync"
    )
    op.create_index(
        op.f("ix_objects_sharing_group_id"),
        "objects",
        ["sharing_group_id"],
        unique=False,
        schema="sync",
    )
    op.create_table(
        "attributes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=True),
        sa.Column("object_relation", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("value1", sa.Text(), server_default="", nullable=False),
        sa.Column("value2", sa.Text(), server_default="", nullable=False),
        sa.Column("to_ids", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("distribution", sa.SmallInteger(), server_default="5", nullable=False),
        sa.Column("sharing_group_id", sa.BigInteger(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("first_seen", sa.BigInteger(), nullable=True),
        sa.Column("last_seen", sa.BigInteger(), nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("disable_correlation", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["sync.events.id"],
            name=op.f("fk_attributes_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["sync.objects.id"],
            name=op.f("fk_attributes_object_id_objects"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sharing_group_id"],
            ["sync.sharing_groups.id"],
            name=op.f("fk_attributes_sharing_group_id_sharing_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attributes")),
        sa.UniqueConstraint("uuid", name=op.f("uq_attributes_uuid")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_attributes_event_id"), "attributes", ["event_id"], unique=False, schema="sync"
    )
    op.create_index(
        op.f("ix_attributes_object_id"), "attributes", ["object_id"], unique=False, schema="sync"
    )
    op.create_index(
        "ix_attributes_same_value",
        "attributes",
        [
            "event_id",
            "type",
            "category",
            sa.literal_column("md5(value1)"),
            sa.literal_column("md5(value2)"),
        ],
        unique=False,
        schema="sync",
    )
    op.create_index(
        op.f("ix_attributes_sharing_group_id"),
        "attributes",
        ["sharing_group_id"],
        unique=False,
        schema="sync",
    )
    op.create_index(
        op.f("ix_attributes_timestamp"), "attributes", ["timestamp"], unique=False, schema="sync"
    )
    op.create_index(
        "ix_attributes_value2_prefix",
        "attributes",
        [sa.literal_column("left(value2, 200)")],
        unique=False,
        schema="sync",
    )
    op.create_index(
        "ix_attributes_value_prefix",
        "attributes",
        [sa.literal_column("left(value1, 200)")],
        unique=False,
        schema="sync",
    )
    op.create_table(
        "object_references",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("source_uuid", sa.Uuid(), nullable=False),
        sa.Column("referenced_uuid", sa.Uuid(), nullable=False),
        sa.Column("referenced_type", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("relationship_type", sa.String(length=255), server_default="", nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("timestamp", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default="false", nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["sync.events.id"],
            name=op.f("fk_object_references_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["sync.objects.id"],
            name=op.f("fk_object_references_object_id_objects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_object_references")),
        sa.UniqueConstraint("uuid", name=op.f("uq_object_references_uuid")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_object_references_object_id"),
        "object_references",
        ["object_id"],
        unique=False,
        schema="sync",
    )
    op.create_table(
        "attribute_tags",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("attribute_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("tag_id", sa.BigInteger(), nullable=False),
        sa.Column("local", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("relationship_type", sa.String(length=191), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["attribute_id"],
            ["sync.attributes.id"],
            name=op.f("fk_attribute_tags_attribute_id_attributes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["sync.events.id"],
            name=op.f("fk_attribute_tags_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"],
            ["sync.tags.id"],
            name=op.f("fk_attribute_tags_tag_id_tags"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attribute_tags")),
        sa.UniqueConstraint(
            "attribute_id", "tag_id", name=op.f("uq_attribute_tags_attribute_id_tag_id")
        ),
        schema="sync",
    )
    op.create_index(
        op.f("ix_attribute_tags_event_id"),
        "attribute_tags",
        ["event_id"],
        unique=False,
        schema="sync",
    )
    op.create_index(
        op.f("ix_attribute_tags_tag_id"), "attribute_tags", ["tag_id"], unique=False, schema="sync"
    )
    op.create_table(
        "sightings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("attribute_id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("org_id", sa.BigInteger(), nullable=True),
        sa.Column("date_sighting", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("source", sa.String(length=255), server_default="", nullable=False),
        sa.Column("type", sa.SmallInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["attribute_id"],
            ["sync.attributes.id"],
            name=op.f("fk_sightings_attribute_id_attributes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["sync.events.id"],
            name=op.f("fk_sightings_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["sync.organisations.id"],
            name=op.f("fk_sightings_org_id_organisations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
        sa.UniqueConstraint("uuid", name=op.f("uq_sightings_uuid")),
        schema="sync",
    )
    op.create_index(
        op.f("ix_sightings_attribute_id"),
        "sightings",
        ["attribute_id"],
        unique=False,
        schema="sync",
    )
    op.create_index(
        op.f("ix_sightings_event_id"), "sightings", ["event_id"], unique=False, schema="sync"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sightings_event_id"), table_name="sightings", schema="sync")
    op.drop_index(op.f("ix_sightings_attribute_id"), table_name="sightings", schema="sync")
    op.drop_table("sightings", schema="sync")
    op.drop_index(op.f("ix_attribute_tags_tag_id"), table_name="attribute_tags", schema="sync")
    op.drop_index(op.f("ix_attribute_tags_event_id"), table_name="attribute_tags", schema="sync")
    op.drop_table("attribute_tags", schema="sync")
    op.drop_index(
        op.f("ix_object_references_object_id"), table_name="object_references", schema="sync"
    )
    op.drop_table("object_references", schema="sync")
    op.drop_index("ix_attributes_value_prefix", table_name="attributes", schema="sync")
    op.drop_index("ix_attributes_value2_prefix", table_name="attributes", schema="sync")
    op.drop_index(op.f("ix_attributes_timestamp"), table_name="attributes", schema="sync")
    op.drop_index(op.f("ix_attributes_sharing_group_id"), table_name="attributes", schema="sync")
    op.drop_index("ix_attributes_same_value", table_name="attributes", schema="sync")
    op.drop_index(op.f("ix_attributes_object_id"), table_name="attributes", schema="sync")
    op.drop_index(op.f("ix_attributes_event_id"), table_name="attributes", schema="sync")
    op.drop_table("attributes", schema="sync")
    op.drop_index(op.f("ix_objects_sharing_group_id"), table_name="objects", schema="sync")
    op.drop_index(op.f("ix_objects_event_id"), table_name="objects", schema="sync")
    op.drop_table("objects", schema="sync")
    op.drop_index(op.f("ix_jobs_server_id"), table_name="jobs", schema="sync")
    op.drop_index(op.f("ix_jobs_feed_id"), table_name="jobs", schema="sync")
    op.drop_index(op.f("ix_jobs_created_at"), table_name="jobs", schema="sync")
    op.drop_table("jobs", schema="sync")
    op.drop_index(op.f("ix_event_tags_tag_id"), table_name="event_tags", schema="sync")
    op.drop_table("event_tags", schema="sync")
    op.drop_index(
        op.f("ix_event_reports_sharing_group_id"), table_name="event_reports", schema="sync"
    )
    op.drop_index(op.f("ix_event_reports_event_id"), table_name="event_reports", schema="sync")
    op.drop_table("event_reports", schema="sync")
    op.drop_index(
        op.f("ix_sharing_group_servers_sharing_group_id"),
        table_name="sharing_group_servers",
        schema="sync",
    )
    op.drop_table("sharing_group_servers", schema="sync")
    op.drop_index(
        op.f("ix_sharing_group_orgs_sharing_group_id"),
        table_name="sharing_group_orgs",
        schema="sync",
    )
    op.drop_index(
        op.f("ix_sharing_group_orgs_org_id"), table_name="sharing_group_orgs", schema="sync"
    )
    op.drop_table("sharing_group_orgs", schema="sync")
    op.drop_index(op.f("ix_feeds_sharing_group_id"), table_name="feeds", schema="sync")
    op.drop_table("feeds", schema="sync")
    op.drop_index(op.f("ix_events_timestamp"), table_name="events", schema="sync")
    op.drop_index(op.f("ix_events_sharing_group_id"), table_name="events", schema="sync")
    op.drop_index(op.f("ix_events_orgc_id_timestamp"), table_name="events", schema="sync")
    op.drop_table("events", schema="sync")
    op.drop_table("tags", schema="sync")
    op.drop_index(op.f("ix_sharing_groups_org_id"), table_name="sharing_groups", schema="sync")
    op.drop_table("sharing_groups", schema="sync")
    op.drop_table("servers", schema="sync")
    op.drop_table("users", schema="sync")
    op.drop_table("organisations", schema="sync")
    op.drop_table("org_blocklists", schema="sync")
    op.drop_table("memberships", schema="sync")
    op.drop_table("event_blocklists", schema="sync")
    op.drop_index(op.f("ix_api_keys_user_uuid"), table_name="api_keys", schema="sync")
    op.drop_table("api_keys", schema="sync")
