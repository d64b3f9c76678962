"""Identifiers taken from outside (a client's ``X-Request-ID``) are checked before use.

Such a value is logged, stored on outbox rows and sent on as an AMQP correlation id, a
short string of at most 255 bytes: only a short ASCII id is accepted, anything else is
replaced by one we make.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SAFE_ID", "safe_id"]

SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def safe_id(value: Any) -> str | None:
    """``value`` when it is a short ASCII id (``[A-Za-z0-9._:-]{1,64}``), else None."""
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str) and SAFE_ID.fullmatch(value):
        return value
    return None
