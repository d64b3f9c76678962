"""sessions as refresh-token families; account lifecycle

Revision ID: 0002_auth_sessions
Revises: 0001_auth_initial
Create Date: 2026-11-23 01:28:52.875771
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_auth_sessions"
down_revision: str | None = "0001_auth_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ = (sa, sqlmodel)


def upgrade() -> None:
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["auth.sessions.id"],
            name=op.f("fk_refresh_tokens_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_refresh_tokens")),
        schema="auth",
    )
    op.create_index(
        op.f("ix_refresh_tokens_session_id"),
        "refresh_tokens",
        ["session_id"],
        unique=False,
        schema="auth",
    )
    op.add_column(
        "sessions",
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        schema="auth",
    )
    op.add_column(
        "sessions",
        sa.Column("revoked_reason", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        schema="auth",
    )
    # each existing session keeps its refresh token, now the first of its family
    op.execute(
        "INSERT INTO auth.refresh_tokens (token_hash, session_id, created_at, expires_at) "
        "SELECT refresh_token_hash, id, created_at, expires_at FROM auth.sessions"
    )
    op.drop_constraint(
        op.f("uq_sessions_refresh_token_hash"), "sessions", schema="auth", type_="unique"
    )
    op.drop_column("sessions", "refresh_token_hash", schema="auth")
    op.add_column(
        "users",
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
        schema="auth",
    )
    op.add_column(
        "users", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True), schema="auth"
    )


def downgrade() -> None:
    op.drop_column("users", "deleted_at", schema="auth")
    op.drop_column("users", "password_changed_at", schema="auth")
    op.add_column(
        "sessions",
        sa.Column("refresh_token_hash", sa.VARCHAR(length=64), autoincrement=False, nullable=True),
        schema="auth",
    )
    op.execute(
        "UPDATE auth.sessions s SET refresh_token_hash = (SELECT r.token_hash FROM auth.refresh_tokens r "
        "WHERE r.session_id = s.id AND r.used_at IS NULL ORDER BY r.created_at DESC LIMIT 1)"
    )
    op.execute("DELETE FROM auth.sessions WHERE refresh_token_hash IS NULL")
    op.alter_column("sessions", "refresh_token_hash", nullable=False, schema="auth")
    op.create_unique_constraint(
        op.f("uq_sessions_refresh_token_hash"),
        "sessions",
        ["refresh_token_hash"],
        schema="auth",
        postgresql_nulls_not_distinct=False,
    )
    op.drop_column("sessions", "revoked_reason", schema="auth")
    op.drop_column("sessions", "last_used_at", schema="auth")
    op.drop_index(op.f("ix_refresh_tokens_session_id"), table_name="refresh_tokens", schema="auth")
    op.drop_table("refresh_tokens", schema="auth")
