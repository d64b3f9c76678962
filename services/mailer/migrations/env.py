"""Alembic environment of the mailer service (version table in schema "mailer")."""

from tessera.common.kit import run_migrations
from tessera.mailer.app import SERVICE

run_migrations(SERVICE)
