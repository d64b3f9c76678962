"""Alembic environment of the auth service (version table in schema \"auth\")."""

from tessera.auth.models import metadata
from tessera.auth.settings import Settings
from tessera.common.migrations import run_env

run_env(metadata=metadata, settings_cls=Settings)
