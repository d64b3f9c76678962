"""Each service's migrations build exactly what its models declare, and run both ways."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from alembic import command

from tessera.common.migrations import alembic_config
from tessera.common.testing import Infra, in_thread, make_settings, prepare_database

SERVICES = ["auth", "applets", "answers", "mailer", "sync", "chat"]


def _service(name: str) -> tuple[Any, Path]:
    settings_cls = importlib.import_module(f"tessera.{name}.settings").Settings
    migrations = importlib.import_module(f"tessera.{name}.app").MIGRATIONS
    return settings_cls, migrations


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_models_and_downgrade_cleanly(infra: Infra, service: str) -> None:
    settings_cls, migrations = _service(service)
    settings = make_settings(settings_cls, infra)
    prepare_database(settings, migrations)
    config = alembic_config(migrations, settings)

    # no difference between the migrated schema and the models (autogenerate finds nothing)
    in_thread(command.check, config)
    # and the history runs down to nothing and back up again
    in_thread(command.downgrade, config, "base")
    in_thread(command.upgrade, config, "head")
    in_thread(command.check, config)
