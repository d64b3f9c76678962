"""Alembic environment of the sync service (version table in schema "sync")."""

from tessera.common.kit import run_migrations
from tessera.sync.app import SERVICE

run_migrations(SERVICE)
