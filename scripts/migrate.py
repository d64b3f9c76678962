"""Bootstrap (database, roles, schemas) and migrate every service, in one process.

``make migrate`` runs this; each service's own ``tessera-<name> db bootstrap|migrate`` does
the same for one service (what a deploy job of one service runs).
"""

from __future__ import annotations

import asyncio
import importlib
import sys

from tessera.common.bootstrap import bootstrap_database
from tessera.common.migrations import upgrade

SERVICES = ["auth", "applets", "answers", "mailer", "sync", "chat"]


def main(services: list[str]) -> None:
    for name in services or SERVICES:
        settings = importlib.import_module(f"tessera.{name}.settings").Settings()
        migrations = importlib.import_module(f"tessera.{name}.app").MIGRATIONS
        created = asyncio.run(bootstrap_database(settings))
        upgrade(migrations, settings)
        print(f"{name}: {', '.join(created) or 'bootstrapped'}; migrated to head", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
