"""protected events: the keys an event trusts, and this instance's signing keys

Revision ID: 0007_sync_protected
Revises: 0006_sync_sighting_push
Create Date: 2026-12-05 12:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_sync_protected"
down_revision: str | None = "0006_sync_sighting_push"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cryptographic_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("uuid", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=40), server_default="pgp", nullable=False),
        sa.Column("key_data", sa.Text(), server_default="", nullable=False),
        sa.Column("fingerprint", sa.String(length=255), server_default="", nullable=False),
        sa.Column("revoked", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("timestamp", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["sync.events.id"],
            name=op.f("fk_cryptographic_keys_event_id_events"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cryptographic_keys")),
        sa.UniqueConstraint("uuid", name=op.f("uq_cryptographic_keys_uuid")),
        sa.UniqueConstraint(
            "event_id", "fingerprint", name=op.f("uq_cryptographic_keys_event_id_fingerprint")
        ),
        schema="sync",
    )  # fmt: skip
    op.create_table(
        "instance_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("fingerprint", sa.String(length=255), nullable=False),
        sa.Column("key_data", sa.Text(), server_default="", nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instance_keys")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_instance_keys_fingerprint")),
        schema="sync",
    )


def downgrade() -> None:
    op.drop_table("instance_keys", schema="sync")
    op.drop_table("cryptographic_keys", schema="sync")
