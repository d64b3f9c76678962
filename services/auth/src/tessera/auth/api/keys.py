"""``GET /auth/.well-known/jwks.json``: the public keys every service verifies tokens with."""

from __future__ import annotations

from fastapi import APIRouter, Response

from tessera.auth.api.common import Ctx

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["auth"])


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys verifying access tokens (JWKS)",
    response_model=None,
)
async def jwks(ctx: Ctx, response: Response) -> dict[str, object]:
    response.headers["Cache-Control"] = "public, max-age=300"
    # a verifier meeting an unknown kid refetches this: show a key rotated in by another
    # process now, not at this process's next periodic reload (bounded by min_reload_s)
    await ctx.keys.reload(force=False)
    return ctx.keys.jwks
