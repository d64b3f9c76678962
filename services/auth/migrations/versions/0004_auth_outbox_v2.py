"""outbox v2: per-row next attempt (lease) and parking

Revision ID: 0004_auth_outbox_v2
Revises: 0003_auth_organisations
Create Date: 2026-12-02 07:00:00.000000
"""

from collections.abc import Sequence

from tessera.common.migrations import downgrade_messaging_tables_v2, upgrade_messaging_tables_v2

revision: str = "0004_auth_outbox_v2"
down_revision: str | None = "0003_auth_organisations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    upgrade_messaging_tables_v2("auth")


def downgrade() -> None:
    downgrade_messaging_tables_v2("auth")
