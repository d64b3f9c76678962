"""Use cases of an applet's content: create, replace, patch, delete, duplicate, publish,
public link, read and list. Every accepted change of the content is a new immutable version
and a ``applets.applet.version_published`` event, written in the same transaction.

Documents travel as JSON text: the canonical content is serialised once, stored by
PostgreSQL as rows and as the version's snapshot (``store.write_version``), and the answer
is that same text with the applet's metadata in front (:func:`_answer`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from tessera.applets import canon, directory, store
from tessera.applets.document import AppletContent, AppletCreate, AppletPatch
from tessera.applets.domain import (
    Access,
    Action,
    AppletNotFound,
    Role,
    hash_token,
    new_token,
    version_text,
)
from tessera.applets.events import (
    AccessGranted,
    AppletDeleted,
    AppletUpdated,
    VersionPublished,
)
from tessera.applets.logic import InconsistentApplet, check_applet
from tessera.applets.service.access import access_to
from tessera.common.db import UnitOfWork, driver_in_transaction
from tessera.common.problems import Problem
from tessera.common.security import Principal

__all__ = [
    "AppletConcealed",
    "EncryptionLocked",
    "NotAMember",
    "create_applet",
    "delete_applet",
    "duplicate_applet",
    "get_applet",
    "list_applets",
    "patch_applet",
    "public_applet",
    "replace_applet",
    "set_public_link",
    "set_published",
]

log = structlog.stdlib.get_logger(__name__)


class NotAMember(Problem):
    status = 403
    code = "not_a_member"
    title = "Only members of the organisation may create applets in it"


class EncryptionLocked(Problem):
    status = 409
    code = "encryption_locked"
    title = "The encryption key cannot change once answers may exist"


class AppletConcealed(Problem):
    status = 403
    code = "applet_concealed"
    title = "The applet is not published to respondents"


class AppletMoved(Problem):
    status = 422
    code = "validation_failed"
    title = "An applet stays in its organisation"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Written:
    """An applet as a change left it: its id and the answer's JSON text."""

    applet_id: uuid.UUID
    document: str
    version: str
    changed: bool = True


def _answer(meta: dict[str, Any], document: str) -> str:
    """The answer: ``meta`` (id, version, timestamps...) then the canonical ``document``
    (already JSON text, never parsed again)."""
    head = json.dumps(meta, default=str)
    return f"{head[:-1]}, {document[1:]}" if document != "{}" else head


def _meta(applet: dict[str, Any], roles: list[str]) -> dict[str, Any]:
    return {
        "id": str(applet["id"]),
        "organisation_id": str(applet["organisation_id"]),
        "version": applet["current_version"],
        "published": applet["published"],
        "public_link": applet["public_link_hash"] is not None,
        "created_at": applet["created_at"].isoformat(),
        "updated_at": applet["updated_at"].isoformat(),
        "my_roles": roles,
    }


def _paths(content: AppletContent) -> Iterator[tuple[tuple[str | int, ...], uuid.UUID]]:
    for a, activity in enumerate(content.activities):
        if activity.id is not None:
            yield ("activities", a, "id"), activity.id
        for i, item in enumerate(activity.items):
            if item.id is not None:
                yield ("activities", a, "items", i, "id"), item.id
    for f, flow in enumerate(content.flows):
        if flow.id is not None:
            yield ("flows", f, "id"), flow.id


async def _refuse_foreign_ids(
    conn: Any, content: AppletContent, applet_id: uuid.UUID, given: list[uuid.UUID]
) -> None:
    """An id the editor sent (``given``) must be one of this applet's parts, or new."""
    foreign = await store.foreign_ids(conn, given, applet_id)
    if not foreign:
        return
    errors = [
        {"field": ".".join(map(str, path)), "in": "body", "type": "foreign_id",
         "message": f"{id_} belongs to another applet; leave the id out for a new part"}
        for path, id_ in _paths(content) if id_ in foreign
    ]  # fmt: skip
    raise InconsistentApplet(
        f"invalid: {', '.join(e['field'] for e in errors[:10])}", errors=errors
    )


def _refuse_encryption_change(applet: dict[str, Any], encryption: Any) -> None:
    wanted = None if encryption is None else encryption.model_dump()
    if applet["answers_possible_at"] is not None and wanted != applet["encryption"]:
        raise EncryptionLocked(
            "respondents may have answered with the current key since "
            f"{applet['answers_possible_at']:%Y-%m-%d}; make a new applet for a new key"
        )


def _publish_version(
    uow: UnitOfWork,
    applet_id: uuid.UUID,
    organisation_id: uuid.UUID,
    version: str,
    previous: str | None,
    caller: uuid.UUID | None,
    document: str,
) -> None:
    """``applets.applet.version_published`` with the document itself as its snapshot."""
    data = canon.version_data(
        applet_id=applet_id, organisation_id=organisation_id, version=version,
        previous=previous, published_by=caller, document=document,
    )  # fmt: skip
    uow.publish_json(VersionPublished, data, subject=str(applet_id))


async def create_applet(
    uow: UnitOfWork, body: AppletCreate, caller: Principal, *, fresh_ids: bool = False
) -> Written:
    """A new applet at version 1.0.0; the caller, a member of its organisation, owns it."""
    check_applet(body)
    applet_id = uuid.uuid4()
    given = [] if fresh_ids else canon.given_ids(body)
    document = canon.canonical_json(body, fresh_ids=fresh_ids)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        if not await directory.is_member(conn, body.organisation_id, caller.user_id, caller.orgs):
            raise NotAMember(f"you are not a member of organisation {body.organisation_id}")
        if not fresh_ids:
            await _refuse_foreign_ids(conn, body, applet_id, given)
        now = _now()
        row = {
            **_own_fields(body), "id": applet_id, "organisation_id": body.organisation_id,
            "current_version": "1.0.0", "created_by": caller.user_id, "now": now,
        }  # fmt: skip
        await store.insert_applet(conn, row)
        await store.write_version(
            conn, applet_id, document=document, version=(1, 0, 0),
            created_by=caller.user_id, now=now,
        )  # fmt: skip
        await directory.grant_role(
            conn, applet_id, caller.user_id, Role.owner, granted_by=caller.user_id, now=now
        )
        _publish_version(
            uow, applet_id, body.organisation_id, "1.0.0", None, caller.user_id, document
        )
        uow.publish(
            AccessGranted(applet_id=applet_id, user_id=caller.user_id, role=Role.owner),
            subject=str(applet_id),
        )
        await uow.commit()
    applet = {
        **row, "published": False, "public_link_hash": None, "created_at": now,
        "updated_at": now,
    }  # fmt: skip
    log.info("applet_created", applet_id=str(applet_id),
             items=sum(len(a.items) for a in body.activities))  # fmt: skip
    return Written(applet_id, _answer(_meta(applet, [Role.owner]), document), "1.0.0")


def _own_fields(content: AppletContent) -> dict[str, Any]:
    """The applet's own fields as its row keeps them (JSON ones as dicts)."""
    return content.model_dump(mode="json", include=set(canon.APPLET_FIELDS))


def _roles(access: Access) -> list[str]:
    return sorted(access.effective)


async def replace_applet(
    uow: UnitOfWork, applet_id: uuid.UUID, body: AppletContent, caller: Principal
) -> Written:
    """Replace the whole content; a new version unless nothing changed."""
    check_applet(body)
    given = canon.given_ids(body)
    document = canon.canonical_json(body)
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access = await access_to(conn, applet_id, caller, lock=True)
        access.require(Action.edit)
        applet = access.applet
        if body.organisation_id not in (None, applet["organisation_id"]):
            raise AppletMoved(
                "organisation_id is not the applet's",
                errors=[{"field": "organisation_id", "in": "body", "type": "read_only",
                         "message": "an applet stays in its organisation"}],
            )  # fmt: skip
        _refuse_encryption_change(applet, body.encryption)
        await _refuse_foreign_ids(conn, body, applet_id, given)
        if await store.latest_hash(conn, applet_id) == store.content_hash(document):
            return Written(
                applet_id,
                _answer(_meta(applet, _roles(access)), document),
                applet["current_version"],
                changed=False,
            )
        version = await store.next_version(conn, applet_id)
        text, now = version_text(version), _now()
        await store.delete_content(conn, applet_id, keep=canon.given_ids(body))
        await store.write_version(
            conn, applet_id, document=document, version=version, created_by=caller.user_id,
            now=now,
        )  # fmt: skip
        await store.update_applet(
            conn, applet_id, current_version=text, updated_at=now, **_own_fields(body)
        )
        _publish_version(uow, applet_id, applet["organisation_id"], text,
                         applet["current_version"], caller.user_id, document)  # fmt: skip
        await uow.commit()
    applet = {**applet, "current_version": text, "updated_at": now}
    return Written(applet_id, _answer(_meta(applet, _roles(access)), document), text)


async def patch_applet(
    uow: UnitOfWork, applet_id: uuid.UUID, body: AppletPatch, caller: Principal
) -> Written:
    """Change the applet's own fields: a new version with the same activities."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access = await access_to(conn, applet_id, caller, lock=True)
        access.require(Action.edit)
        applet = access.applet
        latest = await store.version_content(conn, applet_id, None)
        content = AppletContent.model_validate(body.apply(json.loads(latest["content"])))
        _refuse_encryption_change(applet, content.encryption)
        document = canon.canonical_json(content)
        if store.content_hash(document) == await store.latest_hash(conn, applet_id):
            return Written(
                applet_id,
                _answer(_meta(applet, _roles(access)), document),
                applet["current_version"],
                changed=False,
            )
        version = await store.next_version(conn, applet_id)
        text, now = version_text(version), _now()
        await store.write_version(
            conn, applet_id, document=document, version=version, created_by=caller.user_id,
            now=now, rows=False,
        )  # fmt: skip
        await store.update_applet(
            conn, applet_id, current_version=text, updated_at=now, **_own_fields(content)
        )
        _publish_version(uow, applet_id, applet["organisation_id"], text,
                         applet["current_version"], caller.user_id, document)  # fmt: skip
        await uow.commit()
    applet = {**applet, "current_version": text, "updated_at": now}
    return Written(applet_id, _answer(_meta(applet, _roles(access)), document), text)


async def get_applet(uow: UnitOfWork, applet_id: uuid.UUID, caller: Principal) -> str:
    """The applet as the caller may see it (JSON text): all of it for staff; for a
    respondent, once published, what is not hidden."""
    async with uow.driver() as conn:
        access = await access_to(conn, applet_id, caller)
        if access.respondent_only and not access.applet["published"]:
            raise AppletConcealed()
        document = await store.applet_document(conn, applet_id, respondent=access.respondent_only)
    if document is None:  # deleted meanwhile
        raise AppletNotFound()
    return _with_roles(document, _roles(access))


def _with_roles(document: str, roles: list[str]) -> str:
    return f'{document[:-1]}, "my_roles": {json.dumps(roles)}}}'


async def public_applet(uow: UnitOfWork, token: str) -> str:
    """The applet behind a public link, as respondents see it (only while published)."""
    async with uow.driver() as conn:
        applet_id = await conn.fetchval(
            "SELECT id FROM applets WHERE public_link_hash = $1 AND deleted_at IS NULL "
            "AND published",
            hash_token(token),
        )
        document = (
            None
            if applet_id is None
            else await store.applet_document(conn, applet_id, respondent=True)
        )
    if document is None:
        raise AppletNotFound("no published applet behind this link")
    return _with_roles(document, [])


async def list_applets(
    uow: UnitOfWork,
    caller: Principal,
    *,
    name: str | None,
    organisation_id: uuid.UUID | None,
    role: str | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    async with uow.driver() as conn:
        admin_of = await directory.admin_organisations(conn, caller.user_id, caller.orgs)
        rows, total = await store.list_applets(
            conn, user_id=caller.user_id, admin_of=admin_of, name=name,
            organisation_id=organisation_id, role=role, limit=limit, offset=offset,
        )  # fmt: skip
    found = []
    for row in rows:
        roles = set(row["roles"]) | ({"manager"} if row["org_admin"] else set())
        found.append(
            {
                "id": row["id"],
                "organisation_id": row["organisation_id"],
                "display_name": row["display_name"],
                "version": row["current_version"],
                "published": row["published"],
                "my_roles": sorted(roles),
                "created_at": row["created_at"],
                "updated_at": row["updated_at"],
            }
        )
    return found, total


async def delete_applet(uow: UnitOfWork, applet_id: uuid.UUID, caller: Principal) -> None:
    """Soft delete: the applet is gone for everyone; its versions stay for the answers."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access = await access_to(conn, applet_id, caller, lock=True)
        access.require(Action.delete)
        now = _now()
        await store.update_applet(conn, applet_id, deleted_at=now, updated_at=now,
                                  public_link_hash=None)  # fmt: skip
        await conn.execute(
            "UPDATE invitations SET status = 'revoked', updated_at = $2 "
            "WHERE applet_id = $1 AND status = 'pending'",
            applet_id,
            now,
        )
        await conn.execute(
            "UPDATE transfers SET status = 'cancelled', updated_at = $2 "
            "WHERE applet_id = $1 AND status = 'pending'",
            applet_id,
            now,
        )
        uow.publish(
            AppletDeleted(
                applet_id=applet_id,
                organisation_id=access.applet["organisation_id"],
                deleted_by=caller.user_id,
            ),
            subject=str(applet_id),
        )
        await uow.commit()
    log.info("applet_deleted", applet_id=str(applet_id))


async def duplicate_applet(
    uow: UnitOfWork, applet_id: uuid.UUID, caller: Principal, *, display_name: str | None
) -> Written:
    """A new applet in the same organisation with the same content (new ids, no encryption
    key: a new applet gets its own), owned by the caller."""
    async with uow.driver() as conn:
        access = await access_to(conn, applet_id, caller)
        access.require(Action.duplicate)
        latest = await store.version_content(conn, applet_id, None)
    content = json.loads(latest["content"])
    content["display_name"] = display_name or f"{content['display_name']} (copy)"[:200]
    content["encryption"] = None
    body = AppletCreate.model_validate(
        {**content, "organisation_id": access.applet["organisation_id"]}
    )
    duplicate = _duplicate_caller(caller, access)
    return await create_applet(uow, body, duplicate, fresh_ids=True)


def _duplicate_caller(caller: Principal, access: Access) -> Principal:
    """The caller may duplicate (a role on the applet) without being an organisation member
    in its token: the new applet lives where the old one does."""
    from dataclasses import replace

    orgs = dict(caller.orgs)
    orgs.setdefault(str(access.applet["organisation_id"]), "member")
    return replace(caller, orgs=orgs)


async def set_published(
    uow: UnitOfWork, applet_id: uuid.UUID, caller: Principal, *, published: bool
) -> str:
    """Show the applet to its respondents, or hide it; not a new version."""
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access = await access_to(conn, applet_id, caller, lock=True)
        access.require(Action.publish)
        applet = access.applet
        if applet["published"] != published:
            now = _now()
            await store.update_applet(conn, applet_id, published=published, updated_at=now)
            uow.publish(
                AppletUpdated(
                    applet_id=applet_id,
                    organisation_id=applet["organisation_id"],
                    change="published" if published else "concealed",
                    published=published,
                    public_link=applet["public_link_hash"] is not None,
                ),
                subject=str(applet_id),
            )
            await uow.commit()
    async with uow.driver() as conn:
        document = await store.applet_document(conn, applet_id)
    if document is None:
        raise AppletNotFound()
    return _with_roles(document, _roles(access))


async def set_public_link(
    uow: UnitOfWork, applet_id: uuid.UUID, caller: Principal, *, enabled: bool
) -> str | None:
    """A new public link (its token, shown once; an earlier link stops working), or none."""
    token = new_token() if enabled else None
    async with uow:
        conn = await driver_in_transaction(uow.session)
        access = await access_to(conn, applet_id, caller, lock=True)
        access.require(Action.publish)
        applet, now = access.applet, _now()
        had = applet["public_link_hash"] is not None
        changes: dict[str, Any] = {
            "public_link_hash": None if token is None else hash_token(token),
            "updated_at": now,
        }
        if token is not None and applet["answers_possible_at"] is None:
            changes["answers_possible_at"] = now  # anonymous answers may come from now on
        await store.update_applet(conn, applet_id, **changes)
        if had != enabled or enabled:
            uow.publish(
                AppletUpdated(
                    applet_id=applet_id,
                    organisation_id=applet["organisation_id"],
                    change="public_link_enabled" if enabled else "public_link_disabled",
                    published=applet["published"],
                    public_link=enabled,
                ),
                subject=str(applet_id),
            )
        await uow.commit()
    return token
