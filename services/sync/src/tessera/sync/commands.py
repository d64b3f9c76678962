"""Sync's own commands of ``tessera-sync`` (the kit adds those every service has): ``pull`` a
server and follow its job; ``jobs`` and ``job`` to look at jobs.

They act as an operator on the service's host does: with the service's settings and its
database, as a site admin, and no user. ``pull`` writes the job and its
``sync.pull.requested`` in one transaction, as ``GET /sync/servers/pull/{id}`` does
(:func:`~tessera.sync.service.pull.queue_pull`); the running sync service — on any host that
reaches the same database and broker — publishes that message and runs the pull. The command
itself needs only the database: it follows the job's row.

Output: stdout carries the job's id (or with ``--json`` the job as JSON lines, one per change,
in the shape of ``GET /sync/jobs/{id}``), so scripts read it; the progress bar (plain lines
when stderr is no terminal) and the messages go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy.ext.asyncio import async_sessionmaker

from tessera.common.db import UnitOfWork, create_engine
from tessera.common.messaging import Outbox
from tessera.sync import exchange, models
from tessera.sync.service.pull import PullDisabled, queue_pull
from tessera.sync.service.servers import ServerNotFound, server_called
from tessera.sync.settings import Settings

__all__ = ["EXIT_FAILED", "EXIT_NOT_STARTED", "EXIT_TIMEOUT", "add_commands", "follow", "job_out"]

FINISHED = ("done", "failed")
EXIT_FAILED = 1
"""the job failed (its server or its index could not be read)"""
EXIT_NOT_STARTED = 2
"""no such server or job, or the server's pull flag is off: nothing was started"""
EXIT_TIMEOUT = 3
"""``--timeout`` passed before the job finished (it goes on)"""
QUEUED_HINT_AFTER_S = 10.0

_SERVICE_NOTE = (
    "The sync service must be running (on any host with the same database and broker) for a "
    "job to advance: it publishes and runs the pull, this command only follows the job."
)

_PULL_HELP = (
    "Pull from a remote server (its id or name) as `servers/pull` does, then follow the job "
    "with a progress bar until it is done.\n\n"
    "Prints the job's id first (stdout). Exit 0 when the job is done (some events may have "
    "failed: see `failed` and `error`), 1 when it failed, 2 when nothing was started (no such "
    "server, or its pull flag is off), 3 when --timeout passed first (the job goes on: "
    "`tessera-sync job ID --wait`)."
)


def add_commands(cli: typer.Typer, settings: Callable[[], Settings] = Settings) -> None:
    """Add sync's own commands to ``cli`` (``ServiceSpec.commands``); ``settings`` makes the
    settings (the environment's; tests pass their own)."""

    @cli.command("pull", help=f"{_PULL_HELP}\n\n{_SERVICE_NOTE}")
    def pull_command(
        server: Annotated[str, typer.Argument(metavar="SERVER", help="the server's id or name")],
        event: Annotated[
            uuid.UUID | None, typer.Option("--event", help="pull only this event (its uuid)")
        ] = None,
        no_wait: Annotated[
            bool, typer.Option("--no-wait", help="print the job's id and return at once")
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="the job as JSON lines on stdout, one per change")
        ] = False,
        timeout: Annotated[
            float | None,
            typer.Option(min=0, help="stop following after this many seconds (exit 3)"),
        ] = None,
        interval: Annotated[
            float, typer.Option(min=0.05, help="seconds between two looks at the job")
        ] = 0.5,
    ) -> None:
        code = _run(
            _pull(settings(), server, event_uuid=event, wait=not no_wait, as_json=as_json,
                  give_up_after=timeout, interval=interval)
        )  # fmt: skip
        raise typer.Exit(code)


def _run(work: Any) -> int:
    try:
        return int(asyncio.run(work))
    except KeyboardInterrupt:
        _err("stopped following; the job goes on")
        return 130


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@contextlib.asynccontextmanager
async def _unit_of_work(settings: Settings) -> AsyncIterator[UnitOfWork]:
    """A unit of work on an engine of its own, whose outbox rows the running service's relay
    publishes (it polls for rows another process wrote)."""
    engine = create_engine(settings)
    try:
        outbox = Outbox(models.messaging.outbox, producer=settings.service_name)
        yield UnitOfWork(async_sessionmaker(engine, expire_on_commit=False), outbox=outbox)
    finally:
        await engine.dispose()


async def _pull(
    settings: Settings,
    ref: str,
    *,
    event_uuid: uuid.UUID | None,
    wait: bool,
    as_json: bool,
    give_up_after: float | None,
    interval: float,
) -> int:
    async with _unit_of_work(settings) as uow:
        try:
            server = await server_called(uow, ref)
        except ServerNotFound as exc:
            _err(str(exc))
            return EXIT_NOT_STARTED
        try:
            job_id = await queue_pull(uow, server["id"], event_uuid=event_uuid, requested_by=None)
        except PullDisabled:
            _err(f"server {server['id']} ({server['name']}) has pulling off: set its pull flag")
            return EXIT_NOT_STARTED
        if not wait:
            if as_json:
                async with uow.driver() as conn:
                    _out(json.dumps(job_out(await exchange.job(conn, job_id))))
            else:
                _out(str(job_id))
            return 0
        if not as_json:
            _out(str(job_id))
        _err(f"pulling from server {server['id']} ({server['name']}): job {job_id}")
        return await _follow_to_end(
            uow, job_id, as_json=as_json, give_up_after=give_up_after, interval=interval
        )


async def _follow_to_end(
    uow: UnitOfWork,
    job_id: uuid.UUID,
    *,
    as_json: bool,
    give_up_after: float | None,
    interval: float,
) -> int:
    """Follow the job, then say how it ended; the command's exit code."""
    view = _view(as_json)
    try:
        job = await follow(uow, job_id, view, give_up_after=give_up_after, interval=interval)
    finally:
        view.close()
    counts = (
        f"{_done(job)}/{_of(job) if _of(job) is not None else '?'} "
        f"(fetched {job['fetched']}, skipped {job['skipped']}, failed {job['failed']}, "
        f"{decimal(job['bytes'])})"
    )
    if job["status"] == "done":
        _err(f"job {job_id} done: {counts}")
        if job["failed"] and job["error"]:
            _err(f"last error: {job['error']}")
        return 0
    if job["status"] == "failed":
        _err(f"job {job_id} failed: {job['error']}")
        return EXIT_FAILED
    _err(
        f"job {job_id} is still {job['status']} after {give_up_after:g} s: {counts}. "
        f"{_SERVICE_NOTE} Look at it again with: tessera-sync job {job_id} --wait"
    )
    return EXIT_TIMEOUT


class View(Protocol):
    """Where a followed job is shown."""

    def show(self, job: dict[str, Any]) -> None: ...

    def say(self, message: str) -> None: ...

    def close(self) -> None: ...


async def follow(
    uow: UnitOfWork,
    job_id: uuid.UUID,
    view: View,
    *,
    give_up_after: float | None = None,
    interval: float = 0.5,
) -> dict[str, Any]:
    """Look at the job's row every ``interval`` seconds, showing each change, until it is done
    or failed; after ``give_up_after`` seconds, its row as it is then (unfinished). Each look is one
    read on its own, so no transaction is held open while waiting."""
    started = time.monotonic()
    hinted = False
    last: dict[str, Any] | None = None
    while True:
        async with uow.driver() as conn:
            row = await exchange.job(conn, job_id)
        if row is None:
            raise LookupError(f"job {job_id} is gone")
        job = job_out(row)
        if job != last:
            view.show(job)
            last = job
        waited = time.monotonic() - started
        if job["status"] in FINISHED or (give_up_after is not None and waited >= give_up_after):
            return job
        if job["status"] == "queued" and not hinted and waited >= QUEUED_HINT_AFTER_S:
            view.say(f"still queued after {waited:.0f} s. {_SERVICE_NOTE}")
            hinted = True
        pause = interval if give_up_after is None else min(interval, give_up_after - waited)
        await asyncio.sleep(max(pause, 0.0))


def job_out(row: Any) -> dict[str, Any]:
    """A job row in the shape ``GET /sync/jobs/{id}`` answers, JSON-ready."""
    return {key: _plain(value) for key, value in dict(row).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _of(job: dict[str, Any]) -> int | None:
    """What the job accounts for: every entry of the remote's index (``seen``), known once
    the index is read (``total``, the events to download, is set then)."""
    return None if job["total"] is None else int(job["seen"])


def _done(job: dict[str, Any]) -> int:
    return int(job["skipped"]) + int(job["fetched"]) + int(job["failed"])


def _view(as_json: bool) -> View:
    if as_json:
        return JsonView()
    console = Console(stderr=True)
    return BarView(console) if console.is_terminal else LinesView()


class BarView:
    """A progress bar: entries accounted for (skipped, fetched or failed) out of the entries
    of the remote's index; it pulses until the index is read."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "fetched {task.fields[fetched]}  skipped {task.fields[skipped]}  "
                "failed {task.fields[failed]}  {task.fields[size]}"
            ),
            TimeElapsedColumn(),
            console=console,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "queued", total=None, fetched=0, skipped=0, failed=0, size=decimal(0)
        )

    def show(self, job: dict[str, Any]) -> None:
        self.progress.update(
            self.task, description=job["status"], total=_of(job), completed=_done(job),
            fetched=job["fetched"], skipped=job["skipped"], failed=job["failed"],
            size=decimal(job["bytes"]),
        )  # fmt: skip

    def say(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


class LinesView:
    """One plain line on stderr per change of the job (logs, CI, pipes)."""

    def show(self, job: dict[str, Any]) -> None:
        of = _of(job)
        _err(
            f"{job['status']}: {_done(job)}/{of if of is not None else '?'} "
            f"fetched {job['fetched']} skipped {job['skipped']} failed {job['failed']} "
            f"bytes {job['bytes']}"
        )

    def say(self, message: str) -> None:
        _err(message)

    def close(self) -> None:
        pass


class JsonView:
    """The job as one JSON line on stdout per change; the last line is its final state."""

    def show(self, job: dict[str, Any]) -> None:
        _out(json.dumps(job))

    def say(self, message: str) -> None:
        _err(message)

    def close(self) -> None:
        pass
