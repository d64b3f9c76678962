"""An SMTP server that accepts every message and keeps only its Message-ID, in a process of
its own (aiosmtpd), so that taking the mail does not compete with the sender for its GIL.

    python bench/smtp_sink.py [--port N]   # prints "PORT <n>", serves until SIGTERM/SIGINT

On exit it prints ``SINK {"messages": n, "unique": n, "connections": n}``: how many messages
arrived, how many distinct Message-IDs among them, over how many SMTP connections.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
from typing import Any

from aiosmtpd.controller import Controller

seen: list[str] = []
peers: set[Any] = set()


class Counting:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.content
        for line in content.split(b"\r\n"):
            if not line:
                break  # end of the headers
            if line[:11].lower() == b"message-id:":
                seen.append(line[11:].strip().decode(errors="replace"))
                break
        peers.add(session.peer)
        return "250 2.0.0 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    port = parser.parse_args().port
    if not port:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    controller = Controller(Counting(), hostname="127.0.0.1", port=port, ready_timeout=5.0)
    controller.start()
    print(f"PORT {port}", flush=True)
    stopped = asyncio.new_event_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        stopped.add_signal_handler(sig, done.set)
    stopped.run_until_complete(done.wait())
    controller.stop()
    summary = {"messages": len(seen), "unique": len(set(seen)), "connections": len(peers)}
    print(f"SINK {json.dumps(summary)}", flush=True)


if __name__ == "__main__":
    main()
