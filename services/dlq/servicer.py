"""DlqAdminService: list, inspect, retry, delete and clear DLQ entries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import grpc
import structlog
from onboarding.v1 import dlq_pb2, dlq_pb2_grpc

from server.convert import struct, timestamp
from server.db import utcnow
from server.errors import FailedPrecondition
from server.security.principal import current_principal
from services.dlq import admin, convert, queries
from services.dlq.celery_app import create_celery
from services.dlq.lifecycle import Status
from services.dlq.validation import (
    FieldErrors,
    check_abandon_reason,
    check_category,
    check_hours,
    check_status,
    check_text,
    entry_id_of,
    json_of,
    page_of,
    page_size_of,
    time_range_of,
)

if TYPE_CHECKING:
    from server.app import Resources


class DlqAdminServicer(dlq_pb2_grpc.DlqAdminServiceServicer):
    """The DLQ admin API over PostgreSQL, sending retries through Celery."""

    def __init__(self, resources: Resources) -> None:
        self._db = resources.db
        self._settings = resources.settings
        self._celery = create_celery(resources.settings)

    async def ListTasks(
        self, request: dlq_pb2.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> dlq_pb2.ListTasksResponse:
        errors = FieldErrors()
        check_status(errors, request.status)
        check_category(errors, request.category)
        check_text(errors, "task_name", request.task_name)
        check_text(errors, "correlation_id", request.correlation_id)
        page = page_of(errors, request.page)
        page_size = page_size_of(errors, request.page_size)
        errors.raise_if_any()

        filters = queries.ListFilters(
            status=request.status,
            category=request.category,
            task_name=request.task_name,
            correlation_id=request.correlation_id,
        )
        async with self._db.session() as session:
            result = await queries.list_page(session, filters, page, page_size)
        return dlq_pb2.ListTasksResponse(
            count=result.count,
            next=convert.nullable_string(result.next_path),
            previous=convert.nullable_string(result.previous_path),
            results=[convert.summary(entry) for entry in result.entries],
        )

    async def GetTask(
        self, request: dlq_pb2.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> dlq_pb2.DlqTaskDetail:
        entry_id = entry_id_of(request.task_id)
        async with self._db.session() as session:
            entry = await queries.get_entry(session, entry_id)
        return convert.detail(entry)

    async def RetryTask(
        self, request: dlq_pb2.RetryTaskRequest, context: grpc.aio.ServicerContext
    ) -> dlq_pb2.RetryTaskResponse:
        entry_id = entry_id_of(request.task_id)
        errors = FieldErrors()
        args = kwargs = None
        if request.HasField("override_args"):
            args = json_of(errors, "override_args", request.override_args)
        if request.HasField("override_kwargs"):
            kwargs = json_of(errors, "override_kwargs", request.override_kwargs)
        errors.raise_if_any()

        retry = admin.RetryRequest(entry_id, request.force, args, kwargs)
        async with self._db.session() as session:
            started = await admin.retry_entry(
                session,
                self._celery,
                retry,
                _actor(),
                self._settings.dlq_retry_estimate_seconds,
            )
        entry = started.entry
        return dlq_pb2.RetryTaskResponse(
            status=Status.RETRYING,
            message="Task queued for retry",
            task_id=convert.task_id_of(entry.id),
            celery_task_id=started.celery_task_id,
            retry_count=entry.retry_count,
            max_retries=entry.max_retries,
            estimated_completion=timestamp(started.estimated_completion),
        )

    async def DeleteTask(
        self, request: dlq_pb2.DeleteTaskRequest, context: grpc.aio.ServicerContext
    ) -> dlq_pb2.DeleteTaskResponse:
        entry_id = entry_id_of(request.task_id)
        async with self._db.session() as session:
            deleted_at = await admin.delete_entry(session, entry_id, _actor())
        return dlq_pb2.DeleteTaskResponse(
            status="deleted",
            message="Task successfully removed from DLQ",
            task_id=convert.task_id_of(entry_id),
            deleted_at=timestamp(deleted_at),
        )

    async def AbandonTask(
        self, request: dlq_pb2.AbandonTaskRequest, context: grpc.aio.ServicerContext
    ) -> dlq_pb2.AbandonTaskResponse:
        entry_id = entry_id_of(request.task_id)
        reason = check_abandon_reason(request.reason)
        async with self._db.session() as session:
            abandoned_at = await admin.abandon_entry(
                session, entry_id, reason, _actor()
            )
        return dlq_pb2.AbandonTaskResponse(
            status=Status.ABANDONED,
            message="Task abandoned; no automatic retry will run it",
            task_id=convert.task_id_of(entry_id),
            abandoned_at=timestamp(abandoned_at),
        )

    async def GetStats(
        self, request: dlq_pb2.GetStatsRequest, context: grpc.aio.ServicerContext
    ) -> dlq_pb2.GetStatsResponse:
        errors = FieldErrors()
        hours = time_range_of(errors, request.time_range_hours)
        errors.raise_if_any()

        now = utcnow()
        start = queries.window_start(now, hours)
        async with self._db.session() as session:
            figures = await queries.stats(session, start)
        return _stats_response(figures, start, now, hours)

    async def ClearTasks(
        self, request: dlq_pb2.ClearTasksRequest, context: grpc.aio.ServicerContext
    ) -> dlq_pb2.ClearTasksResponse:
        filters = _clear_filters(request)
        async with self._db.session() as session:
            if not request.confirm:
                matching = await admin.count_matching(session, filters)
                raise FailedPrecondition(
                    "Must set confirm=true to proceed with bulk deletion",
                    reason="confirmation_required",
                    extra={"matching_tasks": matching},
                )
            deleted = await admin.clear_entries(session, filters, _actor())
        return dlq_pb2.ClearTasksResponse(
            status="cleared",
            message=f"Successfully removed {deleted} tasks from DLQ",
            deleted_count=deleted,
            filters_applied=struct(filters.applied()),
            cleared_at=timestamp(utcnow()),
        )


def _actor() -> admin.Actor:
    # The interceptor bound the request's correlation id for logging.
    bound = structlog.contextvars.get_contextvars()
    return admin.Actor(current_principal(), str(bound.get("correlation_id", "")))


def _clear_filters(request: dlq_pb2.ClearTasksRequest) -> admin.ClearFilters:
    errors = FieldErrors()
    status = request.status if request.HasField("status") else None
    category = request.category if request.HasField("category") else None
    hours = request.older_than_hours if request.HasField("older_than_hours") else None
    if status is not None:
        check_status(errors, status, required=True)
    if category is not None:
        check_category(errors, category, required=True)
    if hours is not None:
        check_hours(errors, "older_than_hours", hours)
    errors.raise_if_any()
    return admin.ClearFilters(status=status, category=category, older_than_hours=hours)


def _stats_response(
    figures: queries.Stats, start: datetime, now: datetime, hours: int
) -> dlq_pb2.GetStatsResponse:
    finished = figures.successful_retries + figures.failed_retries
    rate = figures.successful_retries / finished if finished else 0.0
    oldest = figures.oldest_created_at
    age = (now - oldest).total_seconds() / 3600 if oldest else 0.0
    return dlq_pb2.GetStatsResponse(
        total_failed_tasks=figures.total,
        tasks_by_status=figures.by_status,
        tasks_by_category=figures.by_category,
        tasks_by_name=figures.by_name,
        retry_statistics=dlq_pb2.RetryStatistics(
            total_retries=finished,
            successful_retries=figures.successful_retries,
            failed_retries=figures.failed_retries,
            success_rate=round(rate, 3),
        ),
        average_retry_count=round(figures.average_retry_count, 2),
        oldest_task_age_hours=round(age, 2),
        time_range=dlq_pb2.StatsTimeRange(
            start=timestamp(start),
            end=timestamp(now),
            hours=hours,
        ),
        last_updated=timestamp(now),
    )
