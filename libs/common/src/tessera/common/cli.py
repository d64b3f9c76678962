"""Command lines: ``tessera-admin`` for the suite, and the factory of every service's CLI.

Every service gets the same admin commands (``tessera-mailer db migrate``,
``tessera-mailer dlq list``...) from :func:`service_cli`, plus its own.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Annotated, Any
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
    prefix: str | None = None,
) -> typer.Typer:
    """The admin commands every service shares."""
    name = settings_cls.service_name
    cli = typer.Typer(help=f"Administer the Tessera {name} service.", no_args_is_help=True)
    db = typer.Typer(help="Database role, schema and migrations.", no_args_is_help=True)
    dlq = typer.Typer(help="The dead-letter queue of this service's events.", no_args_is_help=True)
    outbox = typer.Typer(help="Events this service has not published yet.", no_args_is_help=True)
    cli.add_typer(db, name="db")
    cli.add_typer(dlq, name="dlq")
    cli.add_typer(outbox, name="outbox")

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

    @outbox.command("list")
    def outbox_list(
        parked: Annotated[bool, typer.Option("--parked", help="only parked rows")] = False,
        limit: int = 100,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Show unsent outbox rows, oldest first (pending ones are retried by the relay;
        parked ones wait for `outbox retry`)."""
        rows, stats = asyncio.run(
            _outbox_rows(settings(), parked=True if parked else None, limit=limit)
        )
        if as_json:
            payload = {
                **stats.as_dict(),
                "rows": [
                    {
                        "id": r.id,
                        "event_id": str(r.event_id),
                        "event_type": r.event_type,
                        "created_at": r.created_at.isoformat(),
                        "attempts": r.attempts,
                        "next_attempt_at": r.next_attempt_at.isoformat(),
                        "parked_at": r.parked_at.isoformat() if r.parked_at else None,
                        "last_error": r.last_error,
                    }
                    for r in rows
                ],
            }
            sys.stdout.write(json.dumps(payload, indent=2) + "\n")
            return
        table = Table(title=f"{name} outbox: {stats.pending} pending, {stats.parked} parked")
        for column in ("id", "event", "created", "attempts", "state", "last error"):
            table.add_column(column)
        for r in rows:
            state = "parked" if r.parked_at else f"next {r.next_attempt_at:%H:%M:%S}"
            table.add_row(
                str(r.id),
                r.event_type,
                f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                str(r.attempts),
                state,
                (r.last_error or "")[:120],
            )
        Console().print(table)

    @outbox.command("retry")
    def outbox_retry(
        row_id: Annotated[list[int] | None, typer.Option("--id", help="only these rows")] = None,
        all_parked: Annotated[bool, typer.Option("--parked", help="every parked row")] = False,
    ) -> None:
        """Send parked rows again, with a fresh count of attempts."""
        if not row_id and not all_parked:
            console.print("[red]give --id ROW_ID (repeatable) or --parked[/]")
            raise typer.Exit(2)
        count = asyncio.run(_outbox_retry(settings(), row_id or None))
        console.print(f"{count} parked row(s) of {name} are due again")

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
            # the app logs every request itself (http_request, with its request id)
            access_log=False,
            # the app reads X-Forwarded-For itself, from HTTP__TRUSTED_PROXIES only
            proxy_headers=False,
        )

    @cli.command("healthcheck")
    def healthcheck(port: int = default_port, timeout: float = 2.0) -> None:
        """Exit 0 when the service on this host answers its /healthz (container probes)."""
        import urllib.request

        url = f"http://127.0.0.1:{port}{prefix or '/' + name}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                healthy = response.status == 200
        except OSError as exc:
            console.print(f"[red]{url}: {exc}[/]")
            raise typer.Exit(1) from exc
        if not healthy:
            raise typer.Exit(1)

    return cli


async def _outbox_rows(
    s: ServiceSettings, *, parked: bool | None, limit: int
) -> tuple[list[Any], Any]:
    from tessera.common.messaging.outbox import list_outbox, outbox_stats

    engine, table = _outbox_of(s)
    try:
        return await list_outbox(engine, table, parked=parked, limit=limit), await outbox_stats(
            engine, table
        )
    finally:
        await engine.dispose()


async def _outbox_retry(s: ServiceSettings, ids: list[int] | None) -> int:
    from tessera.common.messaging.outbox import retry_outbox

    engine, table = _outbox_of(s)
    try:
        return await retry_outbox(engine, table, ids=ids)
    finally:
        await engine.dispose()


def _outbox_of(s: ServiceSettings) -> tuple[Any, Any]:
    from tessera.common.db import create_engine, make_metadata
    from tessera.common.messaging.outbox import outbox_table

    return create_engine(s), outbox_table(make_metadata(s.schema_name))


admin = typer.Typer(help="Tessera suite administration.", no_args_is_help=True)
unrouted = typer.Typer(
    help="Events the exchange had no queue for, kept in the unrouted queue.",
    no_args_is_help=True,
)
admin.add_typer(unrouted, name="unrouted")
broker_cli = typer.Typer(help="The suite's exchange.", no_args_is_help=True)
admin.add_typer(broker_cli, name="broker")


@broker_cli.command("upgrade-exchange")
def upgrade_exchange() -> None:
    """Re-declare the events exchange with its alternate exchange (an exchange declared by an
    older release lacks it, and RabbitMQ refuses to change an exchange's arguments).

    The exchange is deleted and declared again at once; its bindings go with it, so restart
    the consumers afterwards: each binds its queues again when it starts. What is published
    in between is kept in the unrouted queue (`tessera-admin unrouted replay --all`)."""
    from tessera.common.messaging.rabbit import declare_exchange, new_broker

    url, topology = _suite_topology()

    async def upgrade() -> None:
        import aio_pika

        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(topology.exchange)
        broker = new_broker(url, prefetch=1, logger=None)
        await broker.connect()
        try:
            await declare_exchange(broker, topology)
        finally:
            await broker.stop()

    asyncio.run(upgrade())
    console.print(
        f"{topology.exchange} declared with alternate exchange {topology.unrouted}; "
        "restart the consumers to bind their queues again"
    )


class _Suite(ServiceSettings):
    """Settings of no service in particular (``TESSERA__`` variables)."""

    service_name = "probe"


def _suite_topology() -> tuple[str, Any]:
    from tessera.common.messaging.rabbit import Topology

    s = _Suite()
    return s.broker.url.get_secret_value(), Topology.for_service("admin", s.broker)


@unrouted.command("list")
def unrouted_list(
    limit: int = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the kept events (they stay in the queue)."""
    from tessera.common.messaging.dlq import list_unrouted

    url, topology = _suite_topology()
    letters = asyncio.run(list_unrouted(url, topology, limit=limit))
    if as_json:
        rows = [
            {"message_id": d.message_id, "event_type": d.event_type, "routing_key": d.routing_key}
            for d in letters
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"{topology.unrouted}: {len(letters)} message(s)")
    for column in ("message id", "routing key"):
        table.add_column(column)
    for d in letters:
        table.add_row(d.message_id, d.routing_key)
    Console().print(table)


@unrouted.command("replay")
def unrouted_replay(
    message_id: Annotated[list[str] | None, typer.Option("--id", help="only these")] = None,
    replay_all: Annotated[bool, typer.Option("--all", help="every message")] = False,
) -> None:
    """Publish kept events to the exchange again, for the queues bound since."""
    from tessera.common.messaging.dlq import replay_unrouted

    if not message_id and not replay_all:
        console.print("[red]give --id MESSAGE_ID (repeatable) or --all[/]")
        raise typer.Exit(2)
    url, topology = _suite_topology()
    replayed = asyncio.run(
        replay_unrouted(url, topology, message_ids=set(message_id) if message_id else None)
    )
    console.print(f"replayed {len(replayed)} message(s) to {topology.exchange}")


@admin.callback()
def _admin() -> None:
    """Tessera suite administration (each service has its own CLI too: tessera-auth...)."""


@admin.command("check-infra")
def check_infra() -> None:
    """Say which of PostgreSQL, Redis and RabbitMQ do not answer, and how to start them."""

    problems = check_infrastructure(_Suite())
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    if problems:
        raise typer.Exit(1)
    console.print("[green]✓[/] PostgreSQL, Redis and RabbitMQ answer")


def main() -> None:
    admin()
