"""Changes operators make through the API: retry, abandon, delete, clear.

Each runs in one transaction that also writes its ``dlq_audit_log`` rows, so
the trail and the change commit together or not at all.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Text,
    delete,
    extract,
    func,
    insert,
    literal,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import utcnow
from server.errors import Aborted, FailedPrecondition, NotFound
from server.security.principal import Principal
from services.dlq import audit
from services.dlq.convert import task_id_of
from services.dlq.lifecycle import ABANDONABLE_STATUSES, Outcome, Status, Trigger
from services.dlq.models import DlqAuditLog, DlqEntry, DlqRetryRun
from services.dlq.retry import message_for, send, start_retry

# Successful retries of a task averaged for a retry's estimated completion.
_ESTIMATE_SAMPLE = 20


@dataclass(frozen=True)
class Actor:
    """Who is making the change, for the audit trail."""

    principal: Principal
    correlation_id: str


@dataclass(frozen=True)
class RetryRequest:
    entry_id: int
    force: bool
    args: list[Any] | None
    kwargs: dict[str, Any] | None


@dataclass(frozen=True)
class RetryStarted:
    entry: DlqEntry
    celery_task_id: str
    estimated_completion: datetime


@dataclass(frozen=True)
class ClearFilters:
    """Filters of a bulk delete; None is unset."""

    status: str | None
    category: str | None
    older_than_hours: int | None

    def clauses(self, now: datetime) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.status is not None:
            clauses.append(DlqEntry.status == self.status)
        if self.category is not None:
            clauses.append(DlqEntry.category == self.category)
        if self.older_than_hours is not None:
            cutoff = now - timedelta(hours=self.older_than_hours)
            clauses.append(DlqEntry.created_at < cutoff)
        return clauses

    def applied(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}


async def retry_entry(
    session: AsyncSession,
    app: Celery,
    request: RetryRequest,
    actor: Actor,
    fallback_estimate_seconds: int,
) -> RetryStarted:
    """Re-enqueue an entry once, however many operators ask at the same time."""
    # The row lock makes a concurrent retry wait here, then find `retrying`.
    entry = await session.get(DlqEntry, request.entry_id, with_for_update=True)
    if entry is None:
        raise NotFound(f"No DLQ task with id {task_id_of(request.entry_id)!r}.")
    _check_retryable(entry, request.force)

    now = utcnow()
    before = _retry_state(entry, request)
    if request.args is not None:
        entry.task_args = request.args
    if request.kwargs is not None:
        entry.task_kwargs = request.kwargs
    run = start_retry(entry, trigger=Trigger.MANUAL, forced=request.force, now=now)
    session.add(run)
    await session.flush()
    after = {**_retry_state(entry, request), "celery_task_id": run.celery_task_id}
    session.add(
        audit.by_user(
            entry.id,
            "retry",
            actor.principal,
            actor.correlation_id,
            before=before,
            after=after,
        )
    )
    seconds = await _typical_run_seconds(session, entry.task_name)

    await asyncio.to_thread(send, app, message_for(entry, run))
    await session.commit()
    return RetryStarted(
        entry=entry,
        celery_task_id=run.celery_task_id,
        estimated_completion=now
        + timedelta(seconds=seconds or fallback_estimate_seconds),
    )


async def delete_entry(session: AsyncSession, entry_id: int, actor: Actor) -> datetime:
    """Remove one entry for good; returns when."""
    entry = await session.get(DlqEntry, entry_id, with_for_update=True)
    if entry is None:
        raise NotFound(f"No DLQ task with id {task_id_of(entry_id)!r}.")
    before = {**_summary(entry), "created_at": entry.created_at.isoformat()}
    await session.delete(entry)
    session.add(
        audit.by_user(
            entry_id, "delete", actor.principal, actor.correlation_id, before=before
        )
    )
    await session.commit()
    return utcnow()


async def abandon_entry(
    session: AsyncSession, entry_id: int, reason: str, actor: Actor
) -> datetime:
    """Give up on an entry for the operator; returns when."""
    entry = await session.get(DlqEntry, entry_id, with_for_update=True)
    if entry is None:
        raise NotFound(f"No DLQ task with id {task_id_of(entry_id)!r}.")
    _check_abandonable(entry)

    now = utcnow()
    before = audit.state_of(entry)
    entry.status = Status.ABANDONED
    entry.next_retry_at = None
    entry.updated_at = now
    after = {**audit.state_of(entry), "reason": reason or "by_operator"}
    session.add(
        audit.by_user(
            entry_id,
            "abandon",
            actor.principal,
            actor.correlation_id,
            before=before,
            after=after,
        )
    )
    await session.commit()
    return now


def _check_abandonable(entry: DlqEntry) -> None:
    task_id = task_id_of(entry.id)
    if entry.status == Status.RETRYING:
        raise Aborted(
            "A retry of this task is in progress; abandon it once it reports.",
            reason="retry_in_progress",
            extra={"task_id": task_id},
        )
    if entry.status not in ABANDONABLE_STATUSES:
        raise FailedPrecondition(
            f"This task is already {entry.status}.",
            reason=f"already_{entry.status}",
            extra={"task_id": task_id},
        )


async def count_matching(session: AsyncSession, filters: ClearFilters) -> int:
    clauses = filters.clauses(utcnow())
    count = await session.scalar(
        select(func.count()).select_from(DlqEntry).where(*clauses)
    )
    return int(count or 0)


async def clear_entries(
    session: AsyncSession, filters: ClearFilters, actor: Actor
) -> int:
    """Delete every matching entry, auditing each; returns how many."""
    # One statement: the deleted rows feed their own audit rows, which are
    # counted.
    deleted = (
        delete(DlqEntry)
        .where(*filters.clauses(utcnow()))
        .returning(
            DlqEntry.id,
            func.jsonb_build_object(
                *_summary_columns(), _key("created_at"), DlqEntry.created_at
            ).label("summary"),
        )
        .cte("deleted")
    )
    principal = actor.principal
    trail = insert(DlqAuditLog).from_select(
        [
            "entry_id",
            "action",
            "actor",
            "actor_user_id",
            "correlation_id",
            "at",
            "before",
        ],
        select(
            deleted.c.id,
            literal("clear", Text),
            literal(principal.username, Text),
            literal(principal.user_id, Integer),
            literal(actor.correlation_id, Text),
            literal(utcnow(), DateTime(timezone=True)),
            deleted.c.summary,
        ),
    )
    logged = trail.returning(DlqAuditLog.id).cte("logged")
    count = await session.scalar(select(func.count()).select_from(logged))
    await session.commit()
    return int(count or 0)


def _check_retryable(entry: DlqEntry, force: bool) -> None:
    task_id = task_id_of(entry.id)
    if entry.status == Status.RETRYING:
        raise Aborted(
            "A retry of this task is already in progress.",
            reason="retry_in_progress",
            extra={"task_id": task_id},
        )
    if entry.status == Status.RESOLVED:
        raise FailedPrecondition(
            "This task was already resolved by a successful retry.",
            reason="already_resolved",
            extra={"task_id": task_id},
        )
    if entry.retry_count >= entry.max_retries and not force:
        raise FailedPrecondition(
            f"Task has exceeded maximum retry attempts ({entry.max_retries}). "
            "Use force=true to retry anyway.",
            reason="max_retries_exceeded",
            extra={
                "task_id": task_id,
                "retry_count": entry.retry_count,
                "max_retries": entry.max_retries,
            },
        )


async def _typical_run_seconds(session: AsyncSession, task_name: str) -> float | None:
    """Mean time from enqueue to success of this task's recent retries."""
    recent = (
        select(
            extract("epoch", DlqRetryRun.finished_at - DlqRetryRun.enqueued_at).label(
                "seconds"
            )
        )
        .where(
            DlqRetryRun.task_name == task_name,
            DlqRetryRun.outcome == Outcome.SUCCEEDED,
        )
        .order_by(DlqRetryRun.finished_at.desc())
        .limit(_ESTIMATE_SAMPLE)
        .subquery()
    )
    mean = await session.scalar(select(func.avg(recent.c.seconds)))
    return None if mean is None else float(mean)


def _retry_state(entry: DlqEntry, request: RetryRequest) -> dict[str, Any]:
    state = {**audit.state_of(entry), "force": request.force}
    # Arguments are part of the trail only when the operator replaces them.
    if request.args is not None:
        state["task_args"] = entry.task_args
    if request.kwargs is not None:
        state["task_kwargs"] = entry.task_kwargs
    return state


def _summary(entry: DlqEntry) -> dict[str, Any]:
    return {
        "task_name": entry.task_name,
        "status": entry.status,
        "category": entry.category,
        "retry_count": entry.retry_count,
        "correlation_id": entry.correlation_id,
    }


def _summary_columns() -> list[Any]:
    """The keys and columns of ``_summary`` for jsonb_build_object."""
    columns = [
        DlqEntry.task_name,
        DlqEntry.status,
        DlqEntry.category,
        DlqEntry.retry_count,
        DlqEntry.correlation_id,
    ]
    return [part for column in columns for part in (_key(column.key), column)]


def _key(name: str) -> Any:
    # Inline, not bound: jsonb_build_object cannot type a bare parameter.
    return literal_column(f"'{name}'")
