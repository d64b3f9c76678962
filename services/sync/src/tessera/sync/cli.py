"""``tessera-sync``: admin commands of the sync service."""

from __future__ import annotations

from tessera.common.kit import create_cli
from tessera.sync.app import SERVICE

__all__ = ["cli", "main"]

cli = create_cli(SERVICE)


def main() -> None:
    cli()
