"""Statistics over a window: exact figures from seeded entries and runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from onboarding.v1 import dlq_pb2, dlq_pb2_grpc

from tests.conftest import Account
from tests.dlq.conftest import BASE, assert_error

STATS = f"{BASE}/stats/"
PROCESS = "process_conversation_step_v2"
EMBED = "embed_knowledge_document"
TRANSLATE = "translate_conversation_step"


def _run(
    db: psycopg.Connection[Any], finished_at: datetime | None, outcome: str | None
) -> None:
    db.execute(
        "INSERT INTO dlq_retry_runs (task_name, celery_task_id, trigger, forced,"
        " enqueued_at, finished_at, outcome)"
        " VALUES (%s, %s, 'manual', false, %s, %s, %s)",
        (
            PROCESS,
            str(uuid.uuid4()),
            finished_at or datetime.now(UTC),
            finished_at,
            outcome,
        ),
    )


@pytest.fixture
def scenario(seed: Callable[..., str], db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    ago = lambda hours: now - timedelta(hours=hours)  # noqa: E731
    seed(status="pending", category="llm_api", retry_count=3, created_at=ago(2))
    seed(
        status="retrying",
        category="network",
        task_name=EMBED,
        retry_count=1,
        created_at=ago(12.5),
    )
    seed(
        status="failed",
        category="database",
        task_name=TRANSLATE,
        retry_count=5,
        created_at=ago(1),
    )
    seed(status="abandoned", category="validation", retry_count=0, created_at=ago(20))
    seed(status="resolved", category="llm_api", retry_count=4, created_at=ago(23))
    seed(status="pending", category="llm_api", retry_count=3, created_at=ago(30))
    for outcome in ("succeeded", "succeeded", "succeeded", "failed"):
        _run(db, ago(3), outcome)
    _run(db, ago(30), "failed")
    _run(db, None, None)


def test_stats_over_the_default_day(
    rest: httpx.Client, staff: Account, scenario: None
) -> None:
    reply = rest.get(STATS, headers=staff.headers)

    assert reply.status_code == 200, reply.text
    body = reply.json()
    window = body.pop("time_range")
    updated = body.pop("last_updated")
    assert body == {
        "total_failed_tasks": 5,
        "tasks_by_status": {
            "pending": 1,
            "retrying": 1,
            "failed": 1,
            "abandoned": 1,
            "resolved": 1,
        },
        "tasks_by_category": {
            "llm_api": 2,
            "network": 1,
            "database": 1,
            "validation": 1,
        },
        "tasks_by_name": {PROCESS: 3, EMBED: 1, TRANSLATE: 1},
        "retry_statistics": {
            "total_retries": 4,
            "successful_retries": 3,
            "failed_retries": 1,
            "success_rate": 0.75,
        },
        "average_retry_count": 2.6,
        # The retrying entry; abandoned and resolved ones wait for nothing.
        "oldest_task_age_hours": 12.5,
    }
    start = datetime.fromisoformat(window["start"])
    end = datetime.fromisoformat(window["end"])
    assert (end - start, window["hours"]) == (timedelta(hours=24), 24)
    assert updated == window["end"]


def test_a_wider_window_takes_in_older_entries_and_runs(
    rest: httpx.Client, staff: Account, scenario: None
) -> None:
    body = rest.get(
        STATS, params={"time_range_hours": 48}, headers=staff.headers
    ).json()

    assert body["total_failed_tasks"] == 6
    assert body["tasks_by_status"]["pending"] == 2
    assert body["tasks_by_category"]["llm_api"] == 3
    assert body["tasks_by_name"][PROCESS] == 4
    assert body["average_retry_count"] == 2.67
    assert body["oldest_task_age_hours"] == 30.0
    assert body["retry_statistics"] == {
        "total_retries": 5,
        "successful_retries": 3,
        "failed_retries": 2,
        "success_rate": 0.6,
    }
    assert body["time_range"]["hours"] == 48


def test_an_empty_dlq_has_zeros_everywhere(
    rest: httpx.Client, staff: Account, db: psycopg.Connection[Any]
) -> None:
    body = rest.get(STATS, headers=staff.headers).json()

    assert body["total_failed_tasks"] == 0
    assert set(body["tasks_by_status"].values()) == {0}
    assert body["tasks_by_category"] == {
        "llm_api": 0,
        "network": 0,
        "database": 0,
        "validation": 0,
    }
    assert body["tasks_by_name"] == {}
    assert body["retry_statistics"]["success_rate"] == 0
    assert (body["average_retry_count"], body["oldest_task_age_hours"]) == (0, 0)


@pytest.mark.parametrize("hours", [-1, 87601])
def test_time_range_out_of_bounds_is_400(
    rest: httpx.Client, staff: Account, db: psycopg.Connection[Any], hours: int
) -> None:
    reply = rest.get(STATS, params={"time_range_hours": hours}, headers=staff.headers)

    body = assert_error(reply, 400, "validation_error")
    assert list(body["field_errors"]) == ["time_range_hours"]


def test_stats_over_native_grpc(
    direct_channel: grpc.Channel, staff: Account, scenario: None
) -> None:
    stub = dlq_pb2_grpc.DlqAdminServiceStub(direct_channel)

    reply = stub.GetStats(
        dlq_pb2.GetStatsRequest(time_range_hours=24), metadata=staff.metadata
    )

    assert reply.total_failed_tasks == 5
    assert reply.retry_statistics.success_rate == 0.75


def test_standard_users_cannot_see_stats(rest: httpx.Client, alice: Account) -> None:
    assert_error(rest.get(STATS, headers=alice.headers), 403, "permission_denied")
