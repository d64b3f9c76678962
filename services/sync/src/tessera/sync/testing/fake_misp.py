"""A fake remote MISP serving generated events, for the sync service's tests and the bench.

What a pulling or pushing MISP server asks of a remote (``Server::pull``, ``ServerSyncTool``)
is answered in MISP 2.5's shapes, from events generated on the fly, never held in memory:

* ``servers/getVersion``, ``users/view/me``, ``attributes/describeTypes``;
* ``events/index`` (GET or POST; ``minimal``, ``published``, ``timestamp``, ``org``, ``limit``
  and ``page``), answering ``304`` to a matching ``If-None-Match`` and sending ``ETag`` (the
  SHA-1 of the body) only when asked with one, as MISP's ``RestResponseComponent`` does;
* ``events/view/{id|uuid}`` (GET, POST, HEAD; named parameters ``deleted[]:0/deleted[]:1``,
  ``excludeLocalTags:1``, ``metadata:1``) **streamed** in chunks of attributes: a 150,000
  attribute event costs the fake a chunk, not the document;
* ``sightings/restSearch/event``, ``events/filterEventIdsForPush``, ``events/add``,
  ``events/edit/{id|uuid}`` with MISP's rules (404 with ``Location`` when the event exists,
  403 "not newer than the local copy", 403 for a deleted, hence blocklisted, uuid);
* the sighting push: ``sightings/filterSightingUuidsForPush/{event}`` (the posted uuids the
  fake holds for the event: generated, carried by a pushed event, or received) and
  ``sightings/bulkSaveSightings/{event}`` (those new, of the event's attributes, kept by uuid;
  the event's ``sighting_timestamp`` in the index moves on);
* protected events (given a ``signing_key``): an event added with ``protected`` is viewed
  with the fake's ``x-pgp-signature`` of the body, as MISP signs it (``unsigned`` and
  ``tampered`` uuids are served without it, or with a body changed after signing); the
  signature a push came with is kept (:attr:`PushedEvent.signature`);
* a MISP feed under ``/feed/``: ``manifest.json``, ``hashes.csv`` and ``<uuid>.json`` as
  PyMISP's ``MISPEvent.to_feed`` writes them, with ``ETag``/``304`` as a static web server.

Every MISP route wants ``Authorization: <key>`` (403 in MISP's words otherwise); the feed is
public. :class:`Counters` say what was asked and sent, so a test can assert that a re-pull
downloaded only what changed. For a fake in another process, ``GET /_fake/counters``,
``GET /_fake/uuids``, ``POST /_fake/reset``, and ``POST /_fake/bump`` or ``/_fake/delete``
with ``{"uuids": [...]}`` or ``{"first": k}`` do the same over HTTP (with the key; not
counted).

Generation is deterministic: an event's uuid, attributes and timestamps depend only on
``(seed, n)`` and its revision, which :meth:`FakeMisp.bump` raises (the event's timestamp
moves an hour on and one more attribute gets a new value and timestamp, its uuid kept).

In-process::

    with FakeMisp(Corpus(events=100, attributes=50)) as fake:   # uvicorn in a thread
        client = httpx.Client(base_url=fake.url, headers={"Authorization": fake.key})

or ``httpx.ASGITransport(app=fake)`` without a socket (it buffers whole responses). As a
process, for the bench (prints ``PORT <n>`` when it listens, ``COUNTERS {...}`` on exit)::

    python -m tessera.sync.testing.fake_misp --port 0 --events 1000 --attributes 1000
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import hmac
import json
import re
import signal
import socket
import threading
import time
import uuid as uuid_module
import zlib
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

import uvicorn
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from tessera.sync import signing
from tessera.sync.misp_types import pymisp_data

__all__ = [
    "DEFAULT_KEY",
    "EPOCH",
    "Corpus",
    "Counters",
    "FakeMisp",
    "PushedEvent",
    "event_uuid",
    "main",
    "make_event",
]

DEFAULT_KEY = "F4keM1spSyncKey0000000000000000000000000"
"""The fixed API key (40 characters, as MISP's) the fake accepts unless told another."""

EPOCH = 1_700_000_000
"""Event ``n`` was created at ``EPOCH + 60 n`` (revision 0): old enough to be in the past,
fixed so that two runs generate the same bytes."""

VERSION = "2.5.1"
_CHUNK = 512  # attributes per streamed chunk (~230 kB)
_REVISION_S = 3600  # how far a bump moves an event's timestamp

Json = dict[str, Any]

# -- vocabulary ------------------------------------------------------------------------------

_WORDS = (
    "amber", "basalt", "cobalt", "delta", "ember", "falcon", "granite", "harbor",
    "indigo", "juniper", "kestrel", "lumen", "mistral", "nimbus", "onyx", "pylon",
    "quartz", "raven", "sable", "tundra", "umber", "vortex", "willow", "xenon",
    "yonder", "zephyr", "aspen", "birch", "cedar", "dune", "fjord", "glacier",
)  # fmt: skip
_TLDS = ("com", "net", "org", "info", "biz", "io", "ru", "cn", "xyz", "top", "online", "site")
_SUBDOMAINS = ("www", "mail", "cdn", "api", "login", "update", "vpn", "ns1")
_PATHS = ("wp-admin", "gate", "panel", "api", "update", "cdn", "static", "login")
_EXTENSIONS = ("exe", "dll", "js", "vbs", "ps1", "docm", "xlsm", "zip", "lnk", "hta")
_PORTS = (80, 443, 8080, 8443, 4444, 53, 25, 1337)
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:{v}.0) like Gecko",
    "python-requests/2.{v}.0",
    "curl/7.{v}.1",
)


def _word(b: int) -> str:
    return _WORDS[b % len(_WORDS)]


def _ip(m: bytes, at: int = 0) -> str:
    return f"{1 + m[at] % 223}.{m[at + 1]}.{m[at + 2]}.{1 + m[at + 3] % 254}"


def _domain(m: bytes) -> str:
    return f"{_word(m[0])}{_word(m[1])}-{m[2:4].hex()}.{_TLDS[m[4] % len(_TLDS)]}"


def _filename(m: bytes) -> str:
    return f"{_word(m[0])}_{m[1:4].hex()}.{_EXTENSIONS[m[4] % len(_EXTENSIONS)]}"


# Values are made from 44 bytes of hash (``m``): the same bytes, the same value.
_VALUES: dict[str, Callable[[bytes], str]] = {
    "ip-dst": _ip,
    "ip-src": _ip,
    "domain": _domain,
    "hostname": lambda m: f"{_SUBDOMAINS[m[5] % 8]}.{_domain(m)}",
    "url": lambda m: f"https://{_domain(m)}/{_PATHS[m[6] % 8]}/{m[7:11].hex()}.php",
    "md5": lambda m: m[12:28].hex(),
    "sha1": lambda m: m[12:32].hex(),
    "sha256": lambda m: m[12:44].hex(),
    "email-src": lambda m: f"{_word(m[8])}.{_word(m[9])}@{_domain(m)}",
    "filename": _filename,
    "ip-dst|port": lambda m: f"{_ip(m, 8)}|{_PORTS[m[5] % 8]}",
    "domain|ip": lambda m: f"{_domain(m)}|{_ip(m, 8)}",
    "filename|md5": lambda m: f"{_filename(m)}|{m[12:28].hex()}",
    "filename|sha256": lambda m: f"{_filename(m)}|{m[12:44].hex()}",
    "user-agent": lambda m: _AGENTS[m[0] % 4].format(v=30 + m[1] % 90),
    "text": lambda m: f"Seen in {_word(m[0])} {_word(m[1])} activity, wave {m[2]}",
    "link": lambda m: f"https://blog.example.org/{_word(m[0])}-{_word(m[1])}-{m[2:4].hex()}",
    "AS": lambda m: str(1 + int.from_bytes(m[0:3], "big")),
    "vulnerability": lambda m: f"CVE-{2015 + m[0] % 10}-{1000 + int.from_bytes(m[1:3]) % 50000}",
    "regkey": lambda m: f"HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\{_word(m[0])}",
    "mutex": lambda m: f"Global\\{_word(m[0])}{m[1:5].hex()}",
}


@dataclass(frozen=True)
class _Kind:
    type: str
    categories: tuple[str, ...]
    to_ids: bool
    weight: int  # out of 64


_NETWORK = ("Network activity", "Payload delivery")
_PAYLOAD = ("Payload delivery", "Artifacts dropped", "Payload installation")
_KINDS = (
    _Kind("ip-dst", _NETWORK, True, 8),
    _Kind("domain", _NETWORK, True, 7),
    _Kind("url", _NETWORK, True, 6),
    _Kind("md5", _PAYLOAD, True, 6),
    _Kind("sha256", _PAYLOAD, True, 6),
    _Kind("sha1", _PAYLOAD, True, 4),
    _Kind("ip-src", _NETWORK, True, 4),
    _Kind("hostname", _NETWORK, True, 4),
    _Kind("email-src", ("Payload delivery", "Social network"), True, 3),
    _Kind("filename", _PAYLOAD, True, 3),
    _Kind("ip-dst|port", ("Network activity",), True, 2),
    _Kind("domain|ip", ("Network activity",), True, 2),
    _Kind("filename|md5", _PAYLOAD, True, 1),
    _Kind("filename|sha256", _PAYLOAD, True, 1),
    _Kind("user-agent", ("Network activity",), False, 1),
    _Kind("text", ("Other",), False, 1),
    _Kind("link", ("External analysis",), False, 1),
    _Kind("AS", ("Network activity",), False, 1),
    _Kind("vulnerability", ("External analysis",), False, 1),
    _Kind("regkey", ("Persistence mechanism",), True, 1),
    _Kind("mutex", ("Artifacts dropped",), True, 1),
)
_BY_BYTE = tuple(k for k, kind in enumerate(_KINDS) for _ in range(kind.weight))
assert len(_BY_BYTE) == 64


def _tag(tag_id: int, name: str, colour: str, *, local: bool = False) -> Json:
    return {
        "id": str(tag_id), "name": name, "colour": colour, "exportable": True, "user_id": "0",
        "hide_tag": False, "numerical_value": None, "is_galaxy": False,
        "is_custom_galaxy": False, "local_only": False, "local": local,
        "relationship_type": None,
    }  # fmt: skip


_TLP = {
    0: _tag(1, "tlp:red", "#CC0033"),
    1: _tag(2, "tlp:amber", "#FFC000"),
    2: _tag(2, "tlp:amber", "#FFC000"),
    3: _tag(3, "tlp:clear", "#ffffff"),
    4: _tag(4, "tlp:green", "#339900"),
}
_OSINT = _tag(5, "type:OSINT", "#004646")
_LOCAL = _tag(6, 'workflow:state="incomplete"', "#ff9900", local=True)
_ATTRIBUTE_TAG = _tag(7, 'admiralty-scale:source-reliability="b"', "#0a4a8f")


def _feed_tag(tag: Json) -> Json:
    """PyMISP's ``MISPTag._to_feed``: sorted keys, ``relationship_type`` as ``""``."""
    return {"colour": tag["colour"], "local": tag["local"], "name": tag["name"],
            "relationship_type": ""}  # fmt: skip


_ATTRIBUTE_TAG_VIEW = json.dumps([_ATTRIBUTE_TAG], separators=(",", ":"))
_ATTRIBUTE_TAG_FEED = json.dumps(
    [_feed_tag(_ATTRIBUTE_TAG)],
    separators=(",", ":"),
)

# -- deterministic identities ----------------------------------------------------------------


def _digest(*parts: object) -> bytes:
    return hashlib.blake2b("/".join(map(str, parts)).encode(), digest_size=64).digest()


def _as_uuid(d: bytes) -> str:
    """A version 4 (random) uuid made of the first 16 bytes of ``d``."""
    h = d[:16].hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def event_uuid(n: int, *, seed: int = 0) -> str:
    """The uuid of generated event ``n`` (stable for a seed, whatever its revision)."""
    return _as_uuid(_digest("event", seed, n))


@dataclass(frozen=True)
class _Org:
    id: int
    name: str
    uuid: str

    def view(self, *, local: bool) -> Json:
        return {"id": str(self.id), "name": self.name, "uuid": self.uuid, "local": local}


HOST = _Org(1, "Fake MISP", "5f6a1c2e-0000-4000-8000-00000000fa4e")
"""The organisation that runs the fake (``Org`` of its events, the sync user's)."""


@functools.lru_cache(maxsize=256)
def _creator(seed: int, k: int) -> _Org:
    d = _digest("org", seed, k)
    return _Org(k + 2, f"{_word(d[16]).capitalize()} CERT {k}", _as_uuid(d))


def _sharing_group(orgc: _Org) -> Json:
    return {
        "id": "1", "name": "Fake sharing group", "releasability": "Members only",
        "description": "", "uuid": "5f6a1c2e-0000-4000-8000-000000005a6e",
        "organisation_uuid": HOST.uuid, "org_id": "1", "sync_user_id": "0", "active": True,
        "created": "2023-01-01 00:00:00", "modified": "2023-01-01 00:00:00", "local": True,
        "roaming": False, "Organisation": HOST.view(local=True) | {"local": True},
        "SharingGroupOrg": [
            {"id": str(i + 1), "sharing_group_id": "1", "org_id": str(org.id), "extend": i == 0,
             "Organisation": {"id": str(org.id), "name": org.name, "uuid": org.uuid}}
            for i, org in enumerate((HOST, orgc))
        ],
        "SharingGroupServer": [],
    }  # fmt: skip


# -- one event -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """Everything an event's bytes depend on."""

    n: int
    attributes: int
    seed: int
    orgc: _Org
    distribution: int = 3
    published: bool = True
    revision: int = 0
    deleted_every: int = 0
    sightings: int = 0
    locked: bool = True
    first_attribute_id: int = 1
    epoch: int = EPOCH

    @property
    def id(self) -> int:
        return self.n + 1

    @functools.cached_property
    def meta(self) -> bytes:
        return _digest("event", self.seed, self.n)

    @property
    def uuid(self) -> str:
        return _as_uuid(self.meta)

    @property
    def created(self) -> int:
        return self.epoch + 60 * self.n

    @property
    def timestamp(self) -> int:
        return self.created + _REVISION_S * self.revision

    @property
    def publish_timestamp(self) -> int:
        return self.timestamp + 30 if self.published else 0

    @property
    def sighting_timestamp(self) -> int:
        return self.created + 600 + self.sighted - 1 if self.sighted else 0

    @property
    def sighted(self) -> int:
        return min(self.sightings, self.attributes)

    @property
    def attribute_count(self) -> int:
        """Attributes not deleted, as MISP counts them."""
        gone = self.attributes // self.deleted_every if self.deleted_every else 0
        return self.attributes - gone

    @property
    def info(self) -> str:
        m = self.meta
        return f"{_word(m[18]).capitalize()} {_word(m[19])} campaign #{self.n}"

    def fields(self) -> Json:
        """The event's own columns, in ``events/view``'s order (``Event::fetchEvent``'s
        fields: no ``sighting_timestamp``, which only the index shows)."""
        m = self.meta
        return {
            "id": str(self.id), "orgc_id": str(self.orgc.id), "org_id": str(HOST.id),
            "date": datetime.fromtimestamp(self.created, UTC).date().isoformat(),
            "threat_level_id": str(1 + m[16] % 4), "info": self.info,
            "published": self.published, "uuid": self.uuid,
            "attribute_count": str(self.attribute_count), "analysis": str(m[17] % 3),
            "timestamp": str(self.timestamp), "distribution": str(self.distribution),
            "proposal_email_lock": False, "locked": self.locked,
            "publish_timestamp": str(self.publish_timestamp),
            "sharing_group_id": "1" if self.distribution == 4 else "0",
            "disable_correlation": False, "extends_uuid": "", "protected": False,
        }  # fmt: skip

    def tags(self, *, exclude_local: bool) -> list[Json]:
        tags = [_TLP[self.distribution], _OSINT]
        return tags if exclude_local else [*tags, _LOCAL]


class _Row(NamedTuple):
    i: int
    uuid: str
    kind: _Kind
    category: str
    value: str
    timestamp: int
    deleted: bool
    tagged: bool


def _rows(spec: _Spec, start: int = 0, stop: int | None = None) -> Iterator[_Row]:
    """The attributes ``start:stop`` of ``spec``: one BLAKE2b per attribute (two when a bump
    changed its value), nothing kept.

    Bump (revision) ``k`` changes attribute ``(k - 1) % attributes``: its value (hashed with
    how many bumps changed it) and its timestamp (the event's at that revision)."""
    prefix = hashlib.blake2b(f"attribute/{spec.seed}/{spec.n}/".encode(), digest_size=64)
    every, count, created = spec.deleted_every, spec.attributes, spec.created
    laps, extra = divmod(spec.revision, count) if count else (0, 0)
    for i in range(start, count if stop is None else min(stop, count)):
        h = prefix.copy()
        h.update(b"%d" % i)
        d = h.digest()
        kind = _KINDS[_BY_BYTE[d[16] % 64]]
        version = laps + (i < extra)
        if version:
            timestamp = created + _REVISION_S * ((version - 1) * count + i + 1)
            h.update(b"/%d" % version)
            material = h.digest()[20:]
        else:
            timestamp = created - i % 86_400
            material = d[20:]
        yield _Row(
            i,
            _as_uuid(d),
            kind,
            kind.categories[d[17] % len(kind.categories)],
            _VALUES[kind.type](material),
            timestamp,
            bool(every) and (i + 1) % every == 0,
            d[18] < 16,
        )


def _sighting(spec: _Spec, row: _Row) -> Json:
    """A sighting of the ``row.i``-th attribute (the first ``sightings`` were seen once)."""
    return {
        "id": str(spec.first_attribute_id + row.i),
        "attribute_id": str(spec.first_attribute_id + row.i),
        "event_id": str(spec.id), "org_id": str(spec.orgc.id),
        "date_sighting": str(spec.created + 600 + row.i),
        "uuid": _as_uuid(_digest("sighting", spec.seed, spec.n, row.i)),
        "source": "", "type": "0",
    }  # fmt: skip


def _organisation(org: _Org) -> Json:
    return {"id": str(org.id), "uuid": org.uuid, "name": org.name}


def _view_extras(spec: _Spec, row: _Row) -> str:
    """An attribute's ``Tag`` and ``Sighting``, when it has some."""
    tail = ',"Tag":' + _ATTRIBUTE_TAG_VIEW if row.tagged else ""
    if row.i < spec.sighted:
        seen = _sighting(spec, row) | {"attribute_uuid": row.uuid,
                                        "Organisation": _organisation(spec.orgc)}  # fmt: skip
        tail += ',"Sighting":' + _dump([seen])
    return tail


def _view_attribute(row: _Row, attribute_id: int, event_id: int, tail: str) -> str:
    kind = row.kind
    return (
        f'{{"id":"{attribute_id}","type":"{kind.type}",'
        f'"category":"{row.category}","to_ids":{"true" if kind.to_ids else "false"},'
        f'"uuid":"{row.uuid}","event_id":"{event_id}","distribution":"5",'
        f'"timestamp":"{row.timestamp}","comment":"","sharing_group_id":"0",'
        f'"deleted":{"true" if row.deleted else "false"},"disable_correlation":false,'
        f'"object_id":"0","object_relation":null,"first_seen":null,"last_seen":null,'
        f'"value":{encode_basestring(row.value)},"Galaxy":[],"ShadowAttribute":[]{tail}}}'
    )


def _feed_attribute(row: _Row) -> str:
    kind = row.kind
    tail = ',"Tag":' + _ATTRIBUTE_TAG_FEED if row.tagged else ""
    return (
        f'{{"category":"{row.category}","comment":"","deleted":false,'
        f'"disable_correlation":false,"timestamp":"{row.timestamp}",'
        f'"to_ids":{"true" if kind.to_ids else "false"},"type":"{kind.type}",'
        f'"uuid":"{row.uuid}","value":{encode_basestring(row.value)}{tail}}}'
    )


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _chunks(
    head: str, spec: _Spec, render: Callable[[_Row], str | None], tail: str
) -> Iterator[tuple[bytes, int]]:
    """``head``, the rendered attributes joined by commas, ``tail``: as chunks of at most
    :data:`_CHUNK` attributes, each with how many attributes it holds."""
    yield head.encode(), 0
    first = True
    for start in range(0, spec.attributes, _CHUNK):
        batch = [text for row in _rows(spec, start, start + _CHUNK)
                 if (text := render(row)) is not None]  # fmt: skip
        if batch:
            yield ("" if first else ",").encode() + ",".join(batch).encode(), len(batch)
            first = False
    yield tail.encode(), 0


def _view_chunks(
    spec: _Spec, *, deleted: frozenset[bool], exclude_local_tags: bool, metadata: bool
) -> Iterator[tuple[bytes, int]]:
    """``events/view``: ``{"Event": {...}}`` in the order ``JSONConverterTool::convert``
    writes it, the attributes streamed."""
    body = spec.fields()
    body["Org"] = HOST.view(local=True)
    body["Orgc"] = spec.orgc.view(local=False)
    if spec.distribution == 4:
        body["SharingGroup"] = _sharing_group(spec.orgc)
    rest: Json = {
        "ShadowAttribute": [], "RelatedEvent": [], "Galaxy": [], "Object": [],
        "EventReport": [], "CryptographicKey": [],
        "Tag": spec.tags(exclude_local=exclude_local_tags),
    }  # fmt: skip
    if metadata:
        del rest["Object"]
        yield b'{"Event":' + _dump(body | rest).encode() + b"}", 0
        return
    head = '{"Event":' + _dump(body)[:-1] + ',"Attribute":['
    tail = "]," + _dump(rest)[1:] + "}"

    first_id, event_id, sighted = spec.first_attribute_id, spec.id, spec.sighted

    def render(row: _Row) -> str | None:
        if row.deleted not in deleted:
            return None
        tail = _view_extras(spec, row) if row.tagged or row.i < sighted else ""
        return _view_attribute(row, first_id + row.i, event_id, tail)

    yield from _chunks(head, spec, render, tail)


def _feed_tags(spec: _Spec) -> list[Json]:
    return [_feed_tag(tag) for tag in spec.tags(exclude_local=True)]


def _feed_chunks(spec: _Spec) -> Iterator[tuple[bytes, int]]:
    """A feed's ``<uuid>.json``: PyMISP's ``to_feed()`` (sorted keys, integers as strings,
    ``Orgc`` as ``{name, uuid}``, no ids, no distribution, no local tags, no deleted
    attributes)."""
    view = spec.fields()
    body = {key: view[key] for key in sorted((
        "analysis", "date", "extends_uuid", "info", "protected", "publish_timestamp",
        "published", "threat_level_id", "timestamp", "uuid"))}  # fmt: skip
    body["Orgc"] = {"name": spec.orgc.name, "uuid": spec.orgc.uuid}
    body["Tag"] = _feed_tags(spec)
    head = '{"Event":' + _dump(body)[:-1] + ',"Attribute":['

    def render(row: _Row) -> str | None:
        return None if row.deleted else _feed_attribute(row)

    yield from _chunks(head, spec, render, "]}}")


def _manifest_entry(spec: _Spec) -> Json:
    view = spec.fields()
    return {
        "Orgc": {"name": spec.orgc.name, "uuid": spec.orgc.uuid},
        "Tag": _feed_tags(spec),
        "info": spec.info,
        "date": view["date"],
        "analysis": int(view["analysis"]),
        "threat_level_id": int(view["threat_level_id"]),
        "timestamp": spec.timestamp,
    }


def _hash_lines(spec: _Spec) -> Iterator[str]:
    """``hashes.csv``: the MD5 of every value (of each half of a composite), then the uuid."""
    for row in _rows(spec):
        if row.deleted:
            continue
        halves = row.value.split("|") if "|" in row.kind.type else (row.value,)
        for half in halves:
            yield f"{hashlib.md5(half.encode(), usedforsecurity=False).hexdigest()},{spec.uuid}\n"


def make_event(
    n: int,
    *,
    attributes: int,
    seed: int = 0,
    orgc: Mapping[str, Any] | None = None,
    revision: int = 0,
    distribution: int = 3,
    published: bool = True,
    deleted_every: int = 0,
    sightings: int = 0,
    locked: bool = True,
    include_deleted: bool = True,
    exclude_local_tags: bool = False,
) -> Json:
    """Event ``n`` as ``events/view`` answers it (``{"Event": {...}}``), built in memory:
    the same bytes :class:`FakeMisp` streams. ``orgc`` (``{"name", "uuid"}``, optionally
    ``"id"``) overrides the generated creator organisation; ``revision`` is how many times
    it was bumped; every ``deleted_every``-th attribute is soft-deleted (and left out unless
    ``include_deleted``); the first ``sightings`` attributes were sighted once."""
    creator = _creator(seed, 0)
    if orgc is not None:
        creator = _Org(int(orgc.get("id", creator.id)), orgc["name"], str(orgc["uuid"]))
    spec = _Spec(
        n, attributes, seed, creator, distribution=distribution, published=published,
        revision=revision, deleted_every=deleted_every, sightings=sightings, locked=locked,
        first_attribute_id=n * attributes + 1,
    )  # fmt: skip
    deleted = frozenset({False, True}) if include_deleted else frozenset({False})
    chunks = _view_chunks(
        spec, deleted=deleted, exclude_local_tags=exclude_local_tags, metadata=False
    )
    document: Json = json.loads(b"".join(chunk for chunk, _ in chunks))
    return document


# -- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Corpus:
    """What the fake serves. Event ``n`` (``0 <= n < events``) has ``attributes``
    attributes; with ``huge``, one more event (``n == events``) has that many. Event ``n``
    has distribution ``distributions[n % len]``, is created by one of ``orgs``
    organisations, is unpublished when ``unpublished_every`` divides ``n + 1``; every
    ``deleted_every``-th attribute is soft-deleted; the first ``sightings`` attributes of each
    event were sighted. ``locked`` events came by sync, so a sync user may push newer
    versions (MISP's ``locked``)."""

    events: int = 10
    attributes: int = 10
    huge: int = 0
    seed: int = 0
    distributions: tuple[int, ...] = (3,)
    orgs: int = 1
    unpublished_every: int = 0
    deleted_every: int = 0
    sightings: int = 0
    locked: bool = True
    epoch: int = EPOCH

    @property
    def size(self) -> int:
        """How many events are generated (the huge one included)."""
        return self.events + (1 if self.huge else 0)


@dataclass
class PushedEvent:
    """An event a client added or edited: what the fake keeps of it (its ``Event`` as sent,
    with the fake's ids)."""

    id: int
    uuid: str
    timestamp: int
    published: bool
    orgc_uuid: str
    body: Json
    signature: str | None = None
    """the ``x-pgp-signature`` the event came with"""


@dataclass
class Counters:
    """What the fake was asked and answered (``/_fake/`` excluded). ``requests`` and
    ``statuses`` count every request by route (``"events/view"``, ``"feed/event"``...) and
    status; ``views`` and ``feed_views`` count the event bodies served, by uuid (not 304s,
    not HEAD); ``pushes`` counts push outcomes (``added``, ``edited``, ``exists``,
    ``not newer``, ``blocked``, ``empty``, ``forbidden``) and ``sightings`` saved."""

    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    views: Counter[str] = field(default_factory=Counter)
    feed_views: Counter[str] = field(default_factory=Counter)
    pushes: Counter[str] = field(default_factory=Counter)
    attributes_sent: int = 0
    bytes_sent: int = 0

    @property
    def not_modified(self) -> int:
        return self.statuses[304]

    def reset(self) -> None:
        for counter in (self.requests, self.statuses, self.views, self.feed_views, self.pushes):
            counter.clear()
        self.attributes_sent = self.bytes_sent = 0

    def snapshot(self) -> Json:
        return {
            "requests": dict(self.requests),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "views": sum(self.views.values()),
            "feed_views": sum(self.feed_views.values()),
            "not_modified": self.not_modified,
            "pushes": dict(self.pushes),
            "attributes_sent": self.attributes_sent,
            "bytes_sent": self.bytes_sent,
        }


class _Problem(Exception):
    """MISP's error answer: ``{"name", "message", "url"}`` and a status."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.headers = dict(headers or {})


_NOT_AUTHORISED = (
    "Authentication failed. Please make sure you pass the API key of an API enabled user "
    "along in the Authorization header."
)
_NOT_NEWER = "Event could not be saved: Event in the request not newer than the local copy."
_EMPTY = "Received a published event that was empty. Event add process blocked."
_EXISTS = "Event already exists, if you would like to edit it, use the url in the location header."
_RELATIVE = re.compile(r"^(\d+)([dhms])$")
_UNITS = {"d": 86_400, "h": 3600, "m": 60, "s": 1}
_INDEX_FILTERS = (
    "all", "attribute", "published", "eventid", "datefrom", "dateuntil", "org", "eventinfo",
    "tag", "tags", "distribution", "sharinggroup", "analysis", "threatlevel", "email",
    "hasproposal", "timestamp", "publishtimestamp", "publish_timestamp", "minimal", "value",
)  # fmt: skip


def _truthy(value: Any) -> bool:
    if isinstance(value, list):
        return any(_truthy(v) for v in value)
    return str(value).lower() not in ("", "0", "false", "none")


def _strip_etag(etag: str) -> str:
    """``If-None-Match`` without the ``-gzip``/``-br`` that Apache adds, as MISP reads it."""
    bare = etag.strip().strip('"')
    head, dash, mark = bare.rpartition("-")
    return f'"{head}"' if dash and head and mark in ("gzip", "br") else etag.strip()


def _named(segments: Iterable[str]) -> tuple[list[str], Json]:
    """CakePHP's ``/key:value`` and ``/key[]:value`` parameters, and the rest."""
    positional: list[str] = []
    named: Json = {}
    for segment in segments:
        key, colon, value = segment.partition(":")
        if not colon:
            positional.append(segment)
        elif key.endswith("[]"):
            named.setdefault(key[:-2], []).append(value)
        else:
            named[key] = value
    return positional, named


class FakeMisp:
    """A remote MISP serving :class:`Corpus`, as an ASGI app (the instance itself), in a
    thread (:meth:`start`, or ``with``), or as a process (:func:`main`).

    Thread-safe: :meth:`bump`, :meth:`delete` and :attr:`counters` may be used from the
    test's thread while the server runs in its own.
    """

    def __init__(
        self,
        corpus: Corpus | None = None,
        *,
        key: str = DEFAULT_KEY,
        gzip: bool = False,
        clock: Callable[[], float] = time.time,
        signing_key: bytes | None = None,
    ) -> None:
        self.corpus = corpus or Corpus()
        self.signing_key = signing_key
        """the secret key (``signing.NewKey.secret``) that signs protected events' views"""
        self.unsigned: set[str] = set()
        self.tampered: set[str] = set()
        self.key = key
        self.gzip = gzip
        self.counters = Counters()
        self._clock = clock
        self._lock = threading.Lock()
        self._revisions: dict[int, int] = {}
        self._deleted: set[int] = set()
        self._blocklist: set[str] = set()
        self._pushed: dict[str, PushedEvent] = {}
        self._pushed_ids: dict[int, str] = {}
        self._received: dict[str, dict[str, Json]] = {}
        self._sighting_stamps: dict[str, int] = {}
        self._state = 0  # raised by every change, for the caches
        self._cache: dict[tuple[Any, ...], tuple[bytes, str, int]] = {}
        self._by_uuid = {event_uuid(n, seed=self.corpus.seed): n for n in range(self.corpus.size)}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- the corpus --

    def event_uuid(self, n: int) -> str:
        return event_uuid(n, seed=self.corpus.seed)

    def uuids(self) -> list[str]:
        """The uuids of the events served (generated ones not deleted, then pushed ones)."""
        with self._lock:
            generated = [u for u, n in self._by_uuid.items()
                         if n not in self._deleted and u not in self._pushed]  # fmt: skip
            return generated + list(self._pushed)

    @property
    def pushed(self) -> Mapping[str, PushedEvent]:
        return self._pushed

    @property
    def received_sightings(self) -> Mapping[str, Mapping[str, Json]]:
        """The sightings received by ``bulkSaveSightings``: event uuid → sighting uuid →
        sighting as sent."""
        return self._received

    def bump(self, uuids: Iterable[str], *, times: int = 1) -> None:
        """Edit generated events: each bump moves the timestamp an hour on and changes one
        more attribute (value and timestamp; uuid kept)."""
        with self._lock:
            for uuid in uuids:
                n = self._by_uuid[uuid]
                self._revisions[n] = self._revisions.get(n, 0) + times
            self._changed()

    def delete(self, uuids: Iterable[str]) -> None:
        """Delete events: gone from the index, views and feed, and blocklisted (MISP's
        default), so pushing them back is refused."""
        with self._lock:
            for uuid in uuids:
                self._blocklist.add(uuid)
                if uuid in self._pushed:
                    self._pushed_ids.pop(self._pushed.pop(uuid).id, None)
                if uuid in self._by_uuid:
                    self._deleted.add(self._by_uuid[uuid])
            self._changed()

    def _changed(self) -> None:
        self._state += 1
        self._cache.clear()

    def _spec(self, n: int) -> _Spec:
        corpus = self.corpus
        huge = n == corpus.events
        attributes = corpus.huge if huge else corpus.attributes
        first = n * corpus.attributes + 1
        return _Spec(
            n, attributes, corpus.seed, _creator(corpus.seed, n % max(corpus.orgs, 1)),
            distribution=corpus.distributions[n % len(corpus.distributions)],
            published=not (corpus.unpublished_every and (n + 1) % corpus.unpublished_every == 0),
            revision=self._revisions.get(n, 0), deleted_every=corpus.deleted_every,
            sightings=corpus.sightings, locked=corpus.locked, first_attribute_id=first,
            epoch=corpus.epoch,
        )  # fmt: skip

    def _find(self, ref: str) -> _Spec | PushedEvent | None:
        """An event by id or uuid, as held now."""
        ref = ref.lower()
        with self._lock:
            if ref.isdigit():
                number = int(ref)
                if number in self._pushed_ids:
                    return self._pushed[self._pushed_ids[number]]
                n = number - 1
                if not 0 <= n < self.corpus.size:
                    return None
                ref = self.event_uuid(n)
            if ref in self._pushed:
                return self._pushed[ref]
            n_found = self._by_uuid.get(ref)
            if n_found is None or n_found in self._deleted:
                return None
            return self._spec(n_found)

    def _held(self) -> list[_Spec | PushedEvent]:
        with self._lock:
            held: list[_Spec | PushedEvent] = [
                self._spec(n) for n in range(self.corpus.size)
                if n not in self._deleted and self.event_uuid(n) not in self._pushed
            ]  # fmt: skip
            return held + list(self._pushed.values())

    # -- running --

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve in a thread (uvicorn, its own event loop); answer the base URL."""
        sock = _listen(host, port)
        self._server = uvicorn.Server(self.config())
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-misp", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake MISP did not start")
            time.sleep(0.01)
        self.url = f"http://{host}:{sock.getsockname()[1]}"
        return self.url

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> FakeMisp:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=2,
        )  # fmt: skip

    # -- ASGI --

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path = scope["path"]
        if path.startswith("/_fake/"):
            response = await self._control(request, path)
            await response(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.counters.statuses[message["status"]] += 1
            elif message["type"] == "http.response.body":
                self.counters.bytes_sent += len(message.get("body", b""))
            await send(message)

        route, response = await self._dispatch(request, path)
        self.counters.requests[route] += 1
        await self._compressed(request, response)(scope, receive, counted)

    def _compressed(self, request: Request, response: Response) -> Response:
        if not self.gzip or "gzip" not in request.headers.get("accept-encoding", ""):
            return response
        if response.status_code == 304 or request.method == "HEAD":
            return response
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        headers |= {"content-encoding": "gzip", "vary": "Accept-Encoding"}
        if isinstance(response, StreamingResponse):
            return StreamingResponse(_gzip_stream(response.body_iterator), response.status_code,
                                     headers)  # fmt: skip
        z = zlib.compressobj(1, zlib.DEFLATED, 31)
        body = z.compress(bytes(response.body)) + z.flush()
        return Response(body, response.status_code, headers)

    async def _dispatch(self, request: Request, path: str) -> tuple[str, Response]:
        """The route's name (``events/view``: controller and action) and its answer."""
        segments = [unquote(s) for s in path.split("/") if s]
        if segments[:1] == ["feed"]:
            return self._feed(request, segments[1:])
        if segments and segments[-1].endswith(".json"):
            segments[-1] = segments[-1].removesuffix(".json")
        route = "/".join(segments[:2])
        handler = self._routes.get(route)
        try:
            if not self._authorised(request):
                raise _Problem(403, _NOT_AUTHORISED)
            if handler is None:
                raise _Problem(404, "Not Found")
            positional, named = _named(segments[2:])
            return route, await handler(self, request, positional, named)
        except _Problem as problem:
            return (route if handler else "?"), _problem(problem, path)

    def _authorised(self, request: Request) -> bool:
        sent = request.headers.get("authorization", "")
        return hmac.compare_digest(sent.encode(), self.key.encode())

    # -- MISP's routes --

    async def _version(self, request: Request, args: list[str], named: Json) -> Response:
        return _json({
            "version": VERSION, "pymisp_recommended_version": VERSION, "perm_sync": True,
            "perm_sighting": True, "perm_galaxy_editor": True, "perm_analyst_data": True,
            "uuid": "5f6a1c2e-0000-4000-8000-00000000f00d", "request_encoding": ["gzip"],
            "filter_sightings": True,
        })  # fmt: skip

    async def _me(self, request: Request, args: list[str], named: Json) -> Response:
        if args[:1] != ["me"] and args[:1] != ["1"]:
            raise _Problem(404, "Invalid user or not authorised.")
        return _json(_USER)

    async def _describe_types(self, request: Request, args: list[str], named: Json) -> Response:
        return Response(_describe_types_document(), media_type="application/json")

    async def _index(self, request: Request, args: list[str], named: Json) -> Response:
        params = {**dict(parse_qsl(request.url.query)), **named}
        if request.method == "POST":
            body = await _body(request)
            body = body.get("request", body) if isinstance(body, dict) else None
            if isinstance(body, dict):
                params |= body
        for key in list(params):
            bare = key[6:] if key.startswith("search") else key
            if bare.lower() in _INDEX_FILTERS:
                params[bare.lower()] = params.pop(key)
        relative = any(isinstance(v, str) and _RELATIVE.match(v) for v in _flat(params))
        cache_key = (self._state, json.dumps(params, sort_keys=True, default=str))
        cached = None if relative else self._cache.get(cache_key)
        if cached is None:
            entries = self._index_entries(params)
            body_bytes = _dump(entries).encode()
            cached = (body_bytes, f'"{hashlib.sha1(body_bytes).hexdigest()}"', len(entries))  # noqa: S324
            if not relative:
                self._cache[cache_key] = cached
        content, etag, count = cached
        return _etagged(request, content, etag, {"X-Result-Count": str(count)}, always=False)

    def _index_entries(self, params: Json) -> list[Json]:
        minimal = _truthy(params.get("minimal", ""))
        published = _values(params.get("published"))
        since, until = self._time_range(params.get("timestamp"))
        orgs = _values(params.get("org"))
        entries = []
        for event in self._held():
            if published and not any(_truthy(p) == event.published for p in published):
                continue
            if not _within(event.timestamp, since, until):
                continue
            if orgs and not _org_matches(event, orgs):
                continue
            stamp = self._sighting_stamps.get(event.uuid, 0)
            entries.append(_index_entry(event, minimal=minimal, sighting_stamp=stamp))
        limit = int(params.get("limit") or 0)
        if limit:
            page = max(int(params.get("page") or 1), 1)
            entries = entries[(page - 1) * limit : page * limit]
        return entries

    def _time_range(self, value: Any) -> tuple[int | None, int | None]:
        if value in (None, "", []):
            return None, None
        if isinstance(value, list):
            low, high = [*value, None, None][:2]
            return self._moment(low), self._moment(high)
        return self._moment(value), None

    def _moment(self, value: Any) -> int | None:
        if value in (None, ""):
            return None
        text = str(value)
        relative = _RELATIVE.match(text)
        if relative:
            return int(self._clock()) - int(relative[1]) * _UNITS[relative[2]]
        return int(text)

    async def _view(self, request: Request, args: list[str], named: Json) -> Response:
        if not args:
            raise _Problem(404, "Invalid event")
        event = self._find(args[0])
        if request.method == "HEAD":
            return Response(status_code=404 if event is None else 200)
        if event is None:
            raise _Problem(404, "Invalid event")
        params = {**dict(parse_qsl(request.url.query)), **named}
        if request.method == "POST":
            body = await _body(request)
            if isinstance(body, dict):
                params |= body
        deleted = _deleted_filter(params.get("deleted", 0))
        exclude_local = _truthy(params.get("excludeLocalTags", 0))
        metadata = _truthy(params.get("metadata", 0))
        if isinstance(event, PushedEvent):
            return self._pushed_view(request, event, metadata=metadata)
        etag = _hash_etag(event.uuid, event.revision, sorted(deleted), exclude_local, metadata)
        not_modified = _not_modified(request, etag)
        if not_modified is not None:
            return not_modified
        self.counters.views[event.uuid] += 1
        chunks = _view_chunks(
            event, deleted=deleted, exclude_local_tags=exclude_local, metadata=metadata
        )
        headers = {"ETag": etag} if "if-none-match" in request.headers else {}
        return StreamingResponse(self._counted(chunks), headers=headers,
                                 media_type="application/json")  # fmt: skip

    def _pushed_view(self, request: Request, event: PushedEvent, *, metadata: bool) -> Response:
        etag = _hash_etag(event.uuid, event.timestamp, metadata)
        not_modified = _not_modified(request, etag)
        if not_modified is not None:
            return not_modified
        self.counters.views[event.uuid] += 1
        body = _pushed_body(event, metadata=metadata)
        self.counters.attributes_sent += len(body.get("Attribute", []))
        headers = {"ETag": etag} if "if-none-match" in request.headers else {}
        content = _dump({"Event": body}).encode()
        protected = _truthy(body.get("protected", False))
        if protected and self.signing_key is not None and event.uuid not in self.unsigned:
            headers[signing.SIGNATURE_HEADER] = signing.sign(self.signing_key, content)
            if event.uuid in self.tampered:  # changed on the way, after signing
                content = content.replace(b'"info":"', b'"info":"tampered ', 1)
        return Response(content, headers=headers, media_type="application/json")

    async def _counted(self, chunks: Iterator[tuple[bytes, int]]) -> AsyncIterator[bytes]:
        for chunk, attributes in chunks:
            self.counters.attributes_sent += attributes
            yield chunk

    async def _sightings(self, request: Request, args: list[str], named: Json) -> Response:
        if request.method != "POST":
            raise _Problem(405, "This endpoint requires a POST request.")
        filters = await _body(request)
        if not isinstance(filters, dict):
            filters = {}
        filters = filters.get("request", filters)
        context = args[0] if args else filters.get("context", "")
        if context not in ("", "event", "attribute"):
            raise _Problem(400, f"Invalid context {context}.")
        if context and not (filters.get("id") or filters.get("uuid")):
            raise _Problem(400, "An ID or UUID must be provided if the context is set.")
        wanted = set(_values(filters.get("uuid")))
        since, until = self._sighting_range(filters)
        allowed: set[str] = set()
        refused: set[str] = set()
        for org in _values(filters.get("org_id")):
            (refused if org.startswith("!") else allowed).add(org.lstrip("!"))
        with_uuids = _truthy(filters.get("includeUuid", False))
        found = []
        for event in self._held():
            if isinstance(event, PushedEvent) or not event.sighted:
                continue
            if context == "event" and wanted and event.uuid not in wanted:
                continue
            creator = {event.orgc.uuid, str(event.orgc.id)}
            if (allowed and not creator & allowed) or creator & refused:
                continue
            for row in _rows(event, 0, event.sighted):
                if context == "attribute" and wanted and row.uuid not in wanted:
                    continue
                if _within(event.created + 600 + row.i, since, until):
                    sighting = _sighting(event, row) | {"value": row.value}
                    if with_uuids:
                        sighting |= {"attribute_uuid": row.uuid, "event_uuid": event.uuid}
                    sighting["Organisation"] = _organisation(event.orgc)
                    found.append({"Sighting": sighting})
        return _json({"response": found})

    def _sighting_range(self, filters: Json) -> tuple[int | None, int | None]:
        if "from" in filters and "to" in filters:
            return self._moment(filters["from"]), self._moment(filters["to"])
        last = filters.get("last", "30d")
        if str(last) in ("0", ""):
            return None, None
        moment = self._moment(last)
        if moment is not None and not _RELATIVE.match(str(last)):
            moment = int(self._clock()) - moment  # ``last`` in seconds
        return moment, None

    async def _filter_for_push(self, request: Request, args: list[str], named: Json) -> Response:
        if request.method != "POST":
            raise _Problem(405, "This endpoint requires a POST request.")
        body = await _body(request)
        incoming: dict[str, int] = {}
        for item in body if isinstance(body, list) else []:
            event = item.get("Event", item) if isinstance(item, dict) else {}
            if "uuid" in event:
                incoming[str(event["uuid"]).lower()] = int(event.get("timestamp") or 0)
        for uuid in list(incoming):
            held = self._find(uuid)
            if held is None:
                continue
            # MISP: kept only if ours is older *and* locked (came by sync)
            if held.timestamp >= incoming[uuid] or not _locked(held):
                del incoming[uuid]
        return _json(list(incoming))

    async def _add(self, request: Request, args: list[str], named: Json) -> Response:
        if request.method != "POST":
            raise _Problem(405, "No valid event data received.")
        event = _event_of(await _body(request))
        if (
            not event.get("Attribute")
            and not event.get("Object")
            and not event.get("EventReport")
            and _truthy(event.get("published", False))
        ):
            self.counters.pushes["empty"] += 1
            return _save_failed("add", None, {"Event": _EMPTY})
        uuid = str(event.get("uuid") or uuid_module.uuid4()).lower()
        if uuid in self._blocklist:
            self.counters.pushes["blocked"] += 1
            raise _Problem(403, "Event blocked by event blocklist.")
        held = self._find(uuid)
        if held is not None:
            self.counters.pushes["exists"] += 1
            location = f"{request.base_url}events/{held.id}"
            raise _Problem(404, _EXISTS, {"Location": location})
        pushed = self._store(event, uuid, None, request.headers.get(signing.SIGNATURE_HEADER))
        self.counters.pushes["added"] += 1
        return _json({"Event": _pushed_body(pushed, metadata=True)})

    async def _edit(self, request: Request, args: list[str], named: Json) -> Response:
        if request.method not in ("POST", "PUT") or not args:
            raise _Problem(405, "This endpoint requires a POST or PUT request.")
        target = self._find(args[0])
        if target is None:
            raise _Problem(404, "Invalid event")
        event = _event_of(await _body(request))
        held = self._find(str(event["uuid"])) if event.get("uuid") else target
        if held is None:
            return _save_failed("edit", target.id, "Event could not be saved: Could not find "
                                "the local event.")  # fmt: skip
        if "timestamp" in event and int(event["timestamp"]) <= held.timestamp:
            self.counters.pushes["not newer"] += 1
            return _save_failed("edit", held.id, _NOT_NEWER)
        if not _locked(held) and _orgc_uuid(held) != HOST.uuid:
            self.counters.pushes["forbidden"] += 1
            return _save_failed("edit", held.id, "Event could not be saved: The user used to "
                                "edit the event is not authorised to do so.")  # fmt: skip
        signature = request.headers.get(signing.SIGNATURE_HEADER)
        pushed = self._store(event, held.uuid, held.id, signature)
        self.counters.pushes["edited"] += 1
        return _json({"Event": _pushed_body(pushed, metadata=True)})

    def _store(
        self, event: Json, uuid: str, event_id: int | None, signature: str | None = None
    ) -> PushedEvent:
        with self._lock:
            if event_id is None:
                event_id = self.corpus.size + len(self._pushed_ids) + 1
            orgc = event.get("Orgc") or {}
            pushed = PushedEvent(
                id=event_id,
                uuid=uuid,
                timestamp=int(event.get("timestamp") or self._clock()),
                published=_truthy(event.get("published", False)),
                orgc_uuid=str(orgc.get("uuid") or HOST.uuid),
                body=event,
                signature=signature,
            )
            self._pushed[uuid] = pushed
            self._pushed_ids[event_id] = uuid
            self._changed()
            return pushed

    def _attribute_uuids(self, event: _Spec | PushedEvent) -> set[str]:
        if isinstance(event, _Spec):
            return {row.uuid for row in _rows(event)}
        return {str(a.get("uuid", "")).lower() for a in _pushed_attributes(event)}

    def _held_sightings(self, event: _Spec | PushedEvent) -> set[str]:
        """The sighting uuids the fake holds for the event: generated, carried by the pushed
        event, received."""
        if isinstance(event, _Spec):
            held = {_sighting(event, row)["uuid"] for row in _rows(event, 0, event.sighted)}
        else:
            held = {str(s.get("uuid", "")).lower() for a in _pushed_attributes(event)
                    for s in a.get("Sighting") or [] if isinstance(s, dict)}  # fmt: skip
        with self._lock:
            return held | set(self._received.get(event.uuid, {}))

    async def _filter_sightings(self, request: Request, args: list[str], named: Json) -> Response:
        if request.method != "POST":
            raise _Problem(405, "This method is only accessible via POST requests.")
        event = self._find(args[0]) if args else None
        if event is None:
            raise _Problem(404, "Event not found")
        body = await _body(request)
        held = self._held_sightings(event)
        asked = [str(u).lower() for u in body] if isinstance(body, list) else []
        return _json([u for u in asked if u in held])

    async def _bulk_save_sightings(
        self, request: Request, args: list[str], named: Json
    ) -> Response:
        if request.method != "POST":
            raise _Problem(405, "This method is only accessible via POST requests.")
        event = self._find(args[0]) if args else None
        if event is None:
            raise _Problem(405, "Event not found or not accessible by this user.")
        body = await _body(request)
        items = body.get("Sighting") if isinstance(body, dict) else body
        attributes = self._attribute_uuids(event)
        held = self._held_sightings(event)
        saved = 0
        with self._lock:
            kept = self._received.setdefault(event.uuid, {})
            for item in items if isinstance(items, list) else []:
                if not isinstance(item, dict):
                    continue
                uuid = str(item.get("uuid", "")).lower()
                if not uuid or uuid in held:
                    continue
                if str(item.get("attribute_uuid", "")).lower() not in attributes:
                    continue
                held.add(uuid)
                kept[uuid] = item
                saved += 1
            if saved:
                self._sighting_stamps[event.uuid] = int(self._clock())
                self._changed()
        self.counters.pushes["sightings"] += saved
        if saved:
            return _json({"saved": True, "success": f"{saved} sightings added."})
        return _json({"saved": False, "success": "No sightings added."})

    _routes: dict[str, Callable[..., Any]] = {
        "servers/getVersion": _version,
        "users/view": _me,
        "attributes/describeTypes": _describe_types,
        "events/index": _index,
        "events/view": _view,
        "events/filterEventIdsForPush": _filter_for_push,
        "events/add": _add,
        "events/edit": _edit,
        "sightings/restSearch": _sightings,
        "sightings/filterSightingUuidsForPush": _filter_sightings,
        "sightings/bulkSaveSightings": _bulk_save_sightings,
    }

    # -- the feed --

    def _feed(self, request: Request, names: list[str]) -> tuple[str, Response]:
        name = "/".join(names)
        if name == "manifest.json":
            return "feed/manifest", self._manifest(request)
        if name == "hashes.csv":
            return "feed/hashes", self._hashes(request)
        uuid = name[: -len(".json")].lower() if name.endswith(".json") else ""
        event = self._find(uuid) if uuid else None
        if not isinstance(event, _Spec) or not event.published:
            return "feed/event", Response("Not Found", 404, media_type="text/plain")
        etag = _hash_etag("feed", event.uuid, event.revision)
        not_modified = _not_modified(request, etag)
        if not_modified is not None:
            return "feed/event", not_modified
        self.counters.feed_views[event.uuid] += 1
        return "feed/event", StreamingResponse(
            self._counted(_feed_chunks(event)), headers={"ETag": etag},
            media_type="application/json",
        )  # fmt: skip

    def _feed_events(self) -> list[_Spec]:
        return [e for e in self._held() if isinstance(e, _Spec) and e.published]

    def _manifest(self, request: Request) -> Response:
        key = (self._state, "manifest")
        cached = self._cache.get(key)
        if cached is None:
            manifest = {e.uuid: _manifest_entry(e) for e in self._feed_events()}
            content = _dump(manifest).encode()
            cached = (content, f'"{hashlib.sha1(content).hexdigest()}"', len(manifest))  # noqa: S324
            self._cache[key] = cached
        content, etag, _ = cached
        return _etagged(request, content, etag, {}, always=True)

    def _hashes(self, request: Request) -> Response:
        events = self._feed_events()
        etag = _hash_etag("hashes", *((e.uuid, e.revision) for e in events))
        not_modified = _not_modified(request, etag)
        if not_modified is not None:
            return not_modified

        async def lines() -> AsyncIterator[bytes]:
            for event in events:
                batch: list[str] = []
                for line in _hash_lines(event):
                    batch.append(line)
                    if len(batch) >= 4096:
                        yield "".join(batch).encode()
                        batch.clear()
                if batch:
                    yield "".join(batch).encode()

        return StreamingResponse(lines(), headers={"ETag": etag}, media_type="text/csv")

    # -- control, for a fake in another process --

    async def _control(self, request: Request, path: str) -> Response:
        if not self._authorised(request):
            return _problem(_Problem(403, _NOT_AUTHORISED), path)
        action = path.removeprefix("/_fake/").strip("/")
        body = await _body(request) if request.method == "POST" else {}
        if not isinstance(body, dict):
            body = {}
        uuids = list(body.get("uuids") or [])
        uuids += [self.event_uuid(n) for n in range(int(body.get("first") or 0))]
        if action == "counters":
            return _json(self.counters.snapshot())
        if action == "uuids":
            return _json(self.uuids())
        if action == "reset" and request.method == "POST":
            self.counters.reset()
            return _json({"reset": True})
        if action == "bump" and request.method == "POST":
            self.bump(uuids, times=int(body.get("times") or 1))
            return _json({"bumped": len(uuids)})
        if action == "delete" and request.method == "POST":
            self.delete(uuids)
            return _json({"deleted": len(uuids)})
        return _problem(_Problem(404, "Not Found"), path)


# -- helpers of the routes -------------------------------------------------------------------

_USER: Json = {
    "User": {
        "id": "1", "org_id": "1", "email": "sync@fake-misp.example", "autoalert": False,
        "invited_by": "0", "gpgkey": "", "certif_public": "", "nids_sid": "0",
        "termsaccepted": True, "newsread": "0", "role_id": "5", "change_pw": False,
        "contactalert": False, "disabled": False, "expiration": None, "current_login": "0",
        "last_login": "0", "force_logout": False, "date_created": "1672531200",
        "date_modified": "1672531200", "sub": None, "external_auth_required": False,
        "external_auth_key": "", "last_api_access": "0", "notification_daily": False,
        "notification_weekly": False, "notification_monthly": False, "totp": "*****",
        "hotp_counter": None, "last_pw_change": "1672531200", "password": "*****",
    },
    "Role": {
        "id": "5", "name": "Sync user", "perm_add": True, "perm_modify": True,
        "perm_modify_org": True, "perm_publish": True, "perm_delegate": True,
        "perm_sync": True, "perm_admin": False, "perm_audit": False, "perm_auth": True,
        "perm_site_admin": False, "perm_regexp_access": False, "perm_tagger": True,
        "perm_template": False, "perm_sharing_group": True, "perm_tag_editor": True,
        "perm_sighting": True, "perm_object_template": False, "default_role": False,
        "memory_limit": "", "max_execution_time": "", "restricted_to_site_admin": False,
        "perm_publish_zmq": True, "perm_publish_kafka": True, "perm_decaying": True,
        "enforce_rate_limit": False, "rate_limit_count": "0", "perm_galaxy_editor": True,
        "perm_warninglist": False, "perm_view_feed_correlations": True,
        "perm_analyst_data": True, "perm_skip_otp": False, "perm_server_sign": False,
        "perm_sync_internal": False, "perm_sync_authoritative": False,
        "perm_benchmark": False, "permission": "3", "permission_description": "publish",
    },
    "UserSetting": [],
    "Organisation": {
        "id": "1", "name": HOST.name, "date_created": "2023-01-01 00:00:00",
        "date_modified": "2023-01-01 00:00:00", "description": "", "type": "CSIRT",
        "nationality": "", "sector": "", "created_by": "0", "uuid": HOST.uuid,
        "contacts": "", "local": True, "restricted_to_domain": [], "landingpage": None,
    },
}  # fmt: skip


@functools.cache
def _describe_types_document() -> bytes:
    """pymisp's ``describeTypes.json``, already in the shape MISP answers."""
    return pymisp_data("describeTypes.json").read_bytes()


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(_dump(data).encode(), status, dict(headers or {}),
                    media_type="application/json")  # fmt: skip


def _problem(problem: _Problem, path: str) -> Response:
    message = str(problem)
    return _json({"name": message, "message": message, "url": path}, problem.status,
                 problem.headers)  # fmt: skip


def _save_failed(action: str, event_id: int | None, errors: Any) -> Response:
    """``RestResponseComponent::saveFailResponse``: 403 and MISP's words."""
    message = f"Could not {action} Event"
    body: Json = {"saved": False, "name": message, "message": message,
                  "url": f"/events/{action}" + (f"/{event_id}" if event_id else ""),
                  "errors": errors}  # fmt: skip
    if event_id:
        body["id"] = str(event_id)
    return _json(body, 403)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if request.headers.get("content-encoding", "") == "gzip":
        raw = zlib.decompress(raw, 47)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        raise _Problem(400, "Invalid JSON input. Make sure that the JSON input is a correctly "
                       "formatted JSON string.") from None  # fmt: skip


def _event_of(body: Any) -> Json:
    if not isinstance(body, dict) or not body:
        raise _Problem(405, "No valid event data received.")
    body = body.get("response", body)
    body = body.get("request", body)
    event = body.get("Event", body)
    if not isinstance(event, dict):
        raise _Problem(405, "No valid event data received.")
    return event


def _flat(params: Json) -> Iterator[Any]:
    for value in params.values():
        yield from value if isinstance(value, list) else (value,)


def _values(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(v) for v in str(value).split("|")] if isinstance(value, str) else [str(value)]


def _deleted_filter(value: Any) -> frozenset[bool]:
    """``EventsController::view``: a list is the set of ``deleted`` values wanted, ``1``
    both, ``0`` the kept ones only, anything else the deleted ones only."""
    if isinstance(value, list):
        return frozenset(bool(int(v)) for v in value)
    text = str(value).lower()
    if text in ("1", "true"):
        return frozenset({False, True})
    if text in ("0", "false", ""):
        return frozenset({False})
    return frozenset({True})


def _within(moment: int, since: int | None, until: int | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment <= until)


def _locked(event: _Spec | PushedEvent) -> bool:
    return True if isinstance(event, PushedEvent) else event.locked


def _orgc_uuid(event: _Spec | PushedEvent) -> str:
    return event.orgc_uuid if isinstance(event, PushedEvent) else event.orgc.uuid


def _org_matches(event: _Spec | PushedEvent, orgs: list[str]) -> bool:
    names = {_orgc_uuid(event)}
    if isinstance(event, _Spec):
        names |= {event.orgc.name, str(event.orgc.id)}
    wanted = {o for o in orgs if not o.startswith("!")}
    refused = {o[1:] for o in orgs if o.startswith("!")}
    return (not wanted or bool(names & wanted)) and not names & refused


def _index_entry(event: _Spec | PushedEvent, *, minimal: bool, sighting_stamp: int = 0) -> Json:
    """One element of ``EventsController::__indexRestResponse``; ``sighting_stamp``: when
    sightings were last saved by ``bulkSaveSightings``."""
    if isinstance(event, PushedEvent):
        body = _pushed_body(event, metadata=True)
        entry = {"id": str(event.id), "timestamp": str(event.timestamp),
                 "sighting_timestamp": str(sighting_stamp), "published": event.published,
                 "uuid": event.uuid, "orgc_uuid": event.orgc_uuid}  # fmt: skip
        if minimal:
            return entry
        return {k: v for k, v in body.items() if not isinstance(v, (list, dict))} | {
            "Org": body["Org"], "Orgc": body["Orgc"], "EventTag": []}  # fmt: skip
    sighted = max(event.sighting_timestamp, sighting_stamp)
    if minimal:
        return {"id": str(event.id), "timestamp": str(event.timestamp),
                "sighting_timestamp": str(sighted),
                "published": event.published, "uuid": event.uuid,
                "orgc_uuid": event.orgc.uuid}  # fmt: skip
    entry = event.fields()
    entry["sighting_timestamp"] = str(sighted)
    entry["Org"] = {"id": str(HOST.id), "name": HOST.name, "uuid": HOST.uuid}
    entry["Orgc"] = {"id": str(event.orgc.id), "name": event.orgc.name, "uuid": event.orgc.uuid}
    if event.distribution == 4:
        entry["SharingGroup"] = {"id": "1", "name": "Fake sharing group",
                                 "uuid": "5f6a1c2e-0000-4000-8000-000000005a6e"}  # fmt: skip
    entry["EventTag"] = [
        {"id": str(event.id * 10 + k), "event_id": str(event.id), "tag_id": tag["id"],
         "local": tag["local"], "relationship_type": "",
         "Tag": {"id": tag["id"], "name": tag["name"], "colour": tag["colour"],
                 "is_galaxy": False}}
        for k, tag in enumerate(event.tags(exclude_local=False))
    ]  # fmt: skip
    return entry


def _pushed_attributes(event: PushedEvent) -> list[Json]:
    """The attributes a pushed event carries, in objects too."""
    found = [a for a in event.body.get("Attribute") or [] if isinstance(a, dict)]
    for obj in event.body.get("Object") or []:
        if isinstance(obj, dict):
            found += [a for a in obj.get("Attribute") or [] if isinstance(a, dict)]
    return found


def _pushed_body(event: PushedEvent, *, metadata: bool) -> Json:
    """What the fake answers for a pushed event: what was sent, with its ids and owner."""
    sent = event.body
    orgc = sent.get("Orgc") or {}
    attributes = sent.get("Attribute") or []
    body: Json = {key: value for key, value in sent.items()
                  if not isinstance(value, (list, dict))}  # fmt: skip
    body |= {
        "id": str(event.id), "org_id": str(HOST.id), "orgc_id": str(orgc.get("id") or HOST.id),
        "uuid": event.uuid, "timestamp": str(event.timestamp), "published": event.published,
        "locked": True, "attribute_count": str(len(attributes)),
        "Org": HOST.view(local=True),
        "Orgc": {"id": str(orgc.get("id") or HOST.id), "name": orgc.get("name") or HOST.name,
                 "uuid": event.orgc_uuid, "local": event.orgc_uuid == HOST.uuid},
    }  # fmt: skip
    if not metadata:
        body["Attribute"] = attributes
        body["Object"] = sent.get("Object") or []
    body["Tag"] = sent.get("Tag") or []
    body["CryptographicKey"] = sent.get("CryptographicKey") or []
    return body


def _hash_etag(*parts: object) -> str:
    return '"' + hashlib.sha1(repr(parts).encode()).hexdigest() + '"'  # noqa: S324


def _not_modified(request: Request, etag: str) -> Response | None:
    sent = request.headers.get("if-none-match")
    if sent is not None and _strip_etag(sent) == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return None


def _etagged(
    request: Request, content: bytes, etag: str, headers: Mapping[str, str], *, always: bool
) -> Response:
    """A whole body with its ETag: 304 when ``If-None-Match`` matches; the ETag sent always
    (a static file) or only to a client that sent ``If-None-Match`` (MISP's API)."""
    not_modified = _not_modified(request, etag)
    if not_modified is not None:
        return not_modified
    extra = dict(headers)
    if always or "if-none-match" in request.headers:
        extra["ETag"] = etag
    return Response(content, 200, extra, media_type="application/json")


async def _gzip_stream(chunks: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    async for chunk in chunks:
        out = z.compress(chunk if isinstance(chunk, bytes) else str(chunk).encode())
        if out:
            yield out
    yield z.flush()


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


# -- as a process ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """``python -m tessera.sync.testing.fake_misp``: serve until SIGINT/SIGTERM; print
    ``PORT <n>`` once listening and ``COUNTERS {...}`` on the way out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--attributes", type=int, default=1000, help="per event")
    parser.add_argument("--huge", type=int, default=0, help="attributes of one more event")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--distributions", default="3", help="comma-separated, cycled")
    parser.add_argument("--orgs", type=int, default=1)
    parser.add_argument("--unpublished-every", type=int, default=0)
    parser.add_argument("--deleted-every", type=int, default=0)
    parser.add_argument("--sightings", type=int, default=0)
    parser.add_argument("--key", default=DEFAULT_KEY)
    parser.add_argument("--gzip", action="store_true", help="compress for gzip clients")
    args = parser.parse_args(argv)
    corpus = Corpus(
        events=args.events, attributes=args.attributes, huge=args.huge, seed=args.seed,
        distributions=tuple(int(d) for d in args.distributions.split(",")), orgs=args.orgs,
        unpublished_every=args.unpublished_every, deleted_every=args.deleted_every,
        sightings=args.sightings,
    )  # fmt: skip
    fake = FakeMisp(corpus, key=args.key, gzip=args.gzip)
    url = fake.start(args.host, args.port)  # in a thread: uvicorn leaves the signals to us
    print(f"PORT {url.rsplit(':', 1)[1]}", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    fake.stop()
    print(f"COUNTERS {json.dumps(fake.counters.snapshot())}", flush=True)


if __name__ == "__main__":
    main()
