"""Alembic environment of the auth service (version table in schema "auth")."""

from tessera.auth.app import SERVICE
from tessera.common.kit import run_migrations

run_migrations(SERVICE)
