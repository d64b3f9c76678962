"""Tables of schema ``answers``: for now the outbox and inbox every service carries."""

from __future__ import annotations

from tessera.common.db import make_metadata
from tessera.common.runtime import MessagingTables

__all__ = ["messaging", "metadata"]

metadata = make_metadata("answers")
messaging = MessagingTables(metadata)
