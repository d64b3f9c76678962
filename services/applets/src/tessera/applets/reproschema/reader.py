"""Reading a ReproSchema bundle as an applet document.

Two steps. :meth:`Reader.infer` walks the protocol (or the lone activity), its activities
and their items, and reads each as ReproSchema says it, noting what has no place in an
applet; it also picks up each part's ``tessera:`` patch. ``assembly.assemble`` applies
the patches, validates each part (a part that does not validate is read without its patch,
else skipped, and noted), and checks the applet as a whole: a condition, a report or a flow
that no longer fits is dropped and noted, so what comes out always validates.

The export (``writer.py``) runs the first step on its own documents to know what ReproSchema
alone says, and writes the difference as the patch.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tessera.applets.reproschema import vocabulary as v
from tessera.applets.reproschema.bundle import Bundle, BundleError
from tessera.applets.reproschema.expressions import parse_score, parse_visibility
from tessera.applets.reproschema.items import (
    ItemSource,
    allow_tokens,
    conditions_of,
    infer_item,
    note_leftovers,
    stem,
    url_of,
)
from tessera.applets.reproschema.jsonld import Context, Contexts, Node, is_absolute
from tessera.applets.reproschema.records import (
    ActivityRecord,
    AppletRecord,
    ItemRecord,
    Unsupported,
    normal_activity,
    normal_applet,
    normal_item,
)

__all__ = ["Reader"]

_CONTROL = re.compile(r"[\x00-\x1f]")
_PLURAL = {"protocol": "protocols", "activity": "activities"}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


class Reader:
    """Reads one bundle; :attr:`notes` collects what is not imported."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.notes: list[Unsupported] = []
        self._seen: set[Unsupported] = set()
        self.contexts = Contexts(bundle, self.note)

    def note(self, where: str, field: str, value: str, reason: str) -> None:
        """Name something that is not imported (once)."""
        note = Unsupported(where, field, _short(value), reason)
        if note not in self._seen:
            self._seen.add(note)
            self.notes.append(note)

    # --- documents and references ---------------------------------------------------------

    def document(self, path: str, *, referrer: str, contexts: Contexts | None = None) -> Node:
        if path not in self.bundle:
            raise BundleError(
                f"{referrer} refers to {path}, which is not in the bundle", field=referrer
            )
        data = self.bundle.json(path)
        if data is None:
            raise BundleError(f"{path} is not JSON ({referrer} refers to it)", field=path)
        if not isinstance(data, dict):
            raise BundleError(f"{path} is not one JSON-LD node object", field=path)
        return Node(
            data,
            context=Context(),
            contexts=contexts or self.contexts,
            path=path,
            where=path,
            prefix="",
            note=self.note,
        )

    def follow(self, reference: Node | str, base: Node, term: str) -> Node:
        """The node a reference names: embedded, or a document of the bundle."""
        if isinstance(reference, Node):
            return reference
        referrer = f"{base.where}: {base.prefix}{term}"
        target = base.ref_id(reference)
        if is_absolute(target):
            raise BundleError(
                f"{referrer} refers to {reference}, outside the bundle (it is "
                "never fetched: put it in the bundle)",
                field=referrer,
            )
        if target == ".." or target.startswith(("../", "/")):
            raise BundleError(
                f"{referrer} refers to {reference}, which leaves the bundle", field=referrer
            )
        return self.document(target, referrer=referrer)

    def find_root(self) -> str:
        """The protocol of a zip, else its only activity."""
        quiet = Contexts(self.bundle, lambda *_: None)
        found: dict[str, list[str]] = {"protocol": [], "activity": []}
        for path in sorted(self.bundle.paths):
            data = self.bundle.json(path)
            if not isinstance(data, dict) or "@context" not in data:
                continue
            try:
                types = self.document(path, referrer="root", contexts=quiet).types()
            except BundleError:
                continue
            if types & v.PROTOCOL:
                found["protocol"].append(path)
            elif types & v.ACTIVITY:
                found["activity"].append(path)
        for kind in ("protocol", "activity"):
            if len(found[kind]) == 1:
                return found[kind][0]
            if found[kind]:
                raise BundleError(
                    f"the bundle holds {len(found[kind])} {_PLURAL[kind]} "
                    f"({', '.join(found[kind][:5])}): name the root",
                    field="root",
                )
        raise BundleError("the bundle holds no ReproSchema protocol or activity", field="root")

    # --- step 1: what ReproSchema says ----------------------------------------------------

    def infer(self, root: str) -> AppletRecord:
        node = self.document(root, referrer="root")
        types = node.types()
        if types & v.PROTOCOL:
            return self._protocol(node)
        if types & v.ACTIVITY or node.has(v.ORDER):
            activity = self._activity(node, 0, None, set())
            base = {"display_name": activity.base["name"][:200]}
            return AppletRecord(node.where, normal_applet(base), None, [activity])
        raise BundleError(f"{root} is neither a ReproSchema protocol nor an activity", field="root")

    def _protocol(self, node: Node) -> AppletRecord:
        label, others = node.label(v.PREF_LABEL)
        if others:
            node.note(
                node.key(v.PREF_LABEL),
                ", ".join(others),
                "an applet's name has one language: the others are dropped",
            )
        name = label or stem(node.where)
        if len(name) > 200:
            node.note(node.key(v.PREF_LABEL), name, "cut to 200 characters")
        base = {
            "display_name": name[:200],
            "description": node.texts(v.DESCRIPTION),
            "about": self._about(node),
            "image": url_of(node, v.IMAGE),
        }
        record = AppletRecord(node.where, base, node.json(v.EXT_APPLET))
        node.raw(v.EXT_APPLET_ID)
        self._flags(node, "an applet")
        props = self._properties(node)
        taken: set[str] = set()
        for index, entry in enumerate(node.children(v.ORDER, own=True, limit=200)):
            ident = entry.where if isinstance(entry, Node) else node.ref_id(entry)
            target = self.follow(entry, node, node.key(v.ORDER))
            record.activities.append(self._activity(target, index, props.pop(ident, None), taken))
        for ident, entry in props.items():
            entry.note("isAbout", ident, "not in ui.order: not imported")
        record.base = normal_applet(base)
        self._leftovers(node)
        return record

    def _about(self, node: Node) -> dict[str, str]:
        about = node.texts(v.ABOUT)
        for page in node.children(v.LANDING_PAGE):
            language = "en"
            if isinstance(page, Node):
                tag = page.scalar(v.IN_LANGUAGE)
                language = tag if isinstance(tag, str) else language
                reference = page.ident() or ""
                page.use_all()
            else:
                reference = page
            target = node.ref_id(reference)
            text = None if is_absolute(target) else self.bundle.text(target)
            if text is None:
                node.note(
                    node.key(v.LANDING_PAGE),
                    reference,
                    "not a text file of the bundle: not read (it is never fetched)",
                )
            elif language not in about:
                about[language] = text[:20_000]
        return about

    def _flags(self, node: Node, what: str) -> set[str]:
        allow = allow_tokens(node.values(v.ALLOW))
        for token in sorted(allow - v.SKIP_TOKENS):
            node.note(node.key(v.ALLOW), token, f"{what} has no such setting")
        if node.scalar(v.SHUFFLE) not in (None, False, "false"):
            node.note(node.key(v.SHUFFLE), "true", f"{what} shows its parts in order")
        return allow

    def _properties(self, node: Node) -> dict[str, Node]:
        found: dict[str, Node] = {}
        for entry in node.children(v.ADD_PROPERTIES):
            if not isinstance(entry, Node):
                continue
            about = entry.scalar(v.IS_ABOUT)
            about = about.get("@id") if isinstance(about, dict) else about
            if isinstance(about, str):
                found[node.ref_id(about)] = entry
            else:
                entry.note("isAbout", "", "names nothing: ignored")
        return found

    def _visible(self, props: Node | None, what: str) -> tuple[bool, str | None]:
        """Hidden, and the ``isVis`` expression when there is one."""
        if props is None:
            return False, None
        value = props.scalar(v.IS_VIS)
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        if isinstance(value, str) and what == "activity":
            props.note("isVis", value, "an activity is shown or hidden, not on a condition")
            return False, None
        return value is False, value if isinstance(value, str) else None

    def _activity(
        self, node: Node, key: int, props: Node | None, taken: set[str]
    ) -> ActivityRecord:
        label, others = props.label(v.PREF_LABEL) if props else (None, [])
        own, own_others = node.label(v.PREF_LABEL)
        if label is None:
            label, others = own, own_others
        elif own is not None and own != label:
            node.note(node.key(v.PREF_LABEL), own, f"the protocol names it {label!r}")
        if others:
            node.note(
                node.key(v.PREF_LABEL),
                ", ".join(others),
                "an activity's name has one language: the others are dropped",
            )
        variable = props.scalar(v.VARIABLE_NAME) if props else None
        fallback = variable if isinstance(variable, str) else stem(node.where)
        name = self._unique(label or fallback, taken, node, "activity")
        hidden, _ = self._visible(props, "activity")
        if props is not None:
            self._leftovers(props)
        allow = self._flags(node, "an activity")
        record = ActivityRecord(key, node.where, {}, node.json(v.EXT_ACTIVITY))
        computes = self._computes(node)
        sources, targets = self._sources(node, computes)
        kinds = {s.name: s.kind for _, s in sources}
        scorable = {
            variable: parsed
            for variable, parsed in computes.items()
            if parsed and all(kinds.get(n) in ("select", "slider") for n in parsed[1])
        }
        record.items = self._items(node, sources, {n for p in scorable.values() for n in p[1]})
        base: dict[str, Any] = {
            "name": name,
            "description": node.texts(v.DESCRIPTION),
            "image": url_of(node, v.IMAGE),
            "is_skippable": bool(allow & v.SKIP_TOKENS),
            "is_hidden": hidden,
            "scores_and_reports": self._reports(node, computes, scorable, targets),
        }
        record.base = normal_activity(base)
        self._leftovers(node)
        return record

    def _sources(
        self, node: Node, computes: dict[str, Any]
    ) -> tuple[list[tuple[str, ItemSource]], dict[str, Node]]:
        """The items of ``ui.order`` (by position), and the items computed variables fill."""
        item_props = self._properties(node)
        names: set[str] = set()
        sources: list[tuple[str, ItemSource]] = []
        targets: dict[str, Node] = {}
        for index, entry in enumerate(node.children(v.ORDER, own=True, limit=500)):
            ident = entry.where if isinstance(entry, Node) else node.ref_id(entry)
            target = self.follow(entry, node, node.key(v.ORDER))
            source = self._source(target, item_props.pop(ident, None), names)
            if source.name in computes:
                targets[source.name] = source.node
            else:
                sources.append((str(index), source))
        for ident, entry in item_props.items():
            variable = entry.scalar(v.VARIABLE_NAME)
            if isinstance(variable, str) and variable in computes:
                about = entry.scalar(v.IS_ABOUT)
                about = about.get("@id") if isinstance(about, dict) else about
                targets[variable] = self.follow(about, node, "ui.addProperties.isAbout")
                entry.use_all()
            else:
                entry.note("isAbout", ident, "not in ui.order: not imported")
        return sources, targets

    def _items(
        self, node: Node, sources: list[tuple[str, ItemSource]], scored: set[str]
    ) -> list[ItemRecord]:
        items: list[ItemRecord] = []
        preamble = node.texts(v.PREAMBLE)
        if preamble:
            taken = {s.name.casefold() for _, s in sources}
            name = self._unique("preamble", taken, node, "item")
            item = {"name": name, "question": preamble, "response_type": "message"}
            items.append(ItemRecord("preamble", node.where, "", normal_item(item)))
        earlier: dict[str, dict[str, Any]] = {}
        for position, source in sources:
            item = infer_item(source, scored=source.name in scored)
            if item is None:
                continue
            self._logic(source, item, earlier)
            earlier[source.name.casefold()] = item
            patch = source.node.json(v.EXT_ITEM)
            items.append(
                ItemRecord(
                    position,
                    source.node.where,
                    source.input_type,
                    normal_item(item),
                    patch,
                    source.expression,
                )
            )
            self._leftovers(source.node)
            if source.options is not None:
                source.options.raw(v.VALUE_TYPE)
                self._leftovers(source.options)
            if source.props is not None:
                self._leftovers(source.props)
        return items

    def _reports(
        self,
        node: Node,
        computes: dict[str, Any],
        scorable: dict[str, Any],
        targets: dict[str, Node],
    ) -> dict[str, Any] | None:
        """A score report for each computed sum or average of choice or slider items."""
        reports = []
        for variable in computes:
            target = targets.get(variable)
            if target is not None:
                target.use_all()
            if variable not in scorable:
                node.note(
                    node.key(v.COMPUTE),
                    variable,
                    "only a sum or an average of choice or slider items becomes a score: "
                    "not imported (nor the item it fills)",
                )
                continue
            title = target.label(v.PREF_LABEL)[0] if target is not None else None
            kind, items = scorable[variable]
            reports.append(
                {
                    "type": "score",
                    "id": variable[:100],
                    "name": (title or variable)[:200],
                    "calculation_type": kind,
                    "items_score": items,
                }
            )
        return {"reports": reports} if reports else None

    def _computes(self, node: Node) -> dict[str, Any]:
        """Computed variables: name -> (kind, items), or ``None`` when not a sum/average."""
        found: dict[str, Any] = {}
        for entry in node.children(v.COMPUTE):
            if not isinstance(entry, Node):
                continue
            variable, expression = entry.scalar(v.VARIABLE_NAME), entry.scalar(v.JS_EXPRESSION)
            if isinstance(variable, str) and variable:
                found[variable] = parse_score(expression) if isinstance(expression, str) else None
                if found[variable] is None:
                    entry.note("jsExpression", str(expression), "not a sum or an average of items")
            self._leftovers(entry)
        return found

    def _source(self, node: Node, props: Node | None, names: set[str]) -> ItemSource:
        options = None
        references = node.children(v.RESPONSE_OPTIONS)
        if references:
            options = self.follow(references[0], node, node.key(v.RESPONSE_OPTIONS))
        input_type = node.scalar(v.INPUT_TYPE)
        input_type = input_type if isinstance(input_type, str) else ""
        kind = v.INPUT_TYPES.get(input_type.casefold())
        if not input_type and options is not None and options.has(v.CHOICES):
            kind = "select"
        variable = props.scalar(v.VARIABLE_NAME) if props else None
        name = variable if isinstance(variable, str) and variable.strip() else stem(node.where)
        hidden, expression = self._visible(props, "item")
        return ItemSource(
            node,
            props,
            options,
            self._unique(name, names, node, "item"),
            input_type,
            kind,
            hidden,
            expression,
        )

    def _logic(self, source: ItemSource, item: dict[str, Any], earlier: dict[str, Any]) -> None:
        expression = source.expression
        if expression is None:
            return
        parsed = parse_visibility(expression)
        logic, reason = (
            (None, "not all-of or any-of simple comparisons")
            if parsed is None
            else conditions_of(parsed, earlier)
        )
        if logic is None:
            (source.props or source.node).note(
                "isVis", expression, f"{reason}: the item is always shown"
            )
        else:
            item["conditional_logic"] = logic

    def _unique(self, name: str, taken: set[str], node: Node, what: str) -> str:
        """``name`` as the applet allows it, and not taken yet (as ``check_applet`` compares:
        an activity's name stripped and casefolded, an item's casefolded)."""
        name = _CONTROL.sub("", name).lstrip()[:100] or what

        def key(text: str) -> str:
            return text.strip().casefold() if what == "activity" else text.casefold()

        candidate, number = name, 1
        while key(candidate) in taken:
            number += 1
            candidate = f"{name[:95]}_{number}"
        if candidate != name:
            node.note(
                node.key(v.VARIABLE_NAME),
                name,
                f"another {what} has this name: renamed {candidate}",
            )
        taken.add(key(candidate))
        return candidate

    def _leftovers(self, node: Node) -> None:
        node.raw(v.EXT_ITEM)
        note_leftovers(node)
