"""Throughput and latency of auth's hot paths, through the gateway of a running suite.

Start the suite first (``make run``, or any deployment) and point ``--url`` at its gateway:

    uv run python bench/auth_http.py --url http://127.0.0.1:8080 --seconds 10 --concurrency 16

It registers one user, then for each scenario runs ``--concurrency`` clients in a closed
loop for ``--seconds``: ``login`` (argon2id-bound), ``refresh`` (each client rotates its own
refresh token, as real clients do) and ``me`` (JWT verification + deny-list check + one
read). Prints requests/s and p50/p90/p99 latency per scenario. Give the gateway a rate limit
above the load (``GATEWAY_RATE_LIMIT=100000r/s``) or it answers 429s, which are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx

PASSWORD = "bench passphrase that is long"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))]


async def closed_loop(
    seconds: float,
    concurrency: int,
    make_call: Callable[[int], Awaitable[Callable[[], Awaitable[int]]]],
) -> dict[str, object]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds

    async def client(i: int) -> None:
        call = await make_call(i)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = await call()
            latencies.append((time.perf_counter() - started) * 1000)
            statuses[status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p90_ms": round(percentile(latencies, 90), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "statuses": dict(statuses),
    }


async def run(
    url: str, seconds: float, concurrency: int, scenarios: list[str]
) -> dict[str, object]:
    limits = httpx.Limits(
        max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2
    )
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
        email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
        r = await http.post(
            "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Bench"}
        )
        r.raise_for_status()
        credentials = {"email": email, "password": PASSWORD}

        async def login_call(_: int) -> Callable[[], Awaitable[int]]:
            async def call() -> int:
                return (await http.post("/auth/login", json=credentials)).status_code

            return call

        async def refresh_call(_: int) -> Callable[[], Awaitable[int]]:
            token = (await http.post("/auth/login", json=credentials)).json()["refresh_token"]

            async def call() -> int:
                nonlocal token
                response = await http.post("/auth/token/refresh", json={"refresh_token": token})
                if response.status_code == 200:
                    token = response.json()["refresh_token"]
                return response.status_code

            return call

        async def me_call(_: int) -> Callable[[], Awaitable[int]]:
            access = (await http.post("/auth/login", json=credentials)).json()["access_token"]
            headers = {"Authorization": f"Bearer {access}"}

            async def call() -> int:
                return (await http.get("/auth/me", headers=headers)).status_code

            return call

        calls = {"login": login_call, "refresh": refresh_call, "me": me_call}
        return {name: await closed_loop(seconds, concurrency, calls[name]) for name in scenarios}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--scenarios", default="login,refresh,me")
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.seconds, args.concurrency, args.scenarios.split(",")))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
