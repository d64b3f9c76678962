"""push: the server an event was pulled from (pass-along), pushed events counted in jobs

Revision ID: 0004_sync_push
Revises: 0003_sync_misp
Create Date: 2026-12-05 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_sync_push"
down_revision: str | None = "0003_sync_misp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events", sa.Column("source_server_id", sa.BigInteger(), nullable=True), schema="sync"
    )
    op.create_foreign_key(
        op.f("fk_events_source_server_id_servers"),
        "events",
        "servers",
        ["source_server_id"],
        ["id"],
        source_schema="sync",
        referent_schema="sync",
        ondelete="SET NULL",
    )
    op.create_index(
        op.f("ix_events_source_server_id"), "events", ["source_server_id"], schema="sync"
    )
    op.add_column(
        "jobs",
        sa.Column("pushed", sa.Integer(), server_default="0", nullable=False),
        schema="sync",
    )


def downgrade() -> None:
    op.drop_column("jobs", "pushed", schema="sync")
    op.drop_index(op.f("ix_events_source_server_id"), table_name="events", schema="sync")
    op.drop_constraint(
        op.f("fk_events_source_server_id_servers"), "events", schema="sync", type_="foreignkey"
    )
    op.drop_column("events", "source_server_id", schema="sync")
