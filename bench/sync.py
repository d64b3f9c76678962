"""Pulling from a remote MISP, against a bare COPY of the same rows, in one run.

Starts auth and sync as their own processes behind the gateway (the e2e harness: real
PostgreSQL, RabbitMQ, Redis, tracing exported), and a fake remote MISP in a process of its
own (``tessera.sync.testing.fake_misp``: generated events, streamed, ETags honoured), then:

* **pull**: 1,000 events x 1,000 attributes from a fake serving them; events/s and
  attributes/s from the pull's start to its job being done, and the sync process's peak
  RSS and CPU time per event during it;
* **no-op re-pull** of 10,000 unchanged events: with the index's ETag (the remote answers
  304), and without it (all 10,000 index entries compared with the local copies);
* **one event of 150,000 attributes**: time and the sync process's peak RSS;
* **floor**: the same 1,000,000 attribute rows written with one bare asyncpg COPY into a
  table shaped as ``sync.attributes`` (its indexes included), in this process.

Goals (issue 10): >= 50 events/s x 1,000 attributes, >= 20 % of the COPY floor's
attributes/s, the no-op re-pull within 10 s, the 150,000-attribute event within 256 MB RSS.

    uv run python bench/sync.py                 # everything (several minutes)
    uv run python bench/sync.py --events 200 --only pull,floor --json
    uv run python bench/sync.py --only pull,floor --sync-replicas 2   # scale-out

With ``--sync-replicas N`` the pull is shared by N sync processes consuming the same queue
(one behind the gateway, the others consumers only), as replicas would be deployed; peak RSS
is then the largest process's, CPU per event the sum of theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tessera.common.testing import Infra, run_sync
from tessera.sync.testing.fake_misp import DEFAULT_KEY, make_event

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench passphrase that is long"


def _harness() -> Any:
    spec = importlib.util.spec_from_file_location(
        "tessera_e2e_harness", ROOT / "tests/e2e/harness.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["tessera_e2e_harness"] = module
    spec.loader.exec_module(module)
    return module


class Fake:
    """The fake remote MISP as a process of its own (its own core's worth of Python)."""

    def __init__(self, **options: Any) -> None:
        args = [sys.executable, "-m", "tessera.sync.testing.fake_misp", "--port", "0"]
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.match(r"PORT (\d+)", line)
        if match is None:
            self.process.kill()
            raise RuntimeError(f"the fake MISP did not start: {line!r}")
        self.url = f"http://127.0.0.1:{match.group(1)}/"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class Replicas:
    """Sync processes besides the suite's own, with its environment: more consumers of the
    same queue (their HTTP ports are not behind the gateway)."""

    def __init__(self, harness: Any, infra: Infra, suite: Any, work: Path, count: int) -> None:
        port = int(suite.gateway.rsplit(":", 1)[1])
        env = harness._suite_env(infra, suite.ports, suite.smtp, suite.otlp, port)
        self.processes = [
            subprocess.Popen(
                [str(ROOT / ".venv/bin/tessera-sync"), "serve", "--port", str(harness.free_port())],
                env=env,
                cwd=ROOT,
                stdout=(work / f"sync-{n}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            for n in range(2, count + 1)
        ]
        deadline = time.monotonic() + 60
        for process, n in zip(self.processes, range(2, count + 1), strict=True):
            while "Application startup complete" not in (work / f"sync-{n}.log").read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sync replica {n} did not start")
                time.sleep(0.2)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=20)


class PeakRss:
    """The peak resident memory of a process while a block runs (VmHWM, reset first), and
    the CPU time it spent (user + system): on a shared box, steadier than the wall time."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_mb = 0.0
        self.cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _rss_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
        return 0.0

    def _cpu_s(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self._rss_mb("VmRSS:"))
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        with contextlib.suppress(OSError):  # the kernel's own high-water mark, reset
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        self.cpu_s = -self._cpu_s()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, self._rss_mb("VmHWM:"))
        self.cpu_s += self._cpu_s()


def admin_token(gateway: str, admin_dsn: str) -> str:
    """A site admin of an organisation: registered through the gateway, made superadmin in
    auth's table (bench set-up only), logged in again for a token that says so."""
    email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
    with httpx.Client(base_url=gateway, timeout=30) as client:
        client.post("/auth/register", json={"email": email, "password": PASSWORD,
                                            "full_name": "Bench"}).raise_for_status()  # fmt: skip
        first = client.post("/auth/login", json={"email": email, "password": PASSWORD}).json()
        client.post(
            "/auth/organisations", json={"name": f"Bench {email}"},
            headers={"Authorization": f"Bearer {first['access_token']}"},
        ).raise_for_status()  # fmt: skip

        async def promote() -> None:
            conn = await asyncpg.connect(admin_dsn)
            try:
                await conn.execute(
                    "UPDATE auth.users SET is_superadmin = true WHERE email_normalized = $1",
                    email.lower(),
                )
            finally:
                await conn.close()

        run_sync(promote())
        again = client.post("/auth/login", json={"email": email, "password": PASSWORD}).json()
        token: str = again["access_token"]
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=gateway, timeout=30) as client:
        while time.monotonic() < deadline:  # until sync has heard of the membership
            if client.get("/sync/users/view/me", headers=_auth(token)).status_code == 200:
                return token
            time.sleep(0.2)
    raise RuntimeError("sync never knew the bench's user")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def add_server(gateway: str, token: str, url: str) -> int:
    with httpx.Client(base_url=gateway, timeout=30) as client:
        added = client.post(
            "/sync/servers/add", headers=_auth(token),
            json={"name": f"fake {url}", "url": url, "authkey": DEFAULT_KEY, "pull": True,
                  "allow_private_addresses": True,
                  "Organisation": {"uuid": str(uuid.uuid4()), "name": f"Remote {url}"}},
        )  # fmt: skip
        added.raise_for_status()
        return int(added.json()["Server"]["id"])


def pull(gateway: str, token: str, server_id: int, *, timeout: float = 1800) -> dict[str, Any]:
    """Start a pull and wait for its job; the job with its wall time."""
    with httpx.Client(base_url=gateway, timeout=30) as client:
        started = time.perf_counter()
        answer = client.get(f"/sync/servers/pull/{server_id}", headers=_auth(token))
        answer.raise_for_status()
        url = answer.json()["url"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = client.get(url, headers=_auth(token)).json()
            if job["status"] in ("done", "failed"):
                job["wall_s"] = time.perf_counter() - started
                return dict(job)
            time.sleep(0.05)
    raise TimeoutError("the pull did not finish")


async def outbox_drained(dsn: str, *, within_s: float = 300) -> None:
    """Wait until sync's outbox has nothing left to send."""
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + within_s
        while await conn.fetchval("SELECT count(*) FROM sync.outbox WHERE sent_at IS NULL"):
            if time.monotonic() > deadline:
                raise TimeoutError("sync's outbox did not drain")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


# --- the floor ----------------------------------------------------------------------------------

_COLUMNS = ("uuid", "event_id", "category", "type", "value1", "value2", "to_ids", "comment",
            "distribution", "timestamp", "deleted", "disable_correlation")  # fmt: skip


async def copy_floor(dsn: str, events: int, attributes: int) -> dict[str, Any]:
    """The same attribute rows (the fake's, values as served), one COPY into a table shaped
    as ``sync.attributes`` with its indexes."""
    rows = []
    for n in range(events):
        for a in make_event(n, attributes=attributes, seed=0)["Event"]["Attribute"]:
            value1, _, value2 = a["value"].partition("|")
            rows.append((uuid.UUID(a["uuid"]), n + 1, a["category"], a["type"], value1, value2,
                         bool(a["to_ids"]), a["comment"], int(a["distribution"]),
                         int(a["timestamp"]), bool(a["deleted"]), False))  # fmt: skip
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TEMP TABLE floor_attributes (LIKE sync.attributes INCLUDING DEFAULTS "
            "INCLUDING IDENTITY INCLUDING INDEXES)"
        )
        started = time.perf_counter()
        await conn.copy_records_to_table("floor_attributes", records=rows, columns=_COLUMNS)
        elapsed = time.perf_counter() - started
    finally:
        await conn.close()
    return {"rows": len(rows), "s": elapsed, "attributes_per_s": len(rows) / elapsed}


# --- the run ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    harness = _harness()
    infra = Infra(
        os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/"),
    )
    from tessera.common.testing import _create_database, _drop_broker_names, _drop_database

    os.environ.setdefault("GATEWAY_RATE_LIMIT", "100000r/s")
    os.environ.setdefault("GATEWAY_RATE_BURST", "100000")
    only = set(args.only.split(",")) if args.only else {"pull", "repull", "huge", "floor"}
    run_sync(_create_database(infra))
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    results: dict[str, Any] = {}
    admin_dsn = re.sub(r"/[^/]*$", f"/{infra.database}", infra.postgres_admin)
    try:
        with harness.running_suite(infra, work, services=("auth", "sync")) as suite:
            token = admin_token(suite.gateway, admin_dsn)
            sync_pid = suite.processes["sync"].pid
            if "pull" in only:
                fake = Fake(events=args.events, attributes=args.attributes)
                try:
                    server = add_server(suite.gateway, token, fake.url)
                    replicas = Replicas(harness, infra, suite, work, args.sync_replicas)
                    try:
                        with contextlib.ExitStack() as stack:
                            rss = [stack.enter_context(PeakRss(pid))
                                   for pid in (sync_pid, *replicas.pids)]  # fmt: skip
                            job = pull(suite.gateway, token, server)
                    finally:
                        replicas.stop()
                finally:
                    fake.stop()
                attributes = job["fetched"] * args.attributes
                cpu_s = sum(r.cpu_s for r in rss)
                results["pull"] = {
                    "events": job["fetched"], "failed": job["failed"], "s": job["wall_s"],
                    "sync_processes": args.sync_replicas,
                    "events_per_s": job["fetched"] / job["wall_s"],
                    "attributes_per_s": attributes / job["wall_s"],
                    "peak_rss_mb": max(r.peak_mb for r in rss),
                    "mb_downloaded": job["bytes"] / 1e6,
                    "sync_cpu_ms_per_event": 1000 * cpu_s / max(job["fetched"], 1),
                }  # fmt: skip
            if "repull" in only:
                fake = Fake(events=args.repull_events, attributes=5, seed=7)
                try:
                    server = add_server(suite.gateway, token, fake.url)
                    pull(suite.gateway, token, server)  # the first pull, not timed
                    # its 10,000 announcements leave through the outbox first: a pull queued
                    # now would wait behind them (seconds), which is not the re-pull's cost
                    run_sync(outbox_drained(admin_dsn))
                    with_etag = pull(suite.gateway, token, server)

                    async def forget_etag() -> None:
                        conn = await asyncpg.connect(admin_dsn)
                        try:
                            await conn.execute(
                                "UPDATE sync.servers SET index_etag = NULL WHERE id = $1", server
                            )
                        finally:
                            await conn.close()

                    run_sync(forget_etag())
                    without = pull(suite.gateway, token, server)
                finally:
                    fake.stop()
                results["repull"] = {
                    "events": args.repull_events,
                    "with_etag_s": with_etag["wall_s"],
                    "without_etag_s": without["wall_s"],
                    "skipped": without["skipped"],
                    "fetched": without["fetched"],
                }
            if "huge" in only:
                fake = Fake(events=0, attributes=1, huge=args.huge, seed=11)
                try:
                    server = add_server(suite.gateway, token, fake.url)
                    with PeakRss(sync_pid) as rss:
                        job = pull(suite.gateway, token, server)
                finally:
                    fake.stop()
                results["huge"] = {
                    "attributes": args.huge, "s": job["wall_s"], "failed": job["failed"],
                    "attributes_per_s": args.huge / job["wall_s"], "peak_rss_mb": rss.peak_mb,
                    "mb_downloaded": job["bytes"] / 1e6,
                }  # fmt: skip
        if "floor" in only:
            results["floor"] = asyncio.run(copy_floor(admin_dsn, args.events, args.attributes))
    finally:
        run_sync(_drop_broker_names(infra))
        run_sync(_drop_database(infra))
        if args.keep_logs:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if "pull" in results and "floor" in results:
        results["pull"]["ratio_to_floor"] = (
            results["pull"]["attributes_per_s"] / results["floor"]["attributes_per_s"]
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--attributes", type=int, default=1000)
    parser.add_argument("--repull-events", type=int, default=10_000)
    parser.add_argument("--huge", type=int, default=150_000)
    parser.add_argument("--only", default="", help="pull,repull,huge,floor")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep-logs", action="store_true", help="keep the services' logs")
    parser.add_argument("--sync-replicas", type=int, default=1,
                        help="sync processes sharing the pull (default 1)")  # fmt: skip
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    if "pull" in results:
        p = results["pull"]
        print(f"pull {p['events']} events x {args.attributes} attributes in {p['s']:.1f} s: "
              f"{p['events_per_s']:.1f} events/s, {p['attributes_per_s']:,.0f} attributes/s, "
              f"peak RSS {p['peak_rss_mb']:.0f} MB, {p['mb_downloaded']:.0f} MB, "
              f"{p['failed']} failed")  # fmt: skip
    if "floor" in results:
        f = results["floor"]
        print(f"floor: COPY of {f['rows']:,} rows in {f['s']:.1f} s: "
              f"{f['attributes_per_s']:,.0f} attributes/s")  # fmt: skip
        if "pull" in results:
            print(f"pull / floor: {results['pull']['ratio_to_floor']:.2f}")
    if "repull" in results:
        r = results["repull"]
        print(f"no-op re-pull of {r['events']:,} events: {r['with_etag_s']:.2f} s with the "
              f"ETag, {r['without_etag_s']:.2f} s without ({r['skipped']:,} skipped, "
              f"{r['fetched']} fetched)")  # fmt: skip
    if "huge" in results:
        h = results["huge"]
        print(f"one event of {h['attributes']:,} attributes: {h['s']:.1f} s, "
              f"{h['attributes_per_s']:,.0f} attributes/s, "
              f"peak RSS {h['peak_rss_mb']:.0f} MB")  # fmt: skip


if __name__ == "__main__":
    main()
