"""Following a job: its row read until it is done or failed, each change shown as a progress
bar, plain lines or JSON lines (``tessera-sync pull``, ``push``, ``fetch-feed``,
``job --wait``). A pull and a feed fetch count the events they fetched, a push those it
pushed (:func:`moved`); the rest is the same for the three.

stdout is for what scripts read (JSON lines); the bar, the plain lines and the messages go to
stderr.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import datetime
from typing import Any, Protocol

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from tessera.common.db import UnitOfWork
from tessera.sync import exchange

__all__ = [
    "FINISHED",
    "SERVICE_NOTE",
    "BarView",
    "JsonView",
    "LinesView",
    "View",
    "accounted_for",
    "err",
    "follow",
    "job_out",
    "moved",
    "out",
    "settled",
    "view_for",
]

FINISHED = ("done", "failed")
QUEUED_HINT_AFTER_S = 10.0
SERVICE_NOTE = (
    "The sync service must be running (on any host with the same database and broker) for a "
    "job to advance: it publishes and runs the job, this command only follows it."
)


def err(message: str) -> None:
    """A line for the person at the terminal (stderr)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def out(line: str) -> None:
    """A line for scripts (stdout)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


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
            view.say(f"still queued after {waited:.0f} s. {SERVICE_NOTE}")
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


def accounted_for(job: dict[str, Any]) -> int | None:
    """What the job accounts for: every entry of the remote's index or the feed's manifest,
    or every published event a push considered (``seen``), known once that is read
    (``total``, the events to download or send, is set then)."""
    return None if job["total"] is None else int(job["seen"])


def moved(job: dict[str, Any]) -> tuple[str, int]:
    """What the job did to each event it did not skip, and how many: a push ``pushed``,
    a pull or a feed fetch ``fetched``."""
    if job.get("kind") == "push":
        return "pushed", int(job["pushed"])
    return "fetched", int(job["fetched"])


def settled(job: dict[str, Any]) -> int:
    """Events done with: skipped (before downloading or sending, or refused as not newer),
    fetched or pushed, or failed."""
    return int(job["skipped"]) + moved(job)[1] + int(job["failed"])


def view_for(as_json: bool) -> View:
    if as_json:
        return JsonView()
    console = Console(stderr=True)
    return BarView(console) if console.is_terminal else LinesView()


class BarView:
    """A progress bar: events accounted for (skipped, fetched or pushed, or failed) out of
    those seen; it pulses until the index, the manifest or the events to push are read."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "{task.fields[verb]} {task.fields[moved]}  skipped {task.fields[skipped]}  "
                "failed {task.fields[failed]}  {task.fields[size]}"
            ),
            TimeElapsedColumn(),
            console=console,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "queued", total=None, verb="done", moved=0, skipped=0, failed=0, size=decimal(0)
        )

    def show(self, job: dict[str, Any]) -> None:
        verb, count = moved(job)
        self.progress.update(
            self.task, description=job["status"], total=accounted_for(job), completed=settled(job),
            verb=verb, moved=count, skipped=job["skipped"], failed=job["failed"],
            size=decimal(job["bytes"]),
        )  # fmt: skip

    def say(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def close(self) -> None:
        self.progress.stop()


class LinesView:
    """One plain line on stderr per change of the job (logs, CI, pipes)."""

    def show(self, job: dict[str, Any]) -> None:
        of = accounted_for(job)
        verb, count = moved(job)
        err(
            f"{job['status']}: {settled(job)}/{of if of is not None else '?'} "
            f"{verb} {count} skipped {job['skipped']} failed {job['failed']} "
            f"bytes {job['bytes']}"
        )

    def say(self, message: str) -> None:
        err(message)

    def close(self) -> None:
        pass


class JsonView:
    """The job as one JSON line on stdout per change; the last line is its final state."""

    def show(self, job: dict[str, Any]) -> None:
        out(json.dumps(job))

    def say(self, message: str) -> None:
        err(message)

    def close(self) -> None:
        pass
