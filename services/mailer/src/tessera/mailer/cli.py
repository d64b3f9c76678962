"""``tessera-mailer``: admin commands of the mailer service."""

from __future__ import annotations

from tessera.common.cli import service_cli
from tessera.mailer.app import MIGRATIONS
from tessera.mailer.settings import Settings

cli = service_cli(
    Settings,
    migrations_dir=MIGRATIONS,
    app_factory="tessera.mailer.app:create_app_from_env",
    default_port=8004,
)


def main() -> None:
    cli()
