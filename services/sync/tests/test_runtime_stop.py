"""A service's shutdown is bounded: a background task that ignores its cancellation is logged
and left behind after ``STOP_WAIT_S``, never waited for forever (a test's app fixture once
hung 120 s in teardown under load, and an orchestrator would have killed the pod)."""

from __future__ import annotations

import asyncio
import time

import pytest

from tessera.common import runtime as runtime_module
from tessera.sync.app import create_app
from tessera.sync.settings import Settings


async def test_a_stop_leaves_behind_a_task_that_will_not_end(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's ``Runtime.stop``, through the sync service's app."""
    monkeypatch.setattr(runtime_module, "STOP_WAIT_S", 0.5)
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # will not end when told to

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        task = asyncio.create_task(stubborn(), name="stubborn")
        app.state.runtime._tasks.append(task)
        await asyncio.sleep(0)
        stopping = time.monotonic()
    took = time.monotonic() - stopping
    left_behind = not task.done()
    release.set()
    task.cancel()
    await asyncio.wait([task], timeout=1)

    assert left_behind
    assert took < 10, took
