"""The sync service's HTTP routes: MISP's, under ``/sync/`` (``PyMISP("http://host/sync/",
key)`` works), one module per resource; no SQL here."""

from tessera.sync.api.instance import router as instance

__all__ = ["ROUTERS"]

ROUTERS = [instance]
