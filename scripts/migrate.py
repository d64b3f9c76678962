"""Bootstrap (database, roles, schemas) and migrate every service, in one process.

``make migrate`` runs this; each service's own ``tessera-<name> db bootstrap|migrate`` does
the same for one service (what a deploy job of one service runs).
"""

from __future__ import annotations

import asyncio
import sys

from tessera.common import suite
from tessera.common.bootstrap import bootstrap_database
from tessera.common.migrations import upgrade


def main(services: list[str]) -> None:
    specs = suite.specs()
    for name in services or list(specs):
        spec = specs[name]
        settings = spec.settings()
        created = asyncio.run(bootstrap_database(settings))
        upgrade(spec.migrations, settings)
        print(f"{name}: {', '.join(created) or 'bootstrapped'}; migrated to head", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
