"""Event handlers of the mailer: thin, they call ``service.py``."""

from __future__ import annotations

from collections.abc import Callable

from tessera.common.db import UnitOfWork
from tessera.common.messaging import Envelope
from tessera.common.messaging.rabbit import EventConsumer
from tessera.mailer import service
from tessera.mailer.events import UserRegistered

__all__ = ["register_handlers"]


def register_handlers(
    consumer: EventConsumer, uow: Callable[[], UnitOfWork], mailer: Callable[[], service.Mailer]
) -> None:
    async def on_user_registered(envelope: Envelope, event: UserRegistered) -> None:
        await service.send_verification(uow(), mailer(), envelope, event)

    consumer.on(UserRegistered, on_user_registered)
