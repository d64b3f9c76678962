"""Bounded lists: every list endpoint takes ``limit``/``offset`` and answers a ``Page``."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field

__all__ = ["Page", "PageParams", "Paging"]

T = TypeVar("T")


class PageParams(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0)


def _page_params(
    limit: Annotated[int, Query(ge=1, le=200, description="items per page")] = 50,
    offset: Annotated[int, Query(ge=0, description="items to skip")] = 0,
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
