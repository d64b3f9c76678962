"""``tessera-answers``: admin commands of the answers service."""

from __future__ import annotations

from tessera.answers.app import MIGRATIONS
from tessera.answers.settings import Settings
from tessera.common.cli import service_cli

cli = service_cli(
    Settings,
    migrations_dir=MIGRATIONS,
    app_factory="tessera.answers.app:create_app_from_env",
    default_port=8003,
)


def main() -> None:
    cli()
