"""Events between services: envelope, outbox, inbox, topology and consumers."""

from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.messaging.inbox import claim, inbox_table
from tessera.common.messaging.outbox import Outbox, OutboxRelay, outbox_table

__all__ = [
    "Envelope",
    "Event",
    "Outbox",
    "OutboxRelay",
    "claim",
    "inbox_table",
    "outbox_table",
]
