"""The whole suite as separate processes behind the nginx gateway, for e2e tests and benches.

Also the kernel's SMTP sink (aiosmtpd) and OTLP/HTTP receiver (``tessera.common.testing``),
so a test can read the emails the mailer sent and the spans every service exported.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tessera.common import suite as installed
from tessera.common.testing import Infra, make_settings, prepare_database
from tessera.common.testing.otlp import OtlpReceiver, Span
from tessera.common.testing.smtp import SmtpSink

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: every installed service and the prefix it serves under (``mailer``: ``mail``)
SERVICES = {name: spec.prefix.strip("/") for name, spec in installed.specs().items()}

__all__ = [
    "SERVICES",
    "OtlpReceiver",
    "SmtpSink",
    "Span",
    "Suite",
    "free_port",
    "running_suite",
    "wait_for",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class Suite:
    gateway: str
    ports: dict[str, int]
    smtp: SmtpSink
    otlp: OtlpReceiver
    logs: dict[str, Path]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)

    def start(self, service: str, port: int) -> None:
        """Start the service's process (again, after a kill: its log goes on)."""
        self.processes[service] = subprocess.Popen(
            [str(BIN / f"tessera-{service}"), "serve", "--port", str(port)],
            env=self.env,
            cwd=ROOT,
            stdout=self.logs[service].open("ab"),
            stderr=subprocess.STDOUT,
        )

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def diagnostics(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.log_tail(name)}" for name in self.logs)


def _suite_env(
    infra: Infra, ports: dict[str, int], smtp: SmtpSink, otlp: OtlpReceiver, gateway_port: int
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA__", "OTEL_"))}
    env.update(
        {
            "TESSERA__ENVIRONMENT": "test",
            "TESSERA__LOG_FORMAT": "json",
            "TESSERA__ADMIN_DATABASE_URL": infra.postgres_admin,
            "TESSERA__BROKER__URL": infra.rabbitmq,
            "TESSERA__BROKER__EXCHANGE": infra.exchange,
            "TESSERA__BROKER__UNROUTED": infra.unrouted,
            "TESSERA__BROKER__QUEUE_PREFIX": infra.queue_prefix,
            "TESSERA__BROKER__RETRY_DELAYS_MS": "[200, 400]",
            "TESSERA__REDIS__URL": infra.redis,
            "TESSERA__REDIS__KEY_PREFIX": infra.redis_prefix,
            "TESSERA__JWT__JWKS_URL": f"http://127.0.0.1:{ports['auth']}/auth/.well-known/jwks.json",
            "AUTH__ARGON2__TIME_COST": "1",
            "AUTH__ARGON2__MEMORY_COST_KIB": "8192",
            "AUTH__ARGON2__PARALLELISM": "1",
            "MAILER__DRIVER": "smtp",
            "MAILER__SMTP__HOST": "127.0.0.1",
            "MAILER__SMTP__PORT": str(smtp.port),
            "MAILER__PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_TRACES_SAMPLER": "always_on",
            "GATEWAY_PORT": str(gateway_port),
            "GATEWAY_HOST": "127.0.0.1",
        }
    )
    for service, port in ports.items():
        env[f"{service.upper()}__DATABASE__URL"] = infra.database_url(service)
        env[f"{service.upper()}_UPSTREAM"] = f"127.0.0.1:{port}"
    return env


@contextlib.contextmanager
def running_suite(
    infra: Infra, workdir: Path, *, services: tuple[str, ...] = tuple(SERVICES)
) -> Iterator[Suite]:
    """Migrate every service into this run's database, start them and the gateway."""
    for service in services:
        spec = installed.specs()[service]
        prepare_database(make_settings(spec.settings, infra), spec.migrations)

    smtp, otlp = SmtpSink(), OtlpReceiver()
    smtp.start()
    otlp.start()
    ports = {service: free_port() for service in services}
    gateway_port = free_port()
    env = _suite_env(infra, ports, smtp, otlp, gateway_port)
    env["GATEWAY_RUN_DIR"] = str(workdir / "gateway")
    env["GATEWAY_ACCESS_LOG"] = str(workdir / "gateway-access.log")
    suite = Suite(
        gateway=f"http://127.0.0.1:{gateway_port}", ports=ports, smtp=smtp, otlp=otlp, logs={},
        env=env,
    )  # fmt: skip
    try:
        for service, port in ports.items():
            suite.logs[service] = workdir / f"{service}.log"
            suite.start(service, port)
        log = workdir / "gateway.log"
        suite.logs["gateway"] = log
        suite.processes["gateway"] = subprocess.Popen(
            [sys.executable, str(ROOT / "deploy/gateway/run.py")],
            env=env,
            cwd=ROOT,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            for name, process in suite.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited with {process.returncode}\n{suite.diagnostics()}"
                    )
            try:
                for service in services:
                    r = httpx.get(f"{suite.gateway}/{SERVICES[service]}/readyz", timeout=2)
                    if r.status_code != 200:
                        return False
            except httpx.HTTPError:
                return False
            return True

        try:
            wait_for(ready, timeout=90, what="every service ready behind the gateway", every=0.3)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{suite.diagnostics()}") from exc
        yield suite
    finally:
        for process in suite.processes.values():
            process.terminate()
        for process in suite.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        smtp.stop()
        otlp.stop()
