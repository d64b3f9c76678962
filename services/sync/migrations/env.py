"""Alembic environment of the sync service (version table in schema \"sync\")."""

from tessera.common.migrations import run_env
from tessera.sync.models import metadata
from tessera.sync.settings import Settings

run_env(metadata=metadata, settings_cls=Settings)
