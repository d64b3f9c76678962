"""Each service's migrations build exactly what its models declare, and run both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command

from tessera.common import suite
from tessera.common.migrations import alembic_config
from tessera.common.testing import Infra, in_thread, make_settings, prepare_database

SERVICES = list(suite.specs())


def _service(name: str) -> tuple[Any, Path]:
    spec = suite.specs()[name]
    return spec.settings, spec.migrations


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
