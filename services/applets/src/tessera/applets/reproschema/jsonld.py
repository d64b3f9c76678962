"""A small, strict reader of compact JSON-LD as ReproSchema publishes it.

Not a JSON-LD processor: no expansion to RDF, no remote document loader. What it does is
what reading ReproSchema needs: the ``@context`` (a list of strings and objects) becomes
term definitions, so a key is known by its full IRI whether it is written ``prefLabel``,
``skos:prefLabel`` or in full, and whether it sits in the ``ui`` object (``@nest``) or not;
values are read as language maps (``{"en": ...}``, a plain string in the context's
``@language``, ``@value`` objects), scalars, references and embedded nodes.

Contexts are never fetched. A ReproSchema context URL (any release, ``contexts/generic``,
``releases/1.0.0/reproschema``...) is read as the ReproSchema 1.0.0 context the service
ships; a relative context reference is read from the bundle (or, when missing and named
like one, from the shipped copies); any other URL is noted and the shipped context used.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from tessera.applets.reproschema.bundle import Bundle, BundleError

__all__ = ["RS", "SCHEMA", "SKOS", "TESSERA", "Context", "Contexts", "Node", "context_file"]

RS = "http://schema.repronim.org/"
SCHEMA = "http://schema.org/"
SKOS = "http://www.w3.org/2004/02/skos/core#"
TESSERA = "https://tessera.dev/ns/reproschema#"

_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_MAX_TEXT = 20_000
_MAX_LANGUAGES = 50
_MISSING = object()

Note = Callable[[str, str, str, str], None]
"""``note(where, field, value, reason)``: something read that has no place in an applet."""


@functools.cache
def context_file(name: str) -> bytes:
    """A context file shipped with the service (``reproschema.jsonld``, ``tessera.jsonld``)."""
    return (resources.files(__package__) / "context" / name).read_bytes()


@functools.cache
def _shipped(name: str) -> dict[str, Any]:
    definitions = json.loads(context_file(name))["@context"]
    assert isinstance(definitions, dict)
    return definitions


def is_absolute(reference: str) -> bool:
    return bool(_ABSOLUTE.match(reference))


def join(base: str, reference: str) -> str:
    """``reference`` resolved against the document at ``base`` (may start with ``..``)."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), reference))


@dataclass(frozen=True)
class Term:
    iri: str
    container: frozenset[str] = frozenset()
    type: str | None = None


@dataclass(frozen=True)
class Context:
    """The active context: term definitions, ``@vocab`` and the default language."""

    terms: dict[str, Term] = field(default_factory=dict)
    vocab: str | None = None
    language: str = "en"

    def expand(self, value: str, *, vocab: bool) -> str:
        """A key or type (``vocab``) or a reference (not ``vocab``) as a full IRI, or as the
        relative reference it is."""
        if value.startswith("@"):
            return value
        if vocab and value in self.terms:
            return self.terms[value].iri
        if ":" in value:
            prefix, suffix = value.split(":", 1)
            if prefix == "_" or suffix.startswith("//"):
                return value
            term = self.terms.get(prefix)
            if term is not None and not term.iri.startswith("@"):
                return term.iri + suffix
            return value
        if vocab and self.vocab:
            return self.vocab + value
        return value

    def extended(self, local: dict[str, Any], where: str) -> Context:
        """This context with the definitions of a local context object."""
        terms = dict(self.terms)
        vocab, language = self.vocab, self.language
        if "@language" in local:
            tag = local["@language"]
            language = tag.lower() if isinstance(tag, str) else "en"
        pending = {k: v for k, v in local.items() if not k.startswith("@")}
        done: set[str] = set()
        if "@vocab" in local:  # before the terms: a term without @id is @vocab + its name
            given = local["@vocab"]
            if (
                isinstance(given, str)
                and ":" in given
                and isinstance(pending.get(given.split(":")[0]), str)
            ):
                prefix, suffix = given.split(":", 1)
                given = pending[prefix] + suffix
            vocab = Context(terms, vocab, language).expand(given, vocab=True) if given else None

        def define(key: str, stack: frozenset[str]) -> None:
            if key in done or key not in pending:
                return
            if key in stack:
                raise BundleError(f"{where}: @context defines {key!r} through itself", field=where)
            value = pending[key]
            definition = {"@id": value} if value is None or isinstance(value, str) else value
            if not isinstance(definition, dict):
                raise BundleError(
                    f"{where}: @context term {key!r} is not a string or an object", field=where
                )
            raw = definition.get("@id", _MISSING)
            done.add(key)
            if raw is None or "@reverse" in definition:
                terms.pop(key, None)
                return
            if raw is _MISSING:
                raw = key
            if not isinstance(raw, str):
                raise BundleError(f"{where}: @context term {key!r} has no IRI", field=where)
            if ":" in raw and raw.split(":", 1)[0] != key:
                define(raw.split(":", 1)[0], stack | {key})
            current = Context(terms, vocab, language)
            if raw == key and ":" not in key:
                iri = key if key.startswith("@") or not vocab else vocab + key
            else:
                iri = raw if raw.startswith("@") else current.expand(raw, vocab=raw != key)
            container = definition.get("@container", ())
            containers = frozenset([container] if isinstance(container, str) else container)
            kind = definition.get("@type")
            terms[key] = Term(_normal(iri), containers, kind if isinstance(kind, str) else None)

        for key in pending:
            define(key, frozenset())
        return Context(terms, vocab, language)


_EMPTY = Context()


def _normal(iri: str) -> str:
    return "http://schema.org/" + iri[19:] if iri.startswith("https://schema.org/") else iri


def _is_reproschema(url: str) -> bool:
    low = url.lower()
    return "repronim/reproschema/" in low or "schema.repronim.org" in low


_SHIPPED_NAMES = {
    "reproschema": "reproschema.jsonld",
    "generic": "reproschema.jsonld",
    "base": "reproschema.jsonld",
    "tessera": "tessera.jsonld",
}


class Contexts:
    """Applies ``@context`` values, reading referenced contexts from the bundle or the
    shipped copies (never from the network)."""

    def __init__(self, bundle: Bundle, note: Note) -> None:
        self._bundle = bundle
        self._note = note
        self._documents: dict[tuple[str, str], Context] = {}

    def apply(self, active: Context, spec: Any, path: str, depth: int = 0) -> Context:
        if active == _EMPTY and depth == 0:  # a document's own context: the same for many
            key = (json.dumps(spec, sort_keys=True), posixpath.dirname(path))
            if key not in self._documents:
                self._documents[key] = self._apply(active, spec, path, depth)
            return self._documents[key]
        return self._apply(active, spec, path, depth)

    def _apply(self, active: Context, spec: Any, path: str, depth: int) -> Context:
        if depth > 8:
            raise BundleError(f"{path}: contexts refer to each other too deeply", field=path)
        for entry in spec if isinstance(spec, list) else [spec]:
            if entry is None:
                active = Context()
            elif isinstance(entry, dict):
                active = active.extended(entry, path)
            elif isinstance(entry, str):
                active = self._referenced(active, entry, path, depth)
            else:
                raise BundleError(f"{path}: @context holds {entry!r}", field=f"{path}: @context")
        return active

    def _referenced(self, active: Context, url: str, path: str, depth: int) -> Context:
        if is_absolute(url):
            if not _is_reproschema(url):
                self._note(
                    path,
                    "@context",
                    url,
                    "not fetched (no network access): read with the ReproSchema 1.0.0 context",
                )
            return active.extended(_shipped("reproschema.jsonld"), path)
        target = join(path, url)
        document = self._bundle.json(target) if target in self._bundle else None
        if isinstance(document, dict) and "@context" in document:
            return self.apply(active, document["@context"], target, depth + 1)
        stem = posixpath.basename(target).split(".", 1)[0].lower()
        if stem in _SHIPPED_NAMES:
            return active.extended(_shipped(_SHIPPED_NAMES[stem]), path)
        raise BundleError(
            f"{path}: the @context {url!r} is not in the bundle", field=f"{path}: @context"
        )


class Node:
    """One JSON-LD node object: its properties by full IRI, what has been read of them (the
    rest is reported by :meth:`leftovers`), and where it is (for references and notes)."""

    def __init__(
        self,
        data: dict[str, Any],
        *,
        context: Context,
        contexts: Contexts,
        path: str,
        where: str,
        prefix: str,
        note: Note,
    ) -> None:
        self.context = (
            contexts.apply(context, data["@context"], path) if "@context" in data else context
        )
        self.contexts = contexts
        self.path = path
        self.prefix = prefix
        self.note_sink = note
        self._props: dict[str, list[tuple[str, Any]]] = {}
        self._used: set[str] = set()
        self._collect(data, "")
        self.where = where

    def _collect(self, data: dict[str, Any], nest: str) -> None:
        for key, value in data.items():
            if key == "@context":
                continue
            iri = _normal(self.context.expand(key, vocab=True))
            if iri in ("@nest", RS + "ui") and (
                isinstance(value, dict)
                or (isinstance(value, list) and all(isinstance(v, dict) for v in value))
            ):
                for part in value if isinstance(value, list) else [value]:
                    self._collect(part, f"{nest}{key}.")
                continue
            if not iri.startswith("@") and ":" not in iri:
                continue  # no IRI: JSON-LD drops the key, so does this reader
            self._props.setdefault(iri, []).append((nest + key, value))

    # --- reading --------------------------------------------------------------------------

    def note(self, field: str, value: str, reason: str) -> None:
        self.note_sink(self.where, self.prefix + field, value, reason)

    def key(self, iris: Iterable[str]) -> str:
        """How the first of ``iris`` present is written (``ui.inputType``)."""
        for iri in iris:
            if iri in self._props:
                return self._props[iri][0][0]
        return next(iter(iris)).rsplit("/", 1)[-1].rsplit("#", 1)[-1]

    def has(self, iris: Iterable[str]) -> bool:
        return any(iri in self._props for iri in iris)

    def raw(self, iris: Iterable[str]) -> list[Any]:
        found: list[Any] = []
        for iri in iris:
            self._used.add(iri)
            found.extend(value for _, value in self._props.get(iri, []))
        return found

    def values(self, iris: Iterable[str]) -> list[Any]:
        """Every value, lists (``@list``, ``@set``, arrays) flattened."""
        flat: list[Any] = []

        def add(value: Any) -> None:
            if isinstance(value, list):
                for v in value:
                    add(v)
            elif isinstance(value, dict) and ("@list" in value or "@set" in value):
                add(value.get("@list", value.get("@set")))
            else:
                flat.append(value)

        for value in self.raw(iris):
            add(value)
        return flat

    def scalar(self, iris: Iterable[str]) -> Any:
        """The first value (a ``@value`` object unwrapped), or ``None``."""
        for value in self.values(iris):
            return value.get("@value") if isinstance(value, dict) else value
        return None

    def texts(self, iris: Iterable[str]) -> dict[str, str]:
        """The values as a language map: ``{"en": "...", "fr": "..."}``."""
        iris = tuple(iris)
        field_name = self.key(iris)
        found: dict[str, str] = {}

        def put(tag: Any, text: Any) -> None:
            if not isinstance(text, str | int | float) or isinstance(text, bool):
                return
            language = _language(
                tag if isinstance(tag, str) and tag != "@none" else self.context.language
            )
            if language is None:
                self.note(field_name, str(tag), "not a language tag: that text is dropped")
                return
            if language in found:
                return
            if len(found) >= _MAX_LANGUAGES:
                self.note(field_name, language, f"more than {_MAX_LANGUAGES} languages: dropped")
                return
            text = str(text)
            if len(text) > _MAX_TEXT:
                self.note(field_name, language, f"longer than {_MAX_TEXT} characters: cut")
                text = text[:_MAX_TEXT]
            found[language] = text

        for value in self.values(iris)[: _MAX_LANGUAGES * 4]:
            if isinstance(value, dict) and "@value" in value:
                put(value.get("@language"), value["@value"])
            elif isinstance(value, dict):
                for tag, text in list(value.items())[: _MAX_LANGUAGES * 4]:
                    for one in text[:1] if isinstance(text, list) else [text]:
                        put(tag, one)
            else:
                put(None, value)
        return found

    def label(self, iris: Iterable[str]) -> tuple[str | None, list[str]]:
        """One text of a language map (English, else the first) and the languages left out."""
        texts = self.texts(iris)
        if not texts:
            return None, []
        language = "en" if "en" in texts else next(iter(texts))
        return texts[language].strip() or None, [tag for tag in texts if tag != language]

    def json(self, iris: Iterable[str]) -> Any:
        """A JSON literal (``@json``) value, or ``None``."""
        for value in self.raw(iris):
            if isinstance(value, dict) and "@value" in value and value.get("@type") == "@json":
                return value["@value"]
            return value
        return None

    def ident(self) -> str | None:
        self._used.add("@id")
        for _, value in self._props.get("@id", []):
            if isinstance(value, str):
                return value
        return None

    def types(self) -> set[str]:
        return {
            _normal(self.context.expand(t, vocab=True))
            for t in self.values(["@type"])
            if isinstance(t, str)
        }

    def ref_id(self, reference: str) -> str:
        """A reference (relative, compact or full) as the identity it names."""
        expanded = self.context.expand(reference, vocab=False)
        return expanded if is_absolute(expanded) else join(self.path, expanded)

    def child(self, data: dict[str, Any], field_name: str, *, own: bool = False) -> Node:
        """A node embedded in this one: a value of it (``responseOptions``, a choice), or,
        ``own``, a part of its own (an activity or item written inside a protocol)."""
        node = Node(
            data,
            context=self.context,
            contexts=self.contexts,
            path=self.path,
            where=self.where,
            prefix="" if own else f"{self.prefix}{field_name}.",
            note=self.note_sink,
        )
        if own:
            ident = node.ident()
            node.where = node.ref_id(ident) if ident else f"{self.where}#{field_name}"
        return node

    def children(
        self, iris: Iterable[str], *, own: bool = False, limit: int | None = None
    ) -> list[Node | str]:
        """Embedded nodes (and references, left as strings) of a property; more than
        ``limit`` of them is a :class:`BundleError`."""
        iris = tuple(iris)
        name = self.key(iris)
        values = self.values(iris)
        if limit is not None and len(values) > limit:
            raise BundleError(
                f"{self.where}: {self.prefix}{name} lists {len(values)} entries; "
                f"at most {limit} are read",
                field=f"{self.where}: {name}",
            )
        found: list[Node | str] = []
        for value in values:
            if isinstance(value, dict) and set(value) - {"@id", "id"}:
                found.append(self.child(value, name, own=own))
            elif isinstance(value, dict):
                found.append(str(value.get("@id", value.get("id", ""))))
            elif isinstance(value, str):
                found.append(value)
        return found

    def use_all(self) -> None:
        self._used.update(self._props)

    def leftovers(self, ignore: Iterable[str] = ()) -> list[tuple[str, Any]]:
        """The properties never read (``(key as written, value)``)."""
        skip = self._used | set(ignore)
        return [
            (key, value)
            for iri, entries in self._props.items()
            if iri not in skip
            for key, value in entries
        ]


def _language(tag: str) -> str | None:
    parts = tag.replace("_", "-").split("-")
    candidate = "-".join([parts[0].lower(), *parts[1:]])
    return candidate if _LANGUAGE.match(candidate) else None
