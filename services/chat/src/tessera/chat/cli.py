"""``tessera-chat``: admin commands of the chat service."""

from __future__ import annotations

from tessera.chat.app import SERVICE
from tessera.common.kit import create_cli

__all__ = ["cli", "main"]

cli = create_cli(SERVICE)


def main() -> None:
    cli()
