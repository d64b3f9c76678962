"""Alembic environment of the applets service (version table in schema "applets")."""

from tessera.applets.app import SERVICE
from tessera.common.kit import run_migrations

run_migrations(SERVICE)
