"""The life of a DLQ entry: its statuses and when it is retried next.

A task lands in the DLQ once its in-worker retries are used up::

    pending    waits for its next automatic retry at ``next_retry_at``
    retrying   re-enqueued (by the sweep or an operator); outcome pending
    failed     no retries left (``retry_count >= max_retries``), or a
               validation error that retrying unchanged input cannot fix
    abandoned  given up: older than ``DLQ_ABANDON_AFTER_HOURS``
    resolved   a retry succeeded; kept for statistics, hidden by default

Transitions::

    pending  --due, swept / manual retry-->      retrying
    failed, abandoned --manual retry (force
                        past max_retries)-->     retrying
    retrying --run succeeded-->                  resolved
    retrying --run failed, retries left-->       pending
    retrying --run failed, none left-->          failed
    retrying --no outcome in time-->             pending or failed
    pending, failed --too old-->                 abandoned
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The status of a DLQ entry."""

    PENDING = "pending"
    RETRYING = "retrying"
    FAILED = "failed"
    ABANDONED = "abandoned"
    RESOLVED = "resolved"


# The statuses the spec documents; resolved entries only show when asked for.
OPEN_STATUSES = (Status.PENDING, Status.RETRYING, Status.FAILED, Status.ABANDONED)
ALL_STATUSES = (*OPEN_STATUSES, Status.RESOLVED)
# Statuses a manual retry may start from.
RETRYABLE_STATUSES = (Status.PENDING, Status.FAILED, Status.ABANDONED)
# Statuses the sweep abandons once an entry is too old.
ABANDONABLE_STATUSES = (Status.PENDING, Status.FAILED)


class Trigger(StrEnum):
    """What started a DLQ retry."""

    AUTOMATIC = "automatic"
    MANUAL = "manual"


class Outcome(StrEnum):
    """How a DLQ retry ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


# Past this exponent the delay is capped anyway; keeps 2**n finite.
_MAX_EXPONENT = 40


def backoff_seconds(
    retries_used: int, *, base: float, cap: float, retry_after: float | None
) -> float:
    """Exponential delay, never shorter than the provider's retry-after."""
    delay = min(base * 2 ** min(retries_used, _MAX_EXPONENT), cap)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def attempt_record(
    number: int, at: datetime, error: str, retry_after: float | None
) -> dict[str, object]:
    """One entry of ``retry_history`` as stored in JSONB."""
    return {
        "attempt": number,
        "timestamp": at.isoformat(),
        "error": error,
        "retry_after": retry_after,
    }


@dataclass(frozen=True)
class Failure:
    """What a failed run of a DLQ-enabled task reports."""

    task_name: str
    celery_task_id: str
    correlation_id: str
    category: str
    error_message: str
    error_type: str
    traceback: str
    args: list[Any]
    kwargs: dict[str, Any]
    context: dict[str, Any]
    retry_after: float | None
    at: datetime


@dataclass(frozen=True)
class RetryPolicy:
    """When a DLQ entry is retried automatically, from the DLQ_* settings."""

    max_retries: int
    base_seconds: float
    cap_seconds: float

    def after_failure(
        self,
        *,
        retryable: bool,
        retries_used: int,
        max_retries: int,
        retry_after: float | None,
        at: datetime,
    ) -> tuple[Status, datetime | None]:
        """The status and next retry time of an entry whose run just failed."""
        if not retryable or retries_used >= max_retries:
            return Status.FAILED, None
        delay = backoff_seconds(
            retries_used,
            base=self.base_seconds,
            cap=self.cap_seconds,
            retry_after=retry_after,
        )
        return Status.PENDING, at + timedelta(seconds=delay)
