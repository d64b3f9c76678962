"""Routes of ReproSchema import and export (``reproschema/`` does the reading and writing)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError

from tessera.applets import reproschema
from tessera.applets.api.common import FORBIDDEN, INVALID, NOT_FOUND, PROBLEM, json_text
from tessera.applets.document import AppletCreate
from tessera.applets.domain import Action
from tessera.applets.schemas import ImportOut
from tessera.applets.service import content, versions
from tessera.common.deps import Caller, UoW
from tessera.common.problems import Problem

__all__ = ["router"]

router = APIRouter(prefix="/applets", tags=["ReproSchema"])

_BUNDLE_TYPES = {"application/zip", "application/json"}
_CONTEXT = "https://raw.githubusercontent.com/ReproNim/reproschema/1.0.0/contexts/reproschema"
_EXAMPLE = {
    "root": "mood_schema",
    "files": {
        "mood_schema": {
            "@context": _CONTEXT, "@type": "reproschema:Activity", "@id": "mood_schema",
            "prefLabel": {"en": "Mood"},
            "ui": {"order": ["items/mood"],
                   "addProperties": [{"isAbout": "items/mood", "variableName": "mood",
                                      "isVis": True}]},
        },
        "items/mood": {
            "@context": _CONTEXT, "@type": "reproschema:Field", "@id": "mood",
            "question": {"en": "How is your mood today?"}, "ui": {"inputType": "radio"},
            "responseOptions": {"valueType": "xsd:integer",
                                "choices": [{"name": {"en": "Low"}, "value": 0},
                                            {"name": {"en": "High"}, "value": 1}]},
        },
    },
}  # fmt: skip
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": (
            "a zip of the protocol's (or one activity's) JSON-LD files; or JSON: "
            '`{"root": "<path>", "files": {"<path>": <JSON-LD document>, ...}}`, or one '
            "self-contained protocol or activity document"
        ),
        "content": {
            "application/zip": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {"type": "object"},
                "examples": {"one activity": {"value": _EXAMPLE}},
            },
        },
    }
}


class UnsupportedMediaType(Problem):
    status = 415
    code = "unsupported_media_type"
    title = "A ReproSchema bundle is application/zip or application/json"


class ImportedInvalid(Problem):
    status = 422
    code = "validation_failed"
    title = "The imported applet is not valid"


@router.post(
    "/import/reproschema",
    status_code=201,
    response_model=ImportOut,
    summary="Create an applet from a ReproSchema protocol or activity (no network access)",
    openapi_extra=_BODY,
    responses={
        403: {"description": "not a member of the organisation", **PROBLEM},
        415: {"description": "neither a zip nor JSON", **PROBLEM},
        422: INVALID,
    },
)
async def import_reproschema(
    request: Request,
    organisation_id: Annotated[uuid.UUID, Query(description="where the applet is created")],
    uow: UoW,
    caller: Caller,
    root: Annotated[
        str | None,
        Query(max_length=500, description="the protocol or activity file, when a zip has several"),
    ] = None,
) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in _BUNDLE_TYPES:
        raise UnsupportedMediaType(f"got {media or 'no content type'}")
    data = await request.body()
    imported = await anyio.to_thread.run_sync(
        lambda: reproschema.read_bundle(data, content_type=media, root=root)
    )
    try:
        body = AppletCreate.model_validate(
            {**imported.document, "organisation_id": str(organisation_id)}
        )
    except ValidationError as exc:
        errors = [
            {"field": ".".join(map(str, e["loc"])), "in": "body", "message": e["msg"],
             "type": e["type"]}
            for e in exc.errors()
        ]  # fmt: skip
        raise ImportedInvalid(
            "the bundle maps to an applet that is not valid", errors=errors
        ) from None
    written = await content.create_applet(uow, body, caller, fresh_ids=True)
    unsupported = json.dumps([dataclasses.asdict(u) for u in imported.unsupported])
    return json_text(
        f'{{"applet": {written.document}, "unsupported": {unsupported}}}',
        201,
        {"Location": f"/applets/{written.applet_id}"},
    )


@router.get(
    "/{applet_id}/export/reproschema",
    summary="The applet as a ReproSchema bundle (a zip the import reads back as it is)",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
        403: FORBIDDEN,
        404: NOT_FOUND,
    },
)
async def export_reproschema(applet_id: uuid.UUID, uow: UoW, caller: Caller) -> Response:
    document = await versions.latest_content(uow, applet_id, caller, Action.export)
    data = await anyio.to_thread.run_sync(
        lambda: reproschema.write_bundle(document, applet_id=str(applet_id))
    )
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="applet-{applet_id}.zip"'},
    )
