"""deliveries counted for the limit by the lower-cased recipient

The per-recipient limit compared addresses as written, so ``Target@x`` and ``target@x`` were
two recipients with a limit each: one mailbox could be sent twice the limit, or more.

Revision ID: 0006_mailer_recipient_lower
Revises: 0005_mailer_suppressions
Create Date: 2026-12-05 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_mailer_recipient_lower"
down_revision: str | None = "0005_mailer_suppressions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(
        op.f("ix_deliveries_recipient_created_at"), table_name="deliveries", schema="mailer"
    )
    op.create_index(
        "ix_deliveries_lower_recipient_created_at",
        "deliveries",
        [sa.text("lower(recipient)"), "created_at"],
        unique=False,
        schema="mailer",
    )


def downgrade() -> None:
    op.drop_index(
        "ix_deliveries_lower_recipient_created_at", table_name="deliveries", schema="mailer"
    )
    op.create_index(
        op.f("ix_deliveries_recipient_created_at"),
        "deliveries",
        ["recipient", "created_at"],
        unique=False,
        schema="mailer",
    )
