"""The mailer's routes, for superadmins: the delivery log, retrying a failed email, and the
suppressed addresses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from tessera.common.deps import Runtime, Superadmin, UoW
from tessera.common.pagination import Page, Paging
from tessera.common.problems import Problem
from tessera.mailer import admin, catalogue, service

__all__ = ["router", "templates"]

router = APIRouter(prefix="/mail", tags=["deliveries"])

Status = Literal["queued", "sending", "sent", "retrying", "failed", "suppressed", "limited"]
FORBIDDEN: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid access token"},
    403: {"description": "the caller is not a superadmin"},
}


class DeliveryOut(BaseModel):
    """One email of one event, as the mailer recorded it (never its body)."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "7f0c7f1e-0f64-5a0e-9d7e-4a1b8f0d2c11",
                    "event_id": "0b9a2c52-8a45-4f7e-9a55-52d8f2b1c3d4",
                    "event_type": "auth.user.registered",
                    "template": "verify_email",
                    "locale": "en",
                    "recipient": "ada@example.org",
                    "subject": "Confirm your email address",
                    "message_id": "<7f0c7f1e-0f64-5a0e-9d7e-4a1b8f0d2c11@tessera>",
                    "status": "sent",
                    "attempts": 1,
                    "last_error": None,
                    "created_at": "2026-12-02T18:00:00Z",
                    "updated_at": "2026-12-02T18:00:01Z",
                    "sent_at": "2026-12-02T18:00:01Z",
                }
            ]
        },
    )

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    template: str
    locale: str
    recipient: str
    subject: str
    message_id: str
    status: Status
    attempts: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None


class SuppressionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    address: str
    reason: str = Field(description="what the mail server answered")
    delivery_id: uuid.UUID | None
    created_at: datetime


@router.get(
    "/deliveries",
    summary="The delivery log, newest first",
    responses=FORBIDDEN,
)
async def list_deliveries(
    uow: UoW,
    caller: Superadmin,
    page: Paging,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    recipient: Annotated[str | None, Query(max_length=320)] = None,
    template: Annotated[str | None, Query(max_length=100)] = None,
    event_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[DeliveryOut]:
    rows, total = await admin.list_deliveries(
        uow,
        admin.DeliveryFilter(
            status=status_, recipient=recipient, template=template, event_id=event_id
        ),
        page,
    )
    return Page.of([DeliveryOut.model_validate(r) for r in rows], total, page)


@router.get(
    "/deliveries/{delivery_id}",
    summary="One delivery",
    responses=FORBIDDEN | {404: {"description": "no such delivery"}},
)
async def get_delivery(uow: UoW, caller: Superadmin, delivery_id: uuid.UUID) -> DeliveryOut:
    return DeliveryOut.model_validate(await admin.get_delivery(uow, delivery_id))


@router.post(
    "/deliveries/{delivery_id}/retry",
    summary="Send a failed email again",
    description=(
        "The delivery goes back to `queued` and its event is replayed from the mailer's "
        "dead-letter queue, where every failed delivery's event waits; the email is then sent "
        "like a new one (its other emails, already settled, are not sent again)."
    ),
    status_code=status.HTTP_202_ACCEPTED,
    responses=FORBIDDEN
    | {
        404: {"description": "no such delivery"},
        409: {"description": "the delivery has not failed, or its event is no longer in the DLQ"},
    },
)
async def retry_delivery(
    uow: UoW, runtime: Runtime, caller: Superadmin, delivery_id: uuid.UUID
) -> DeliveryOut:
    return DeliveryOut.model_validate(await admin.retry_delivery(uow, runtime, delivery_id))


@router.get(
    "/suppressions",
    summary="Addresses not mailed any more (their server refused them for good)",
    tags=["suppressions"],
    responses=FORBIDDEN,
)
async def list_suppressions(
    uow: UoW,
    caller: Superadmin,
    page: Paging,
    address: Annotated[str | None, Query(max_length=320, description="exact, any case")] = None,
) -> Page[SuppressionOut]:
    rows, total = await admin.list_suppressions(uow, address, page)
    return Page.of([SuppressionOut.model_validate(r) for r in rows], total, page)


@router.delete(
    "/suppressions/{address}",
    summary="Mail this address again",
    tags=["suppressions"],
    status_code=status.HTTP_204_NO_CONTENT,
    responses=FORBIDDEN | {404: {"description": "the address is not suppressed"}},
)
async def lift_suppression(
    uow: UoW, caller: Superadmin, address: Annotated[str, Path(max_length=320)]
) -> None:
    await admin.lift_suppression(uow, address)


class TemplateOut(BaseModel):
    name: str = Field(examples=["verify_email"])
    locales: list[str] = Field(description="languages it is written in", examples=[["en", "fi"]])


class PreviewOut(BaseModel):
    name: str
    locale: str = Field(description="the language rendered (the one asked for, or its fallback)")
    subject: str
    text: str
    html: str


templates = APIRouter(prefix="/mail", tags=["templates"])


@templates.get("/templates", summary="The emails the mailer sends", responses=FORBIDDEN)
async def list_templates(runtime: Runtime, caller: Superadmin, page: Paging) -> Page[TemplateOut]:
    mailer = runtime.get(service.Mailer)
    names = catalogue.templates()
    shown = names[page.offset : page.offset + page.limit]
    items = [TemplateOut(name=n, locales=mailer.renderer.locales(n)) for n in shown]
    return Page.of(items, len(names), page)


@templates.get(
    "/templates/{name}/preview",
    response_model=PreviewOut,
    summary="One email rendered with sample data",
    description=(
        "Rendered from the email's declared sample event, through the same code as a real "
        "one. Without `part`, the subject and both parts as JSON; `part=html` or `part=text` "
        "answers that part alone (`text/html` or `text/plain`), as a mail client shows it."
    ),
    responses=FORBIDDEN
    | {
        200: {"content": {"text/html": {}, "text/plain": {}}},
        404: {"description": "no such template"},
    },
)
async def preview_template(
    runtime: Runtime,
    caller: Superadmin,
    name: Annotated[str, Path(max_length=100)],
    locale: Annotated[str, Query(max_length=35, examples=["fi"])] = "en",
    part: Annotated[Literal["html", "text"] | None, Query()] = None,
) -> Any:
    mailer = runtime.get(service.Mailer)
    occasion = catalogue.Occasion(mailer.settings.public_url, datetime.now(UTC))
    sample = catalogue.find_template(name, occasion)
    if sample is None:
        raise TemplateNotFound(f"no template {name!r}")
    rendered = mailer.renderer.render(name, locale, sample.context)
    language = {"Content-Language": rendered.locale}
    if part == "html":
        return HTMLResponse(rendered.html, headers=language)
    if part == "text":
        return PlainTextResponse(rendered.text, headers=language)
    return PreviewOut(
        name=name,
        locale=rendered.locale,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
    )


class TemplateNotFound(Problem):
    status = 404
    code = "template_not_found"
    title = "No such template"
