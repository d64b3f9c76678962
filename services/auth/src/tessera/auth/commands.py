"""Auth's own commands of ``tessera-auth`` (the kit adds those every service has):
``create-user``, ``grant-superadmin``, ``create-organisation`` (:mod:`tessera.auth.admin`)
and ``keys rotate | list``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tessera.auth.admin import register_admin_commands
from tessera.auth.keys import all_signing_keys, rotate_signing_key
from tessera.auth.models import SigningKey
from tessera.auth.settings import Settings
from tessera.common.db import create_engine

__all__ = ["add_commands"]

T = TypeVar("T")

keys = typer.Typer(help="JWT signing keys: rotate and list.", no_args_is_help=True)


def add_commands(cli: typer.Typer) -> None:
    """Add auth's own commands to ``cli`` (``ServiceSpec.commands``)."""
    register_admin_commands(cli)
    cli.add_typer(keys, name="keys")


def _with_session(work: Callable[[AsyncSession, Settings], Awaitable[T]]) -> T:
    """Run ``work`` in one committed transaction on auth's schema."""

    async def run() -> T:
        settings = Settings()
        engine = create_engine(settings)
        try:
            async with async_sessionmaker(engine, expire_on_commit=False)() as session:
                result = await work(session, settings)
                await session.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key; the previous one keeps verifying until its tokens expire.

    Running auth processes start signing with the new key within 30 seconds (no restart).
    """

    async def rotate(session: AsyncSession, settings: Settings) -> SigningKey:
        return await rotate_signing_key(session, settings)

    key = _with_session(rotate)
    Console().print(f"new signing key {key.kid} ({key.algorithm})")


@keys.command("list")
def keys_list() -> None:
    """Every signing key, newest first, with when it was retired and verifies until."""

    async def read(session: AsyncSession, settings: Settings) -> list[SigningKey]:
        return await all_signing_keys(session)

    table = Table(title="signing keys")
    for column in ("kid", "algorithm", "created", "retired", "verify until"):
        table.add_column(column, no_wrap=True)
    for key in _with_session(read):
        table.add_row(
            key.kid,
            key.algorithm,
            _when(key.created_at),
            _when(key.retired_at),
            _when(key.verify_until),
        )
    Console(width=160).print(table)
