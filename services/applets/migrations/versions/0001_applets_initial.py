"""initial schema

Revision ID: 0001_applets_initial
Revises:
Create Date: 2026-11-23 00:39:17.568373
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from tessera.common.migrations import create_messaging_tables_v1, drop_messaging_tables_v1

revision: str = "0001_applets_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ = (sa, sqlmodel)


def upgrade() -> None:
    create_messaging_tables_v1("applets")


def downgrade() -> None:
    drop_messaging_tables_v1("applets")
