"""Fixed-window rate limits in Redis, shared by every replica of a service.

``await limiter.hit("login:ip:203.0.113.9", Limit(20, 60))`` counts one attempt and raises
:class:`TooManyRequests` (429 problem+json with ``Retry-After``) once the window's limit is
spent. Keys carrying personal data (an email) should be hashed by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field
from redis.asyncio import Redis

from tessera.common.problems import Problem

__all__ = ["Limit", "RateLimiter", "TooManyRequests"]


class Limit(BaseModel):
    """At most ``limit`` hits per ``window_s`` seconds."""

    limit: int = Field(ge=1)
    window_s: int = Field(ge=1)


class TooManyRequests(Problem):
    status = 429
    code = "too_many_requests"
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str = "slow down and retry later") -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = max(1, retry_after)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    count: int
    retry_after: int


class RateLimiter:
    def __init__(self, redis: Redis, *, prefix: str, enabled: bool = True) -> None:
        self.redis = redis
        self.prefix = prefix
        self.enabled = enabled

    async def count(self, key: str, limit: Limit) -> Decision:
        """Count one hit against ``key`` and say whether it is within ``limit``."""
        if not self.enabled:
            return Decision(True, 0, 0)
        name = f"{self.prefix}rl:{key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, limit.window_s, nx=True)
            pipe.ttl(name)
            count, _, ttl = await pipe.execute()
        return Decision(
            int(count) <= limit.limit, int(count), int(ttl) if ttl > 0 else limit.window_s
        )

    async def hit(self, key: str, limit: Limit) -> None:
        decision = await self.count(key, limit)
        if not decision.allowed:
            raise TooManyRequests(decision.retry_after)

    async def reset(self, key: str) -> None:
        await self.redis.delete(f"{self.prefix}rl:{key}")
