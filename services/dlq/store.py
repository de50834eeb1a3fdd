"""The worker's side of the DLQ tables, over a synchronous psycopg engine.

Every write locks the rows it changes, so the worker, the sweep and the API
can move the same entry without losing an update. Brief database outages are
retried here, a few times, before the caller sees the error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    Text,
    create_engine,
    exc,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from server.db import utcnow
from server.settings import Settings
from services.dlq import audit
from services.dlq.categories import is_retried
from services.dlq.lifecycle import (
    ABANDONABLE_STATUSES,
    Failure,
    Outcome,
    RetryPolicy,
    Status,
    attempt_record,
)
from services.dlq.models import DlqAuditLog, DlqEntry, DlqRetryRun

logger = logging.getLogger(__name__)

# Connection trouble worth a second try; anything else is a bug to surface.
_transient = retry(
    retry=retry_if_exception_type((exc.OperationalError, exc.InterfaceError)),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=0.5, max=4),
    reraise=True,
)

_makers: dict[int, sessionmaker[Session]] = {}


@dataclass(frozen=True)
class RunRef:
    """The DLQ entry and retry run a Celery message executes."""

    entry_id: int
    run_id: int


def policy_of(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.dlq_max_retries,
        base_seconds=settings.dlq_retry_backoff_seconds,
        cap_seconds=settings.dlq_retry_backoff_max_seconds,
    )


@contextmanager
def transaction(settings: Settings) -> Iterator[Session]:
    """A session in a transaction, committed when the block ends cleanly."""
    with _sessionmaker(settings)() as session, session.begin():
        yield session


@_transient
def capture(
    settings: Settings,
    failure: Failure,
    attempts: list[dict[str, Any]],
    retries_used: int,
) -> int:
    """Store a task whose in-worker retries ran out; returns the entry id."""
    status, next_retry_at = policy_of(settings).after_failure(
        retryable=is_retried(failure.category),
        retries_used=retries_used,
        max_retries=settings.dlq_max_retries,
        retry_after=failure.retry_after,
        at=failure.at,
    )
    entry = DlqEntry(
        task_name=failure.task_name,
        celery_task_id=failure.celery_task_id,
        correlation_id=failure.correlation_id,
        status=status,
        category=failure.category,
        error_message=failure.error_message,
        error_type=failure.error_type,
        traceback=failure.traceback,
        retry_count=retries_used,
        max_retries=settings.dlq_max_retries,
        created_at=failure.at,
        updated_at=failure.at,
        last_retry_at=_last_retry_at(attempts, retries_used),
        next_retry_at=next_retry_at,
        task_args=failure.args,
        task_kwargs=failure.kwargs,
        retry_history=attempts,
        context=failure.context,
    )
    with transaction(settings) as session:
        session.add(entry)
        session.flush()
        session.add(
            audit.by_system(
                entry.id,
                "captured",
                audit.SYSTEM_WORKER,
                correlation_id=entry.correlation_id,
                after=audit.state_of(entry),
            )
        )
    return entry.id


@_transient
def record_success(settings: Settings, run: RunRef) -> None:
    """A DLQ retry succeeded: the entry is resolved."""
    now = utcnow()
    with transaction(settings) as session:
        entry, run_row = _lock_run(session, run)
        if run_row is None:
            return
        _finish(run_row, Outcome.SUCCEEDED, now)
        if entry is None:
            return
        before = audit.state_of(entry)
        entry.status = Status.RESOLVED
        entry.resolved_at = entry.updated_at = now
        entry.next_retry_at = None
        session.add(
            audit.by_system(
                entry.id,
                "retry_succeeded",
                audit.SYSTEM_WORKER,
                before=before,
                after=audit.state_of(entry),
            )
        )


@_transient
def record_failure(settings: Settings, run: RunRef, failure: Failure) -> None:
    """A DLQ retry failed: the attempt is appended and the next step set."""
    with transaction(settings) as session:
        entry, run_row = _lock_run(session, run)
        if run_row is None:
            return
        _finish(run_row, Outcome.FAILED, failure.at)
        if entry is not None:
            fail_entry(session, settings, entry, failure, audit.SYSTEM_WORKER)


def fail_entry(
    session: Session,
    settings: Settings,
    entry: DlqEntry,
    failure: Failure,
    actor: str,
) -> None:
    """Append a failed attempt to a locked entry and schedule what follows."""
    before = audit.state_of(entry)
    number = len(entry.retry_history) + 1
    record = attempt_record(
        number, failure.at, failure.error_message, failure.retry_after
    )
    entry.retry_history = [*entry.retry_history, record]
    entry.error_message = failure.error_message
    entry.error_type = failure.error_type
    # A lost run has no traceback; keep the last real one.
    entry.traceback = failure.traceback or entry.traceback
    entry.category = failure.category
    entry.updated_at = failure.at
    entry.status, entry.next_retry_at = policy_of(settings).after_failure(
        retryable=is_retried(failure.category),
        retries_used=entry.retry_count,
        max_retries=entry.max_retries,
        retry_after=failure.retry_after,
        at=failure.at,
    )
    session.add(
        audit.by_system(
            entry.id, "retry_failed", actor, before=before, after=audit.state_of(entry)
        )
    )


@_transient
def abandon_stale(settings: Settings) -> int:
    """Give up on pending and failed entries older than the limit."""
    now = utcnow()
    cutoff = now - timedelta(hours=settings.dlq_abandon_after_hours)
    # One statement, however many entries: the updated rows feed their own
    # audit rows, which are counted.
    abandoned = (
        update(DlqEntry)
        .where(
            DlqEntry.status.in_(ABANDONABLE_STATUSES),
            DlqEntry.created_at < cutoff,
        )
        .values(status=Status.ABANDONED, next_retry_at=None, updated_at=now)
        .returning(DlqEntry.id, DlqEntry.correlation_id)
        .cte("abandoned")
    )
    after = {"status": Status.ABANDONED, "reason": "too_old"}
    trail = insert(DlqAuditLog).from_select(
        ["entry_id", "action", "actor", "correlation_id", "at", "after"],
        select(
            abandoned.c.id,
            literal("abandon", Text),
            literal(audit.SYSTEM_SWEEP, Text),
            abandoned.c.correlation_id,
            literal(now, DateTime(timezone=True)),
            literal(after, JSONB),
        ),
    )
    logged = trail.returning(DlqAuditLog.id).cte("logged")
    with transaction(settings) as session:
        count = session.scalar(select(func.count()).select_from(logged))
    return int(count or 0)


def _lock_run(
    session: Session, run: RunRef
) -> tuple[DlqEntry | None, DlqRetryRun | None]:
    """The entry and its run, locked; no run when already reported."""
    # The entry first: the API holds it locked until the run row is committed.
    entry = session.get(DlqEntry, run.entry_id, with_for_update=True)
    run_row = session.scalar(
        select(DlqRetryRun)
        .where(DlqRetryRun.id == run.run_id, DlqRetryRun.outcome.is_(None))
        .with_for_update()
    )
    if run_row is None:
        logger.info("retry run %s was already reported; ignoring", run.run_id)
    return entry, run_row


def _finish(run: DlqRetryRun, outcome: Outcome, at: datetime) -> None:
    run.outcome = outcome
    run.finished_at = at


def _last_retry_at(attempts: list[dict[str, Any]], retries_used: int) -> Any:
    """When the last in-worker retry ran: the time of the last attempt."""
    if retries_used == 0 or not attempts:
        return None
    return datetime.fromisoformat(attempts[-1]["timestamp"])


def _sessionmaker(settings: Settings) -> sessionmaker[Session]:
    # One engine per process: prefork children must not share connections.
    pid = os.getpid()
    if pid not in _makers:
        _makers[pid] = sessionmaker(_engine(settings), expire_on_commit=False)
    return _makers[pid]


def _engine(settings: Settings) -> Engine:
    return create_engine(
        settings.sqlalchemy_url,
        pool_pre_ping=True,
        pool_size=2,
        connect_args={"connect_timeout": settings.db_connect_timeout_seconds},
    )
