"""``tessera-chat``: admin commands of the chat service."""

from __future__ import annotations

from tessera.chat.app import MIGRATIONS
from tessera.chat.settings import Settings
from tessera.common.cli import service_cli

cli = service_cli(
    Settings,
    migrations_dir=MIGRATIONS,
    app_factory="tessera.chat.app:create_app_from_env",
    default_port=8006,
)


def main() -> None:
    cli()
