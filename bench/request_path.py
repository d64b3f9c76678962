"""What one authenticated request costs, against its floor, in one run.

Starts, each as its own process with one uvicorn worker:

* the floor: ``bench/floor_app.py``, a bare FastAPI app reading one row with asyncpg;
* auth with tracing on (every request sampled, spans exported over OTLP/HTTP to a sink that
  accepts and discards them, so export is paid as in production);
* auth with tracing off (``OTEL_SDK_DISABLED=true``);

then drives each with a compiled load generator (``wrk``; ``hey`` if wrk is missing) and
prints req/s, p50 and p99 for the floor, ``/auth/healthz``, ``/auth/me`` with tracing on and
off, each with its ratio to the floor; and a micro-benchmark of JWT verification alone.

    uv run python bench/request_path.py                 # 10 s per target, 8 connections
    uv run python bench/request_path.py --seconds 20 --connections 16 --json

Needs PostgreSQL, Redis and RabbitMQ (``TEST_*_URL`` or the local defaults) and wrk or hey
(``make bench-request`` installs wrk from apt). Uses a database of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import timeit
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PASSWORD = "bench passphrase that is long"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a sink for the spans ----------------------------------------------------------------------


class _Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def otlp_sink() -> Iterator[str]:
    """An OTLP/HTTP endpoint that accepts every export (batched: a few posts a second)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


# --- the database ------------------------------------------------------------------------------


async def prepare_floor(admin: str, database: str) -> str:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    dsn = re.sub(r"/[^/]*$", f"/{database}", admin)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE floor_rows (id uuid PRIMARY KEY, email text NOT NULL, "
            "full_name text NOT NULL, locale text NOT NULL, created_at timestamptz NOT NULL "
            "DEFAULT now())"
        )
        await conn.execute(
            "INSERT INTO floor_rows (id, email, full_name, locale) VALUES "
            "('00000000-0000-0000-0000-000000000001', 'ada@example.org', 'Ada', 'en')"
        )
    finally:
        await conn.close()
    return dsn


async def drop_database(admin: str, database: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


async def drop_broker_names(run_id: str) -> None:
    """The exchange and unrouted queue auth declared for this run."""
    import aio_pika

    url = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    connection = await aio_pika.connect(url)
    async with connection:
        for kind, name in (
            ("exchange", f"tessera.events.bench{run_id}"),
            ("exchange", f"tessera.unrouted.bench{run_id}"),
            ("queue", f"tessera.unrouted.bench{run_id}"),
        ):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                if kind == "queue":
                    await channel.queue_delete(name)
                else:
                    await channel.exchange_delete(name)


# --- processes ---------------------------------------------------------------------------------


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: exited with {process.returncode}\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url}: not ready after 60 s\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def started(cmd: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_ready(ready_url, process, log)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def auth_env(admin: str, database: str, run_id: str, *, tracing: str | None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TESSERA__", "AUTH__", "OTEL_"))
    }
    auth_url = re.sub(r"/[^/]*$", f"/{database}", admin).replace(
        "postgresql://postgres@", "postgresql+asyncpg://tessera_auth:tessera_auth_dev@", 1
    )
    env |= {
        "TESSERA__ENVIRONMENT": "test",
        "TESSERA__ADMIN_DATABASE_URL": admin,
        "AUTH__DATABASE__URL": auth_url,
        "TESSERA__BROKER__URL": os.environ.get(
            "TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"
        ),
        "TESSERA__BROKER__EXCHANGE": f"tessera.events.bench{run_id}",
        "TESSERA__BROKER__UNROUTED": f"tessera.unrouted.bench{run_id}",
        "TESSERA__REDIS__URL": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "TESSERA__REDIS__KEY_PREFIX": f"bench{run_id}:",
        "AUTH__RATE_LIMITS__ENABLED": "false",
        "AUTH__ARGON2__TIME_COST": "1",
        "AUTH__ARGON2__MEMORY_COST_KIB": "8192",
        "AUTH__ARGON2__PARALLELISM": "1",
    }
    if tracing is None:
        env["OTEL_SDK_DISABLED"] = "true"
    else:
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": tracing, "OTEL_TRACES_SAMPLER": "always_on"}
    return env


def migrate_auth(env: dict[str, str]) -> None:
    for step in (["db", "bootstrap"], ["db", "migrate"]):
        subprocess.run([str(BIN / "tessera-auth"), *step], env=env, cwd=ROOT, check=True)


def access_token(base: str) -> str:
    email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
    with httpx.Client(base_url=base, timeout=10) as client:
        created = client.post(
            "/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Bench"}
        )
        created.raise_for_status()
        login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
        login.raise_for_status()
        return str(login.json()["access_token"])


# --- load --------------------------------------------------------------------------------------


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def load(url: str, *, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, Any]:
    """req/s, p50 and p99 (ms) of ``url`` under a closed loop of ``connections``."""
    wrk, hey = shutil.which("wrk"), shutil.which("hey")
    head: list[str] = []
    if wrk:
        for k, v in headers.items():
            head += ["-H", f"{k}: {v}"]
        cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *head, url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        return {
            "rps": rps,
            "p50_ms": p50,
            "p99_ms": p99,
            "non_2xx": int(errors.group(1)) if errors else 0,
        }
    if hey:
        for k, v in headers.items():
            head += ["-H", f"{k}: {v}"]
        cmd = [hey, "-z", f"{seconds}s", "-c", str(connections), *head, url]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        p50 = float(re.search(r"50%+ in ([\d.]+) secs", out).group(1)) * 1000  # type: ignore[union-attr]
        p99 = float(re.search(r"99%+ in ([\d.]+) secs", out).group(1)) * 1000  # type: ignore[union-attr]
        codes = dict(re.findall(r"\[(\d{3})\]\s+(\d+) responses", out))
        non_2xx = sum(int(n) for c, n in codes.items() if not c.startswith("2"))
        return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "non_2xx": non_2xx}
    raise SystemExit("request_path: install wrk or hey (apt-get install wrk)")


# --- JWT verification alone ----------------------------------------------------------------------


def jwt_micro(number: int = 5000) -> dict[str, float]:
    """Mean time of ``TokenVerifier.verify`` on an EdDSA token, keys in memory, no deny-list."""
    import jwt as pyjwt
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from jwt.algorithms import OKPAlgorithm

    from tessera.common.security import StaticKeySource, TokenVerifier
    from tessera.common.settings import JwtSettings

    private = ed25519.Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key())) | {"kid": "k1", "alg": "EdDSA"}
    now = int(time.time())
    claims = {
        "iss": "tessera-auth", "aud": "tessera", "sub": str(uuid.uuid4()), "iat": now,
        "nbf": now, "exp": now + 900, "jti": uuid.uuid4().hex, "sid": uuid.uuid4().hex,
        "roles": [], "orgs": {str(uuid.uuid4()): "admin"},
    }  # fmt: skip
    token = pyjwt.encode(claims, private, algorithm="EdDSA", headers={"kid": "k1"})
    verifier = TokenVerifier(JwtSettings(), StaticKeySource({"keys": [jwk]}))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(verifier.verify(token))
        seconds = timeit.timeit(
            lambda: loop.run_until_complete(verifier.verify(token)), number=number
        )
        bare = timeit.timeit(
            lambda: pyjwt.decode(
                token, key=private.public_key(), algorithms=["EdDSA"], audience="tessera"
            ),
            number=number,
        )
    finally:
        loop.close()
    return {"verify_ms": seconds / number * 1000, "bare_pyjwt_decode_ms": bare / number * 1000}


# --- the run -----------------------------------------------------------------------------------


def run(seconds: int, connections: int, workdir: Path) -> dict[str, Any]:
    admin = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    run_id = uuid.uuid4().hex[:8]
    database = f"tessera_bench_{run_id}"
    dsn = asyncio.run(prepare_floor(admin, database))
    results: dict[str, Any] = {}
    try:
        floor_port, on_port, off_port = free_port(), free_port(), free_port()
        floor_env = {**os.environ, "FLOOR_DSN": dsn, "PYTHONPATH": str(ROOT)}
        floor_cmd = [
            str(BIN / "uvicorn"), "--factory", "bench.floor_app:create_app", "--port",
            str(floor_port), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        floor = f"http://127.0.0.1:{floor_port}/floor/rows/00000000-0000-0000-0000-000000000001"
        with started(floor_cmd, floor_env, floor, workdir / "floor.log"):
            results["floor"] = load(floor, seconds=seconds, connections=connections, headers={})
        with otlp_sink() as sink:
            env_on = auth_env(admin, database, run_id, tracing=sink)
            migrate_auth(env_on)
            on = f"http://127.0.0.1:{on_port}"
            cmd = [str(BIN / "tessera-auth"), "serve", "--port", str(on_port)]
            with started(cmd, env_on, f"{on}/auth/healthz", workdir / "auth-tracing.log"):
                token = access_token(on)
                bearer = {"Authorization": f"Bearer {token}"}
                results["healthz"] = load(
                    f"{on}/auth/healthz", seconds=seconds, connections=connections, headers={}
                )
                results["me_tracing_on"] = load(
                    f"{on}/auth/me", seconds=seconds, connections=connections, headers=bearer
                )
        env_off = auth_env(admin, database, run_id, tracing=None)
        off = f"http://127.0.0.1:{off_port}"
        cmd = [str(BIN / "tessera-auth"), "serve", "--port", str(off_port)]
        with started(cmd, env_off, f"{off}/auth/healthz", workdir / "auth-no-tracing.log"):
            results["me_tracing_off"] = load(
                f"{off}/auth/me", seconds=seconds, connections=connections, headers=bearer
            )
    finally:
        asyncio.run(drop_database(admin, database))
        asyncio.run(drop_broker_names(run_id))
    floor_rps = results["floor"]["rps"]
    for figures in results.values():
        figures["ratio_to_floor"] = round(figures["rps"] / floor_rps, 3)
    results["tracing_cost"] = round(
        1 - results["me_tracing_on"]["rps"] / results["me_tracing_off"]["rps"], 3
    )
    results["jwt"] = jwt_micro()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".run" / "bench")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = run(args.seconds, args.connections, args.workdir)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'target':<18}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'vs floor':>10}{'non-2xx':>9}")
    for name in ("floor", "healthz", "me_tracing_on", "me_tracing_off"):
        r = results[name]
        print(
            f"{name:<18}{r['rps']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
            f"{r['ratio_to_floor']:>10.2f}{r['non_2xx']:>9}"
        )
    print(f"tracing costs {results['tracing_cost'] * 100:.1f} % of /auth/me throughput")
    jwt = results["jwt"]
    print(
        f"JWT verification: {jwt['verify_ms']:.3f} ms "
        f"(bare pyjwt.decode: {jwt['bare_pyjwt_decode_ms']:.3f} ms)"
    )


if __name__ == "__main__":
    main()
