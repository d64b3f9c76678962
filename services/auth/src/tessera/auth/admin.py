"""Admin commands of ``tessera-auth``: create users and organisations, grant superadmin.

They run the same use cases as the HTTP API (one transaction each, outbox events included),
against the database in the environment's settings.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import async_sessionmaker

from tessera.auth import audit, models
from tessera.auth.keys import KeyRing
from tessera.auth.passwords import Passwords
from tessera.auth.schemas import RegisterIn
from tessera.auth.service import accounts, organisations
from tessera.auth.service.context import AuthContext
from tessera.auth.settings import Settings
from tessera.common.db import UnitOfWork, create_engine
from tessera.common.messaging import Outbox

__all__ = ["register_admin_commands"]

console = Console(stderr=True)
T = TypeVar("T")


async def _with_uow(settings: Settings, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """Run ``work`` with a unit of work on its own engine (the relay of a running auth
    process publishes the outbox rows it writes)."""
    engine = create_engine(settings)
    try:
        outbox = Outbox(models.messaging.outbox, producer=settings.service_name)
        uow = UnitOfWork(async_sessionmaker(engine, expire_on_commit=False), outbox=outbox)
        return await work(uow)
    finally:
        await engine.dispose()


async def create_user(
    settings: Settings, *, email: str, password: str, full_name: str, superadmin: bool
) -> uuid.UUID:
    ctx = AuthContext(
        settings=settings, passwords=Passwords(settings.argon2), keys=KeyRing(settings)
    )

    async def work(uow: UnitOfWork) -> uuid.UUID:
        user = await accounts.register(
            uow, ctx, RegisterIn(email=email, password=password, full_name=full_name)
        )
        if superadmin:
            await grant_superadmin_in(uow, email)
        return user.id

    return await _with_uow(settings, work)


async def grant_superadmin_in(uow: UnitOfWork, email: str) -> uuid.UUID:
    async with uow:
        user = await models.user_by_email(uow.session, email)
        if user is None:
            raise typer.BadParameter(f"no user with email {email}")
        audit.record(
            uow,
            actor_id=None,
            action="user.superadmin_granted",
            target_type="user",
            target_id=user.id,
            before={"is_superadmin": user.is_superadmin},
            after={"is_superadmin": True},
        )
        user.is_superadmin = True
        await uow.commit()
        return user.id


def register_admin_commands(cli: typer.Typer, settings: Callable[[], Settings] = Settings) -> None:
    @cli.command("create-user")
    def create_user_command(
        email: str,
        full_name: Annotated[str, typer.Option(prompt=True)],
        password: Annotated[
            str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
        ],
        superadmin: bool = False,
    ) -> None:
        """Create a user (as registration does, verification email included)."""
        user_id = asyncio.run(
            create_user(
                settings(),
                email=email,
                password=password,
                full_name=full_name,
                superadmin=superadmin,
            )
        )
        console.print(f"created user {user_id}")

    @cli.command("grant-superadmin")
    def grant_superadmin_command(email: str) -> None:
        """Make an existing user a superadmin (sees every organisation and the audit log)."""

        async def work(uow: UnitOfWork) -> uuid.UUID:
            return await grant_superadmin_in(uow, email)

        user_id = asyncio.run(_with_uow(settings(), work))
        console.print(f"{email} ({user_id}) is now a superadmin")

    @cli.command("create-organisation")
    def create_organisation_command(
        name: str,
        admin: Annotated[str | None, typer.Option(help="email of its first admin")] = None,
    ) -> None:
        """Create an organisation, optionally with a first admin."""

        async def work(uow: UnitOfWork) -> uuid.UUID:
            admin_id = None
            if admin is not None:
                async with uow:
                    user = await models.user_by_email(uow.session, admin)
                if user is None:
                    raise typer.BadParameter(f"no user with email {admin}")
                admin_id = user.id
            organisation = await organisations.create_organisation(
                uow, name, None, admin_id=admin_id
            )
            return organisation.id

        organisation_id = asyncio.run(_with_uow(settings(), work))
        console.print(f"created organisation {organisation_id}")
