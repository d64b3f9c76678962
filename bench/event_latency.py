"""Event latency from commit to consumer, through the real outbox relay and RabbitMQ.

A producer commits events through a ``UnitOfWork`` (state row + outbox row, one
transaction) at a steady rate; the relay in the same process is woken by the commit and
publishes with confirms; an ``EventConsumer`` on the service's quorum queue records when
each event reaches its handler. Latency = handler start - commit returned.

    uv run python bench/event_latency.py --events 1000 --rate 200
    uv run python bench/event_latency.py --events 5000 --rate 0     # as fast as possible

Uses PostgreSQL, RabbitMQ from the environment (TEST_POSTGRES_URL, TEST_RABBITMQ_URL or the
local defaults), its own database schema ``bench`` and unique exchange/queue names that it
deletes at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from typing import ClassVar

import aio_pika
from faststream.rabbit.opentelemetry import RabbitTelemetryMiddleware
from sqlalchemy import Column, Integer, Table
from sqlalchemy.ext.asyncio import async_sessionmaker

from tessera.common.bootstrap import bootstrap_database
from tessera.common.db import UnitOfWork, create_engine, make_metadata
from tessera.common.logging import configure_logging
from tessera.common.messaging import Envelope, Event, Outbox, OutboxRelay
from tessera.common.messaging.rabbit import (
    BrokerPublisher,
    EventConsumer,
    Topology,
    declare_topology,
    new_broker,
)
from tessera.common.runtime import MessagingTables
from tessera.common.settings import ServiceSettings
from tessera.common.telemetry import configure_telemetry


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


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def run(events: int, rate: float, with_otel: bool) -> dict[str, float]:
    run_id = uuid.uuid4().hex[:8]
    admin = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    amqp = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    settings = BenchSettings(
        admin_database_url=admin,
        database={
            "url": admin.rsplit("/", 1)[0].replace(
                "postgres@", "tessera_bench:tessera_bench_dev@", 1
            )
            + "/tessera_bench"
        },
        broker={
            "url": amqp,
            "exchange": f"tessera.bench.{run_id}",
            "queue_prefix": f"bench{run_id}.",
            "retry_delays_ms": [1000],
        },
    )
    await bootstrap_database(settings)
    engine = create_engine(settings)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    outbox = Outbox(tables.outbox, producer="bench")
    middlewares = (
        [RabbitTelemetryMiddleware(tracer_provider=configure_telemetry("bench"))]
        if with_otel
        else []
    )
    broker = new_broker(
        amqp, prefetch=settings.broker.prefetch, middlewares=middlewares, logger=None
    )
    topology = Topology.for_service("bench", settings.broker)
    consumer = EventConsumer(topology)
    committed: dict[int, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def on_tick(envelope: Envelope, event: Ticked) -> None:
        latencies.append(time.perf_counter() - committed[event.seq])
        if len(latencies) >= events:
            done.set()

    consumer.on(Ticked, on_tick)
    consumer.subscribe(broker)
    await broker.connect()
    await declare_topology(broker, topology, consumer.routing_keys)
    await broker.start()
    relay = OutboxRelay(
        engine, outbox, BrokerPublisher(broker, settings.broker.exchange), poll_interval=1.0
    )
    relay_task = asyncio.create_task(relay.run())

    async def produce(seq: int) -> None:
        uow = UnitOfWork(sessions, outbox=outbox)
        async with uow:
            await uow.session.execute(ticks.insert().values(seq=seq))
            uow.publish(Ticked(seq=seq), subject=str(seq))
            committed[seq] = time.perf_counter()  # overwritten below once the commit returns
            await uow.commit()
            committed[seq] = time.perf_counter()

    started = time.perf_counter()
    pending: set[asyncio.Task[None]] = set()
    for seq in range(events):
        if rate > 0:
            target = started + seq / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        task = asyncio.create_task(produce(seq))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if rate <= 0 and len(pending) >= 16:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*pending)
    produced_in = time.perf_counter() - started
    await asyncio.wait_for(done.wait(), timeout=120)
    total = time.perf_counter() - started

    relay_task.cancel()
    await broker.stop()
    await engine.dispose()
    connection = await aio_pika.connect(amqp)
    async with connection:
        channel = await connection.channel()
        for name in [
            topology.queue,
            topology.dlq,
            *(topology.retry_queue(d) for d in topology.retry_delays_ms),
        ]:
            await channel.queue_delete(name)
        await channel.exchange_delete(settings.broker.exchange)

    ms = [v * 1000 for v in latencies]
    return {
        "events": events,
        "rate_target_per_s": rate,
        "produced_per_s": round(events / produced_in, 1),
        "end_to_end_per_s": round(events / total, 1),
        "p50_ms": round(percentile(ms, 50), 2),
        "p90_ms": round(percentile(ms, 90), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "otel": with_otel,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument(
        "--rate", type=float, default=200.0, help="events per second; 0 = unthrottled"
    )
    parser.add_argument(
        "--no-otel", action="store_true", help="without the broker telemetry middleware"
    )
    args = parser.parse_args()
    configure_logging("bench", level="WARNING", fmt="console")
    result = asyncio.run(run(args.events, args.rate, not args.no_otel))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
