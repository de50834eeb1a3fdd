"""DLQ rows as the protobuf messages of ``onboarding.v1.dlq``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2
from onboarding.v1 import dlq_pb2

from server.convert import list_value, struct, timestamp
from services.dlq.models import DlqEntry


def task_id_of(entry_id: int) -> str:
    return f"dlq_{entry_id}"


def rfc3339(value: datetime) -> str:
    """The string a Timestamp field would print, for Value fields."""
    return timestamp(value).ToJsonString()


def optional_time(value: datetime | None) -> struct_pb2.Value:
    """An RFC 3339 string, or JSON null."""
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    return struct_pb2.Value(string_value=rfc3339(value))


def nullable_number(value: float | None) -> struct_pb2.Value:
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    return struct_pb2.Value(number_value=value)


def nullable_string(value: str | None) -> struct_pb2.Value:
    if value is None:
        return struct_pb2.Value(null_value=struct_pb2.NULL_VALUE)
    return struct_pb2.Value(string_value=value)


def summary(entry: DlqEntry) -> dlq_pb2.DlqTask:
    """The listed form of an entry."""
    return dlq_pb2.DlqTask(
        task_id=task_id_of(entry.id),
        task_name=entry.task_name,
        correlation_id=entry.correlation_id,
        status=entry.status,
        category=entry.category,
        error_message=entry.error_message,
        retry_count=entry.retry_count,
        max_retries=entry.max_retries,
        created_at=timestamp(entry.created_at),
        last_retry_at=optional_time(entry.last_retry_at),
        next_retry_at=optional_time(entry.next_retry_at),
        task_args=list_value(entry.task_args),
        task_kwargs=struct(entry.task_kwargs),
    )


def detail(entry: DlqEntry) -> dlq_pb2.DlqTaskDetail:
    """Everything stored about an entry."""
    return dlq_pb2.DlqTaskDetail(
        task_id=task_id_of(entry.id),
        task_name=entry.task_name,
        correlation_id=entry.correlation_id,
        status=entry.status,
        category=entry.category,
        error_message=entry.error_message,
        error_type=entry.error_type,
        traceback=entry.traceback,
        retry_count=entry.retry_count,
        max_retries=entry.max_retries,
        created_at=timestamp(entry.created_at),
        last_retry_at=optional_time(entry.last_retry_at),
        next_retry_at=optional_time(entry.next_retry_at),
        retry_history=[attempt(record) for record in entry.retry_history],
        task_args=list_value(entry.task_args),
        task_kwargs=struct(entry.task_kwargs),
        context=struct(entry.context),
    )


def attempt(record: dict[str, Any]) -> dlq_pb2.RetryAttempt:
    return dlq_pb2.RetryAttempt(
        attempt=int(record["attempt"]),
        timestamp=timestamp(datetime.fromisoformat(record["timestamp"])),
        error=str(record["error"]),
        retry_after=nullable_number(record.get("retry_after")),
    )
