"""Alembic environment of the chat service (version table in schema "chat")."""

from tessera.chat.app import SERVICE
from tessera.common.kit import run_migrations

run_migrations(SERVICE)
