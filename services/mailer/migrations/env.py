"""Alembic environment of the mailer service (version table in schema \"mailer\")."""

from tessera.common.migrations import run_env
from tessera.mailer.models import metadata
from tessera.mailer.settings import Settings

run_env(metadata=metadata, settings_cls=Settings)
