"""organisations, memberships, superadmin, api keys, audit log

Revision ID: 0003_auth_organisations
Revises: 0002_auth_sessions
Create Date: 2026-11-23 01:38:01.956457
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_auth_organisations"
down_revision: str | None = "0002_auth_sessions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ = (sa, sqlmodel)


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("target_type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("target_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("ip_address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
        sa.Column("request_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        schema="auth",
    )
    op.create_index(
        op.f("ix_audit_log_action"), "audit_log", ["action"], unique=False, schema="auth"
    )
    op.create_index(
        op.f("ix_audit_log_actor_id"), "audit_log", ["actor_id"], unique=False, schema="auth"
    )
    op.create_index(
        op.f("ix_audit_log_occurred_at"), "audit_log", ["occurred_at"], unique=False, schema="auth"
    )
    op.create_index(
        op.f("ix_audit_log_organisation_id"),
        "audit_log",
        ["organisation_id"],
        unique=False,
        schema="auth",
    )
    op.create_index(
        op.f("ix_audit_log_target_id"), "audit_log", ["target_id"], unique=False, schema="auth"
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("prefix", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column(
            "allowed_cidrs",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth.users.id"],
            name=op.f("fk_api_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        schema="auth",
    )
    op.create_index(
        op.f("ix_api_keys_user_id"), "api_keys", ["user_id"], unique=False, schema="auth"
    )
    op.create_table(
        "organisations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("name_normalized", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["auth.users.id"],
            name=op.f("fk_organisations_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        schema="auth",
    )
    op.create_index(
        "uq_organisations_name_normalized",
        "organisations",
        ["name_normalized"],
        unique=True,
        schema="auth",
    )
    op.create_table(
        "memberships",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["auth.organisations.id"],
            name=op.f("fk_memberships_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["auth.users.id"],
            name=op.f("fk_memberships_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", "user_id", name=op.f("pk_memberships")),
        schema="auth",
    )
    op.create_index(
        op.f("ix_memberships_user_id"), "memberships", ["user_id"], unique=False, schema="auth"
    )
    op.add_column(
        "users",
        sa.Column("is_superadmin", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        schema="auth",
    )


def downgrade() -> None:
    op.drop_column("users", "is_superadmin", schema="auth")
    op.drop_index(op.f("ix_memberships_user_id"), table_name="memberships", schema="auth")
    op.drop_table("memberships", schema="auth")
    op.drop_index("uq_organisations_name_normalized", table_name="organisations", schema="auth")
    op.drop_table("organisations", schema="auth")
    op.drop_index(op.f("ix_api_keys_user_id"), table_name="api_keys", schema="auth")
    op.drop_table("api_keys", schema="auth")
    op.drop_index(op.f("ix_audit_log_target_id"), table_name="audit_log", schema="auth")
    op.drop_index(op.f("ix_audit_log_organisation_id"), table_name="audit_log", schema="auth")
    op.drop_index(op.f("ix_audit_log_occurred_at"), table_name="audit_log", schema="auth")
    op.drop_index(op.f("ix_audit_log_actor_id"), table_name="audit_log", schema="auth")
    op.drop_index(op.f("ix_audit_log_action"), table_name="audit_log", schema="auth")
    op.drop_table("audit_log", schema="auth")
