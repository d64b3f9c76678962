"""The mailer's throughput against its floor, in one run, on real PostgreSQL, RabbitMQ and SMTP.

* **floor** — aiosmtplib alone: the same verification emails, rendered and written out to
  bytes with the mailer's own templates and code beforehand, sent one after another on one
  connection with ``sendmail`` (as the mailer does) to the same SMTP sink.
* **stack** — the mailer service in a process of its own (its app's lifespan: engine,
  broker, consumer, relay), after N ``auth.user.registered`` events were published into its
  queue while it was stopped: emails/s from its first delivery recorded to its last accepted
  by SMTP, and the process's CPU per email.

The SMTP sink (``bench/smtp_sink.py``) runs in a third process and counts Message-IDs, so a
duplicate would show. Tracing is off (``OTEL_SDK_DISABLED=true``) in both.

    uv run python bench/mailer.py                 # 2,000 emails, ~1 min
    uv run python bench/mailer.py --emails 500 --json
    uv run python bench/mailer.py --profile stack.txt   # py-spy of the mailer's run
    uv run python bench/profile_summary.py stack.txt --top 25

Needs PostgreSQL and RabbitMQ (``TEST_POSTGRES_URL``, ``TEST_RABBITMQ_URL`` or the local
defaults). Uses a database of its own (``tessera_bench_mail_<id>``) and unique broker names,
all deleted at the end. Goal (issue 8): at least 200 emails/s and half the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiosmtplib
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOALS = {"emails_per_s": 200.0, "ratio": 0.5}


def settings_for(cfg: dict[str, Any]) -> Any:
    from tessera.mailer.settings import Settings

    return Settings(
        environment="test",
        log_level="WARNING",
        log_format="json",
        admin_database_url=cfg["admin"],
        database={"url": cfg["database_url"], "pool_size": 10},
        broker={
            "url": cfg["amqp"],
            "exchange": cfg["exchange"],
            "unrouted": cfg["unrouted"],
            "queue_prefix": cfg["queue_prefix"],
        },
        smtp={"host": "127.0.0.1", "port": cfg["smtp_port"], "timeout_s": 10.0},
        driver="smtp",
        public_url="https://app.tessera.test",
        recipient_limit={"limit": 1_000_000, "window_s": 3600},
    )


def envelope(i: int) -> dict[str, Any]:
    user_id = str(uuid.uuid4())
    return {
        "id": str(uuid.uuid4()),
        "type": "auth.user.registered",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "auth",
        "subject": user_id,
        "data": {
            "user_id": user_id,
            "email": f"user{i}-{user_id[:8]}@example.com",
            "full_name": f"Bench User {i}",
            "locale": "en",
            "verification_token": f"tok_{uuid.uuid4().hex}",
            "verification_expires_at": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        },
    }


# --- the floor: aiosmtplib alone --------------------------------------------------------------


async def floor_part(cfg: dict[str, Any]) -> dict[str, Any]:
    from tessera.mailer.drivers import ConsoleDriver
    from tessera.mailer.rendering import Renderer
    from tessera.mailer.service import Mailer, _message

    settings = settings_for(cfg)
    mailer = Mailer(settings=settings, renderer=Renderer(), driver=ConsoleDriver())
    messages = []
    for i in range(cfg["emails"]):
        data = envelope(i)["data"]
        rendered = mailer.renderer.render(
            "verify_email",
            "en",
            {
                "full_name": data["full_name"],
                "email": data["email"],
                "link": f"https://app.tessera.test/verify-email#token={data['verification_token']}",
                "expires": "2026-12-03 18:00 UTC",
            },
        )
        messages.append(
            _message(mailer, to=data["email"], rendered=rendered, message_id=f"<{uuid.uuid4()}@f>")
        )
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=cfg["smtp_port"], timeout=10.0)
    await client.connect()
    cpu, started = time.process_time(), time.perf_counter()
    for message in messages:
        await client.sendmail(message.sender, [message.recipient], message.data)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await client.quit()
    return {
        "emails": len(messages),
        "emails_per_s": round(len(messages) / elapsed, 1),
        "cpu_ms_per_email": round(cpu * 1000 / len(messages), 3),
    }


# --- the stack: the mailer service ------------------------------------------------------------


async def stack_part(cfg: dict[str, Any]) -> dict[str, Any]:
    from tessera.mailer.app import create_app

    settings = settings_for(cfg)
    app = create_app(settings)
    async with app.router.lifespan_context(app):  # declares the queue and its bindings
        pass
    connection = await aio_pika.connect(cfg["amqp"])
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(cfg["exchange"])
        for start in range(0, cfg["emails"], 200):
            batch = [envelope(i) for i in range(start, min(cfg["emails"], start + 200))]
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            json.dumps(body).encode(),
                            message_id=body["id"],
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key="auth.user.registered.v1",
                        mandatory=True,
                    )
                    for body in batch
                )
            )
    db = await asyncpg.connect(cfg["database_url"].replace("+asyncpg", ""))
    try:
        app = create_app(settings)
        profiler = await start_profiler(cfg.get("profile"))
        cpu = time.process_time()
        async with app.router.lifespan_context(app):
            deadline = time.monotonic() + max(120.0, cfg["emails"] / 20)
            while time.monotonic() < deadline:
                sent = await db.fetchval(
                    "SELECT count(*) FROM mailer.deliveries WHERE status = 'sent'"
                )
                if sent >= cfg["emails"]:
                    break
                await asyncio.sleep(0.1)
            cpu = time.process_time() - cpu
        await stop_profiler(profiler)
        row = await db.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'sent') AS sent, count(*) AS recorded,"
            " extract(epoch FROM max(sent_at) - min(created_at)) AS span,"
            " max(attempts) AS max_attempts FROM mailer.deliveries"
        )
    finally:
        await db.close()
    span = float(row["span"] or 0) or 1e-9
    return {
        "emails": cfg["emails"],
        "sent": row["sent"],
        "recorded": row["recorded"],
        "max_attempts": row["max_attempts"],
        "emails_per_s": round(row["sent"] / span, 1),
        # the whole lifespan's CPU (start-up and the polling too): an upper bound
        "cpu_ms_per_email": round(cpu * 1000 / max(1, row["sent"]), 3),
    }


async def start_profiler(path: str | None) -> asyncio.subprocess.Process | None:
    """py-spy on this process (raw format, 200 Hz), for ``bench/profile_summary.py``."""
    if not path:
        return None
    profiler = await asyncio.create_subprocess_exec(
        str(BIN / "py-spy"), "record", "-r", "200", "-d", "600", "-f", "raw", "-o", path,
        "--pid", str(os.getpid()),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(1.0)  # attached
    return profiler


async def stop_profiler(profiler: asyncio.subprocess.Process | None) -> None:
    if profiler is not None and profiler.returncode is None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        await asyncio.wait_for(profiler.wait(), 60)


# --- the run ----------------------------------------------------------------------------------


async def start_sink() -> tuple[asyncio.subprocess.Process, int]:
    sink = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "smtp_sink.py"), stdout=asyncio.subprocess.PIPE
    )
    assert sink.stdout is not None
    line = (await asyncio.wait_for(sink.stdout.readline(), 30)).decode()
    if not line.startswith("PORT "):
        raise SystemExit(f"smtp sink: {line!r}")
    return sink, int(line.split()[1])


async def stop_sink(sink: asyncio.subprocess.Process) -> dict[str, Any]:
    sink.terminate()
    out, _ = await asyncio.wait_for(sink.communicate(), 30)
    for line in out.decode().splitlines():
        if line.startswith("SINK "):
            return dict(json.loads(line[5:]))
    return {}


async def child(kind: str, cfg: dict[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAILER__", "TESSERA__"))}
    env |= {"OTEL_SDK_DISABLED": "true"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--child", kind, "--config", json.dumps(cfg),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 900)
    for line in out.decode().splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    raise SystemExit(f"{kind}: exited with {proc.returncode}\n{err.decode()[-3000:]}")


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    from tessera.common.bootstrap import bootstrap_database
    from tessera.common.migrations import upgrade
    from tessera.mailer.app import MIGRATIONS

    run_id = uuid.uuid4().hex[:8]
    admin = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    database = f"tessera_bench_mail_{run_id}"
    dsn = re.sub(r"/[^/]*$", f"/{database}", admin).replace(
        "postgres@", "tessera_mailer:tessera_mailer_dev@", 1
    )
    cfg: dict[str, Any] = {
        "admin": admin,
        "amqp": os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        "database_url": dsn.replace("postgresql://", "postgresql+asyncpg://", 1),
        "exchange": f"tessera.events.benchmail{run_id}",
        "unrouted": f"tessera.unrouted.benchmail{run_id}",
        "queue_prefix": f"benchmail{run_id}.",
        "emails": args.emails,
        "profile": str(args.profile.resolve()) if args.profile else None,
    }
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{database}"')
    await conn.close()
    sink: asyncio.subprocess.Process | None = None
    results: dict[str, Any] = {"run_id": run_id, "load_before": list(os.getloadavg())}
    try:
        sink, port = await start_sink()
        cfg["smtp_port"] = port
        settings = settings_for(cfg)
        await bootstrap_database(settings)
        await asyncio.to_thread(upgrade, MIGRATIONS, settings)
        results["floor"] = await child("floor", cfg)
        results["stack"] = await child("stack", cfg)
    finally:
        if sink is not None:
            results["sink"] = await stop_sink(sink)
        await clean_broker(cfg)
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await conn.close()
    results["load_after"] = list(os.getloadavg())
    results["ratio"] = round(results["stack"]["emails_per_s"] / results["floor"]["emails_per_s"], 3)
    return results


async def clean_broker(cfg: dict[str, Any]) -> None:
    from tessera.common.messaging.rabbit import Topology

    topology = Topology.for_service("mailer", settings_for(cfg).broker)
    connection = await aio_pika.connect(cfg["amqp"])
    async with connection:
        for name in [*topology.queues, topology.unrouted]:
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.queue_delete(name)
        channel = await connection.channel()
        for name in (cfg["exchange"], cfg["unrouted"]):
            with contextlib.suppress(Exception):
                await channel.exchange_delete(name)


def print_table(r: dict[str, Any]) -> None:
    floor, stack, sink = r["floor"], r["stack"], r.get("sink", {})
    load = " ".join(f"{x:.2f}" for x in r["load_before"])
    print(f"mailer: queued events -> accepted by SMTP; tracing off; load before {load}")
    print(f"{'':<34}{'emails/s':>10}{'cpu ms/email':>14}{'ratio':>8}  goal")
    print(f"{'floor (aiosmtplib, 1 connection)':<34}{floor['emails_per_s']:>10.0f}"
          f"{floor['cpu_ms_per_email']:>14.2f}{'1.00':>8}")  # fmt: skip
    ok = stack["emails_per_s"] >= GOALS["emails_per_s"] and r["ratio"] >= GOALS["ratio"]
    print(f"{'mailer service':<34}{stack['emails_per_s']:>10.0f}{stack['cpu_ms_per_email']:>14.2f}"
          f"{r['ratio']:>8.2f}  >= {GOALS['emails_per_s']:.0f}/s and >= {GOALS['ratio']:.2f}: "
          f"{'ok' if ok else 'MISSED'}")  # fmt: skip
    expected = floor["emails"] + stack["emails"]
    print(
        f"sink: {sink.get('messages')} messages ({expected} expected), {sink.get('unique')} "
        f"distinct Message-IDs, {sink.get('connections')} SMTP connections; the mailer "
        f"recorded {stack['recorded']}, sent {stack['sent']}, most attempts {stack['max_attempts']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the mailer's run")
    parser.add_argument("--child", choices=("floor", "stack"), help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        part = floor_part if args.child == "floor" else stack_part
        print("RESULT " + json.dumps(asyncio.run(part(json.loads(args.config)))), flush=True)
        return
    results = asyncio.run(orchestrate(args))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
