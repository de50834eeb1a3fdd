"""Re-enqueuing a DLQ entry, shared by the sweep and the API.

The caller holds the entry's row lock: it calls ``start_retry``, flushes the
run row, ``send``s the message and commits, all inside one transaction. A
concurrent retry of the same entry waits for that lock, then finds it
``retrying``. Should sending fail, the transaction rolls back and the entry
is as it was.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import KombuError

from server.errors import Unavailable
from services.dlq.capture import RETRY_HEADER, headers_for
from services.dlq.lifecycle import Status, Trigger
from services.dlq.models import DlqEntry, DlqRetryRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryMessage:
    """The Celery message of one DLQ retry."""

    task_name: str
    celery_task_id: str
    args: list[Any]
    kwargs: dict[str, Any]
    headers: dict[str, Any]


def start_retry(
    entry: DlqEntry, *, trigger: Trigger, forced: bool, now: datetime
) -> DlqRetryRun:
    """Move a locked entry to ``retrying``; returns its new run (unsaved)."""
    entry.status = Status.RETRYING
    entry.retry_count += 1
    entry.last_retry_at = now
    entry.next_retry_at = None
    entry.updated_at = now
    return DlqRetryRun(
        entry_id=entry.id,
        task_name=entry.task_name,
        celery_task_id=str(uuid.uuid4()),
        trigger=trigger,
        forced=forced,
        enqueued_at=now,
    )


def message_for(entry: DlqEntry, run: DlqRetryRun) -> RetryMessage:
    """The message that runs ``entry`` again as ``run``."""
    headers = headers_for(entry.correlation_id, entry.context)
    headers[RETRY_HEADER] = {"entry_id": entry.id, "run_id": run.id}
    return RetryMessage(
        task_name=entry.task_name,
        celery_task_id=run.celery_task_id,
        args=list(entry.task_args),
        kwargs=dict(entry.task_kwargs),
        headers=headers,
    )


def send(app: Celery, message: RetryMessage) -> None:
    """Publish the message; a broker outage becomes ``Unavailable``."""
    try:
        app.send_task(
            message.task_name,
            args=message.args,
            kwargs=message.kwargs,
            task_id=message.celery_task_id,
            headers=message.headers,
        )
    except (KombuError, redis.RedisError, OSError) as err:
        logger.warning("task queue unavailable: %s", err.__class__.__name__)
        raise Unavailable(
            "The task queue is unavailable; try again shortly.",
            reason="queue_unavailable",
        ) from err
