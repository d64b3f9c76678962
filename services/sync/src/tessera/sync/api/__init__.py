"""The sync service's HTTP routes: MISP's, under ``/sync/`` (``PyMISP("http://host/sync/",
key)`` works), one module per resource; no SQL here."""

from tessera.sync.api.attributes import router as attributes
from tessera.sync.api.blocklists import router as blocklists
from tessera.sync.api.events import router as events
from tessera.sync.api.feeds import export as feed_export
from tessera.sync.api.feeds import router as feeds
from tessera.sync.api.instance import router as instance
from tessera.sync.api.objects import router as objects
from tessera.sync.api.search import router as search
from tessera.sync.api.servers import router as servers
from tessera.sync.api.sharing_groups import router as sharing_groups
from tessera.sync.api.sightings import router as sightings
from tessera.sync.api.tags import router as tags

__all__ = ["ROUTERS"]

ROUTERS = [
    instance, servers, feeds, feed_export, events, attributes, objects, tags, sightings, search,
    blocklists, sharing_groups,
]  # fmt: skip
