"""What a MISP client asks first: the version, who it is, the attribute types."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from tessera.common.deps import UoW, resource
from tessera.sync import misp_types
from tessera.sync.api.common import DENIED, Me, SyncSettings
from tessera.sync.service import protection
from tessera.sync.viewer import ROLE_IDS, ROLE_NAMES

__all__ = ["router"]

router = APIRouter(prefix="/sync", tags=["MISP instance"])
Keys = Annotated[protection.Keyring, Depends(resource(protection.Keyring))]


@router.get(
    "/gpg.asc",
    summary="This instance's OpenPGP public key, the one that signs protected events "
    "(MISP's webroot gpg.asc: public)",
    response_class=Response,
    responses={200: {"content": {"application/pgp-keys": {"schema": {"type": "string"}}},
                     "description": "the armored public key"}},
)  # fmt: skip
async def instance_key(uow: UoW, keys: Keys) -> Response:
    found = await protection.public_keys(uow, keys)
    signing = next(k for k in found if k["signing"])
    return Response(signing["key_data"], media_type="application/pgp-keys")


@router.get(
    "/cryptographicKeys/instance",
    summary="This instance's OpenPGP keys, oldest first: `signing` the one that signs "
    "protected events now, `retired` those that no longer sign",
    responses={403: DENIED},
)
async def instance_keys(_me: Me, uow: UoW, keys: Keys) -> dict[str, Any]:
    return {"CryptographicKey": await protection.public_keys(uow, keys)}


@router.get(
    "/servers/getVersion",
    summary="The MISP version this instance speaks, and the PyMISP it recommends",
    responses={403: DENIED},
)
async def get_version(me: Me, settings: SyncSettings) -> dict[str, Any]:
    return {
        "version": settings.misp_version,
        "pymisp_recommended_version": settings.pymisp_recommended_version,
        "perm_sync": me.may_sync,
        "perm_sighting": me.may_sight,
        "perm_galaxy_editor": False,
        "perm_analyst_data": me.may_add,
        "request_encoding": ["gzip"],
        "filter_sightings": True,
    }


@router.get(
    "/users/view/me",
    summary="The caller as MISP sees them: User, Role, UserSetting, Organisation",
    responses={403: DENIED},
)
async def view_me(me: Me) -> dict[str, Any]:
    role_id = ROLE_IDS[me.role]
    return {
        "User": {
            "id": str(me.user_id),
            "org_id": str(me.org_id),
            "email": me.email,
            "autoalert": False,
            "authkey": None,
            "invited_by": "0",
            "gpgkey": None,
            "certif_public": "",
            "nids_sid": "0",
            "termsaccepted": True,
            "newsread": "0",
            "role_id": str(role_id),
            "change_pw": False,
            "contactalert": False,
            "disabled": False,
            "expiration": None,
            "current_login": "0",
            "last_login": "0",
            "force_logout": False,
            "date_created": None,
            "date_modified": None,
            "sub": None,
            "external_auth_required": False,
            "external_auth_key": None,
            "last_api_access": None,
            "notification_daily": False,
            "notification_weekly": False,
            "notification_monthly": False,
            "totp": None,
            "hotp_counter": None,
            "last_pw_change": None,
        },
        "Role": {
            "id": str(role_id),
            "name": ROLE_NAMES[me.role],
            "created": None,
            "modified": None,
            "default_role": me.role == "user",
            "restricted_to_site_admin": me.site_admin,
            "enforce_rate_limit": False,
            "rate_limit_count": "0",
            "memory_limit": "",
            "max_execution_time": "",
            "permission": "3" if me.may_publish else ("0" if not me.may_add else "1"),
            "permission_description": "publish" if me.may_publish else "read only",
            **me.permissions(),
        },
        "UserSetting": [],
        "Organisation": {
            "id": str(me.org_id),
            "name": me.org_name,
            "uuid": str(me.org_uuid),
            "local": True,
        },
    }


@router.get(
    "/attributes/describeTypes.json",
    summary="MISP's attribute types and categories (as the pymisp package ships them)",
    responses={403: DENIED},
)
async def describe_types(me: Me) -> dict[str, Any]:
    return {"result": misp_types.describe_types()}
