"""The deny-list of access tokens, shared by every service through Redis.

Logging out or revoking a session deny-lists its ``sid`` until the last access token that
could carry it has expired; every service checks it while verifying a token: one Redis
round trip (``EXISTS``), no database query. Nothing here is the
only copy of anything: the sessions table in auth's schema is the record.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tessera.common.problems import Problem

__all__ = ["Revocations"]


class Revocations:
    def __init__(self, redis: Redis, *, prefix: str, fail_open: bool = False) -> None:
        self.redis = redis
        self.prefix = prefix
        self.fail_open = fail_open

    def _sid(self, sid: str) -> str:
        return f"{self.prefix}revoked:sid:{sid}"

    async def revoke_session(self, sid: str, *, until: float) -> None:
        """Refuse every access token of session ``sid`` until the epoch second ``until``."""
        ttl = max(1, int(until - time.time()) + 1)
        await self.redis.set(self._sid(sid), "1", ex=ttl)

    async def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        sid = claims.get("sid")
        if not sid:
            return False
        try:
            # every request makes this lookup: it is part of the request's own span, not a
            # span of its own (one span less per request is a good part of tracing's cost)
            with suppress_instrumentation():
                return bool(await self.redis.exists(self._sid(str(sid))))
        except (RedisError, OSError) as exc:
            if self.fail_open:
                return False
            raise Problem(
                "the token deny-list is unavailable", status=503, code="revocation_unavailable"
            ) from exc
