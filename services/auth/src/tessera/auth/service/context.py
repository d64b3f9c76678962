"""What auth's use cases share besides the unit of work."""

from __future__ import annotations

from dataclasses import dataclass

from tessera.auth.abuse import Guard
from tessera.auth.keys import KeyRing
from tessera.auth.passwords import Passwords
from tessera.auth.settings import Settings

__all__ = ["AuthContext", "ClientInfo"]


@dataclass(frozen=True)
class AuthContext:
    """Auth's settings and long-lived helpers: built once at start (the app's lifespan
    provides it to the runtime) or by a command."""

    settings: Settings
    passwords: Passwords
    keys: KeyRing
    guard: Guard | None = None


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from: recorded with the sessions it opens, counted by limits."""

    ip_address: str | None = None
    user_agent: str | None = None
