"""deliveries know their user, to erase on deletion

Revision ID: 0002_mailer_delivery_user
Revises: 0001_mailer_initial
Create Date: 2026-11-23 01:57:57.194308
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_mailer_delivery_user"
down_revision: str | None = "0001_mailer_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ = (sa, sqlmodel)


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("user_id", sa.Uuid(), nullable=True), schema="mailer")
    op.create_index(
        op.f("ix_deliveries_user_id"), "deliveries", ["user_id"], unique=False, schema="mailer"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_deliveries_user_id"), table_name="deliveries", schema="mailer")
    op.drop_column("deliveries", "user_id", schema="mailer")
