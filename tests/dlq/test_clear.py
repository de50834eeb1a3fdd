"""Bulk clearing: superusers only, confirmation first, filters, audit."""

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

CLEAR = f"{BASE}/clear/"


def _clear(rest: httpx.Client, account: Account, **body: Any) -> httpx.Response:
    return rest.request("DELETE", CLEAR, headers=account.headers, json=body)


def _remaining(db: psycopg.Connection[Any]) -> list[str]:
    rows = db.execute("SELECT status FROM dlq_tasks ORDER BY id").fetchall()
    return [status for (status,) in rows]


@pytest.fixture
def mixed(seed: Callable[..., str]) -> None:
    now = datetime.now(UTC)
    seed(status="abandoned", created_at=now - timedelta(hours=200))
    seed(status="abandoned", category="network", created_at=now - timedelta(hours=100))
    seed(status="abandoned", created_at=now - timedelta(hours=1))
    seed(status="pending", created_at=now - timedelta(hours=200))


def test_without_confirm_nothing_is_deleted_and_matches_are_counted(
    rest: httpx.Client,
    superuser: Account,
    mixed: None,
    db: psycopg.Connection[Any],
) -> None:
    reply = _clear(rest, superuser, status="abandoned", older_than_hours=72)

    body = assert_error(reply, 400, "confirmation_required")
    assert body == {
        "error": "confirmation_required",
        "detail": "Must set confirm=true to proceed with bulk deletion",
        "matching_tasks": 2,
        "correlation_id": reply.headers["x-correlation-id"],
    }
    assert len(_remaining(db)) == 4


def test_confirmed_clear_deletes_the_matching_entries(
    rest: httpx.Client,
    superuser: Account,
    mixed: None,
    db: psycopg.Connection[Any],
) -> None:
    reply = _clear(
        rest,
        superuser,
        status="abandoned",
        category=None,
        older_than_hours=168,
        confirm=True,
    )

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {
        "status",
        "message",
        "deleted_count",
        "filters_applied",
        "cleared_at",
    }
    assert (body["status"], body["deleted_count"]) == ("cleared", 1)
    assert body["message"] == "Successfully removed 1 tasks from DLQ"
    assert body["filters_applied"] == {"status": "abandoned", "older_than_hours": 168}
    assert _remaining(db) == ["abandoned", "abandoned", "pending"]


def test_every_filter_narrows_the_clear(
    rest: httpx.Client,
    superuser: Account,
    mixed: None,
    db: psycopg.Connection[Any],
) -> None:
    reply = _clear(rest, superuser, category="network", confirm=True)

    assert reply.json()["deleted_count"] == 1
    assert reply.json()["filters_applied"] == {"category": "network"}
    assert _remaining(db) == ["abandoned", "abandoned", "pending"]


def test_clear_without_filters_empties_the_dlq_and_audits_each_entry(
    rest: httpx.Client,
    superuser: Account,
    mixed: None,
    db: psycopg.Connection[Any],
) -> None:
    reply = _clear(rest, superuser, confirm=True)

    assert reply.json()["deleted_count"] == 4
    assert reply.json()["filters_applied"] == {}
    assert _remaining(db) == []
    trail = db.execute(
        "SELECT action, actor, actor_user_id, correlation_id, before->>'status'"
        " FROM dlq_audit_log ORDER BY entry_id"
    ).fetchall()
    correlation_id = reply.headers["x-correlation-id"]
    assert trail == [
        ("clear", "root", superuser.id, correlation_id, status)
        for status in ("abandoned", "abandoned", "abandoned", "pending")
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "gone"}, "status"),
        ({"status": ""}, "status"),
        ({"category": "misc"}, "category"),
        ({"older_than_hours": -1}, "older_than_hours"),
    ],
)
def test_bad_clear_filters_are_400(
    rest: httpx.Client,
    superuser: Account,
    db: psycopg.Connection[Any],
    body: dict[str, Any],
    field: str,
) -> None:
    reply = _clear(rest, superuser, confirm=True, **body)

    assert list(assert_error(reply, 400, "validation_error")["field_errors"]) == [field]


def test_staff_cannot_clear(
    rest: httpx.Client, staff: Account, mixed: None, db: psycopg.Connection[Any]
) -> None:
    assert_error(_clear(rest, staff, confirm=True), 403, "permission_denied")
    assert len(_remaining(db)) == 4


def test_anonymous_callers_cannot_clear(
    rest: httpx.Client, stack: Stack, mixed: None, db: psycopg.Connection[Any]
) -> None:
    reply = rest.request("DELETE", CLEAR, json={"confirm": True})

    assert_error(reply, 401, "not_authenticated")
    assert len(_remaining(db)) == 4


def test_clear_over_native_grpc(
    gateway_channel: grpc.Channel,
    superuser: Account,
    staff: Account,
    mixed: None,
    db: psycopg.Connection[Any],
) -> None:
    stub = dlq_pb2_grpc.DlqAdminServiceStub(gateway_channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ClearTasks(
            dlq_pb2.ClearTasksRequest(confirm=True), metadata=staff.metadata
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    with pytest.raises(grpc.RpcError) as unconfirmed:
        stub.ClearTasks(dlq_pb2.ClearTasksRequest(), metadata=superuser.metadata)
    assert unconfirmed.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    reply = stub.ClearTasks(
        dlq_pb2.ClearTasksRequest(status="pending", confirm=True),
        metadata=superuser.metadata,
    )
    assert reply.deleted_count == 1
    assert dict(reply.filters_applied) == {"status": "pending"}
