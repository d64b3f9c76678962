"""``tessera-answers``: admin commands of the answers service."""

from __future__ import annotations

from tessera.answers.app import SERVICE
from tessera.common.kit import create_cli

__all__ = ["cli", "main"]

cli = create_cli(SERVICE)


def main() -> None:
    cli()
