"""The periodic jobs beat schedules run on the real worker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
from celery import Celery

from server.settings import Settings
from services.dlq.celery_app import PRUNE_CHECKPOINTS_TASK, SWEEP_TASK, create_celery
from tests.conftest import Account
from tests.dlq.conftest import CeleryProcess, wait_until

SESSIONS = "/api/v1/onboarding/sessions"
KEEP_LATEST = Settings().checkpoint_keep_latest


def test_beat_schedules_the_sweep_and_checkpoint_retention() -> None:
    schedule = create_celery(Settings()).conf.beat_schedule

    assert {entry["task"] for entry in schedule.values()} == {
        SWEEP_TASK,
        PRUNE_CHECKPOINTS_TASK,
    }


def _checkpoint_versions(
    rest: httpx.Client, account: Account, session_id: str
) -> list[int]:
    reply = rest.get(
        f"{SESSIONS}/{session_id}/checkpoints/",
        params={"limit": 100},
        headers=account.headers,
    )
    reply.raise_for_status()
    return [c["version"] for c in reply.json()["checkpoints"]]


def test_retention_task_prunes_old_versions_on_the_worker(
    rest: httpx.Client, alice: Account, celery_app: Celery, worker: CeleryProcess
) -> None:
    session_id = str(uuid.uuid4())
    started = rest.post(
        f"{SESSIONS}/",
        headers=alice.headers,
        json={
            "session_id": session_id,
            "client_id": 1,
            "conversation_type": "site_survey",
            "language": "en",
            "started_at": datetime.now(UTC).isoformat(),
        },
    )
    assert started.status_code == 200, started.text
    for version in range(1, KEEP_LATEST + 3):
        created = rest.post(
            f"{SESSIONS}/{session_id}/checkpoint/",
            headers=alice.headers,
            json={
                "checkpoint_data": {
                    "version": version,
                    "state": "COLLECTING_INFO",
                    "data": {"step": version},
                }
            },
        )
        assert created.status_code == 200, created.text

    celery_app.send_task(PRUNE_CHECKPOINTS_TASK)

    expected = list(range(KEEP_LATEST + 2, 2, -1))
    assert wait_until(
        lambda: _checkpoint_versions(rest, alice, session_id) == expected, timeout=60
    )
