"""Event handlers of the mailer: thin, they call ``service.py``."""

from __future__ import annotations

from collections.abc import Callable

from tessera.common.db import UnitOfWork
from tessera.common.messaging import Envelope
from tessera.common.messaging.rabbit import EventConsumer
from tessera.mailer import service
from tessera.mailer.events import (
    AccountLocked,
    EmailVerificationRequested,
    LoginLinkRequested,
    PasswordChanged,
    PasswordRecoveryRequested,
    UserDeleted,
    UserRegistered,
)

__all__ = ["register_handlers"]


def register_handlers(
    consumer: EventConsumer, uow: Callable[[], UnitOfWork], mailer: Callable[[], service.Mailer]
) -> None:
    async def on_user_registered(envelope: Envelope, event: UserRegistered) -> None:
        await service.send_verification(uow(), mailer(), envelope, event)

    async def on_verification_requested(
        envelope: Envelope, event: EmailVerificationRequested
    ) -> None:
        await service.send_verification(uow(), mailer(), envelope, event)

    async def on_recovery_requested(envelope: Envelope, event: PasswordRecoveryRequested) -> None:
        await service.send_password_reset(uow(), mailer(), envelope, event)

    async def on_login_link_requested(envelope: Envelope, event: LoginLinkRequested) -> None:
        await service.send_login_link(uow(), mailer(), envelope, event)

    async def on_password_changed(envelope: Envelope, event: PasswordChanged) -> None:
        await service.send_password_changed(uow(), mailer(), envelope, event)

    async def on_account_locked(envelope: Envelope, event: AccountLocked) -> None:
        await service.send_account_locked(uow(), mailer(), envelope, event)

    async def on_user_deleted(envelope: Envelope, event: UserDeleted) -> None:
        await service.forget_user(uow(), envelope, event)

    consumer.on(UserRegistered, on_user_registered)
    consumer.on(UserDeleted, on_user_deleted)
    consumer.on(AccountLocked, on_account_locked)
    consumer.on(EmailVerificationRequested, on_verification_requested)
    consumer.on(PasswordRecoveryRequested, on_recovery_requested)
    consumer.on(LoginLinkRequested, on_login_link_requested)
    consumer.on(PasswordChanged, on_password_changed)
