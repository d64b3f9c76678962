"""Sync's own commands of ``tessera-sync`` (the kit adds those every service has): ``pull``
from a server, ``push`` to one, ``fetch-feed`` a feed, each following its job; ``jobs`` lists
the latest jobs, ``job`` shows (or follows) one.

They act as an operator on the service's host does: with the service's settings and its
database, as a site admin, and no user. ``pull`` writes the job and its
``sync.pull.requested`` in one transaction, as ``GET /sync/servers/pull/{id}`` does
(:func:`~tessera.sync.service.pull.queue_pull`; ``push`` and ``fetch-feed`` the same with
``queue_push`` and ``queue_fetch``); the running sync service — on any host that reaches the
same database and broker — publishes that message and runs the job. The command itself
needs only the database: it follows the job's row.

Output: stdout carries the job's id (or with ``--json`` the job as JSON lines, one per change,
in the shape of ``GET /sync/jobs/{id}``), so scripts read it; the progress bar (plain lines
when stderr is no terminal) and the messages go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.filesize import decimal
from rich.table import Table
from sqlalchemy.ext.asyncio import async_sessionmaker

from tessera.common.db import UnitOfWork, create_engine
from tessera.common.messaging import Outbox
from tessera.sync import exchange, models
from tessera.sync.crypto import KeyBox
from tessera.sync.progress import (
    SERVICE_NOTE,
    accounted_for,
    err,
    follow,
    job_out,
    moved,
    out,
    settled,
    view_for,
)
from tessera.sync.service import protection
from tessera.sync.service.feeds import FeedDisabled, FeedNotFound, feed_called, queue_fetch
from tessera.sync.service.pull import PullDisabled, queue_pull
from tessera.sync.service.push_jobs import PushDisabled, queue_push
from tessera.sync.service.servers import ServerNotFound, event_uuid_of, server_called
from tessera.sync.settings import Settings

__all__ = ["EXIT_FAILED", "EXIT_NOT_STARTED", "EXIT_TIMEOUT", "NotStarted", "add_commands"]

EXIT_FAILED = 1
"""the job failed (its server or feed, the index, the manifest or the remote's
``filterEventIdsForPush`` could not be read)"""
EXIT_NOT_STARTED = 2
"""no such server, feed, event or job, or the server's pull (push) flag or the feed is off:
nothing was started"""
EXIT_TIMEOUT = 3
"""``--timeout`` passed before the job finished (it goes on)"""

_PULL_HELP = (
    "Pull from a remote server (its id or name) as `servers/pull` does, then follow the job "
    "with a progress bar until it is done.\n\n"
    "Prints the job's id first (stdout). Exit 0 when the job is done (some events may have "
    "failed: see `failed` and `error`), 1 when it failed, 2 when nothing was started (no such "
    "server, or its pull flag is off), 3 when --timeout passed first (the job goes on: "
    "`tessera-sync job ID --wait`)."
)

_PUSH_HELP = (
    "Push to a remote server (its id or name) as `servers/push` does: every published event "
    "that may go there, or one (--event, its id or uuid here); then follow the job with a "
    "progress bar until it is done.\n\n"
    "Prints the job's id first (stdout). Exit 0 when the job is done (some events may have "
    "failed: see `failed` and `error`), 1 when it failed, 2 when nothing was started (no such "
    "server or event, or its push flag is off), 3 when --timeout passed first (the job goes "
    "on: `tessera-sync job ID --wait`)."
)

_FETCH_FEED_HELP = (
    "Fetch a feed (its id or name) as `feeds/fetchFromFeed` does, then follow the job with a "
    "progress bar until it is done.\n\n"
    "Prints the job's id first (stdout). Exit 0 when the job is done (some events may have "
    "failed: see `failed` and `error`), 1 when it failed, 2 when nothing was started (no such "
    "feed, or it is not enabled), 3 when --timeout passed first (the job goes on: "
    "`tessera-sync job ID --wait`)."
)

_JOB_HELP = (
    "Show one job (a pull's, push's or feed fetch's): its status and progress, as "
    "`GET /sync/jobs/{id}` answers. With --wait, follow it as `pull` does, with the same exit "
    "codes; exit 2 when there is no such job."
)

NoWait = Annotated[bool, typer.Option("--no-wait", help="print the job's id and return at once")]
AsJson = Annotated[
    bool, typer.Option("--json", help="the job as JSON lines on stdout, one per change")
]
Timeout = Annotated[
    float | None, typer.Option(min=0, help="stop following after this many seconds (exit 3)")
]
Interval = Annotated[float, typer.Option(min=0.05, help="seconds between two looks at the job")]


class NotStarted(Exception):
    """Nothing was queued (exit 2); the message says why."""


def add_commands(cli: typer.Typer, settings: Callable[[], Settings] = Settings) -> None:
    """Add sync's own commands to ``cli`` (``ServiceSpec.commands``); ``settings`` makes the
    settings (the environment's; tests pass their own)."""

    @cli.command("pull", help=f"{_PULL_HELP}\n\n{SERVICE_NOTE}")
    def pull_command(
        server: Annotated[str, typer.Argument(metavar="SERVER", help="the server's id or name")],
        event: Annotated[
            uuid.UUID | None, typer.Option("--event", help="pull only this event (its uuid)")
        ] = None,
        no_wait: NoWait = False,
        as_json: AsJson = False,
        timeout: Timeout = None,
        interval: Interval = 0.5,
    ) -> None:
        async def queue(uow: UnitOfWork) -> tuple[uuid.UUID, str]:
            found = await _server(uow, server)
            try:
                job_id = await queue_pull(uow, found["id"], event_uuid=event, requested_by=None)
            except PullDisabled:
                raise NotStarted(f"{_named(found)} has pulling off: set its pull flag") from None
            return job_id, f"pulling from {_named(found)}"

        _start_and_follow(settings(), queue, no_wait, as_json, timeout, interval)

    @cli.command("push", help=f"{_PUSH_HELP}\n\n{SERVICE_NOTE}")
    def push_command(
        server: Annotated[str, typer.Argument(metavar="SERVER", help="the server's id or name")],
        event: Annotated[
            str | None,
            typer.Option("--event", metavar="ID|UUID", help="push only this event (here)"),
        ] = None,
        no_wait: NoWait = False,
        as_json: AsJson = False,
        timeout: Timeout = None,
        interval: Interval = 0.5,
    ) -> None:
        async def queue(uow: UnitOfWork) -> tuple[uuid.UUID, str]:
            found = await _server(uow, server)
            event_uuid = None
            if event is not None:
                event_uuid = await event_uuid_of(uow, event.strip())
                if event_uuid is None:
                    raise NotStarted(f"no event here has the id or the uuid {event!r}")
            try:
                job_id = await queue_push(
                    uow, found["id"], event_uuid=event_uuid, requested_by=None
                )
            except PushDisabled:
                raise NotStarted(f"{_named(found)} has pushing off: set its push flag") from None
            return job_id, f"pushing to {_named(found)}"

        _start_and_follow(settings(), queue, no_wait, as_json, timeout, interval)

    @cli.command("fetch-feed", help=f"{_FETCH_FEED_HELP}\n\n{SERVICE_NOTE}")
    def fetch_feed_command(
        feed: Annotated[str, typer.Argument(metavar="FEED", help="the feed's id or name")],
        no_wait: NoWait = False,
        as_json: AsJson = False,
        timeout: Timeout = None,
        interval: Interval = 0.5,
    ) -> None:
        async def queue(uow: UnitOfWork) -> tuple[uuid.UUID, str]:
            try:
                found = await feed_called(uow, feed)
            except FeedNotFound as exc:
                raise NotStarted(str(exc)) from None
            named = f"feed {found['id']} ({found['name']})"
            try:
                job_id = await queue_fetch(uow, found["id"], requested_by=None)
            except FeedDisabled:
                raise NotStarted(f"{named} is not enabled") from None
            return job_id, f"fetching {named}"

        _start_and_follow(settings(), queue, no_wait, as_json, timeout, interval)

    @cli.command("jobs")
    def jobs_command(
        limit: Annotated[int, typer.Option(min=1, max=1000, help="how many")] = 20,
        as_json: Annotated[bool, typer.Option("--json", help="a JSON array on stdout")] = False,
    ) -> None:
        """The latest pull, push and feed jobs, newest first, with their progress (done: the
        events skipped, fetched or pushed, or failed, of those seen; `job ID` shows the rest)."""
        rows = asyncio.run(_recent(settings(), limit=limit))
        if as_json:
            out(json.dumps(rows, indent=2))
            return
        table = Table(title=f"sync jobs: the latest {len(rows)}", box=box.SIMPLE_HEAD)
        for column in ("id", "kind", "server", "status", "done", "failed", "bytes", "created"):
            table.add_column(column, no_wrap=True)
        for job in rows:
            of = accounted_for(job)
            server = f"{job['server_id']} {job['server_name'] or ''}" if job["server_id"] else "-"
            table.add_row(
                job["id"], job["kind"], server.strip()[:24], job["status"],
                f"{settled(job)}/{of if of is not None else '?'}", str(job["failed"]),
                decimal(job["bytes"]), _when(job["created_at"]),
            )  # fmt: skip
        console = Console()
        # whole rows, never columns dropped to fit: a pipe or a log gets them at full width,
        # a narrow terminal wraps them
        width = max(console.width, 112) if console.is_terminal else 200
        Console(width=width).print(table)

    @cli.command("job", help=f"{_JOB_HELP}\n\n{SERVICE_NOTE}")
    def job_command(
        job_id: Annotated[uuid.UUID, typer.Argument(metavar="ID", help="the job's id")],
        wait: Annotated[
            bool, typer.Option("--wait", help="follow it until it is done, as pull does")
        ] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="the job as JSON (lines, with --wait) on stdout")
        ] = False,
        timeout: Annotated[
            float | None,
            typer.Option(min=0, help="with --wait: stop following after this many seconds"),
        ] = None,
        interval: Annotated[
            float, typer.Option(min=0.05, help="seconds between two looks at the job")
        ] = 0.5,
    ) -> None:
        code = _run(
            _job(settings(), job_id, wait=wait, as_json=as_json, give_up_after=timeout,
                 interval=interval)
        )  # fmt: skip
        raise typer.Exit(code)

    _signing_commands(cli, settings)


def _signing_commands(cli: typer.Typer, settings: Callable[[], Settings]) -> None:
    """The instance's OpenPGP keys, which sign protected events (``service/protection.py``)."""

    @cli.command("signing-keys")
    def signing_keys_command(
        as_json: Annotated[bool, typer.Option("--json", help="a JSON array on stdout")] = False,
    ) -> None:
        """This instance's OpenPGP keys, oldest first, and which one signs protected events
        (made the first time none is)."""
        found = asyncio.run(_with_keyring(settings(), protection.public_keys))
        if as_json:
            out(json.dumps(found, indent=2))
            return
        for key in found:
            state = "signing" if key["signing"] else ("retired" if key["retired"] else "listed")
            out(f"{key['fingerprint']}  {state:8}  {key['created']}")

    @cli.command("rotate-signing-key")
    def rotate_command() -> None:
        """Make a new signing key and list it in every protected event here that lists one of
        this instance's keys; the current key goes on signing until `retire-signing-key`, so
        that other instances learn the new key from updates they can still verify. Prints
        the new key's fingerprint."""
        out(asyncio.run(_with_keyring(settings(), protection.rotate)))

    @cli.command("retire-signing-key")
    def retire_command(
        fingerprint: Annotated[str, typer.Argument(help="the key's fingerprint")],
    ) -> None:
        """Stop signing with a key (the next one signs); events go on trusting it."""

        async def retire(uow: UnitOfWork, _ring: protection.Keyring) -> bool:
            return await protection.retire(uow, fingerprint)

        if not asyncio.run(_with_keyring(settings(), retire)):
            err(f"no key in use has the fingerprint {fingerprint}")
            raise typer.Exit(1)


async def _with_keyring(
    settings: Settings, work: Callable[[UnitOfWork, protection.Keyring], Awaitable[Any]]
) -> Any:
    configured = settings.signing_key.get_secret_value() if settings.signing_key else None
    ring = protection.Keyring.of(KeyBox(settings.server_key.get_secret_value()), configured)
    async with _unit_of_work(settings) as uow:
        return await work(uow, ring)


def _start_and_follow(
    settings: Settings,
    queue: Callable[[UnitOfWork], Awaitable[tuple[uuid.UUID, str]]],
    no_wait: bool,
    as_json: bool,
    timeout: float | None,
    interval: float,
) -> NoReturn:
    """Queue the job and follow it (unless ``no_wait``); exit with what it came to."""
    code = _run(
        _queue_and_follow(settings, queue, wait=not no_wait, as_json=as_json,
                          give_up_after=timeout, interval=interval)
    )  # fmt: skip
    raise typer.Exit(code)


def _run(work: Any) -> int:
    try:
        return int(asyncio.run(work))
    except KeyboardInterrupt:
        err("stopped following; the job goes on")
        return 130


async def _recent(settings: Settings, *, limit: int) -> list[dict[str, Any]]:
    async with _unit_of_work(settings) as uow, uow.driver() as conn:
        return [job_out(row) for row in await exchange.recent_jobs(conn, limit=limit)]


async def _job(
    settings: Settings,
    job_id: uuid.UUID,
    *,
    wait: bool,
    as_json: bool,
    give_up_after: float | None,
    interval: float,
) -> int:
    async with _unit_of_work(settings) as uow:
        async with uow.driver() as conn:
            row = await exchange.job(conn, job_id)
        if row is None:
            err(f"no job {job_id}")
            return EXIT_NOT_STARTED
        if wait:
            return await _follow_to_end(
                uow, job_id, as_json=as_json, give_up_after=give_up_after, interval=interval
            )
    job = job_out(row)
    if as_json:
        out(json.dumps(job))
    else:
        width = max(len(key) for key in job)
        for key, value in job.items():
            out(f"{key:<{width}}  {'-' if value is None else value}")
    return 0


def _when(value: str | None) -> str:
    """``2026-12-05T10:25:04.98+00:00`` as ``12-05 10:25:04`` (UTC, as stored)."""
    return "-" if value is None else value[5:19].replace("T", " ")


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


async def _server(uow: UnitOfWork, ref: str) -> dict[str, Any]:
    try:
        return await server_called(uow, ref)
    except ServerNotFound as exc:
        raise NotStarted(str(exc)) from None


def _named(server: dict[str, Any]) -> str:
    return f"server {server['id']} ({server['name']})"


async def _queue_and_follow(
    settings: Settings,
    queue: Callable[[UnitOfWork], Awaitable[tuple[uuid.UUID, str]]],
    *,
    wait: bool,
    as_json: bool,
    give_up_after: float | None,
    interval: float,
) -> int:
    """Queue a job (``queue``: its id and what it does, or :class:`NotStarted`), print its
    id, then follow it to its end unless told not to wait; the command's exit code."""
    async with _unit_of_work(settings) as uow:
        try:
            job_id, doing = await queue(uow)
        except NotStarted as exc:
            err(str(exc))
            return EXIT_NOT_STARTED
        if not wait:
            if as_json:
                async with uow.driver() as conn:
                    out(json.dumps(job_out(await exchange.job(conn, job_id))))
            else:
                out(str(job_id))
            return 0
        if not as_json:
            out(str(job_id))
        err(f"{doing}: job {job_id}")
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
    view = view_for(as_json)
    try:
        job = await follow(uow, job_id, view, give_up_after=give_up_after, interval=interval)
    finally:
        view.close()
    verb, count = moved(job)
    counts = (
        f"{settled(job)}/{accounted_for(job) if accounted_for(job) is not None else '?'} "
        f"({verb} {count}, skipped {job['skipped']}, failed {job['failed']}, "
        f"{decimal(job['bytes'])})"
    )
    if job.get("sightings"):
        counts += f", sightings {job['sightings']}"  # a push's, sent on their own
    if job["status"] == "done":
        err(f"job {job_id} done: {counts}")
        if job["error"]:  # a failed event's, or its sightings'
            err(f"last error: {job['error']}")
        return 0
    if job["status"] == "failed":
        err(f"job {job_id} failed: {job['error']}")
        return EXIT_FAILED
    err(
        f"job {job_id} is still {job['status']} after {give_up_after:g} s: {counts}. "
        f"{SERVICE_NOTE} Look at it again with: tessera-sync job {job_id} --wait"
    )
    return EXIT_TIMEOUT
