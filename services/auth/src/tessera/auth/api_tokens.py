"""Auth's HTTP routes for tokens: translate HTTP to use cases; no SQL here."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(prefix="/auth", tags=["tokens"])
