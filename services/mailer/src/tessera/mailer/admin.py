"""Use cases of the mailer's superadmin routes: read the log, retry, manage suppressions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select

from tessera.common.db import UnitOfWork
from tessera.common.messaging.dlq import replay_dead_letters
from tessera.common.messaging.rabbit import Topology
from tessera.common.pagination import PageParams
from tessera.common.problems import Problem
from tessera.common.runtime import ServiceRuntime
from tessera.mailer.models import Delivery, Suppression

__all__ = [
    "DeliveryFilter",
    "get_delivery",
    "lift_suppression",
    "list_deliveries",
    "list_suppressions",
    "retry_delivery",
]


class DeliveryNotFound(Problem):
    status = 404
    code = "delivery_not_found"
    title = "No such delivery"


class NotFailed(Problem):
    status = 409
    code = "delivery_not_failed"
    title = "Only a failed delivery can be retried"


class EventNotInDlq(Problem):
    status = 409
    code = "event_not_in_dlq"
    title = "The delivery's event is no longer in the dead-letter queue"


class NotSuppressed(Problem):
    status = 404
    code = "address_not_suppressed"
    title = "This address is not suppressed"


@dataclass(frozen=True)
class DeliveryFilter:
    status: str | None = None
    recipient: str | None = None
    template: str | None = None
    event_id: uuid.UUID | None = None

    def where(self) -> list[Any]:
        clauses: list[Any] = []
        if self.status is not None:
            clauses.append(Delivery.status == self.status)
        if self.recipient is not None:
            clauses.append(func.lower(Delivery.recipient) == self.recipient.strip().lower())
        if self.template is not None:
            clauses.append(Delivery.template == self.template)
        if self.event_id is not None:
            clauses.append(Delivery.event_id == self.event_id)
        return clauses


async def list_deliveries(
    uow: UnitOfWork, which: DeliveryFilter, page: PageParams
) -> tuple[list[Delivery], int]:
    where = which.where()
    async with uow.reading() as session:
        total = await session.scalar(select(func.count()).select_from(Delivery).where(*where))
        rows = await session.scalars(
            select(Delivery)
            .where(*where)
            .order_by(Delivery.created_at.desc(), Delivery.id)
            .limit(page.limit)
            .offset(page.offset)
        )
        return list(rows), int(total or 0)


async def get_delivery(uow: UnitOfWork, delivery_id: uuid.UUID) -> Delivery:
    async with uow.reading() as session:
        row = await session.get(Delivery, delivery_id)
    if row is None:
        raise DeliveryNotFound()
    return row


async def retry_delivery(
    uow: UnitOfWork, runtime: ServiceRuntime, delivery_id: uuid.UUID
) -> Delivery:
    """``failed`` -> ``queued``, then the event replayed from the DLQ (in that order: a
    replay handled before the reset would find the delivery failed and send nothing)."""
    async with uow:
        row = await uow.session.get(Delivery, delivery_id, with_for_update=True)
        if row is None:
            raise DeliveryNotFound()
        if row.status != "failed":
            raise NotFailed(f"the delivery is {row.status}")
        previous = (row.attempts, row.updated_at)
        row.status, row.attempts, row.updated_at = "queued", 0, datetime.now(UTC)
        await uow.commit()
    settings = runtime.settings
    replayed = await replay_dead_letters(
        settings.broker.url.get_secret_value(),
        Topology.for_service(settings.service_name, settings.broker),
        message_ids={str(row.event_id)},
    )
    if not replayed:
        async with uow:
            back = await uow.session.get(Delivery, delivery_id, with_for_update=True)
            if back is not None and back.status == "queued":
                back.status, (back.attempts, back.updated_at) = "failed", previous
                await uow.commit()
        raise EventNotInDlq(
            f"event {row.event_id} was not found in the DLQ (purged or replayed already)"
        )
    return row


async def list_suppressions(
    uow: UnitOfWork, address: str | None, page: PageParams
) -> tuple[list[Suppression], int]:
    where = [] if address is None else [Suppression.address == address.strip().lower()]
    async with uow.reading() as session:
        total = await session.scalar(select(func.count()).select_from(Suppression).where(*where))
        rows = await session.scalars(
            select(Suppression)
            .where(*where)
            .order_by(Suppression.created_at.desc(), Suppression.address)
            .limit(page.limit)
            .offset(page.offset)
        )
        return list(rows), int(total or 0)


async def lift_suppression(uow: UnitOfWork, address: str) -> None:
    async with uow:
        result = await uow.session.execute(
            delete(Suppression).where(Suppression.address == address.strip().lower())
        )
        if not result.rowcount:
            raise NotSuppressed()
        await uow.commit()
