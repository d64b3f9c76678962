"""suppressed addresses; deliveries counted per recipient for the limit

Revision ID: 0005_mailer_suppressions
Revises: 0004_mailer_delivery_states
Create Date: 2026-12-02 18:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_mailer_suppressions"
down_revision: str | None = "0004_mailer_delivery_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_suppressions")),
        schema="mailer",
    )
    op.create_index(
        op.f("ix_deliveries_recipient_created_at"),
        "deliveries",
        ["recipient", "created_at"],
        unique=False,
        schema="mailer",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_deliveries_recipient_created_at"), table_name="deliveries", schema="mailer"
    )
    op.drop_table("suppressions", schema="mailer")
