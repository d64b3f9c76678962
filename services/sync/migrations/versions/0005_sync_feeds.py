"""feeds: MISP's feed settings, sealed headers, the organisation holding what they bring

Revision ID: 0005_sync_feeds
Revises: 0004_sync_push
Create Date: 2026-12-05 10:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_sync_feeds"
down_revision: str | None = "0004_sync_push"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLAGS = ("delta_merge", "lookup_visible", "caching_enabled")


def upgrade() -> None:
    for flag in _FLAGS:
        op.add_column(
            "feeds",
            sa.Column(flag, sa.Boolean(), server_default="false", nullable=False),
            schema="sync",
        )
    op.add_column(
        "feeds",
        sa.Column("input_source", sa.String(length=20), server_default="network", nullable=False),
        schema="sync",
    )
    op.add_column(
        "feeds",
        sa.Column(
            "settings", postgresql.JSONB(astext_type=sa.Text()), server_default="{}",
            nullable=False,
        ),
        schema="sync",
    )  # fmt: skip
    # headers may carry a key: sealed like servers' keys, no longer plain JSON
    op.drop_column("feeds", "headers", schema="sync")
    op.add_column("feeds", sa.Column("headers", sa.LargeBinary(), nullable=True), schema="sync")
    op.add_column("feeds", sa.Column("org_id", sa.BigInteger(), nullable=True), schema="sync")
    op.create_foreign_key(
        op.f("fk_feeds_org_id_organisations"),
        "feeds",
        "organisations",
        ["org_id"],
        ["id"],
        source_schema="sync",
        referent_schema="sync",
        ondelete="SET NULL",
    )
    op.add_column(
        "feeds",
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        schema="sync",
    )


def downgrade() -> None:
    op.drop_column("feeds", "created_at", schema="sync")
    op.drop_constraint(
        op.f("fk_feeds_org_id_organisations"), "feeds", schema="sync", type_="foreignkey"
    )
    op.drop_column("feeds", "org_id", schema="sync")
    op.drop_column("feeds", "headers", schema="sync")
    op.add_column(
        "feeds",
        sa.Column(
            "headers", postgresql.JSONB(astext_type=sa.Text()), server_default="{}",
            nullable=False,
        ),
        schema="sync",
    )  # fmt: skip
    op.drop_column("feeds", "settings", schema="sync")
    op.drop_column("feeds", "input_source", schema="sync")
    for flag in reversed(_FLAGS):
        op.drop_column("feeds", flag, schema="sync")
