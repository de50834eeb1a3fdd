"""A real worker runs failing example tasks; the DLQ shows them over REST and
gRPC, manual retries run them again, and a fixed fault resolves them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc
import httpx
import psycopg
from celery import Celery
from onboarding.v1 import dlq_pb2, dlq_pb2_grpc

from services.dlq.capture import enqueue
from tests.conftest import Account
from tests.dlq.conftest import (
    BASE,
    DLQ_BACKOFF_SECONDS,
    TASK_MAX_RETRIES,
    CeleryProcess,
    entry_of,
    wait_until,
)

RATE_LIMITED = "LLM provider rate limit exceeded (test double)"


def _captured(rest: httpx.Client, staff: Account, correlation_id: str) -> str:
    """Wait for the task with this correlation id to land; its DLQ id."""

    def listed() -> Any:
        reply = rest.get(
            f"{BASE}/tasks/",
            params={"correlation_id": correlation_id},
            headers=staff.headers,
        )
        results = reply.json()["results"]
        return results[0]["task_id"] if results else None

    return str(wait_until(listed))


def _enqueue_step(app: Celery, correlation_id: str, user_input: str) -> None:
    enqueue(
        app,
        "process_conversation_step_v2",
        ["conv-uuid-123", user_input, {}],
        {"task_id": correlation_id},
        correlation_id=correlation_id,
        context={"user_id": 42, "client_id": 1},
    )


def _seconds(later: str, earlier: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).seconds


def test_rate_limited_task_lands_with_every_attempt_then_resolves(
    rest: httpx.Client,
    staff: Account,
    worker: CeleryProcess,
    celery_app: Celery,
    faults: Callable[..., None],
    db: psycopg.Connection[Any],
) -> None:
    faults(rate_limit_rate=1, retry_after_seconds=1)
    correlation_id = f"corr-{uuid.uuid4()}"

    _enqueue_step(celery_app, correlation_id, "user input")
    task_id = _captured(rest, staff, correlation_id)

    entry = entry_of(rest, staff, task_id)
    assert entry["task_name"] == "process_conversation_step_v2"
    assert (entry["status"], entry["category"]) == ("pending", "llm_api")
    assert (entry["error_type"], entry["error_message"]) == (
        "RateLimitError",
        RATE_LIMITED,
    )
    assert (entry["retry_count"], entry["max_retries"]) == (TASK_MAX_RETRIES, 5)
    assert entry["task_args"] == ["conv-uuid-123", "user input", {}]
    assert entry["task_kwargs"] == {"task_id": correlation_id}
    assert entry["context"] == {
        "session_id": "conv-uuid-123",
        "user_id": 42,
        "client_id": 1,
    }
    assert "services/dlq/llm.py" in entry["traceback"]
    history = entry["retry_history"]
    assert [(h["attempt"], h["error"], h["retry_after"]) for h in history] == [
        (1, RATE_LIMITED, 1),
        (2, RATE_LIMITED, 1),
        (3, RATE_LIMITED, 1),
    ]
    assert entry["last_retry_at"] == history[-1]["timestamp"]
    # The automatic retry waits 3600 s doubled per retry used (two so far).
    delay = _seconds(entry["next_retry_at"], history[-1]["timestamp"])
    assert delay == DLQ_BACKOFF_SECONDS * 4

    # Fault still on: the manual retry runs on the worker and fails again.
    reply = rest.post(f"{BASE}/tasks/{task_id}/retry/", headers=staff.headers, json={})
    assert reply.status_code == 200, reply.text
    assert reply.json()["retry_count"] == TASK_MAX_RETRIES + 1
    again = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["status"] == "pending" and e
    )
    assert len(again["retry_history"]) == 4
    assert again["retry_count"] == 3

    # Fault removed: the next retry succeeds and resolves the entry.
    faults(rate_limit_rate=0)
    reply = rest.post(f"{BASE}/tasks/{task_id}/retry/", headers=staff.headers, json={})
    assert reply.status_code == 200, reply.text
    resolved = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["status"] == "resolved" and e
    )
    assert resolved["next_retry_at"] is None
    assert resolved["retry_count"] == 4

    listed = rest.get(f"{BASE}/tasks/", headers=staff.headers).json()
    assert listed["count"] == 0
    stats = rest.get(f"{BASE}/stats/", headers=staff.headers).json()
    assert stats["retry_statistics"] == {
        "total_retries": 2,
        "successful_retries": 1,
        "failed_retries": 1,
        "success_rate": 0.5,
    }
    assert stats["tasks_by_status"]["resolved"] == 1
    assert stats["total_failed_tasks"] == 1
    actions = db.execute(
        "SELECT action, actor FROM dlq_audit_log ORDER BY id"
    ).fetchall()
    assert actions == [
        ("captured", "system:worker"),
        ("retry", "staffer"),
        ("retry_failed", "system:worker"),
        ("retry", "staffer"),
        ("retry_succeeded", "system:worker"),
    ]


def test_validation_error_is_not_retried_and_an_override_fixes_it(
    rest: httpx.Client,
    staff: Account,
    worker: CeleryProcess,
    celery_app: Celery,
    faults: Callable[..., None],
    db: psycopg.Connection[Any],
) -> None:
    correlation_id = f"corr-{uuid.uuid4()}"

    _enqueue_step(celery_app, correlation_id, "")
    task_id = _captured(rest, staff, correlation_id)

    entry = entry_of(rest, staff, task_id)
    assert (entry["status"], entry["category"]) == ("failed", "validation")
    assert (entry["error_type"], entry["retry_count"]) == ("ValueError", 0)
    assert entry["error_message"] == "user_input must be a non-empty string"
    assert len(entry["retry_history"]) == 1
    assert entry["next_retry_at"] is None

    fixed = ["conv-uuid-123", "a fixed input", {"system_prompt": "Be brief."}]
    reply = rest.post(
        f"{BASE}/tasks/{task_id}/retry/",
        headers=staff.headers,
        json={"override_args": fixed},
    )

    assert reply.status_code == 200, reply.text
    resolved = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["status"] == "resolved" and e
    )
    assert resolved["task_args"] == fixed
    before, after = db.execute(
        "SELECT before, after FROM dlq_audit_log WHERE action = 'retry'"
    ).fetchone()  # type: ignore[misc]
    assert before["task_args"] == ["conv-uuid-123", "", {}]
    assert after["task_args"] == fixed


def test_captured_task_reads_the_same_over_native_grpc(
    rest: httpx.Client,
    staff: Account,
    worker: CeleryProcess,
    celery_app: Celery,
    faults: Callable[..., None],
    gateway_channel: grpc.Channel,
    db: psycopg.Connection[Any],
) -> None:
    faults(timeout_rate=1)
    correlation_id = f"corr-{uuid.uuid4()}"
    _enqueue_step(celery_app, correlation_id, "hello")
    task_id = _captured(rest, staff, correlation_id)
    stub = dlq_pb2_grpc.DlqAdminServiceStub(gateway_channel)

    entry = stub.GetTask(
        dlq_pb2.GetTaskRequest(task_id=task_id), metadata=staff.metadata
    )

    assert (entry.category, entry.error_type) == ("llm_api", "LLMTimeoutError")
    assert [a.attempt for a in entry.retry_history] == [1, 2, 3]
    assert entry.retry_history[0].retry_after.WhichOneof("kind") == "null_value"
    assert list(entry.task_args) == ["conv-uuid-123", "hello", {}]
    assert entry.context["user_id"] == 42
