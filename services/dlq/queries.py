"""Reading the DLQ: filtered pages, one entry, and aggregated statistics.

Aggregation happens in PostgreSQL: the statistics are one grouping-sets scan
of the entries in the window plus one count of the retry runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from server.errors import NotFound
from services.dlq.categories import DOCUMENTED_CATEGORIES
from services.dlq.convert import task_id_of
from services.dlq.lifecycle import ALL_STATUSES, Outcome, Status
from services.dlq.models import DlqEntry, DlqRetryRun
from services.dlq.validation import DEFAULT_PAGE_SIZE

LIST_PATH = "/api/v1/onboarding/admin/dlq/tasks/"
# Entries still waiting for something to happen; the oldest one is reported.
_AWAITING = (Status.PENDING, Status.RETRYING, Status.FAILED)


@dataclass(frozen=True)
class ListFilters:
    """Equality filters of the listing; empty strings are unset."""

    status: str = ""
    category: str = ""
    task_name: str = ""
    correlation_id: str = ""

    def clauses(self) -> list[ColumnElement[bool]]:
        # Resolved entries are kept for statistics, listed only on request.
        clauses = [
            DlqEntry.status == self.status
            if self.status
            else DlqEntry.status != Status.RESOLVED
        ]
        if self.category:
            clauses.append(DlqEntry.category == self.category)
        if self.task_name:
            clauses.append(DlqEntry.task_name == self.task_name)
        if self.correlation_id:
            clauses.append(DlqEntry.correlation_id == self.correlation_id)
        return clauses

    def query(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in vars(self).items() if v]


@dataclass(frozen=True)
class Page:
    count: int
    entries: list[DlqEntry]
    next_path: str | None
    previous_path: str | None


@dataclass(frozen=True)
class Stats:
    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_name: dict[str, int]
    successful_retries: int
    failed_retries: int
    average_retry_count: float
    oldest_created_at: datetime | None


async def list_page(
    session: AsyncSession, filters: ListFilters, page: int, page_size: int
) -> Page:
    """One page, newest first, with the paths of its neighbours."""
    clauses = filters.clauses()
    count = await session.scalar(
        select(func.count()).select_from(DlqEntry).where(*clauses)
    )
    # Page through ids alone (an index-only scan), then read just those rows.
    page_ids = (
        select(DlqEntry.id)
        .where(*clauses)
        .order_by(DlqEntry.created_at.desc(), DlqEntry.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
        .subquery()
    )
    rows = await session.scalars(
        select(DlqEntry)
        # The listing shows neither; they can be large.
        .options(defer(DlqEntry.traceback), defer(DlqEntry.retry_history))
        .join(page_ids, DlqEntry.id == page_ids.c.id)
        .order_by(DlqEntry.created_at.desc(), DlqEntry.id.desc())
    )
    total = int(count or 0)
    last_page = max(1, -(-total // page_size))
    return Page(
        count=total,
        entries=list(rows),
        next_path=_page_path(filters, page + 1, page_size)
        if page < last_page
        else None,
        previous_path=_page_path(filters, page - 1, page_size) if page > 1 else None,
    )


async def get_entry(session: AsyncSession, entry_id: int) -> DlqEntry:
    entry = await session.get(DlqEntry, entry_id)
    if entry is None:
        raise NotFound(f"No DLQ task with id {task_id_of(entry_id)!r}.")
    return entry


async def stats(session: AsyncSession, start: datetime) -> Stats:
    """Figures over the entries created, and retries finished, since start."""
    groups = await session.execute(_grouped_counts(start))
    by: dict[int, dict[str, int]] = {_BY_STATUS: {}, _BY_CATEGORY: {}, _BY_NAME: {}}
    totals: Any = None
    for row in groups:
        if row.grouping == _TOTALS:
            totals = row
        else:
            by[row.grouping][row.key] = row.n
    retries = (await session.execute(_retry_outcomes(start))).one()
    return Stats(
        total=int(totals.n) if totals else 0,
        by_status=_with_zeros(by[_BY_STATUS], ALL_STATUSES),
        by_category=_with_zeros(by[_BY_CATEGORY], DOCUMENTED_CATEGORIES),
        by_name=by[_BY_NAME],
        successful_retries=int(retries.succeeded),
        failed_retries=int(retries.failed),
        average_retry_count=float(totals.average or 0) if totals else 0.0,
        oldest_created_at=totals.oldest if totals else None,
    )


def window_start(now: datetime, hours: int) -> datetime:
    return now - timedelta(hours=hours)


# GROUPING() bits, status first: a set bit is a column not grouped by.
_BY_STATUS, _BY_CATEGORY, _BY_NAME, _TOTALS = 0b011, 0b101, 0b110, 0b111


def _grouped_counts(start: datetime) -> Any:
    columns = (DlqEntry.status, DlqEntry.category, DlqEntry.task_name)
    return (
        select(
            func.grouping(*columns).label("grouping"),
            func.coalesce(*columns).label("key"),
            func.count().label("n"),
            func.avg(DlqEntry.retry_count).label("average"),
            func.min(DlqEntry.created_at)
            .filter(DlqEntry.status.in_(_AWAITING))
            .label("oldest"),
        )
        .where(DlqEntry.created_at >= start)
        .group_by(
            func.grouping_sets(
                tuple_(DlqEntry.status),
                tuple_(DlqEntry.category),
                tuple_(DlqEntry.task_name),
                tuple_(),
            )
        )
    )


def _retry_outcomes(start: datetime) -> Any:
    outcome = DlqRetryRun.outcome
    return select(
        func.count().filter(outcome == Outcome.SUCCEEDED).label("succeeded"),
        func.count().filter(outcome == Outcome.FAILED).label("failed"),
    ).where(DlqRetryRun.finished_at >= start)


def _with_zeros(counts: dict[str, int], keys: tuple[str, ...]) -> dict[str, int]:
    return {**{str(key): 0 for key in keys}, **counts}


def _page_path(filters: ListFilters, page: int, page_size: int) -> str:
    query = filters.query()
    if page_size != DEFAULT_PAGE_SIZE:
        query.append(("page_size", str(page_size)))
    query.append(("page", str(page)))
    return f"{LIST_PATH}?{urlencode(query)}"
