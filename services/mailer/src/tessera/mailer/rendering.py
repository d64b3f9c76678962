"""Jinja2 templates per locale (``templates/<locale>/<name>.{subject,txt,html}.j2``).

A translator's work is one folder per language. The locale an event carries picks the folder
(``fr-CA`` -> ``fr``), falling back to the mailer's default; dates and times in the context
(``datetime`` values) are written for the locale asked for, as Babel knows it (``fr-CA``
dates as in Canada), in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

__all__ = ["Rendered", "Renderer", "format_when"]

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Rendered:
    locale: str
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, *, default_locale: str = "en", directory: Path = TEMPLATES) -> None:
        self.default_locale = default_locale
        self.directory = directory
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            enable_async=False,
        )

    def locales(self, name: str) -> list[str]:
        """The languages ``name`` is written in (a folder holding its subject)."""
        return sorted(p.parent.name for p in self.directory.glob(f"*/{name}.subject.j2"))

    def render(self, name: str, locale: str, context: dict[str, Any]) -> Rendered:
        for candidate in dict.fromkeys([locale, locale.split("-")[0], self.default_locale]):
            try:
                subject = self.env.get_template(f"{candidate}/{name}.subject.j2")
            except TemplateNotFound:
                continue
            written = _babel_locale(locale) or _babel_locale(candidate) or Locale("en")
            context = {
                k: format_when(v, written) if isinstance(v, datetime) else v
                for k, v in context.items()
            }
            return Rendered(
                locale=candidate,
                subject=" ".join(subject.render(context).split()),
                text=self.env.get_template(f"{candidate}/{name}.txt.j2").render(context),
                html=self.env.get_template(f"{candidate}/{name}.html.j2").render(context),
            )
        raise TemplateNotFound(f"{name} for {locale}")


def format_when(value: datetime, locale: Locale) -> str:
    """``December 3, 2026, 6:05 PM UTC`` / ``3 décembre 2026 18:05 UTC`` / ..."""
    at = value.astimezone(UTC)
    day = format_date(at, "long", locale=locale)
    return f"{day} {format_time(at, 'short', tzinfo=UTC, locale=locale)} UTC"


@lru_cache(maxsize=256)
def _babel_locale(tag: str) -> Locale | None:
    try:
        return Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None
