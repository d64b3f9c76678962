"""The sync service's HTTP routes: MISP's, under ``/sync/`` (``PyMISP("http://host/sync/",
key)`` works), one module per resource; no SQL here."""

from tessera.sync.api.instance import router as instance
from tessera.sync.api.servers import router as servers

__all__ = ["ROUTERS"]

ROUTERS = [instance, servers]
