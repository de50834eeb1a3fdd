"""The periodic DLQ sweep that ``onboarding beat`` schedules on the workers.

Each run abandons entries that are too old, counts retries that never
reported back as failed, and re-enqueues the pending entries whose
``next_retry_at`` has come, one transaction per entry so that a broker
outage halfway leaves no entry marked ``retrying`` without its message.
Several workers may sweep at once: rows are claimed with SKIP LOCKED.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import Celery, shared_task
from sqlalchemy import select

from server.db import utcnow
from server.settings import Settings, get_settings
from services.dlq import audit, store
from services.dlq.celery_app import SWEEP_TASK
from services.dlq.lifecycle import Failure, Outcome, Status, Trigger
from services.dlq.models import DlqEntry, DlqRetryRun
from services.dlq.retry import message_for, send, start_retry

logger = logging.getLogger(__name__)

LOST_ERROR_TYPE = "RetryLost"


@shared_task(bind=True, name=SWEEP_TASK, ignore_result=True)
def sweep(self: Any) -> dict[str, int]:
    """One pass over the DLQ; returns how many entries each step moved."""
    settings = get_settings()
    counts = {
        "abandoned": store.abandon_stale(settings),
        "lost": expire_lost_retries(settings),
        "retried": retry_due(self.app, settings),
    }
    if any(counts.values()):
        logger.info("DLQ sweep moved entries", extra=counts)
    return counts


def retry_due(app: Celery, settings: Settings) -> int:
    """Re-enqueue due pending entries, at most a batch; returns how many."""
    for sent in range(settings.dlq_sweep_batch_size):
        if not _retry_next_due(app, settings):
            return sent
    return settings.dlq_sweep_batch_size


def expire_lost_retries(settings: Settings) -> int:
    """Fail the retries that reported nothing within the timeout."""
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.dlq_retry_timeout_seconds)
    with store.transaction(settings) as session:
        entries = session.scalars(
            select(DlqEntry)
            .where(DlqEntry.status == Status.RETRYING, DlqEntry.last_retry_at < cutoff)
            .limit(settings.dlq_sweep_batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        for entry in entries:
            for run in session.scalars(
                select(DlqRetryRun)
                .where(DlqRetryRun.entry_id == entry.id, DlqRetryRun.outcome.is_(None))
                .with_for_update()
            ):
                run.outcome, run.finished_at = Outcome.FAILED, now
            failure = _lost(entry, settings.dlq_retry_timeout_seconds, now)
            store.fail_entry(session, settings, entry, failure, audit.SYSTEM_SWEEP)
    return len(entries)


def _retry_next_due(app: Celery, settings: Settings) -> bool:
    now = utcnow()
    with store.transaction(settings) as session:
        entry = session.scalar(
            select(DlqEntry)
            .where(DlqEntry.status == Status.PENDING, DlqEntry.next_retry_at <= now)
            .order_by(DlqEntry.next_retry_at)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if entry is None:
            return False
        before = audit.state_of(entry)
        run = start_retry(entry, trigger=Trigger.AUTOMATIC, forced=False, now=now)
        session.add(run)
        session.flush()
        session.add(
            audit.by_system(
                entry.id,
                "retry",
                audit.SYSTEM_SWEEP,
                before=before,
                after={**audit.state_of(entry), "celery_task_id": run.celery_task_id},
            )
        )
        send(app, message_for(entry, run))
    return True


def _lost(entry: DlqEntry, timeout_seconds: int, now: Any) -> Failure:
    return Failure(
        task_name=entry.task_name,
        celery_task_id=entry.celery_task_id,
        correlation_id=entry.correlation_id,
        category=entry.category,
        error_message=(
            f"No outcome was reported within {timeout_seconds} seconds; "
            "the retry is presumed lost."
        ),
        error_type=LOST_ERROR_TYPE,
        traceback="",
        args=entry.task_args,
        kwargs=entry.task_kwargs,
        context=entry.context,
        retry_after=None,
        at=now,
    )
