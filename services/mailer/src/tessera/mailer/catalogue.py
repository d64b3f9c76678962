"""Every email the mailer sends, as declarations: the :class:`Email` objects of the modules in
``tessera.mailer.mails`` (one module per producing service).

An :class:`Email` says, in one place, which events send it (the mailer's trimmed models of
them), which templates it uses, how to turn one event into the emails to send (recipients,
locale, template context: :class:`Mail`), and what sample events previews are rendered from.
The rest of the mailer is built from the catalogue: ``handlers.py`` registers one consumer
per declared event, ``GET /mail/templates`` lists the declared templates, and a preview
renders the sample through the same ``compose`` as a real event. So a service that lands
later adds its emails with a module here and its templates, and nothing else changes.

No I/O: modules are imported, nothing connects.
"""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote

from tessera.common.messaging import Event

if TYPE_CHECKING:
    from tessera.common.consumers import Handling

__all__ = [
    "SAMPLE_TOKEN",
    "Email",
    "Mail",
    "Occasion",
    "checked",
    "emails",
    "find_template",
    "templates",
    "when",
]

E = TypeVar("E", bound=Event)
SAMPLE_TOKEN = "sample-token"  # noqa: S105 (what a preview's links carry; opens nothing)


@dataclass(frozen=True)
class Mail:
    """One templated email: what to render, for whom, in which language."""

    template: str
    to: str
    locale: str
    context: dict[str, Any]
    user_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Occasion:
    """What an email is composed with besides its event: where links point, and when the
    event happened (the envelope's ``occurred_at``; now, for a preview)."""

    public_url: str
    occurred_at: datetime

    def url(self, path: str) -> str:
        """A page of the web app."""
        return f"{self.public_url.rstrip('/')}/{path.lstrip('/')}"

    def link(self, path: str, token: str) -> str:
        """A page of the web app with a single-use token: in the fragment, which browsers
        never send and so no server or proxy logs."""
        return f"{self.url(path)}#token={quote(token)}"


@dataclass(frozen=True)
class Email(Generic[E]):
    """One kind of email, declared once.

    * ``on``: the events that send it (the mailer's own trimmed models: only the fields
      ``compose`` reads, so producers can add fields freely);
    * ``templates``: every template ``compose`` may choose (``templates/<locale>/<name>.*``);
    * ``compose``: the emails one event sends, none to several (a missing address is an
      empty list: nothing to send, nothing wrong);
    * ``samples``: events, given the current time, whose emails together use every template
      (previews render them through ``compose``);
    * ``afterwards``: an effect run in its own transaction once the event's emails are
      settled or given back for a retry (the account-deleted email erases its address).
    """

    on: tuple[type[E], ...]
    templates: tuple[str, ...]
    compose: Callable[[E, Occasion], list[Mail]]
    samples: Callable[[datetime], Sequence[E]]
    afterwards: Callable[[Handling, E], Awaitable[None]] | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.on or not self.templates:
            raise ValueError("an email needs at least one event and one template")


def when(iso: str) -> datetime | str:
    """An event's ISO 8601 instant as a datetime, which the renderer writes for the email's
    locale (an empty or unreadable value stays a string, written as it is)."""
    try:
        value = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@cache
def emails() -> tuple[Email[Any], ...]:
    """Every :class:`Email` defined at the top level of a module of ``tessera.mailer.mails``,
    in module-name then definition order (:func:`checked`)."""
    from tessera.mailer import mails

    found: dict[int, Email[Any]] = {}
    for module in sorted(pkgutil.iter_modules(mails.__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"{mails.__name__}.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, Email):
                found.setdefault(id(value), value)
    return checked(tuple(found.values()))


def checked(declared: tuple[Email[Any], ...]) -> tuple[Email[Any], ...]:
    """``declared``, unless an event sends two emails or a template is declared twice (each
    would make one event send the same thing twice, or a preview pick one at random)."""
    events = [e.routing_key() for email in declared for e in email.on]
    names = [name for email in declared for name in email.templates]
    if twice := sorted({e for e in events if events.count(e) > 1}):
        raise ValueError(f"declared by two emails: {', '.join(twice)}")
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise ValueError(f"templates declared twice: {', '.join(twice)}")
    return declared


def templates() -> tuple[str, ...]:
    """The names of every template the mailer sends, in catalogue order."""
    return tuple(name for email in emails() for name in email.templates)


def find_template(name: str, occasion: Occasion) -> Mail | None:
    """A sample of template ``name``: the first email its declaration's samples compose
    with it, or None when no email declares it."""
    for email in emails():
        if name in email.templates:
            for sample in email.samples(occasion.occurred_at):
                for mail in email.compose(sample, occasion):
                    if mail.template == name:
                        return mail
            raise LookupError(f"no sample of {name!r} composes that template")
    return None
