"""The applet as client editors send it: one document, created and replaced whole.

``AppletContent`` is what ``PUT /applets/{id}`` takes and what every version keeps;
``AppletCreate`` adds the organisation for ``POST /applets``; ``AppletPatch`` changes only
the applet's own fields. The order of activities, items and flows is their order in the
lists. Parts that already exist carry their ``id`` (kept from version to version, so the
answers given to an item stay attached to it); new parts leave it out and get one.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from tessera.applets.responses import (
    READ_ONLY_ORDER,
    Condition,
    Item,
    Localized,
    Name,
    Strict,
    Url,
    drop_read_only,
)

__all__ = [
    "ActivityIn",
    "AppletContent",
    "AppletCreate",
    "AppletPatch",
    "Encryption",
    "FlowIn",
    "Retention",
    "ScoreReport",
    "ScoresAndReports",
    "SectionReport",
    "Theme",
]

Color = Annotated[str, Field(pattern=r"^#(?:[0-9a-fA-F]{3}){1,2}$")]


class Theme(Strict):
    primary_color: Color | None = None
    secondary_color: Color | None = None
    tertiary_color: Color | None = None
    logo: Url | None = None


class Encryption(Strict):
    """The owner's public key and the Diffie-Hellman parameters respondents' apps encrypt
    answers with. The private key never reaches the server. Fixed once answers may exist."""

    public_key: Annotated[str, Field(min_length=1, max_length=10_000)]
    prime: Annotated[str, Field(min_length=1, max_length=10_000)]
    base: Annotated[str, Field(min_length=1, max_length=1_000)]
    account_id: Annotated[str, Field(min_length=1, max_length=200)]


class Retention(Strict):
    """How long answers are kept: ``{"period": "indefinitely"}`` or ``{"period": "months",
    "amount": 6}``."""

    period: Literal["days", "weeks", "months", "years", "indefinitely"] = "indefinitely"
    amount: int | None = Field(default=None, ge=1, le=3_650)

    @model_validator(mode="after")
    def _amount(self) -> Retention:
        if self.period == "indefinitely" and self.amount is not None:
            raise ValueError("amount: an indefinite retention has none")
        if self.period != "indefinitely" and self.amount is None:
            raise ValueError(f"amount: how many {self.period} answers are kept")
        return self


# --- scores and reports -----------------------------------------------------------------------


class ScoreCondition(Strict):
    """A named range of a score (``flag_score`` marks it for staff)."""

    id: Annotated[str, Field(min_length=1, max_length=100)]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    flag_score: bool = False
    message: str | None = Field(default=None, max_length=5_000)
    items_print: list[str] = Field(default_factory=list, max_length=300)
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(min_length=1, max_length=20)


class ScoreReport(Strict):
    type: Literal["score"] = "score"
    id: Annotated[str, Field(min_length=1, max_length=100, description="sections refer to it")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    calculation_type: Literal["sum", "average", "percentage"]
    items_score: list[str] = Field(min_length=1, max_length=300, description="scored items")
    message: str | None = Field(default=None, max_length=5_000)
    items_print: list[str] = Field(default_factory=list, max_length=300)
    conditional_logic: list[ScoreCondition] = Field(default_factory=list, max_length=50)


class SectionLogic(Strict):
    match: Literal["all", "any"] = "all"
    conditions: list[Condition] = Field(min_length=1, max_length=50)


class SectionReport(Strict):
    type: Literal["section"] = "section"
    name: Annotated[str, Field(min_length=1, max_length=200)]
    message: str | None = Field(default=None, max_length=5_000)
    items_print: list[str] = Field(default_factory=list, max_length=300)
    conditional_logic: SectionLogic | None = None


class ScoresAndReports(Strict):
    generate_report: bool = False
    show_score_summary: bool = False
    reports: list[Annotated[ScoreReport | SectionReport, Field(discriminator="type")]] = Field(
        default_factory=list, max_length=100
    )


# --- activities, flows, the applet ------------------------------------------------------------


class ActivityIn(Strict):
    id: uuid.UUID | None = Field(default=None, description="kept from version to version")
    order: int | None = Field(default=None, ge=0, description=READ_ONLY_ORDER)
    name: Name = Field(description="unique in the applet; flows refer to it")
    description: Localized = Field(default_factory=dict)
    splash_screen: Url | None = None
    image: Url | None = None
    show_all_at_once: bool = False
    is_skippable: bool = False
    is_reviewable: bool = False
    response_is_editable: bool = True
    is_hidden: bool = False
    scores_and_reports: ScoresAndReports | None = None
    items: list[Item] = Field(min_length=1, max_length=500)


class FlowIn(Strict):
    id: uuid.UUID | None = None
    order: int | None = Field(default=None, ge=0, description=READ_ONLY_ORDER)
    name: Name
    description: Localized = Field(default_factory=dict)
    is_single_report: bool = False
    hide_badge: bool = False
    is_hidden: bool = False
    activities: list[Name] = Field(
        min_length=1, max_length=200, description="names of the applet's activities, in order"
    )
    activity_ids: list[uuid.UUID] | None = Field(
        default=None, description="read-only: the ids of the activities named"
    )


class _AppletFields(Strict):
    display_name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Localized = Field(default_factory=dict)
    about: Localized = Field(default_factory=dict)
    image: Url | None = None
    watermark: Url | None = None
    theme: Theme | None = None
    encryption: Encryption | None = None
    retention: Retention = Retention()


READ_ONLY = ("id", "version", "published", "public_link", "created_at", "updated_at", "my_roles")


class AppletContent(_AppletFields):
    """The whole applet: its own fields, its activities with their items, its flows. What
    ``GET /applets/{id}`` answers may be sent back as it is: its read-only fields (``id``,
    ``version``, ``published``, ``order``...) are ignored, and ``organisation_id`` must be
    the applet's own."""

    @model_validator(mode="before")
    @classmethod
    def _read_only(cls, data: Any) -> Any:
        return drop_read_only(data, *READ_ONLY)

    organisation_id: uuid.UUID | None = Field(
        default=None, description="read-only on PUT (the applet's own, if given)"
    )

    activities: list[ActivityIn] = Field(min_length=1, max_length=200)
    flows: list[FlowIn] = Field(default_factory=list, max_length=100)


class AppletCreate(AppletContent):
    organisation_id: uuid.UUID = Field(description="an organisation the caller belongs to")


class AppletPatch(Strict):
    """The applet's own fields; those left out stay as they are (``null`` clears the
    optional ones)."""

    display_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Localized | None = None
    about: Localized | None = None
    image: Url | None = None
    watermark: Url | None = None
    theme: Theme | None = None
    encryption: Encryption | None = None
    retention: Retention | None = None

    @model_validator(mode="after")
    def _required_stay(self) -> AppletPatch:
        for name in ("display_name", "retention", "description", "about"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def apply(self, content: dict[str, Any]) -> dict[str, Any]:
        """``content`` (a dumped ``AppletContent``) with these fields changed."""
        changed = self.model_dump(mode="json", include=self.model_fields_set)
        return {**content, **changed}
