"""Auth's HTTP routes for accounts: translate HTTP to use cases; no SQL here."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["accounts"])
