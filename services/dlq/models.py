"""DLQ entries, the retries run from the DLQ, and the audit trail.

``dlq_tasks`` holds one row per task whose retries ran out, with its full
arguments and every failed attempt. ``dlq_retry_runs`` records each retry
enqueued from the DLQ and how it ended, which is what the retry statistics
count; it outlives the entries it refers to. ``dlq_audit_log`` says who moved
an entry, when, and from what to what.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, utcnow
from services.dlq.lifecycle import ALL_STATUSES, Outcome, Status, Trigger


def _one_of(column: str, values: tuple[str, ...]) -> str:
    listed = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({listed})"


# Each listing filter column, and the columns its index carries besides.
_LISTING = (
    ("status", ["category", "task_name"]),
    ("category", ["status", "task_name"]),
    ("task_name", ["status", "category"]),
)


def _listing_index(column: str, others: list[str]) -> Index:
    return Index(
        f"ix_dlq_tasks_{column}_created_at",
        column,
        "created_at",
        "id",
        postgresql_include=others,
    )


class DlqEntry(Base):
    """A Celery task that exhausted its retries, exposed as ``dlq_<id>``."""

    __tablename__ = "dlq_tasks"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(200))
    # The id of the run that landed here; retries get ids of their own.
    celery_task_id: Mapped[str] = mapped_column(String(155))
    correlation_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING)
    category: Mapped[str] = mapped_column(String(32))
    error_message: Mapped[str] = mapped_column(Text)
    error_type: Mapped[str] = mapped_column(String(200))
    traceback: Mapped[str] = mapped_column(Text)
    # Retries used so far, in-worker ones included.
    retry_count: Mapped[int] = mapped_column(Integer)
    max_retries: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_retry_at: Mapped[datetime | None] = mapped_column(default=None)
    next_retry_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    # JSON exactly as Celery serialised it; kombu's type markers included.
    task_args: Mapped[list[Any]] = mapped_column(JSONB)
    task_kwargs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # Every failed attempt, oldest first (see lifecycle.attempt_record).
    retry_history: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # session_id, user_id, client_id of the work the task belongs to.
    context: Mapped[dict[str, Any]] = mapped_column(JSONB)

    __table_args__ = (
        CheckConstraint(_one_of("status", ALL_STATUSES), name="status"),
        # Listing: an equality filter, newest first, OFFSET paging. Each index
        # carries the other filter columns, so a page is found by an
        # index-only scan and only its rows are read from the table.
        Index(
            "ix_dlq_tasks_open_created_at",
            "created_at",
            "id",
            postgresql_include=["category", "task_name"],
            postgresql_where=text("status <> 'resolved'"),
        ),
        *(_listing_index(column, others) for column, others in _LISTING),
        # Statistics: one index-only scan of the window.
        Index(
            "ix_dlq_tasks_stats",
            "created_at",
            postgresql_include=["status", "category", "task_name", "retry_count"],
        ),
        Index("ix_dlq_tasks_correlation_id", "correlation_id"),
        # The sweep's question: which pending entries are due?
        Index(
            "ix_dlq_tasks_due",
            "next_retry_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )


class DlqRetryRun(Base):
    """One retry enqueued from the DLQ, and its outcome once reported."""

    __tablename__ = "dlq_retry_runs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Kept (as NULL) when the entry is deleted, so statistics stay stable.
    entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("dlq_tasks.id", ondelete="SET NULL")
    )
    task_name: Mapped[str] = mapped_column(String(200))
    celery_task_id: Mapped[str] = mapped_column(String(155), unique=True)
    trigger: Mapped[str] = mapped_column(String(16))
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)

    __table_args__ = (
        CheckConstraint(_one_of("trigger", tuple(Trigger)), name="trigger"),
        CheckConstraint(
            f"outcome IS NULL OR {_one_of('outcome', tuple(Outcome))}",
            name="outcome",
        ),
        Index("ix_dlq_retry_runs_entry_id", "entry_id"),
        Index(
            "ix_dlq_retry_runs_finished_at",
            "finished_at",
            postgresql_include=["outcome"],
        ),
        Index("ix_dlq_retry_runs_task_name_finished_at", "task_name", "finished_at"),
    )


class DlqAuditLog(Base):
    """One change to a DLQ entry: who, when, what it was and became."""

    __tablename__ = "dlq_audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # No foreign key: the trail must survive the entry's deletion.
    entry_id: Mapped[int] = mapped_column(BigInteger)
    # captured, retry, retry_succeeded, retry_failed, retry_lost, abandon,
    # delete, clear.
    action: Mapped[str] = mapped_column(String(32))
    # NULL for the system (worker, sweep).
    actor_user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # A username, or "system:worker" / "system:sweep".
    actor: Mapped[str] = mapped_column(String(150))
    correlation_id: Mapped[str] = mapped_column(String(128), default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    before: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB(none_as_null=True), default=None
    )
    after: Mapped[dict[str, Any] | None] = mapped_column(
        JSONB(none_as_null=True), default=None
    )

    __table_args__ = (Index("ix_dlq_audit_log_entry_id_at", "entry_id", "at"),)
