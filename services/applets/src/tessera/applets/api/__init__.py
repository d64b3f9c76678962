"""The applets service's HTTP routes, one module per resource; no SQL here."""

from tessera.applets.api.applets import router as applets
from tessera.applets.api.exchange import router as exchange
from tessera.applets.api.people import router as people
from tessera.applets.api.people import tokens
from tessera.applets.api.versions import router as versions

__all__ = ["ROUTERS"]

# links answered by token first: their paths would otherwise read as /applets/{applet_id}/...
ROUTERS = [tokens, exchange, applets, versions, people]
