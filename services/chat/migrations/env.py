"""Alembic environment of the chat service (version table in schema \"chat\")."""

from tessera.chat.models import metadata
from tessera.chat.settings import Settings
from tessera.common.migrations import run_env

run_env(metadata=metadata, settings_cls=Settings)
