"""Alembic environment of the answers service (version table in schema "answers")."""

from tessera.answers.app import SERVICE
from tessera.common.kit import run_migrations

run_migrations(SERVICE)
