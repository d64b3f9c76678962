"""A consumer process whose handler kills the process on one message (``label == "crash"``).

Run by ``test_delivery.py``: ``python crashing_consumer.py <topology json> <record file>``.
Every other message's label is appended to the record file before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import ClassVar

from tessera.common.messaging.envelope import Envelope, Event
from tessera.common.messaging.rabbit import EventConsumer, Topology, declare_topology, new_broker


class ThingHappened(Event):
    type: ClassVar[str] = "probe.thing.happened"
    version: ClassVar[int] = 1
    thing_id: uuid.UUID
    label: str


async def main(url: str, topology: Topology, record: Path) -> None:
    async def on_thing(envelope: Envelope, event: ThingHappened) -> None:
        if event.label == "crash":
            os._exit(17)  # no exception, no nack: the process is simply gone
        with record.open("a") as f:
            f.write(event.label + "\n")

    consumer = EventConsumer(topology)
    consumer.on(ThingHappened, on_thing)
    broker = new_broker(url, prefetch=32, logger=None)
    consumer.subscribe(broker)
    await broker.connect()
    await declare_topology(broker, topology, consumer.routing_keys)
    await broker.start()
    print("consuming", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    spec["retry_delays_ms"] = tuple(spec["retry_delays_ms"])
    asyncio.run(main(os.environ["AMQP_URL"], Topology(**spec), Path(sys.argv[2])))
