"""The event path (commit, outbox, relay, RabbitMQ, consumer) against its floor, in one run.

Each part runs in a process of its own (nothing instrumented leaks from one into another):

* **floor** — the bare libraries doing the same steps in one event loop: an asyncpg pool
  commits a state row + an outbox row per event; a relay loop (woken by the commits) claims
  due rows in one statement (``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED
  LIMIT n) RETURNING``), publishes them with aio-pika (confirms, persistent, mandatory,
  concurrently within the batch) and marks them sent; an aio-pika consumer on a quorum queue
  (same prefetch as the stack) inserts the inbox row (ON CONFLICT DO NOTHING) and an effect
  row in one transaction, then acks. Unthrottled: events/s from the first commit to the last
  event handled, and commit -> handler latency.
* **stack** — Tessera's kernel doing it in one process: ``UnitOfWork`` (state row +
  ``uow.publish``), ``OutboxRelay`` + ``BrokerPublisher`` on a ``new_broker(...)`` broker
  with ``RabbitTelemetryMiddleware``, ``declare_topology``, and the kit ``Consumer`` whose
  handler inserts an effect row (inbox claim + effect + commit as in a service). Tracing is
  on: ``configure_telemetry`` with a ``BatchSpanProcessor`` exporting OTLP/HTTP to a sink in
  a separate process (``bench/otlp_sink.py``), each event produced under a span standing in
  for the request that caused it; ``--no-otel`` runs with ``OTEL_SDK_DISABLED=true``.
* **rate** — the stack at a fixed rate, half the floor's unthrottled throughput (``--rate``
  overrides): p50/p90/p99 commit -> handler.
* **replicas** — N outbox rows preloaded (through ``Outbox.row_for``, not yet due), then K
  worker processes (one ``OutboxRelay`` + one kit consumer each, competing on one queue),
  all connected and declared before the rows are made due with one UPDATE; events/s until
  the last effect row is committed, for K=1 and K=2.

    uv run python bench/event_latency.py                       # everything, ~2 min
    uv run python bench/event_latency.py --only stack,rate --repeat 3 --json
    uv run python bench/event_latency.py --only stack --events 20000 --profile stack.txt

"cpu ms/ev" is the CPU time of the measuring process (all its threads, span export too)
per event: steadier than events/s on a machine others share, and the cost each part adds.
PostgreSQL's and RabbitMQ's own CPU is not in it (the same work for the floor and the stack).

``--profile FILE`` records the stack's measured window with py-spy (raw format, 200 Hz;
summarise it with ``bench/profile_summary.py``). "commit -> handler" is from the producer's
commit returning to the handler being called (inbox row claimed); "handled" in ``--json`` is
to the consumer's commit. Needs PostgreSQL and RabbitMQ (``TEST_POSTGRES_URL``,
``TEST_RABBITMQ_URL`` or the local defaults). Uses a database of its own
(``tessera_bench_<id>``) and unique exchange/queue names, all deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import aio_pika
import asyncpg
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from sqlalchemy import Column, DateTime, Integer, Table, insert, text
from sqlalchemy.ext.asyncio import async_sessionmaker

from tessera.common.bootstrap import bootstrap_database
from tessera.common.consumers import Consumer, Handling
from tessera.common.db import UnitOfWork, create_engine, make_metadata
from tessera.common.messaging import Envelope, Event, Outbox, OutboxRelay
from tessera.common.messaging.rabbit import (
    BrokerPublisher,
    Topology,
    declare_topology,
    new_broker,
)
from tessera.common.runtime import MessagingTables, _counted
from tessera.common.settings import ServiceSettings
from tessera.common.telemetry import configure_telemetry, shutdown_telemetry

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PARTS = ("floor", "stack", "rate", "replicas")
GOALS = {"unthrottled_ratio": 0.5, "rate_p50_ms": 5.0, "rate_p99_ms": 20.0, "replicas": 1.6}


class BenchSettings(ServiceSettings):
    service_name: ClassVar[str] = "bench"


class Ticked(Event):
    """A bench event."""

    type: ClassVar[str] = "bench.clock.ticked"
    version: ClassVar[int] = 1
    seq: int


metadata = make_metadata("bench")
tables = MessagingTables(metadata)
ticks = Table("ticks", metadata, Column("seq", Integer, primary_key=True))
effects = Table(
    "effects",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column(
        "done_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")
    ),
)


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


# --- what one process observed ---------------------------------------------------------------


@dataclass
class Probe:
    """Timestamps per event sequence number, and the oddities seen on the way."""

    committed: dict[int, float] = field(default_factory=dict)
    handler: dict[int, float] = field(default_factory=dict)
    handled: dict[int, float] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    duplicates: int = 0
    published: int = 0
    errors: int = 0
    first: int = 0
    last: int = 0
    count: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def expect(self, first: int, count: int) -> None:
        self.first, self.last, self.count = first, first + count, 0
        self.done = asyncio.Event()

    def delivered(self, seq: int) -> None:
        if seq in self.seen:
            self.duplicates += 1
        self.seen.add(seq)

    def handler_called(self, seq: int) -> None:
        self.handler.setdefault(seq, time.perf_counter())

    def was_handled(self, seq: int) -> None:
        if seq in self.handled:
            return
        self.handled[seq] = time.perf_counter()
        if self.first <= seq < self.last:
            self.count += 1
            if self.count >= self.last - self.first:
                self.done.set()


async def drive(
    produce: Callable[[int], Coroutine[Any, Any, None]],
    probe: Probe,
    *,
    first: int,
    count: int,
    rate: float,
    concurrency: int,
    wait_s: float,
) -> dict[str, Any]:
    """Commit ``count`` events (``concurrency`` in flight, or open loop at ``rate``/s) and
    wait until each was handled; return throughput and latency figures."""
    probe.expect(first, count)
    started = time.perf_counter()
    cpu_started = time.process_time()  # every thread of this process (span export too)
    tasks: list[asyncio.Task[None]] = []
    in_flight: set[asyncio.Task[None]] = set()
    for i in range(count):
        if rate > 0:
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        elif len(in_flight) >= concurrency:
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.create_task(produce(first + i))
        tasks.append(task)
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*tasks)
    produced = time.perf_counter()
    try:
        await asyncio.wait_for(probe.done.wait(), wait_s)
    except TimeoutError:
        raise SystemExit(
            f"only {probe.count} of {count} events handled within {wait_s:.0f} s"
        ) from None
    cpu = time.process_time() - cpu_started
    seqs = range(first, first + count)
    end = max(probe.handled[s] for s in seqs)
    to_handler = [max(0.0, probe.handler[s] - probe.committed[s]) * 1000 for s in seqs]
    to_handled = [max(0.0, probe.handled[s] - probe.committed[s]) * 1000 for s in seqs]
    return {
        "events": count,
        "rate_target_per_s": rate or None,
        "committed_per_s": round(count / (produced - started), 1),
        "events_per_s": round(count / (end - started), 1),
        # steadier than events/s on a shared machine: this process's own CPU per event
        "cpu_ms_per_event": round(cpu * 1000 / count, 3),
        "p50_ms": round(percentile(to_handler, 50), 2),
        "p90_ms": round(percentile(to_handler, 90), 2),
        "p99_ms": round(percentile(to_handler, 99), 2),
        "max_ms": round(max(to_handler), 2),
        "mean_ms": round(statistics.fmean(to_handler), 2),
        "handled_p50_ms": round(percentile(to_handled, 50), 2),
        "handled_p99_ms": round(percentile(to_handled, 99), 2),
        "handler_before_commit_returned": sum(probe.handler[s] < probe.committed[s] for s in seqs),
    }


# --- the floor: asyncpg + aio-pika, nothing else --------------------------------------------

FLOOR_CLAIM = """
UPDATE outbox SET next_attempt_at = now() + interval '30 seconds'
WHERE id IN (
    SELECT id FROM outbox
    WHERE sent_at IS NULL AND parked_at IS NULL AND next_attempt_at <= now()
    ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, event_id, event_type, routing_key, payload
"""
FLOOR_SENT = "UPDATE outbox SET sent_at = now(), payload = payload - 'data' WHERE id = ANY($1)"
FLOOR_OUTBOX = (
    "INSERT INTO outbox (event_id, event_type, routing_key, payload) VALUES ($1, $2, $3, $4)"
)
FLOOR_INBOX = (
    "INSERT INTO inbox (event_id, consumer, event_type) VALUES ($1, $2, $3) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)


async def floor_part(cfg: dict[str, Any]) -> dict[str, Any]:
    if hasattr(asyncpg.Connection.execute, "__wrapped__"):
        raise SystemExit("floor: asyncpg is instrumented in this process; the floor must not be")
    probe = Probe()
    pool = await asyncpg.create_pool(
        cfg["floor_dsn"],
        min_size=cfg["pool_size"],
        max_size=cfg["pool_size"] + cfg["max_overflow"],
        server_settings={"search_path": "bench"},
    )
    connection = await aio_pika.connect(cfg["amqp"])
    publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
    exchange = await publishing.declare_exchange(
        cfg["floor_exchange"], aio_pika.ExchangeType.TOPIC, durable=True
    )
    consuming = await connection.channel()
    await consuming.set_qos(prefetch_count=cfg["prefetch"])
    queue = await consuming.declare_queue(
        cfg["floor_queue"], durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.bind(cfg["floor_exchange"], routing_key=Ticked.routing_key())
    wakeup = asyncio.Event()

    async def produce(seq: int) -> None:
        event_id = uuid.uuid4()
        payload = json.dumps(
            {
                "id": str(event_id),
                "type": Ticked.type,
                "version": Ticked.version,
                "occurred_at": datetime.now(UTC).isoformat(),
                "producer": "floor",
                "subject": str(seq),
                "data": {"seq": seq},
            }
        )
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO ticks (seq) VALUES ($1)", seq)
            await conn.execute(FLOOR_OUTBOX, event_id, Ticked.type, Ticked.routing_key(), payload)
            probe.committed[seq] = time.perf_counter()
        probe.committed[seq] = time.perf_counter()
        wakeup.set()

    async def publish(row: asyncpg.Record) -> None:
        message = aio_pika.Message(
            row["payload"].encode(),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(row["event_id"]),
            type=row["event_type"],
            content_type="application/json",
        )
        await exchange.publish(message, routing_key=row["routing_key"], mandatory=True, timeout=10)

    async def relay() -> None:
        while True:
            wakeup.clear()
            rows = await pool.fetch(FLOOR_CLAIM, cfg["batch_size"])
            if rows:
                results = await asyncio.gather(*(publish(r) for r in rows), return_exceptions=True)
                sent = [r["id"] for r, res in zip(rows, results, strict=True) if res is None]
                probe.published += len(sent)
                probe.errors += len(rows) - len(sent)
                await pool.execute(FLOOR_SENT, sent)
            if len(rows) >= cfg["batch_size"]:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), cfg["poll_interval_s"])

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        try:
            envelope = json.loads(message.body)
            seq = envelope["data"]["seq"]
            probe.delivered(seq)
            async with pool.acquire() as conn, conn.transaction():
                first = await conn.fetchval(
                    FLOOR_INBOX, uuid.UUID(envelope["id"]), "floor", envelope["type"]
                )
                if first is not None:
                    probe.handler_called(seq)
                    await conn.execute("INSERT INTO effects (seq) VALUES ($1)", seq)
            probe.was_handled(seq)
        except Exception:
            probe.errors += 1
            await message.nack(requeue=True)
            raise
        await message.ack()

    await queue.consume(on_message)
    relaying = asyncio.create_task(relay())
    try:
        return await measure_unthrottled(produce, probe, cfg)
    finally:
        relaying.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relaying
        await connection.close()
        await pool.close()


async def measure_unthrottled(
    produce: Callable[[int], Coroutine[Any, Any, None]], probe: Probe, cfg: dict[str, Any]
) -> dict[str, Any]:
    """Warm up, then the measured unthrottled run (profiled when asked)."""
    warmup = cfg["warmup"]
    await drive(
        produce, probe, first=0, count=warmup, rate=0, concurrency=cfg["concurrency"], wait_s=60
    )
    profiler = await start_profiler(cfg.get("profile"))
    try:
        result = await drive(
            produce,
            probe,
            first=warmup,
            count=cfg["events"],
            rate=0,
            concurrency=cfg["concurrency"],
            wait_s=max(120.0, cfg["events"] / 20),
        )
    finally:
        await stop_profiler(profiler)
    return result | oddities(probe) | {"profiled": bool(cfg.get("profile"))}


def oddities(probe: Probe) -> dict[str, int]:
    return {
        "published": probe.published,
        "duplicates": probe.duplicates,
        "errors": probe.errors,
    }


async def start_profiler(path: str | None) -> asyncio.subprocess.Process | None:
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


# --- the stack: Tessera's kernel, wired as runtime.py wires a service -------------------------


def bench_settings(cfg: dict[str, Any]) -> BenchSettings:
    return BenchSettings(
        environment="test",
        log_level="INFO",
        log_format="json",
        admin_database_url=cfg["admin"],
        database={"url": cfg["database_url"]},
        broker={
            "url": cfg["amqp"],
            "exchange": cfg["exchange"],
            "unrouted": cfg["unrouted"],
            "queue_prefix": cfg["queue_prefix"],
            "retry_delays_ms": [1000],
        },
    )


class Kernel:
    """One service process's event machinery: engine, broker (telemetry middleware), relay,
    and the kit consumer with a handler that writes an effect row."""

    def __init__(self, cfg: dict[str, Any], probe: Probe) -> None:
        self.settings = s = bench_settings(cfg)
        self.provider = configure_telemetry("bench")
        self.tracer = self.provider.get_tracer("bench")
        self.engine = create_engine(s)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.outbox = Outbox(tables.outbox, producer="bench")
        self.topology = Topology.for_service("bench", s.broker)
        self.broker = new_broker(
            s.broker.url.get_secret_value(),
            prefetch=s.broker.prefetch,
            middlewares=[RabbitTelemetryMiddleware(tracer_provider=self.provider)],
            reconnect_interval=1.0,
            graceful_timeout=10.0,
            app_id="tessera-bench",
            logger=None,
        )
        kit = Consumer()

        @kit.on(Ticked)
        async def ticked(uow: Handling, event: Ticked) -> None:
            probe.handler_called(event.seq)
            await uow.session.execute(effects.insert().values(seq=event.seq))

        self.transport = kit.transport(
            self.topology,
            sessions=lambda: self.sessions,
            inbox=tables.inbox,
            outbox=lambda: self.outbox,
            resources={},
        )
        route = self.transport.routes[(Ticked.type, Ticked.version)]
        claimed = route.fn

        async def timed(envelope: Envelope, event: Any) -> None:  # returns after the commit
            probe.delivered(event.seq)
            await claimed(envelope, event)
            probe.was_handled(event.seq)

        route.fn = timed
        self.transport.subscribe(self.broker)
        publish = _counted(
            BrokerPublisher(self.broker, s.broker.exchange, timeout=s.broker.publish_timeout_s),
            "bench",
        )

        async def counted(row: Any) -> None:
            try:
                await publish(row)
            except Exception:
                probe.errors += 1
                raise
            probe.published += 1

        self.relay = OutboxRelay(
            self.engine,
            self.outbox,
            counted,
            batch_size=s.broker.outbox_batch_size,
            poll_interval=s.broker.outbox_poll_interval_s,
            retention_s=s.broker.outbox_retention_s,
            lease_s=s.broker.outbox_lease_s,
            max_attempts=s.broker.outbox_max_attempts,
            retry_base_s=s.broker.outbox_retry_base_s,
            retry_max_s=s.broker.outbox_retry_max_s,
        )
        self._relaying: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.broker.connect()
        await declare_topology(self.broker, self.topology, self.transport.routing_keys)
        await self.broker.start()
        self._relaying = asyncio.create_task(self.relay.run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._relaying is not None:
            self._relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._relaying
        with contextlib.suppress(Exception):
            await self.broker.stop()
        await self.engine.dispose()
        shutdown_telemetry()

    async def produce(self, seq: int, probe: Probe) -> None:
        # the span stands in for the request a use case runs in: its context goes into the
        # outbox row's headers and on to the consumer
        with self.tracer.start_as_current_span("bench produce"):
            uow = UnitOfWork(self.sessions, outbox=self.outbox)
            async with uow:
                await uow.session.execute(ticks.insert().values(seq=seq))
                uow.publish(Ticked(seq=seq), subject=str(seq))
                probe.committed[seq] = time.perf_counter()  # in case the handler wins
                await uow.commit()
                probe.committed[seq] = time.perf_counter()


async def stack_part(cfg: dict[str, Any], *, rate: float) -> dict[str, Any]:
    probe = Probe()
    kernel = Kernel(cfg, probe)
    await kernel.start()

    async def produce(seq: int) -> None:
        await kernel.produce(seq, probe)

    try:
        if rate <= 0:
            return await measure_unthrottled(produce, probe, cfg)
        warmup = cfg["warmup"]
        await drive(
            produce, probe, first=0, count=warmup, rate=0, concurrency=cfg["concurrency"],
            wait_s=60,
        )  # fmt: skip
        count = max(200, round(rate * cfg["rate_seconds"]))
        result = await drive(
            produce, probe, first=warmup, count=count, rate=rate, concurrency=0,
            wait_s=max(120.0, count / 20),
        )  # fmt: skip
        return result | oddities(probe)
    finally:
        await kernel.stop()


async def worker_part(cfg: dict[str, Any]) -> dict[str, Any]:
    """A replica: relay + consumer; READY once connected, starts on "go", ends on "stop"."""
    probe = Probe()
    kernel = Kernel(cfg, probe)
    await kernel.start()
    loop = asyncio.get_running_loop()
    try:
        print("READY", flush=True)
        if (await loop.run_in_executor(None, sys.stdin.readline)).strip() != "go":
            raise SystemExit("worker: expected go")
        kernel.outbox.notify()  # the rows were just made due: drain now, not at the next poll
        await loop.run_in_executor(None, sys.stdin.readline)  # stop
    finally:
        await kernel.stop()
    return {"handled": len(probe.handled)} | oddities(probe)


# --- the run: database, broker names, processes ------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    admin: str = os.environ.get(
        "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    amqp: str = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    sink: str | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def database(self) -> str:
        return f"tessera_bench_{self.run_id}"

    def dsn(self, user: str = "postgres@") -> str:
        return re.sub(r"/[^/]*$", f"/{self.database}", self.admin).replace("postgres@", user, 1)

    def config(self) -> dict[str, Any]:
        a = self.args
        return {
            "admin": self.admin,
            "amqp": self.amqp,
            "database_url": self.dsn("tessera_bench:tessera_bench_dev@"),
            "floor_dsn": self.dsn("tessera_bench:tessera_bench_dev@"),
            "exchange": f"tessera.events.bench{self.run_id}",
            "unrouted": f"tessera.unrouted.bench{self.run_id}",
            "queue_prefix": f"bench{self.run_id}.",
            "floor_exchange": f"floor.events.bench{self.run_id}",
            "floor_queue": f"bench{self.run_id}.floor.events",
            "events": a.events,
            "warmup": a.warmup,
            "concurrency": a.concurrency,
            "rate_seconds": a.rate_seconds,
            # the kernel's defaults, for the floor too
            "pool_size": 10,
            "max_overflow": 10,
            "prefetch": 32,
            "batch_size": 200,
            "poll_interval_s": 1.0,
        }

    def settings(self) -> BenchSettings:
        return bench_settings(self.config())

    def topology(self) -> Topology:
        return Topology.for_service("bench", self.settings().broker)

    def env(self, *, tracing: bool) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TESSERA__", "OTEL_", "DATABASE__", "BROKER__"))
        }
        if tracing and self.sink:
            env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": self.sink, "OTEL_TRACES_SAMPLER": "always_on"}
        else:
            env["OTEL_SDK_DISABLED"] = "true"
        return env

    def log(self, name: str) -> Path:
        path = self.args.workdir / f"event-{self.run_id}-{name}.log"
        self.logs.append(path)
        return path


async def child(run: Run, kind: str, extra: dict[str, Any], *, tracing: bool) -> dict[str, Any]:
    cfg = run.config() | extra
    log = run.log(kind)
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", kind, "--config", json.dumps(cfg),
            cwd=ROOT, env=run.env(tracing=tracing), stdout=asyncio.subprocess.PIPE, stderr=err,
        )  # fmt: skip
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 900)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    for line in out.decode().splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:])) | {"log_warnings": warnings_in(log)}
    raise SystemExit(f"{kind}: exited with {proc.returncode}\n{log.read_text()[-3000:]}")


def warnings_in(log: Path) -> list[str]:
    """The events a child logged at warning or above (normally none)."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            found.append(line[:200])
            continue
        if record.get("level") in ("warning", "error", "critical"):
            found.append(f"{record.get('level')}: {record.get('event')}")
    return found


async def prepare(run: Run) -> None:
    await bootstrap_database(run.settings())
    engine = create_engine(run.settings())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


async def truncate(run: Run) -> None:
    conn = await asyncpg.connect(run.dsn())
    try:
        await conn.execute(
            "TRUNCATE bench.outbox, bench.inbox, bench.ticks, bench.effects RESTART IDENTITY"
        )
    finally:
        await conn.close()


async def replicas_part(run: Run, workers: int, *, tracing: bool) -> dict[str, Any]:
    """Preload N rows not yet due, start the workers, make the rows due, time the drain."""
    n = run.args.replica_events
    await truncate(run)
    engine = create_engine(run.settings())
    outbox = Outbox(tables.outbox, producer="bench")
    later = datetime.now(UTC) + timedelta(days=1)
    try:
        for start in range(0, n, 1000):
            rows = [
                outbox.row_for(Ticked(seq=seq), subject=str(seq)) | {"next_attempt_at": later}
                for seq in range(start, min(n, start + 1000))
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(tables.outbox), rows)
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(run.dsn())
    procs: list[asyncio.subprocess.Process] = []
    files = []
    try:
        await conn.execute("ANALYZE bench.outbox")
        cfg = json.dumps(run.config())
        for i in range(workers):
            log = run.log(f"replicas{workers}-{i}")
            files.append(log.open("wb"))
            procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--child",
                    "worker",
                    "--config",
                    cfg,
                    cwd=ROOT,
                    env=run.env(tracing=tracing),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=files[-1],
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            if line.strip() != b"READY":
                raise SystemExit(f"replica: not ready ({line!r}); see {run.args.workdir}")
        await conn.execute("UPDATE bench.outbox SET next_attempt_at = now() WHERE sent_at IS NULL")
        go = await conn.fetchval("SELECT clock_timestamp()")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        handled, last_change, previous = 0, time.monotonic(), -1
        while handled < n:
            await asyncio.sleep(0.05)
            handled = await conn.fetchval("SELECT count(*) FROM bench.effects")
            if handled != previous:
                previous, last_change = handled, time.monotonic()
            elif time.monotonic() - last_change > 60:
                raise SystemExit(f"replicas: stuck at {handled} of {n} effect rows")
        end = await conn.fetchval("SELECT max(done_at) FROM bench.effects")
        per_worker = []
        for proc in procs:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write(b"stop\n")
            await proc.stdin.drain()
            out = await asyncio.wait_for(proc.stdout.read(), 60)
            await proc.wait()
            for said in out.decode().splitlines():
                if said.startswith("RESULT "):
                    per_worker.append(json.loads(said[7:]))
        checks = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM bench.inbox) AS inbox, "
            "(SELECT count(*) FROM bench.outbox WHERE sent_at IS NULL) AS unsent, "
            "(SELECT coalesce(sum(attempts), 0) FROM bench.outbox) AS failed_attempts"
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for f in files:
            f.close()
        await conn.close()
    seconds = (end - go).total_seconds()
    return {
        "workers": workers,
        "events": n,
        "seconds": round(seconds, 3),
        "events_per_s": round(n / seconds, 1),
        "per_worker": per_worker,
        "inbox_rows": checks["inbox"],
        "unsent": checks["unsent"],
        "failed_attempts": checks["failed_attempts"],
        "log_warnings": [w for log in run.logs[-workers:] for w in warnings_in(log)],
    }


async def start_sink(run: Run) -> asyncio.subprocess.Process:
    sink = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "bench" / "otlp_sink.py"), stdout=asyncio.subprocess.PIPE
    )
    assert sink.stdout is not None
    line = (await asyncio.wait_for(sink.stdout.readline(), 30)).decode()
    run.sink = f"http://127.0.0.1:{line.split()[1]}"
    return sink


async def stop_sink(sink: asyncio.subprocess.Process) -> dict[str, Any]:
    if sink.returncode is None:
        sink.terminate()
    out, _ = await asyncio.wait_for(sink.communicate(), 30)
    for line in out.decode().splitlines():
        if line.startswith("SINK "):
            return dict(json.loads(line[5:]))
    return {}


async def clean_broker(run: Run) -> dict[str, int]:
    """Delete every exchange and queue of the run; return the messages left in any."""
    cfg, topology = run.config(), run.topology()
    queues = [*topology.queues, topology.unrouted, cfg["floor_queue"]]
    exchanges = [topology.exchange, topology.unrouted, cfg["floor_exchange"]]
    left: dict[str, int] = {}
    connection = await aio_pika.connect(run.amqp)
    async with connection:
        for name in queues:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.ChannelClosed):
                queue = await channel.declare_queue(name, passive=True)
                if queue.declaration_result.message_count:
                    left[name] = int(queue.declaration_result.message_count)
                await channel.queue_delete(name)
            with contextlib.suppress(Exception):
                await channel.close()
        channel = await connection.channel()
        for name in exchanges:
            await channel.exchange_delete(name)
    return left


async def drop_database(run: Run) -> None:
    conn = await asyncpg.connect(run.admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{run.database}" WITH (FORCE)')
    finally:
        await conn.close()


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["events_per_s"])
    return ordered[(len(ordered) - 1) // 2] | {
        "spread_per_s": [ordered[0]["events_per_s"], ordered[-1]["events_per_s"]]
    }


async def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    run = Run(args)
    only = set(args.only)
    if "rate" in only and args.rate is None:
        only.add("floor")  # the rate is half the floor's
    tracing = not args.no_otel
    results: dict[str, Any] = {
        "run_id": run.run_id,
        "tracing": tracing,
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "repeat": args.repeat,
    }
    sink = None
    failed = True
    try:
        await prepare(run)
        if tracing and only & {"stack", "rate", "replicas"}:
            sink = await start_sink(run)
        if "floor" in only:
            runs = []
            for _ in range(args.repeat):
                await truncate(run)
                runs.append(await child(run, "floor", {}, tracing=False))
            results["floor"] = median_run(runs) | {"runs": runs}
        if "stack" in only:
            runs = []
            for i in range(args.repeat):
                await truncate(run)
                profile = {"profile": str(args.profile)} if args.profile and i == 0 else {}
                runs.append(await child(run, "stack", profile, tracing=tracing))
            results["stack"] = median_run(runs) | {"runs": runs}
        if "rate" in only:
            rate = args.rate or round(results["floor"]["events_per_s"] / 2, 1)
            runs = []
            for _ in range(args.repeat):
                await truncate(run)
                runs.append(await child(run, "rate", {"rate": rate}, tracing=tracing))
            results["rate"] = median_run(runs) | {"runs": runs}
        if "replicas" in only:
            for k in args.replicas:
                runs = [await replicas_part(run, k, tracing=tracing) for _ in range(args.repeat)]
                results[f"replicas_{k}"] = median_run(runs) | {"runs": runs}
        failed = False
    finally:
        if sink is not None:
            results["sink"] = await stop_sink(sink)
        try:
            results["left_in_queues"] = await clean_broker(run)
        finally:
            await drop_database(run)
            if not failed and not args.keep_logs:
                for log in run.logs:
                    log.unlink(missing_ok=True)
    results["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if "floor" in results and "stack" in results:
        results["stack"]["ratio_to_floor"] = round(
            results["stack"]["events_per_s"] / results["floor"]["events_per_s"], 3
        )
    if "replicas_1" in results and "replicas_2" in results:
        results["replicas_ratio"] = round(
            results["replicas_2"]["events_per_s"] / results["replicas_1"]["events_per_s"], 3
        )
    return results


# --- output ----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def print_table(r: dict[str, Any]) -> None:
    tracing = "on (OTLP/HTTP to a sink process)" if r["tracing"] else "off (OTEL_SDK_DISABLED)"
    load = " ".join(f"{x:.2f}" for x in r["load_before"])
    print(f"event path, commit -> handler; tracing {tracing}; load before {load}")
    spread_note = (
        f" (median of {r['repeat']}; spread = min-max events/s)" if r["repeat"] > 1 else ""
    )
    print(f"{'':<30}{'events/s':>10}{'spread':>13}{'cpu ms/ev':>10}{'p50 ms':>9}{'p90 ms':>9}"
          f"{'p99 ms':>9}{'ratio':>8}  goal{spread_note}")  # fmt: skip

    def row(name: str, f: dict[str, Any], ratio: str = "", goal: str = "") -> None:
        lo, hi = f["spread_per_s"]
        spread = f"{lo:.0f}-{hi:.0f}" if r["repeat"] > 1 else ""
        lat = [f"{f[k]:>9.2f}" if k in f else f"{'':>9}" for k in ("p50_ms", "p90_ms", "p99_ms")]
        cpu = f"{f['cpu_ms_per_event']:>10.2f}" if "cpu_ms_per_event" in f else f"{'':>10}"
        print(
            f"{name:<30}{f['events_per_s']:>10.0f}{spread:>13}{cpu}{''.join(lat)}{ratio:>8}  {goal}"
        )

    floor = r.get("floor")
    if floor:
        row("floor (asyncpg + aio-pika)", floor, "1.00")
    if "stack" in r:
        s = r["stack"]
        ratio = s.get("ratio_to_floor")
        goal = f">= {GOALS['unthrottled_ratio']:.2f} of the floor"
        if ratio is not None:
            goal += f": {verdict(ratio >= GOALS['unthrottled_ratio'])}"
        name = "stack unthrottled" + (" (profiled)" if s.get("profiled") else "")
        row(name, s, f"{ratio:.2f}" if ratio is not None else "", goal)
    if "rate" in r:
        q = r["rate"]
        ok = q["p50_ms"] <= GOALS["rate_p50_ms"] and q["p99_ms"] <= GOALS["rate_p99_ms"]
        row(
            f"stack at {q['rate_target_per_s']:.0f}/s",
            q,
            "",
            f"p50 <= {GOALS['rate_p50_ms']:.0f}, p99 <= {GOALS['rate_p99_ms']:.0f} ms: "
            f"{verdict(ok)}",
        )
    for k in (1, 2, 3, 4):
        if f"replicas_{k}" in r:
            ratio = r["replicas_ratio"] if k == 2 and "replicas_ratio" in r else None
            goal = ""
            if ratio is not None:
                goal = f"K=2 >= {GOALS['replicas']}x K=1: {verdict(ratio >= GOALS['replicas'])}"
            row(
                f"replicas K={k} (relay+consumer)",
                r[f"replicas_{k}"],
                f"{ratio:.2f}" if ratio is not None else "",
                goal,
            )
    odd = []
    for name, f in r.items():
        if not isinstance(f, dict):
            continue
        for each in f.get("runs", [f]):
            for key in ("duplicates", "errors", "unsent", "failed_attempts"):
                if each.get(key):
                    odd.append(f"{name}: {key}={each[key]}")
            if each.get("log_warnings"):
                odd.append(f"{name}: {len(each['log_warnings'])} warning(s) logged")
            for w in each.get("per_worker", []):
                for key in ("duplicates", "errors"):
                    if w.get(key):
                        odd.append(f"{name} worker: {key}={w[key]}")
    if r.get("left_in_queues"):
        odd.append(f"messages left in queues: {r['left_in_queues']}")
    load = " ".join(f"{x:.2f}" for x in r["load_after"])
    print(f"load after {load}; " + ("oddities: " + "; ".join(odd) if odd else "no oddities"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only",
        type=lambda v: [p.strip() for p in v.split(",") if p.strip()],
        default=list(PARTS),
        help=f"comma-separated parts among {','.join(PARTS)} (default: all)",
    )
    parser.add_argument(
        "--events", type=int, default=5000, help="unthrottled events (floor, stack)"
    )
    parser.add_argument("--warmup", type=int, default=300, help="events before each measurement")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="commits in flight, unthrottled"
    )
    parser.add_argument("--rate", type=float, help="events/s of the rate part (default: floor/2)")
    parser.add_argument("--rate-seconds", type=float, default=10.0)
    parser.add_argument("--replica-events", type=int, default=5000)
    parser.add_argument("--replicas", type=lambda v: [int(k) for k in v.split(",")], default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each part (median shown)")
    parser.add_argument("--no-otel", action="store_true", help="tracing off (OTEL_SDK_DISABLED)")
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the stack's run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".run" / "bench")
    parser.add_argument("--keep-logs", action="store_true", help="keep the children's logs")
    parser.add_argument("--child", choices=["floor", "stack", "rate", "worker"], help="internal")
    parser.add_argument("--config", help="internal")
    args = parser.parse_args()
    if args.child:
        from tessera.common.logging import configure_logging

        configure_logging("bench", level="INFO", fmt="json")
        cfg = json.loads(args.config)
        parts: dict[str, Callable[[], Coroutine[Any, Any, dict[str, Any]]]] = {
            "floor": lambda: floor_part(cfg),
            "stack": lambda: stack_part(cfg, rate=0),
            "rate": lambda: stack_part(cfg, rate=cfg["rate"]),
            "worker": lambda: worker_part(cfg),
        }
        result = asyncio.run(parts[args.child]())
        print("RESULT " + json.dumps(result), flush=True)
        return
    unknown = set(args.only) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.profile:
        args.profile = args.profile.resolve()
    results = asyncio.run(orchestrate(args))
    if args.json:
        print(json.dumps(results, indent=2, default=str))
    else:
        print_table(results)


if __name__ == "__main__":
    main()
