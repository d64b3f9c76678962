"""The event envelope every message on ``tessera.events`` carries.

``type`` is ``<producer>.<aggregate>.<verb in past tense>``; the routing key appends the
schema version (``auth.user.registered.v1``). Producers only add optional fields within a
version; consumers ignore fields they do not know.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Envelope", "Event", "routing_key"]


def routing_key(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


class Event(BaseModel):
    """Base of a published event's data; subclasses set ``type`` and ``version``."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    type: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def routing_key(cls) -> str:
        return routing_key(cls.type, cls.version)


class Envelope(BaseModel):
    """What travels on the bus: identity and metadata around an event's ``data``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: uuid.UUID = Field(default_factory=uuid.uuid4, description="unique per event")
    type: str = Field(pattern=r"^[a-z_]+\.[a-z_]+\.[a-z_]+$")
    version: int = Field(ge=1)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str
    subject: str = Field(description="id of the aggregate the event is about")
    data: dict[str, Any]

    @property
    def routing_key(self) -> str:
        return routing_key(self.type, self.version)

    @classmethod
    def wrap(cls, event: Event, *, producer: str, subject: str) -> Envelope:
        return cls(
            type=event.type,
            version=event.version,
            producer=producer,
            subject=subject,
            data=event.model_dump(mode="json"),
        )
