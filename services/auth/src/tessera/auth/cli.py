"""``tessera-auth``: admin commands of the auth service."""

from __future__ import annotations

from tessera.auth.app import MIGRATIONS
from tessera.auth.settings import Settings
from tessera.common.cli import service_cli

cli = service_cli(
    Settings,
    migrations_dir=MIGRATIONS,
    app_factory="tessera.auth.app:create_app_from_env",
    default_port=8001,
)


def main() -> None:
    cli()
