"""sighting push: the sightings a push job sent on their own, counted in jobs

Revision ID: 0006_sync_sighting_push
Revises: 0005_sync_feeds
Create Date: 2026-12-05 12:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_sync_sighting_push"
down_revision: str | None = "0005_sync_feeds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "jobs",
        sa.Column("sightings", sa.Integer(), server_default="0", nullable=False),
        schema="sync",
    )


def downgrade() -> None:
    op.drop_column("jobs", "sightings", schema="sync")
