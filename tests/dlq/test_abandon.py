"""An operator abandons an entry: no automatic retry runs it again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from onboarding.v1 import dlq_pb2, dlq_pb2_grpc

from tests.conftest import Account
from tests.dlq.conftest import BASE, assert_error, entry_of


def _abandon(
    rest: httpx.Client, account: Account, task_id: str, **body: Any
) -> httpx.Response:
    return rest.post(
        f"{BASE}/tasks/{task_id}/abandon/", headers=account.headers, json=body
    )


@pytest.mark.parametrize("status", ["pending", "failed"])
def test_abandoning_stops_automatic_retries_and_is_audited(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    status: str,
) -> None:
    task_id = seed(status=status)

    reply = _abandon(rest, staff, task_id, reason="customer churned")

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["status"], body["task_id"]) == ("abandoned", task_id)
    assert body["abandoned_at"].endswith("Z")
    entry = entry_of(rest, staff, task_id)
    assert (entry["status"], entry["next_retry_at"]) == ("abandoned", None)
    trail = db.execute(
        "SELECT action, actor, actor_user_id, correlation_id,"
        " before->>'status', after->>'status', after->>'reason' FROM dlq_audit_log"
    ).fetchall()
    assert trail == [
        (
            "abandon",
            "staffer",
            staff.id,
            reply.headers["x-correlation-id"],
            status,
            "abandoned",
            "customer churned",
        )
    ]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        ("retrying", 409, "retry_in_progress"),
        ("resolved", 400, "already_resolved"),
        ("abandoned", 400, "already_abandoned"),
    ],
)
def test_only_pending_and_failed_entries_can_be_abandoned(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    status: str,
    code: int,
    error: str,
) -> None:
    task_id = seed(status=status)

    reply = _abandon(rest, staff, task_id)

    body = assert_error(reply, code, error)
    assert body["task_id"] == task_id
    assert entry_of(rest, staff, task_id)["status"] == status


def test_abandoning_an_unknown_entry_is_404(
    rest: httpx.Client, staff: Account, db: psycopg.Connection[Any]
) -> None:
    assert_error(_abandon(rest, staff, "dlq_123456"), 404, "not_found")


def test_overlong_reason_is_400(
    rest: httpx.Client, staff: Account, seed: Callable[..., str]
) -> None:
    task_id = seed()

    body = assert_error(
        _abandon(rest, staff, task_id, reason="x" * 501), 400, "validation_error"
    )

    assert body["field_errors"] == {"reason": ["Must be at most 500 characters."]}
    assert entry_of(rest, staff, task_id)["status"] == "pending"


def test_standard_users_cannot_abandon(
    rest: httpx.Client, alice: Account, staff: Account, seed: Callable[..., str]
) -> None:
    task_id = seed()

    assert_error(_abandon(rest, alice, task_id), 403, "permission_denied")
    assert entry_of(rest, staff, task_id)["status"] == "pending"


def test_abandon_over_native_grpc(
    direct_channel: grpc.Channel, staff: Account, seed: Callable[..., str]
) -> None:
    task_id = seed(status="failed")
    stub = dlq_pb2_grpc.DlqAdminServiceStub(direct_channel)

    reply = stub.AbandonTask(
        dlq_pb2.AbandonTaskRequest(task_id=task_id), metadata=staff.metadata
    )

    assert (reply.status, reply.task_id) == ("abandoned", task_id)
    with pytest.raises(grpc.RpcError) as caught:
        stub.AbandonTask(
            dlq_pb2.AbandonTaskRequest(task_id=task_id), metadata=staff.metadata
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
