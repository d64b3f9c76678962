"""deliveries have states: leased while sending, attempts, last error

Revision ID: 0004_mailer_delivery_states
Revises: 0003_mailer_outbox_v2
Create Date: 2026-12-02 18:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_mailer_delivery_states"
down_revision: str | None = "0003_mailer_outbox_v2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        schema="mailer",
    )
    op.add_column("deliveries", sa.Column("last_error", sa.Text(), nullable=True), schema="mailer")
    op.add_column(
        "deliveries",
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        schema="mailer",
    )
    op.add_column(
        "deliveries",
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        schema="mailer",
    )
    # rows written before this revision were all handed over when recorded
    op.execute("UPDATE mailer.deliveries SET attempts = 1 WHERE status = 'sent'")
    op.create_index(
        op.f("ix_deliveries_status"), "deliveries", ["status"], unique=False, schema="mailer"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_status"), table_name="deliveries", schema="mailer")
    for column in ("updated_at", "lease_until", "last_error", "attempts"):
        op.drop_column("deliveries", column, schema="mailer")
