"""Creating and replacing a large applet through the gateway, against its floor, in one run.

Starts auth and applets as their own processes behind the nginx gateway (the e2e harness,
tracing on and exported to an OTLP receiver), registers an owner, then drives with ``wrk``
(one connection, so each figure is one request's latency):

* ``POST /applets`` of an applet of 20 activities x 30 items (600 single-select items with
  options and scores, ~250 KB of JSON): a new applet each time;
* ``PUT /applets/{id}`` of the same content with its ids and a display name that changes
  every request (a Lua script numbers them), so each one is a real replacement and a new
  version (the usual edit: rows that did not change are not rewritten);
* ``PUT /applets/{id}`` where every item's question changes every request (the worst case:
  all 600 item rows rewritten);

and, as the floor, the same 20 activity and 600 item rows inserted by bare asyncpg
``executemany`` in one transaction, timed in this process. Prints p50/p99 of each and the
ratio to the floor (goal: create and replace each at most 3x the floor).

    uv run python bench/applets.py                    # 10 s per route
    uv run python bench/applets.py --seconds 20 --activities 20 --items 30 --json

Needs PostgreSQL, Redis and RabbitMQ (``TEST_*_URL`` or the local defaults), nginx and wrk
(``make bench-applets`` installs wrk from apt). Uses a database of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tessera.applets.canon import canonical
from tessera.applets.document import AppletCreate
from tessera.applets.examples import large_applet
from tessera.common.testing import Infra, run_sync

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


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def wrk(url: str, script: Path, seconds: int) -> dict[str, Any]:
    """p50/p99 (ms) and req/s of the requests ``script`` makes, one at a time."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("bench/applets.py: install wrk (apt-get install wrk)")
    out = subprocess.run(
        [binary, "-t1", "-c1", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


def lua(method: str, path: str, body: Path, token: str) -> str:
    """A wrk script sending ``body`` with ``__N__`` replaced by the request's number."""
    return f"""
local file = io.open("{body}", "rb")
local template = file:read("*a")
file:close()
local n = 0
local headers = {{["Content-Type"] = "application/json",
                  ["Authorization"] = "Bearer {token}"}}
request = function()
  n = n + 1
  local text = template:gsub("__N__", tostring(n))
  return wrk.format("{method}", "{path}", headers, text)
end
"""


def owner(gateway: str) -> tuple[str, str]:
    """An owner's access token, with the organisation it administers in its claims."""
    email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
    with httpx.Client(base_url=gateway, timeout=30) as client:
        client.post("/auth/register", json={"email": email, "password": PASSWORD,
                                            "full_name": "Bench"}).raise_for_status()  # fmt: skip
        tokens = client.post("/auth/login", json={"email": email, "password": PASSWORD}).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        org = client.post("/auth/organisations", json={"name": f"Bench {email}"}, headers=headers)
        org.raise_for_status()
        fresh = client.post("/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]})
        fresh.raise_for_status()
        return fresh.json()["access_token"], org.json()["id"]


# --- the floor: the same rows, bare asyncpg executemany --------------------------------------

_FLOOR_TABLES = """
CREATE TABLE floor_activities (LIKE applets.activities INCLUDING DEFAULTS INCLUDING INDEXES);
CREATE TABLE floor_items (LIKE applets.items INCLUDING DEFAULTS INCLUDING INDEXES);
"""


async def floor(dsn: str, content: dict[str, Any], repeat: int) -> dict[str, Any]:
    """Insert the applet's 20 activity and 600 item rows with executemany, ``repeat`` times."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_FLOOR_TABLES)
        times = []
        for _ in range(repeat):
            applet_id = uuid.uuid4()
            activities, items = [], []
            for a in content["activities"]:
                activity_id = uuid.uuid4()
                activities.append((activity_id, applet_id, a["order"], a["name"],
                                   json.dumps(a["description"]), a["is_hidden"]))  # fmt: skip
                items.extend(
                    (uuid.uuid4(), activity_id, applet_id, i["order"], i["name"],
                     json.dumps(i["question"]), i["response_type"],
                     json.dumps(i["response_values"]), json.dumps(i["config"]), i["is_hidden"],
                     i["allow_edit"])
                    for i in a["items"]
                )  # fmt: skip
            started = time.perf_counter()
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO floor_activities (id, applet_id, position, name, description, "
                    "show_all_at_once, is_skippable, is_reviewable, response_is_editable, "
                    "is_hidden) VALUES ($1, $2, $3, $4, $5::jsonb, false, false, false, true, $6)",
                    activities,
                )
                await conn.executemany(
                    "INSERT INTO floor_items (id, activity_id, applet_id, position, name, "
                    "question, response_type, response_values, config, is_hidden, allow_edit) "
                    "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9::jsonb, $10, $11)",
                    items,
                )
            times.append((time.perf_counter() - started) * 1000)
    finally:
        await conn.close()
    times.sort()
    return {
        "requests": repeat,
        "p50_ms": statistics.median(times),
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))],
    }


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
    run_sync(_create_database(infra))
    work = Path(tempfile.mkdtemp(prefix="bench-applets-"))
    try:
        with harness.running_suite(infra, work, services=("auth", "applets")) as suite:
            token, org = owner(suite.gateway)
            document = large_applet(org, activities=args.activities, items=args.items,
                                    name="Bench __N__")  # fmt: skip
            create_body = work / "create.json"
            create_body.write_text(json.dumps(document))
            with httpx.Client(base_url=suite.gateway, timeout=60) as client:
                headers = {"Authorization": f"Bearer {token}"}
                first = client.post("/applets", json=document, headers=headers)
                first.raise_for_status()
                created = first.json()
            replace_body = work / "replace.json"
            content = {k: v for k, v in created.items() if k != "my_roles"}
            replace_body.write_text(json.dumps(content | {"display_name": "Bench __N__"}))
            rewrite_body = work / "rewrite.json"
            for activity in content["activities"]:
                for item in activity["items"]:
                    item["question"] = {"en": item["question"]["en"] + " __N__"}
            rewrite_body.write_text(json.dumps(content))
            scripts = {
                "create": ("POST", "/applets", create_body),
                "replace": ("PUT", f"/applets/{created['id']}", replace_body),
                "rewrite": ("PUT", f"/applets/{created['id']}", rewrite_body),
            }
            results: dict[str, Any] = {"size_kb": round(create_body.stat().st_size / 1024)}
            for name, (method, path, body) in scripts.items():
                script = work / f"{name}.lua"
                script.write_text(lua(method, path, body, token))
                wrk(suite.gateway + path, script, 2)  # warm-up
                results[name] = wrk(suite.gateway + path, script, args.seconds)
            canonical_content = canonical(AppletCreate.model_validate(document))
            dsn = infra.database_url("applets").replace("+asyncpg", "")
            results["floor"] = asyncio.run(floor(dsn, canonical_content, args.repeat))
    finally:
        run_sync(_drop_broker_names(infra))
        run_sync(_drop_database(infra))
        shutil.rmtree(work, ignore_errors=True)
    for name in ("create", "replace", "rewrite"):
        results[name]["ratio_p50"] = results[name]["p50_ms"] / results["floor"]["p50_ms"]
        results[name]["ratio_p99"] = results[name]["p99_ms"] / results["floor"]["p99_ms"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--activities", type=int, default=20)
    parser.add_argument("--items", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=100, help="floor repetitions")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"applet of {args.activities} x {args.items} items, {results['size_kb']} KB of JSON")
    print(f"{'':28} {'requests':>9} {'p50 ms':>9} {'p99 ms':>9} {'x floor p50':>12} {'p99':>6}")
    for name, label in (("floor", "floor (asyncpg executemany)"),
                        ("create", "POST /applets"),
                        ("replace", "PUT, new name"),
                        ("rewrite", "PUT, every question new")):  # fmt: skip
        row = results[name]
        ratio = f"{row['ratio_p50']:12.2f} {row['ratio_p99']:6.2f}" if "ratio_p50" in row else ""
        print(f"{label:28} {row['requests']:9d} {row['p50_ms']:9.1f} {row['p99_ms']:9.1f} {ratio}")
        if row.get("non_2xx"):
            print(f"  !! {row['non_2xx']} answers were not 2xx")


if __name__ == "__main__":
    main()
