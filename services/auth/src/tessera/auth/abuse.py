"""Rate limits and progressive lockout for auth's public endpoints (Redis, every replica).

Per client address and per account (the account key is a hash of the normalised email, so
no address is stored in Redis and unknown emails behave exactly like known ones). After
``lockout.failures`` wrong passwords in ``lockout.window_s`` the account is locked for
``base_lock_s``, doubling with each further lock up to ``max_lock_s``; while locked, login
answers 429 with ``Retry-After`` even with the right password.
"""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from tessera.auth.settings import Settings
from tessera.common.ratelimit import Limit, RateLimiter, TooManyRequests

__all__ = ["AccountLocked", "Guard"]


class AccountLocked(TooManyRequests):
    code = "account_locked"
    title = "Too many failed attempts: the account is temporarily locked"

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after, detail="try again later or reset your password")


def account_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


class Guard:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.settings = settings
        self.redis = redis
        self.prefix = f"{settings.redis.key_prefix}auth:"
        self.limiter = RateLimiter(redis, prefix=self.prefix, enabled=settings.rate_limits.enabled)

    async def limit(self, action: str, *, ip: str | None, email: str | None = None) -> None:
        """Count an attempt at ``action`` by address and by account; 429 past a limit."""
        limits = self.settings.rate_limits
        per_ip: Limit | None = getattr(limits, f"{action}_per_ip", None)
        per_account: Limit | None = getattr(limits, f"{action}_per_account", None)
        if per_ip is None and per_account is None:  # a typo must not mean "unlimited"
            raise ValueError(f"no rate limit is configured for {action!r}")
        if per_ip is not None and ip:
            await self.limiter.hit(f"{action}:ip:{ip}", per_ip)
        if per_account is not None and email:
            await self.limiter.hit(f"{action}:account:{account_key(email)}", per_account)

    async def check_lock(self, email: str) -> None:
        if not self.settings.rate_limits.enabled:
            return
        ttl = await self.redis.ttl(f"{self.prefix}lock:{account_key(email)}")
        if ttl and ttl > 0:
            raise AccountLocked(ttl)

    async def failed_login(self, email: str) -> int | None:
        """Record a wrong password; return the lock's length in seconds if this one locks."""
        lockout = self.settings.lockout
        if not self.settings.rate_limits.enabled:
            return None
        key = account_key(email)
        failures = f"{self.prefix}fail:{key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(failures)
            pipe.expire(failures, lockout.window_s, nx=True)
            count, _ = await pipe.execute()
        if int(count) < lockout.failures:
            return None
        locks = f"{self.prefix}locks:{key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(locks)
            pipe.expire(locks, lockout.max_lock_s * 4)
            pipe.delete(failures)
            times, _, _ = await pipe.execute()
        seconds = min(lockout.base_lock_s * 2 ** (int(times) - 1), lockout.max_lock_s)
        await self.redis.set(f"{self.prefix}lock:{key}", "1", ex=seconds)
        return seconds

    async def succeeded_login(self, email: str) -> None:
        await self.redis.delete(f"{self.prefix}fail:{account_key(email)}")
