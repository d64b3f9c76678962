"""``tessera-sync``: admin commands of the sync service."""

from __future__ import annotations

from tessera.common.cli import service_cli
from tessera.sync.app import MIGRATIONS
from tessera.sync.settings import Settings

cli = service_cli(
    Settings,
    migrations_dir=MIGRATIONS,
    app_factory="tessera.sync.app:create_app_from_env",
    default_port=8005,
)


def main() -> None:
    cli()
