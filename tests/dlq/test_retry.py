"""Manual retries: the limit and force, overrides, and concurrent requests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from google.protobuf import struct_pb2
from onboarding.v1 import dlq_pb2, dlq_pb2_grpc

from tests.conftest import Account, Stack
from tests.dlq.conftest import BASE, CeleryProcess, assert_error, entry_of, wait_until
from tests.support.stack import ServerProcess, free_port


def _retry(
    rest: httpx.Client, account: Account, task_id: str, **body: Any
) -> httpx.Response:
    return rest.post(
        f"{BASE}/tasks/{task_id}/retry/", headers=account.headers, json=body
    )


def _runs(db: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return db.execute(
        "SELECT celery_task_id, trigger, forced FROM dlq_retry_runs ORDER BY id"
    ).fetchall()


def test_retry_answers_the_documented_shape(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    faults: Callable[..., None],
) -> None:
    task_id = seed(task_args=["conv-1", "hello", {}], task_kwargs={"task_id": "c-1"})
    before = datetime.now(UTC)

    reply = _retry(rest, staff, task_id, force=False)

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {
        "status",
        "message",
        "task_id",
        "celery_task_id",
        "retry_count",
        "max_retries",
        "estimated_completion",
    }
    assert (body["status"], body["message"]) == ("retrying", "Task queued for retry")
    assert (body["task_id"], body["retry_count"], body["max_retries"]) == (
        task_id,
        4,
        5,
    )
    assert str(uuid.UUID(body["celery_task_id"])) == body["celery_task_id"]
    # No retry of this task finished yet: the configured 60 s estimate.
    estimate = datetime.fromisoformat(body["estimated_completion"])
    assert 59 <= (estimate - before).total_seconds() <= 65
    assert _runs(db) == [(body["celery_task_id"], "manual", False)]
    # The worker really ran it (the double does not fail): resolved.
    wait_until(lambda: entry_of(rest, staff, task_id)["status"] == "resolved")


def test_past_the_limit_needs_force(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
) -> None:
    task_id = seed(status="failed", retry_count=5, max_retries=5, next_retry_at=None)

    reply = _retry(rest, staff, task_id, force=False)

    body = assert_error(reply, 400, "max_retries_exceeded")
    assert body == {
        "error": "max_retries_exceeded",
        "detail": "Task has exceeded maximum retry attempts (5). "
        "Use force=true to retry anyway.",
        "task_id": task_id,
        "retry_count": 5,
        "max_retries": 5,
        "correlation_id": reply.headers["x-correlation-id"],
    }
    assert _runs(db) == []
    assert entry_of(rest, staff, task_id)["status"] == "failed"


def test_force_retries_past_the_limit(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    faults: Callable[..., None],
) -> None:
    faults(rate_limit_rate=1, retry_after_seconds=7)
    task_id = seed(status="failed", retry_count=5, max_retries=5, next_retry_at=None)

    reply = _retry(rest, staff, task_id, force=True)

    assert reply.status_code == 200, reply.text
    assert reply.json()["retry_count"] == 6
    assert [run[1:] for run in _runs(db)] == [("manual", True)]
    # Still failing and out of retries: back to failed, attempt appended.
    entry = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["status"] == "failed" and e
    )
    assert entry["next_retry_at"] is None
    assert [(h["attempt"], h["retry_after"]) for h in entry["retry_history"]] == [
        (1, 7)
    ]


def test_abandoned_entries_can_be_retried(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    faults: Callable[..., None],
) -> None:
    task_id = seed(status="abandoned", retry_count=2, next_retry_at=None)

    reply = _retry(rest, staff, task_id)

    assert reply.status_code == 200, reply.text
    wait_until(lambda: entry_of(rest, staff, task_id)["status"] == "resolved")


def test_overrides_replace_args_and_kwargs(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    faults: Callable[..., None],
) -> None:
    faults(rate_limit_rate=1)
    task_id = seed(task_kwargs={"task_id": "old"})
    args = ["conv-9", "new input", {"system_prompt": "Short.", "depth": 2}]

    reply = _retry(
        rest, staff, task_id, override_args=args, override_kwargs={"task_id": "new"}
    )

    assert reply.status_code == 200, reply.text
    entry = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["status"] == "pending" and e
    )
    assert entry["task_args"] == args
    assert entry["task_kwargs"] == {"task_id": "new"}
    # The worker ran the new arguments: its failure left the stored ones.
    assert entry["retry_history"][-1]["error"].startswith("LLM provider rate limit")


def test_null_overrides_keep_the_stored_arguments(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    faults: Callable[..., None],
) -> None:
    task_id = seed()

    reply = _retry(
        rest, staff, task_id, force=False, override_args=None, override_kwargs=None
    )

    assert reply.status_code == 200, reply.text
    entry = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["status"] == "resolved" and e
    )
    assert entry["task_args"] == ["conv-uuid-123", "user input", {}]
    assert entry["task_kwargs"] == {"task_id": "correlation-id"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"override_args": ["a\x00b"]}, "override_args"),
        ({"override_kwargs": {"key": ["\x00"]}}, "override_kwargs"),
    ],
)
def test_overrides_postgres_cannot_store_are_400(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    body: dict[str, Any],
    field: str,
) -> None:
    task_id = seed()

    reply = _retry(rest, staff, task_id, **body)

    assert list(assert_error(reply, 400, "validation_error")["field_errors"]) == [field]


def test_non_finite_override_over_grpc_is_invalid_argument(
    direct_channel: grpc.Channel, staff: Account, seed: Callable[..., str]
) -> None:
    task_id = seed()
    args = struct_pb2.ListValue()
    args.append(float("nan"))
    stub = dlq_pb2_grpc.DlqAdminServiceStub(direct_channel)

    with pytest.raises(grpc.RpcError) as caught:
        stub.RetryTask(
            dlq_pb2.RetryTaskRequest(task_id=task_id, override_args=args),
            metadata=staff.metadata,
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_retrying_entry_is_409(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    task_id = seed(status="retrying", next_retry_at=None)

    reply = _retry(rest, staff, task_id)

    assert assert_error(reply, 409, "retry_in_progress")["task_id"] == task_id


def test_a_resolved_entry_is_not_retried(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    task_id = seed(status="resolved", next_retry_at=None)

    reply = _retry(rest, staff, task_id, force=True)

    assert_error(reply, 400, "already_resolved")


async def test_concurrent_retries_enqueue_once(
    stack: Stack,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    faults: Callable[..., None],
) -> None:
    # A slow run keeps the entry retrying while all the requests arrive.
    faults(rate_limit_rate=1, latency_seconds=2)
    task_id = seed()
    url = f"{stack.base_url}{BASE}/tasks/{task_id}/retry/"

    async with httpx.AsyncClient(timeout=30) as client:
        replies = await asyncio.gather(
            *(client.post(url, headers=staff.headers, json={}) for _ in range(8))
        )

    codes = sorted(reply.status_code for reply in replies)
    assert codes == [200] + [409] * 7
    for reply in replies:
        if reply.status_code == 409:
            assert reply.json()["error"] == "retry_in_progress"
    assert len(_runs(db)) == 1
    with httpx.Client(base_url=stack.base_url) as rest:
        entry = wait_until(
            lambda: (e := entry_of(rest, staff, task_id))["status"] == "pending" and e
        )
    assert (entry["retry_count"], len(entry["retry_history"])) == (4, 1)


def test_retry_over_native_grpc(
    gateway_channel: grpc.Channel,
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    faults: Callable[..., None],
) -> None:
    task_id = seed()
    stub = dlq_pb2_grpc.DlqAdminServiceStub(gateway_channel)

    reply = stub.RetryTask(
        dlq_pb2.RetryTaskRequest(task_id=task_id), metadata=staff.metadata
    )

    assert (reply.status, reply.retry_count) == ("retrying", 4)
    assert _runs(db)[0][0] == reply.celery_task_id
    wait_until(lambda: entry_of(rest, staff, task_id)["status"] == "resolved")


def test_standard_users_cannot_retry(
    rest: httpx.Client, alice: Account, seed: Callable[..., str]
) -> None:
    task_id = seed()

    assert_error(_retry(rest, alice, task_id), 403, "permission_denied")


def test_a_broker_outage_is_503_and_leaves_the_entry_untouched(
    stack: Stack,
    work_dir: Path,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
) -> None:
    task_id = seed()
    env = {**stack.env, "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    server = ServerProcess(env, work_dir / "logs" / "no-broker-server.log").start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = dlq_pb2_grpc.DlqAdminServiceStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.RetryTask(
                    dlq_pb2.RetryTaskRequest(task_id=task_id), metadata=staff.metadata
                )
    finally:
        server.stop()

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert _runs(db) == []
    row = db.execute("SELECT status, retry_count FROM dlq_tasks").fetchone()
    assert row == ("pending", 3)
