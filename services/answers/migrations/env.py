"""Alembic environment of the answers service (version table in schema \"answers\")."""

from tessera.answers.models import metadata
from tessera.answers.settings import Settings
from tessera.common.migrations import run_env

run_env(metadata=metadata, settings_cls=Settings)
