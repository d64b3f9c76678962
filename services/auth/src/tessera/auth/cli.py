"""``tessera-auth``: admin commands of the auth service."""

from __future__ import annotations

from tessera.auth.app import SERVICE
from tessera.common.kit import create_cli

__all__ = ["cli", "main"]

cli = create_cli(SERVICE)


def main() -> None:
    cli()
