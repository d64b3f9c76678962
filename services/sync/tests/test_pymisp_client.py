"""The real PyMISP client, unchanged, against the sync service served by a real uvicorn
server: ``PyMISP("http://127.0.0.1:<port>/sync/", key)`` creates, edits, tags, sights,
publishes and deletes events, and every sample event of PyMISP's own tests
(``tests/data/misp``) goes in with ``add_event`` and comes back the same."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tessera.sync.testing.pymisp_flows import lifecycle, round_trip

from .conftest import World

DATA = Path(__file__).parent / "data" / "misp"
SAMPLES = sorted(DATA.glob("*.json"))


async def test_pymisp_creates_edits_tags_sights_publishes_and_deletes_an_event(
    world: World, served: str
) -> None:
    org = await world.organisation("PyMISP")
    admin = await world.member("Ada", org, role="admin")

    await asyncio.to_thread(lifecycle, served, admin.key)


@pytest.mark.parametrize("sample", SAMPLES, ids=[p.name for p in SAMPLES])
async def test_pymisps_sample_events_go_in_and_come_back_the_same(
    world: World, served: str, sample: Path
) -> None:
    org = await world.organisation("Samples")
    admin = await world.member("Sam", org, role="admin")

    await asyncio.to_thread(round_trip, served, admin.key, sample)
