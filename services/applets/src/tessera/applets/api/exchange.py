"""Routes of ReproSchema import and export."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/applets", tags=["ReproSchema"])
