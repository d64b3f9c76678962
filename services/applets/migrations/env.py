"""Alembic environment of the applets service (version table in schema \"applets\")."""

from tessera.applets.models import metadata
from tessera.applets.settings import Settings
from tessera.common.migrations import run_env

run_env(metadata=metadata, settings_cls=Settings)
