"""Jinja2 templates per locale (``templates/<locale>/<name>.{subject,txt,html}.j2``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

__all__ = ["Rendered", "Renderer"]

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
        self.env = Environment(
            loader=FileSystemLoader(directory),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
            undefined=StrictUndefined,
            enable_async=False,
        )

    def render(self, name: str, locale: str, context: dict[str, Any]) -> Rendered:
        for candidate in dict.fromkeys([locale, locale.split("-")[0], self.default_locale]):
            try:
                subject = self.env.get_template(f"{candidate}/{name}.subject.j2")
            except TemplateNotFound:
                continue
            return Rendered(
                locale=candidate,
                subject=" ".join(subject.render(context).split()),
                text=self.env.get_template(f"{candidate}/{name}.txt.j2").render(context),
                html=self.env.get_template(f"{candidate}/{name}.html.j2").render(context),
            )
        raise TemplateNotFound(f"{name} for {locale}")
