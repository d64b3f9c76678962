"""Bounded lists: every list endpoint takes ``limit``/``offset`` and answers a ``Page``.

``offset`` is at most ``MAX_OFFSET``: deeper pages are not a use case, and an unbounded
integer would reach PostgreSQL's ``OFFSET`` (a 64-bit integer) and fail there instead of
being refused as invalid input (422).
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

__all__ = ["MAX_LIMIT", "MAX_OFFSET", "Page", "PageParams", "Paging"]

T = TypeVar("T")

MAX_LIMIT = 200
MAX_OFFSET = 10_000_000


class PageParams(BaseModel):
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 50,
    offset: Annotated[
        int, Query(ge=0, le=MAX_OFFSET, description=f"items to skip (at most {MAX_OFFSET:_})")
    ] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


Paging = Annotated[PageParams, Depends(_page_params)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="items matching, across all pages")
    limit: int
    offset: int

    @classmethod
    def of(cls, items: list[T], total: int, page: PageParams) -> Page[T]:
        return cls(items=items, total=total, limit=page.limit, offset=page.offset)
