"""``tessera-applets``: admin commands of the applets service."""

from __future__ import annotations

from tessera.applets.app import MIGRATIONS
from tessera.applets.settings import Settings
from tessera.common.cli import service_cli

cli = service_cli(
    Settings,
    migrations_dir=MIGRATIONS,
    app_factory="tessera.applets.app:create_app_from_env",
    default_port=8002,
)


def main() -> None:
    cli()
