"""The token deny-list in Redis: what a service does when Redis answers, and when it does not.

Promises: a revoked session's tokens are refused; with Redis down, verification fails
closed (503, ``revocation_unavailable``) unless ``fail_open`` says to accept tokens.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tessera.common.problems import Problem
from tessera.common.revocation import Revocations
from tessera.common.testing import Infra


@pytest.fixture
async def redis(infra: Infra) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_down() -> AsyncIterator[Redis]:
    """A client of a Redis that is not there: a port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        yield client
    finally:
        await client.aclose()


async def test_revoked_session_is_refused_and_others_are_not(redis: Redis, infra: Infra) -> None:
    revocations = Revocations(redis, prefix=f"{infra.redis_prefix}{uuid.uuid4().hex[:6]}:")
    revoked, other = uuid.uuid4().hex, uuid.uuid4().hex
    await revocations.revoke_session(revoked, until=time.time() + 60)

    assert await revocations.is_revoked({"sid": revoked}) is True
    assert await revocations.is_revoked({"sid": other}) is False
    assert await revocations.is_revoked({}) is False, "a token without a session"


async def test_redis_down_fails_closed_with_503(redis_down: Redis) -> None:
    revocations = Revocations(redis_down, prefix="t:", fail_open=False)
    with pytest.raises(Problem) as caught:
        await revocations.is_revoked({"sid": "s-1"})
    assert (caught.value.status, caught.value.code) == (503, "revocation_unavailable")


async def test_redis_down_with_fail_open_accepts_the_token(redis_down: Redis) -> None:
    revocations = Revocations(redis_down, prefix="t:", fail_open=True)
    assert await revocations.is_revoked({"sid": "s-1"}) is False


async def test_fail_open_does_not_accept_a_revoked_token_while_redis_answers(
    redis: Redis, infra: Infra
) -> None:
    revocations = Revocations(redis, prefix=f"{infra.redis_prefix}fo:", fail_open=True)
    sid = uuid.uuid4().hex
    await revocations.revoke_session(sid, until=time.time() + 60)
    assert await revocations.is_revoked({"sid": sid}) is True
