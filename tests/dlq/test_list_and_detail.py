"""Listing with filters and pages, the detail view, and deletion."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from onboarding.v1 import dlq_pb2, dlq_pb2_grpc

from tests.conftest import Account, Stack
from tests.dlq.conftest import BASE, assert_error

TASKS = f"{BASE}/tasks/"
T0 = datetime(2025, 10, 1, 10, 30, tzinfo=UTC)

SUMMARY_KEYS = {
    "task_id",
    "task_name",
    "correlation_id",
    "status",
    "category",
    "error_message",
    "retry_count",
    "max_retries",
    "created_at",
    "last_retry_at",
    "next_retry_at",
    "task_args",
    "task_kwargs",
}


def _ids(reply: httpx.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [task["task_id"] for task in reply.json()["results"]]


def test_list_answers_the_documented_shape(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    task_id = seed(
        correlation_id="550e8400-e29b-41d4-a716-446655440000",
        created_at=T0,
        last_retry_at=T0 + timedelta(minutes=5),
        next_retry_at=T0 + timedelta(minutes=15),
    )

    reply = rest.get(TASKS, headers=staff.headers)

    assert reply.status_code == 200
    body = reply.json()
    assert body == {
        "count": 1,
        "next": None,
        "previous": None,
        "results": [body["results"][0]],
    }
    assert body["results"][0] == {
        "task_id": task_id,
        "task_name": "process_conversation_step_v2",
        "correlation_id": "550e8400-e29b-41d4-a716-446655440000",
        "status": "pending",
        "category": "llm_api",
        "error_message": "OpenAI API rate limit exceeded",
        "retry_count": 3,
        "max_retries": 5,
        "created_at": "2025-10-01T10:30:00Z",
        "last_retry_at": "2025-10-01T10:35:00Z",
        "next_retry_at": "2025-10-01T10:45:00Z",
        "task_args": ["conv-uuid-123", "user input", {}],
        "task_kwargs": {"task_id": "correlation-id"},
    }
    assert set(body["results"][0]) == SUMMARY_KEYS


def test_list_is_newest_first_and_hides_resolved(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    old = seed(created_at=T0)
    new = seed(created_at=T0 + timedelta(hours=1))
    seed(created_at=T0 + timedelta(hours=2), status="resolved")

    assert _ids(rest.get(TASKS, headers=staff.headers)) == [new, old]


def test_resolved_entries_are_listed_when_asked_for(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    seed()
    resolved = seed(status="resolved")

    reply = rest.get(TASKS, params={"status": "resolved"}, headers=staff.headers)

    assert _ids(reply) == [resolved]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "failed"}, ["b"]),
        ({"category": "network"}, ["c"]),
        ({"task_name": "embed_knowledge_document"}, ["c", "b"]),
        ({"correlation_id": "corr-a"}, ["a"]),
        ({"status": "failed", "category": "network"}, []),
        ({"task_name": "embed_knowledge_document", "category": "network"}, ["c"]),
    ],
)
def test_filters_combine(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    params: dict[str, str],
    expected: list[str],
) -> None:
    ids = {
        "a": seed(correlation_id="corr-a", created_at=T0),
        "b": seed(
            status="failed",
            task_name="embed_knowledge_document",
            created_at=T0 + timedelta(minutes=1),
        ),
        "c": seed(
            category="network",
            task_name="embed_knowledge_document",
            created_at=T0 + timedelta(minutes=2),
        ),
    }

    reply = rest.get(TASKS, params=params, headers=staff.headers)

    assert _ids(reply) == [ids[name] for name in expected]
    assert reply.json()["count"] == len(expected)


def test_pages_link_to_their_neighbours_with_the_same_filters(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    created = [seed(created_at=T0 + timedelta(minutes=i)) for i in range(5)]
    seed(status="failed")
    newest_first = created[::-1]
    params = {"status": "pending", "page_size": 2}

    first = rest.get(TASKS, params=params, headers=staff.headers).json()
    second = rest.get(TASKS, params={**params, "page": 2}, headers=staff.headers).json()
    third = rest.get(TASKS, params={**params, "page": 3}, headers=staff.headers).json()

    path = "/api/v1/onboarding/admin/dlq/tasks/?status=pending&page_size=2"
    assert (first["count"], second["count"], third["count"]) == (5, 5, 5)
    assert [t["task_id"] for t in first["results"]] == newest_first[:2]
    assert [t["task_id"] for t in second["results"]] == newest_first[2:4]
    assert [t["task_id"] for t in third["results"]] == newest_first[4:]
    assert (first["previous"], first["next"]) == (None, f"{path}&page=2")
    assert (second["previous"], second["next"]) == (f"{path}&page=1", f"{path}&page=3")
    assert (third["previous"], third["next"]) == (f"{path}&page=2", None)


def test_next_link_follows_the_spec_example(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    for _ in range(21):
        seed()

    body = rest.get(TASKS, headers=staff.headers).json()

    assert body["next"] == "/api/v1/onboarding/admin/dlq/tasks/?page=2"
    assert len(body["results"]) == 20


def test_page_past_the_end_is_empty(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    seed()

    body = rest.get(TASKS, params={"page": 3}, headers=staff.headers).json()

    assert (body["count"], body["results"], body["next"]) == (1, [], None)
    assert body["previous"] == "/api/v1/onboarding/admin/dlq/tasks/?page=2"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "broken"}, "status"),
        ({"category": "cosmic_rays"}, "category"),
        ({"page_size": 101}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"page": -2}, "page"),
        ({"task_name": "x" * 201}, "task_name"),
        ({"correlation_id": "a\x00b"}, "correlation_id"),
    ],
)
def test_bad_list_parameters_are_400_with_field_errors(
    rest: httpx.Client, staff: Account, stack: Stack, params: dict[str, Any], field: str
) -> None:
    reply = rest.get(TASKS, params=params, headers=staff.headers)

    body = assert_error(reply, 400, "validation_error")
    assert list(body["field_errors"]) == [field]


def test_detail_answers_the_documented_shape(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    history = [
        {
            "attempt": 1,
            "timestamp": "2025-10-01T10:30:00+00:00",
            "error": "Rate limit exceeded",
            "retry_after": 300,
        },
        {
            "attempt": 2,
            "timestamp": "2025-10-01T10:32:30+00:00",
            "error": "Connection reset",
            "retry_after": None,
        },
    ]
    task_id = seed(
        created_at=T0,
        retry_history=history,
        context={"session_id": "conv-uuid-123", "user_id": 42, "client_id": 1},
    )

    body = rest.get(f"{TASKS}{task_id}/", headers=staff.headers).json()

    assert set(body) == SUMMARY_KEYS | {
        "error_type",
        "traceback",
        "retry_history",
        "context",
    }
    assert body["retry_history"] == [
        {
            "attempt": 1,
            "timestamp": "2025-10-01T10:30:00Z",
            "error": "Rate limit exceeded",
            "retry_after": 300,
        },
        {
            "attempt": 2,
            "timestamp": "2025-10-01T10:32:30Z",
            "error": "Connection reset",
            "retry_after": None,
        },
    ]
    assert body["context"] == {
        "session_id": "conv-uuid-123",
        "user_id": 42,
        "client_id": 1,
    }
    assert (body["error_type"], body["last_retry_at"]) == ("RateLimitError", None)
    assert body["traceback"] == "Traceback (most recent call last):\n  ..."


@pytest.mark.parametrize(
    "task_id", ["dlq_123456", "dlq_0", "dlq_01", "123", "dlq_99999999999999999999"]
)
def test_unknown_task_is_404_in_the_error_shape(
    rest: httpx.Client, staff: Account, db: psycopg.Connection[Any], task_id: str
) -> None:
    for method, path in [
        ("GET", f"{TASKS}{task_id}/"),
        ("POST", f"{TASKS}{task_id}/retry/"),
        ("DELETE", f"{TASKS}{task_id}/delete/"),
    ]:
        reply = rest.request(method, path, headers=staff.headers, json={})

        assert_error(reply, 404, "not_found")


def test_delete_removes_the_entry_and_records_who(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
) -> None:
    task_id = seed(correlation_id="corr-gone")
    entry_id = int(task_id.removeprefix("dlq_"))

    reply = rest.delete(f"{TASKS}{task_id}/delete/", headers=staff.headers)

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {"status", "message", "task_id", "deleted_at"}
    assert (body["status"], body["task_id"]) == ("deleted", task_id)
    assert body["message"] == "Task successfully removed from DLQ"
    assert_error(
        rest.get(f"{TASKS}{task_id}/", headers=staff.headers), 404, "not_found"
    )
    row = db.execute(
        "SELECT entry_id, action, actor, correlation_id, before->>'correlation_id'"
        " FROM dlq_audit_log"
    ).fetchone()
    assert row == (
        entry_id,
        "delete",
        "staffer",
        reply.headers["x-correlation-id"],
        "corr-gone",
    )


@pytest.fixture(params=["gateway", "direct"])
def stub(request: pytest.FixtureRequest) -> dlq_pb2_grpc.DlqAdminServiceStub:
    channel: grpc.Channel = request.getfixturevalue(f"{request.param}_channel")
    return dlq_pb2_grpc.DlqAdminServiceStub(channel)


def test_list_over_native_grpc(
    stub: dlq_pb2_grpc.DlqAdminServiceStub, staff: Account, seed: Callable[..., str]
) -> None:
    first = seed(category="database", created_at=T0)
    seed(category="database", created_at=T0 + timedelta(minutes=1))

    reply = stub.ListTasks(
        dlq_pb2.ListTasksRequest(category="database", page=2, page_size=1),
        metadata=staff.metadata,
    )

    assert reply.count == 2
    assert [t.task_id for t in reply.results] == [first]
    assert reply.next.WhichOneof("kind") == "null_value"
    assert reply.previous.string_value == (
        "/api/v1/onboarding/admin/dlq/tasks/?category=database&page_size=1&page=1"
    )


def test_grpc_bad_filter_is_invalid_argument(
    stub: dlq_pb2_grpc.DlqAdminServiceStub, staff: Account, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListTasks(dlq_pb2.ListTasksRequest(status="nope"), metadata=staff.metadata)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_grpc_unknown_task_is_not_found(
    stub: dlq_pb2_grpc.DlqAdminServiceStub, staff: Account, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetTask(
            dlq_pb2.GetTaskRequest(task_id="dlq_123456"), metadata=staff.metadata
        )

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
