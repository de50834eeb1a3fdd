"""The periodic sweep: automatic retries with backoff and retry-after,
abandoning old entries, lost retries, and a worker killed mid-task."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from celery import Celery

from services.dlq.capture import headers_for
from services.dlq.celery_app import SWEEP_TASK
from tests.conftest import Account
from tests.dlq.conftest import (
    DLQ_BACKOFF_SECONDS,
    CeleryProcess,
    entry_of,
    wait_until,
)


def _status(db: psycopg.Connection[Any], task_id: str) -> str:
    row = db.execute(
        "SELECT status FROM dlq_tasks WHERE id = %s", (int(task_id[4:]),)
    ).fetchone()
    assert row is not None
    return str(row[0])


def _sweep(celery_app: Celery) -> None:
    celery_app.send_task(SWEEP_TASK)


def test_beat_retries_due_entries_on_the_worker(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    beat: CeleryProcess,
    faults: Callable[..., None],
) -> None:
    now = datetime.now(UTC)
    due = seed(next_retry_at=now - timedelta(seconds=1))
    later = seed(next_retry_at=now + timedelta(hours=1))

    wait_until(lambda: _status(db, due) == "resolved", timeout=45)

    assert _status(db, later) == "pending"
    runs = db.execute("SELECT trigger, outcome FROM dlq_retry_runs").fetchall()
    assert runs == [("automatic", "succeeded")]
    actors = db.execute(
        "SELECT action, actor FROM dlq_audit_log ORDER BY id"
    ).fetchall()
    assert actors == [("retry", "system:sweep"), ("retry_succeeded", "system:worker")]
    assert entry_of(rest, staff, due)["retry_count"] == 4


def test_a_failed_automatic_retry_waits_for_the_providers_retry_after(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    celery_app: Celery,
    faults: Callable[..., None],
) -> None:
    faults(rate_limit_rate=1, retry_after_seconds=100_000)
    task_id = seed(
        retry_count=1, next_retry_at=datetime.now(UTC) - timedelta(seconds=1)
    )

    _sweep(celery_app)
    entry = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["retry_history"] and e
    )

    assert (entry["status"], entry["retry_count"]) == ("pending", 2)
    failed_at = datetime.fromisoformat(entry["retry_history"][-1]["timestamp"])
    next_at = datetime.fromisoformat(entry["next_retry_at"])
    # Backoff alone would wait 3600 s * 2**2; the provider asked for longer.
    assert DLQ_BACKOFF_SECONDS * 4 < 100_000
    assert (next_at - failed_at).total_seconds() == 100_000


def test_a_failed_automatic_retry_backs_off_exponentially(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    celery_app: Celery,
    faults: Callable[..., None],
) -> None:
    faults(timeout_rate=1)
    task_id = seed(
        retry_count=2, next_retry_at=datetime.now(UTC) - timedelta(seconds=1)
    )

    _sweep(celery_app)
    entry = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["retry_history"] and e
    )

    failed_at = datetime.fromisoformat(entry["retry_history"][-1]["timestamp"])
    next_at = datetime.fromisoformat(entry["next_retry_at"])
    # 3600 s doubled for each of the three retries used: 8 h, past the 6 h cap.
    assert (next_at - failed_at).total_seconds() == 6 * 3600
    assert entry["error_type"] == "LLMTimeoutError"


def test_the_last_allowed_retry_failing_leaves_the_entry_failed(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    celery_app: Celery,
    faults: Callable[..., None],
) -> None:
    faults(rate_limit_rate=1)
    task_id = seed(
        retry_count=4, next_retry_at=datetime.now(UTC) - timedelta(seconds=1)
    )

    _sweep(celery_app)
    entry = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["status"] == "failed" and e
    )

    assert (entry["retry_count"], entry["next_retry_at"]) == (5, None)


def test_sweep_abandons_entries_past_the_age_limit(
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    celery_app: Celery,
) -> None:
    old = datetime.now(UTC) - timedelta(hours=7 * 24 + 1)
    old_pending = seed(created_at=old)
    old_failed = seed(created_at=old, status="failed", next_retry_at=None)
    old_resolved = seed(created_at=old, status="resolved", next_retry_at=None)
    young = seed()

    _sweep(celery_app)
    wait_until(lambda: _status(db, old_pending) == "abandoned")

    assert _status(db, old_failed) == "abandoned"
    assert (_status(db, old_resolved), _status(db, young)) == ("resolved", "pending")
    trail = db.execute(
        "SELECT actor, after->>'reason' FROM dlq_audit_log WHERE action = 'abandon'"
    ).fetchall()
    assert trail == [("system:sweep", "too_old")] * 2


def test_sweep_counts_a_retry_without_outcome_as_failed(
    rest: httpx.Client,
    staff: Account,
    seed: Callable[..., str],
    db: psycopg.Connection[Any],
    worker: CeleryProcess,
    celery_app: Celery,
) -> None:
    three_hours_ago = datetime.now(UTC) - timedelta(hours=3)
    task_id = seed(status="retrying", last_retry_at=three_hours_ago, next_retry_at=None)
    db.execute(
        "INSERT INTO dlq_retry_runs (entry_id, task_name, celery_task_id, trigger,"
        " forced, enqueued_at) VALUES (%s, 'process_conversation_step_v2', %s,"
        " 'manual', false, %s)",
        (int(task_id[4:]), str(uuid.uuid4()), three_hours_ago),
    )

    _sweep(celery_app)
    entry = wait_until(
        lambda: (e := entry_of(rest, staff, task_id))["status"] == "pending" and e
    )

    assert entry["retry_history"][-1]["error"] == (
        "No outcome was reported within 7200 seconds; the retry is presumed lost."
    )
    assert entry["error_type"] == "RetryLost"
    assert entry["traceback"] == "Traceback (most recent call last):\n  ..."
    outcome = db.execute("SELECT outcome FROM dlq_retry_runs").fetchone()
    assert outcome == ("failed",)


@pytest.fixture
def lone_worker(
    celery_env: dict[str, str], celery_app: Celery, work_dir: Path
) -> Iterator[tuple[CeleryProcess, str]]:
    """A one-process worker on a queue of its own."""
    queue = f"lost-{uuid.uuid4().hex[:8]}"
    name = f"{queue}@{socket.gethostname()}"
    process = CeleryProcess(
        ["worker", "--concurrency", "1", "--queues", queue, "--hostname", name],
        celery_env,
        work_dir / "logs" / f"worker-{queue}.log",
    ).start()
    try:
        wait_until(lambda: celery_app.control.ping([name], timeout=0.5), timeout=60)
        yield process, queue
    finally:
        process.stop()


def _pool_children(process: CeleryProcess) -> list[int]:
    assert process.process is not None
    found = subprocess.run(
        ["pgrep", "-P", str(process.process.pid)], capture_output=True, text=True
    )
    return [int(pid) for pid in found.stdout.split()]


def test_a_task_survives_its_worker_process_dying_mid_run(
    rest: httpx.Client,
    staff: Account,
    db: psycopg.Connection[Any],
    celery_app: Celery,
    lone_worker: tuple[CeleryProcess, str],
    faults: Callable[..., None],
) -> None:
    process, queue = lone_worker
    faults(rate_limit_rate=1, retry_after_seconds=0, latency_seconds=2)
    correlation_id = f"corr-{uuid.uuid4()}"
    sent = celery_app.send_task(
        "embed_knowledge_document",
        args=["doc-1", "some text"],
        queue=queue,
        headers=headers_for(correlation_id, {}),
    )
    # Once the child has the task (its LLM call lasts 2 s), kill it.
    received = f"embed_knowledge_document[{sent.id}] received"
    wait_until(lambda: received in process.log_path.read_text())
    time.sleep(0.5)
    for pid in _pool_children(process):
        os.kill(pid, signal.SIGKILL)

    landed = wait_until(
        lambda: db.execute(
            "SELECT task_name, retry_count, task_args FROM dlq_tasks"
            " WHERE correlation_id = %s",
            (correlation_id,),
        ).fetchone(),
        timeout=60,
    )

    assert landed == ("embed_knowledge_document", 2, ["doc-1", "some text"])
    # Delivered once more than the three runs: the killed run came back.
    log = process.log_path.read_text()
    assert log.count(received) == 4
    assert "WorkerLostError" in log
