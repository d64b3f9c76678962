"""``tessera-applets``: admin commands of the applets service."""

from __future__ import annotations

from tessera.applets.app import SERVICE
from tessera.common.kit import create_cli

__all__ = ["cli", "main"]

cli = create_cli(SERVICE)


def main() -> None:
    cli()
