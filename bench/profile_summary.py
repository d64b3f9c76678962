"""Summarise a py-spy raw profile: the top self-time and inclusive frames, by library.

    .venv/bin/py-spy record -r 200 -f raw -o stack.txt --pid <pid>
    uv run python bench/profile_summary.py stack.txt --top 25

Frames are grouped by function (line numbers dropped). "self" is the share of samples with
the function on top of the stack, "incl" the share with it anywhere on the stack (counted
once per sample). The libraries of the event path are listed apart.
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

LIBRARIES = ("tessera", "faststream", "sqlalchemy", "aio_pika", "aiormq", "pamqp", "asyncpg",
             "opentelemetry", "pydantic", "structlog", "asyncio")  # fmt: skip


def library(frame: str) -> str:
    path = frame.rpartition("(")[2]
    for name in LIBRARIES:
        if path.startswith((f"{name}/", f"{name}.")) or f"/{name}/" in path:
            return name
    return "other"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    libs_self: collections.Counter[str] = collections.Counter()
    libs_incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in args.profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";") if f]
        if not frames:
            continue
        own[frames[-1]] += n
        libs_self[library(frames[-1])] += n
        for f in set(frames):
            incl[f] += n
        for lib in {library(f) for f in frames}:
            libs_incl[lib] += n

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    print(f"{total} samples")
    print("by library (self / inclusive):")
    for lib, n in libs_self.most_common():
        print(f"  {pct(n)} {pct(libs_incl[lib])}  {lib}")
    print(f"top {args.top} self:")
    for f, n in own.most_common(args.top):
        print(f"  {pct(n)}  {f[:140]}")
    print(f"top {args.top} inclusive, event-path libraries only:")
    shown = 0
    for f, n in incl.most_common():
        if library(f) in ("other", "asyncio"):
            continue
        print(f"  {pct(n)}  {f[:140]}")
        shown += 1
        if shown >= args.top:
            break


if __name__ == "__main__":
    main()
