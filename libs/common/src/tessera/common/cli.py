"""Command lines: ``tessera-admin`` for the suite, and the factory of every service's CLI.

Every service gets the same admin commands (``tessera-mailer db migrate``,
``tessera-mailer dlq list``...) from :func:`service_cli`, plus its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.table import Table

from tessera.common.settings import ServiceSettings

__all__ = ["main", "service_cli"]

console = Console(stderr=True)

START_HINTS = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "Redis": 'redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
    "RabbitMQ": "rabbitmq-server -detached",
}


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def check_infrastructure(settings: ServiceSettings) -> list[str]:
    """Names of the servers that do not answer, with how to start each."""
    down = []
    checks = [
        ("PostgreSQL", settings.database.url.get_secret_value(), 5432),
        ("Redis", settings.redis.url.get_secret_value(), 6379),
        ("RabbitMQ", settings.broker.url.get_secret_value(), 5672),
    ]
    for name, url, port in checks:
        if not _reachable(url, port):
            parts = urlsplit(url)
            down.append(
                f"{name} is not reachable at {parts.hostname}:{parts.port or port}; "
                f"start it with: {START_HINTS[name]}"
            )
    return down


def service_cli(
    settings_cls: type[ServiceSettings],
    *,
    migrations_dir: Path,
    app_factory: str,
    default_port: int,
) -> typer.Typer:
    """The admin commands every service shares."""
    name = settings_cls.service_name
    cli = typer.Typer(help=f"Administer the Tessera {name} service.", no_args_is_help=True)
    db = typer.Typer(help="Database role, schema and migrations.", no_args_is_help=True)
    dlq = typer.Typer(help="The dead-letter queue of this service's events.", no_args_is_help=True)
    cli.add_typer(db, name="db")
    cli.add_typer(dlq, name="dlq")

    def settings() -> ServiceSettings:
        return settings_cls()

    @db.command("bootstrap")
    def db_bootstrap() -> None:
        """Create the database, the service's login role and its schema (idempotent)."""
        from tessera.common.bootstrap import bootstrap_database

        created = asyncio.run(bootstrap_database(settings()))
        console.print(f"[green]{name}[/]: " + (", ".join(created) or "already bootstrapped"))

    @db.command("migrate")
    def db_migrate(revision: str = "head") -> None:
        """Apply this service's Alembic migrations."""
        from tessera.common.migrations import upgrade

        upgrade(migrations_dir, settings(), revision)
        console.print(f"[green]{name}[/]: migrated to {revision}")

    @dlq.command("list")
    def dlq_list(
        limit: int = 100,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Show the messages in the DLQ (they stay there)."""
        from tessera.common.messaging.dlq import list_dead_letters
        from tessera.common.messaging.rabbit import Topology

        s = settings()
        topology = Topology.for_service(name, s.broker)
        letters = asyncio.run(
            list_dead_letters(s.broker.url.get_secret_value(), topology, limit=limit)
        )
        if as_json:
            rows = [
                {
                    "message_id": d.message_id,
                    "event_type": d.event_type,
                    "routing_key": d.routing_key,
                    "attempts": d.attempts,
                    "error": d.error,
                    "failed_at": d.failed_at,
                }
                for d in letters
            ]
            sys.stdout.write(json.dumps(rows, indent=2) + "\n")
            return
        table = Table(title=f"{topology.dlq}: {len(letters)} message(s)")
        for column in ("message id", "event", "attempts", "failed at", "error"):
            table.add_column(column)
        for d in letters:
            table.add_row(d.message_id, d.routing_key, str(d.attempts), d.failed_at, d.error)
        Console().print(table)

    @dlq.command("replay")
    def dlq_replay(
        message_id: Annotated[list[str] | None, typer.Option("--id", help="only these")] = None,
        replay_all: Annotated[bool, typer.Option("--all", help="every message")] = False,
    ) -> None:
        """Send DLQ messages back to the service's queue for another try."""
        from tessera.common.messaging.dlq import replay_dead_letters
        from tessera.common.messaging.rabbit import Topology

        if not message_id and not replay_all:
            console.print("[red]give --id MESSAGE_ID (repeatable) or --all[/]")
            raise typer.Exit(2)
        s = settings()
        topology = Topology.for_service(name, s.broker)
        replayed = asyncio.run(
            replay_dead_letters(
                s.broker.url.get_secret_value(),
                topology,
                message_ids=set(message_id) if message_id else None,
            )
        )
        console.print(f"replayed {len(replayed)} message(s) to {topology.queue}")

    @cli.command("serve")
    def serve(
        host: str = "127.0.0.1",
        port: int = default_port,
        workers: int = 1,
    ) -> None:
        """Run the HTTP service (uvicorn)."""
        import uvicorn

        uvicorn.run(
            app_factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            proxy_headers=True,
            forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
        )

    return cli


admin = typer.Typer(help="Tessera suite administration.", no_args_is_help=True)


@admin.callback()
def _admin() -> None:
    """Tessera suite administration (each service has its own CLI too: tessera-auth...)."""


@admin.command("check-infra")
def check_infra() -> None:
    """Say which of PostgreSQL, Redis and RabbitMQ do not answer, and how to start them."""

    class _Probe(ServiceSettings):
        service_name = "probe"

    problems = check_infrastructure(_Probe())
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)
    console.print("[green]✓[/] PostgreSQL, Redis and RabbitMQ answer")


def main() -> None:
    admin()
