"""What the mailer publishes, and its trimmed model of the one event it consumes without
sending an email. The models of the events that send emails are declared with their emails
in ``mails/`` (one module per producing service)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from tessera.common.messaging import Event

__all__ = ["DeliveryFailed", "UserDeleted"]


class UserDeleted(Event):
    """``auth.user.deleted`` v1: erase what the mailer keeps about this user."""

    type: ClassVar[str] = "auth.user.deleted"
    version: ClassVar[int] = 1

    user_id: uuid.UUID


# --- what the mailer publishes ----------------------------------------------------------------


class DeliveryFailed(Event):
    """``mailer.delivery.failed`` v1: an email will not arrive — its server refused it for good
    (``permanent``), or it still failed after the last retry."""

    type: ClassVar[str] = "mailer.delivery.failed"
    version: ClassVar[int] = 1

    delivery_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    template: str
    recipient: str
    user_id: uuid.UUID | None = None
    permanent: bool
    reason: str
