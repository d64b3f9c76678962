"""An OTLP/HTTP endpoint that accepts every export and discards it, in a process of its own.

    python bench/otlp_sink.py          # prints "PORT <n>", serves until SIGTERM/SIGINT

Run apart from what is measured, so taking the spans does not compete for that process's
GIL, while the exporting side (serialising, the HTTP post) is paid in full. On exit it
prints ``SINK {"posts": n, "bytes": n}``: how many exports arrived.
"""

from __future__ import annotations

import http.server
import json
import signal
import sys
import threading
from typing import Any

received = {"posts": 0, "bytes": 0}
lock = threading.Lock()


class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the exporter keeps its connection alive

    def do_POST(self) -> None:
        size = int(self.headers.get("content-length", 0))
        self.rfile.read(size)
        with lock:
            received["posts"] += 1
            received["bytes"] += size
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    server.daemon_threads = True

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()
    print(f"SINK {json.dumps(received)}", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
