"""How a Celery task of the onboarding product opts in to the DLQ.

Decorate it with ``dlq_task`` (or give ``base=DlqTask`` to ``shared_task``)::

    @dlq_task(name="embed_knowledge_document", context=lambda a, kw: {...})
    def embed_knowledge_document(document_id, text, *, task_id=""): ...

and enqueue it with ``enqueue``, which attaches the correlation id and the
session, user and client it works for. A failing run is retried in the worker
with exponential backoff (a provider's retry-after honoured, validation errors
not retried); when those retries are used up it lands in ``dlq_tasks`` with
every attempt. Acknowledgement is late, so a worker that dies mid-task leaves
the message to be delivered again. A run sent from the DLQ carries the
``dlq_retry`` header; its outcome resolves the entry or appends an attempt.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from celery import Celery, Task, shared_task
from celery.exceptions import Retry, TaskPredicate
from kombu.utils import json as kombu_json

from server.db import utcnow
from server.settings import get_settings
from services.dlq import store
from services.dlq.categories import categorize, is_retried
from services.dlq.lifecycle import Failure, attempt_record, backoff_seconds

logger = logging.getLogger(__name__)

CORRELATION_HEADER = "onboarding_correlation_id"
CONTEXT_HEADER = "onboarding_context"
# Failed attempts so far, carried from one in-worker retry to the next.
ATTEMPTS_HEADER = "dlq_attempts"
# {"entry_id": ..., "run_id": ...} on a run sent from the DLQ.
RETRY_HEADER = "dlq_retry"

ContextFrom = Callable[[Sequence[Any], Mapping[str, Any]], dict[str, Any]]


def headers_for(correlation_id: str, context: Mapping[str, Any]) -> dict[str, Any]:
    """The message headers that tie a run to its request and session."""
    return {CORRELATION_HEADER: correlation_id, CONTEXT_HEADER: dict(context)}


def enqueue(
    app: Celery,
    task_name: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    correlation_id: str,
    context: Mapping[str, Any] | None = None,
) -> str:
    """Send a DLQ-enabled task; returns its Celery task id."""
    result = app.send_task(
        task_name,
        args=list(args),
        kwargs=dict(kwargs or {}),
        headers=headers_for(correlation_id, context or {}),
    )
    return str(result.id)


def correlation_id_of(request: Any) -> str:
    """The run's correlation id: its header, the product's ``task_id``
    keyword argument, or else the Celery task id."""
    header = getattr(request, CORRELATION_HEADER, None)
    if header:
        return str(header)
    kwargs = getattr(request, "kwargs", None) or {}
    if isinstance(kwargs.get("task_id"), str) and kwargs["task_id"]:
        return str(kwargs["task_id"])
    return str(getattr(request, "id", "") or "")


def retry_after_of(error: BaseException) -> float | None:
    """Seconds a provider asked to wait: an attribute or a response header."""
    value = getattr(error, "retry_after", None)
    if value is None:
        headers = getattr(getattr(error, "response", None), "headers", None) or {}
        value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        seconds = None if value is None else float(value)
    except (TypeError, ValueError):
        return None
    # Whole seconds stay integers, as providers and the spec write them.
    if seconds is not None and seconds.is_integer():
        return int(seconds)
    return seconds


def as_json(value: Any) -> Any:
    """``value`` as plain JSON, in full, with kombu's markers for types JSON
    lacks (UUID, datetime) so a retry gets the same Python values back."""
    return json.loads(kombu_json.dumps(value))


class DlqTask(Task):  # type: ignore[misc]
    """Base class of tasks that retry with backoff and then land in the DLQ."""

    acks_late = True
    reject_on_worker_lost = True
    # Derives session_id, user_id or client_id from the arguments.
    context_from: ClassVar[ContextFrom | None] = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # The tracer has pushed the request (headers included); calling run()
        # directly keeps it, where Task.__call__ would push a bare one.
        try:
            result = self.run(*args, **kwargs)
        except TaskPredicate:
            # Retry, Ignore and Reject are instructions to Celery, not failures.
            raise
        except Exception as error:
            self._handle_failure(error, args, kwargs)
            raise
        if run := _run_of(self.request):
            # Should this fail past its own retries, the entry stays retrying
            # until the sweep counts the run as lost.
            store.record_success(get_settings(), run)
        return result

    def _handle_failure(
        self, error: Exception, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> None:
        """Retry in the worker, or record the failure in the DLQ."""
        failure = self._failure(error, args, kwargs)
        if run := _run_of(self.request):
            store.record_failure(get_settings(), run, failure)
            return

        retries_used = int(self.request.retries or 0)
        attempts = [
            *(getattr(self.request, ATTEMPTS_HEADER, None) or []),
            attempt_record(
                retries_used + 1,
                failure.at,
                failure.error_message,
                failure.retry_after,
            ),
        ]
        if is_retried(failure.category) and retries_used < self.max_retries:
            raise self._retry_in_worker(error, failure, attempts, retries_used)
        self._capture(error, failure, attempts, retries_used)

    def _retry_in_worker(
        self,
        error: Exception,
        failure: Failure,
        attempts: list[dict[str, Any]],
        retries_used: int,
    ) -> Retry:
        settings = get_settings()
        # The broker holds the message meanwhile, so even a long retry-after
        # waits at most the cap here; longer waits belong to the DLQ.
        countdown = min(
            backoff_seconds(
                retries_used,
                base=settings.dlq_task_backoff_seconds,
                cap=settings.dlq_task_backoff_max_seconds,
                retry_after=failure.retry_after,
            ),
            settings.dlq_task_backoff_max_seconds,
        )
        return self.retry(
            exc=error, countdown=countdown, headers=self._headers(failure, attempts)
        )

    def _capture(
        self,
        error: Exception,
        failure: Failure,
        attempts: list[dict[str, Any]],
        retries_used: int,
    ) -> None:
        settings = get_settings()
        try:
            entry_id = store.capture(settings, failure, attempts, retries_used)
        except Exception as store_error:
            # Without its DLQ entry the task would be lost: send it back to
            # the broker to run (and fail, or land here) again later.
            logger.warning("could not store the DLQ entry", exc_info=True)
            raise self.retry(
                exc=store_error,
                countdown=settings.dlq_task_backoff_max_seconds,
                max_retries=retries_used + 1,
                headers=self._headers(failure, attempts),
            ) from error
        logger.info(
            "task landed in the DLQ",
            extra={"dlq_task_id": f"dlq_{entry_id}", "category": failure.category},
        )

    def _failure(
        self, error: Exception, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Failure:
        return Failure(
            task_name=self.name,
            celery_task_id=str(self.request.id or ""),
            correlation_id=correlation_id_of(self.request),
            category=categorize(error),
            error_message=str(error) or type(error).__name__,
            error_type=type(error).__name__,
            traceback="".join(traceback.format_exception(error)),
            args=as_json(list(args)),
            kwargs=as_json(dict(kwargs)),
            context=as_json(self._context(args, kwargs)),
            retry_after=retry_after_of(error),
            at=utcnow(),
        )

    def _context(
        self, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        # Read as a plain attribute: it is a staticmethod, not a bound method.
        derive: ContextFrom | None = getattr(self, "context_from", None)
        derived = derive(args, kwargs) if derive else {}
        sent = getattr(self.request, CONTEXT_HEADER, None) or {}
        return {**derived, **sent}

    def _headers(
        self, failure: Failure, attempts: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            **headers_for(failure.correlation_id, failure.context),
            ATTEMPTS_HEADER: attempts,
        }


def dlq_task(
    *,
    name: str,
    max_retries: int | None = None,
    context: ContextFrom | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], Any]:
    """Register a task that retries with backoff and then lands in the DLQ."""
    retries = (
        get_settings().dlq_task_max_retries if max_retries is None else max_retries
    )

    # Celery turns extra options into attributes of the generated task class.
    return shared_task(
        name=name,
        base=DlqTask,
        max_retries=retries,
        context_from=staticmethod(context) if context else None,
        **options,
    )


def _run_of(request: Any) -> store.RunRef | None:
    header = getattr(request, RETRY_HEADER, None)
    if not isinstance(header, dict):
        return None
    return store.RunRef(entry_id=int(header["entry_id"]), run_id=int(header["run_id"]))
