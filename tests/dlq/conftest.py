"""A real Celery worker next to the stack, the LLM double's fault switch, and
direct access to the DLQ tables for seeding exact scenarios.

The worker is ``onboarding worker`` in a subprocess with the stack's database
and Redis (its broker is the stack's Redis database). Its in-worker retries
are short and few, and automatic DLQ retries are an hour away, so nothing
moves unless a test asks for it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from celery import Celery

from server.settings import Settings
from services.dlq.celery_app import create_celery
from services.dlq.llm import FAULTS_KEY
from tests.conftest import Account, Stack
from tests.support.stack import ONBOARDING

BASE = "/api/v1/onboarding/admin/dlq"
# Keep in step with WORKER_ENV below.
TASK_MAX_RETRIES = 2
DLQ_BACKOFF_SECONDS = 3600

WORKER_ENV = {
    "DLQ_TASK_MAX_RETRIES": str(TASK_MAX_RETRIES),
    "DLQ_TASK_BACKOFF_SECONDS": "0.2",
    "DLQ_RETRY_BACKOFF_SECONDS": str(DLQ_BACKOFF_SECONDS),
    # No random faults: each test sets the ones it wants in Redis.
    "LLM_TEST_DOUBLE_RATE_LIMIT_RATE": "0",
    "LLM_TEST_DOUBLE_TIMEOUT_RATE": "0",
    "LLM_TEST_DOUBLE_RETRY_AFTER_SECONDS": "1",
}


@dataclass
class CeleryProcess:
    """``onboarding worker`` or ``onboarding beat`` in a subprocess."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> CeleryProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(ONBOARDING), *self.command],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=log,
            )
        return self

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_until(
    check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2
) -> Any:
    """Poll until ``check`` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


@pytest.fixture(scope="session")
def celery_env(stack: Stack, work_dir: Path) -> dict[str, str]:
    return {
        **stack.env,
        **WORKER_ENV,
        "CELERY_BEAT_SCHEDULE_FILE": str(work_dir / f"beat-{uuid.uuid4().hex}"),
    }


@pytest.fixture(scope="session")
def celery_app(stack: Stack) -> Celery:
    """The test process's own app, to send tasks to the worker."""
    settings = Settings(database_url=stack.database_url, redis_url=stack.redis_url)
    return create_celery(settings)


@pytest.fixture(scope="session")
def worker(
    celery_env: dict[str, str], celery_app: Celery, work_dir: Path
) -> Iterator[CeleryProcess]:
    name = f"dlq-test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    process = CeleryProcess(
        ["worker", "--concurrency", "2", "--hostname", name],
        celery_env,
        work_dir / "logs" / "worker.log",
    ).start()
    try:
        wait_until(lambda: celery_app.control.ping([name], timeout=0.5), timeout=60)
        yield process
    finally:
        process.stop()


@pytest.fixture
def beat(celery_env: dict[str, str], work_dir: Path) -> Iterator[CeleryProcess]:
    """The scheduler, sweeping every second, for this test only."""
    env = {**celery_env, "DLQ_SWEEP_INTERVAL_SECONDS": "1"}
    process = CeleryProcess(["beat"], env, work_dir / "logs" / "beat.log").start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def faults(stack: Stack) -> Iterator[Callable[..., None]]:
    """Set the LLM double's fault rates while the worker runs."""
    client = redis.Redis.from_url(stack.redis_url)
    client.delete(FAULTS_KEY)

    def set_faults(**rates: float) -> None:
        client.delete(FAULTS_KEY)
        if rates:
            client.hset(FAULTS_KEY, mapping={k: str(v) for k, v in rates.items()})

    yield set_faults
    client.delete(FAULTS_KEY)
    client.close()


@pytest.fixture
def db(stack: Stack) -> Iterator[psycopg.Connection[Any]]:
    """The test database, autocommit, with empty DLQ tables."""
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE dlq_tasks, dlq_retry_runs, dlq_audit_log")
        yield conn


@pytest.fixture
def seed(db: psycopg.Connection[Any]) -> Callable[..., str]:
    """Insert one DLQ entry; returns its ``dlq_<id>``."""

    def insert(**fields: Any) -> str:
        row = {**_default_entry(), **fields}
        for key in ("task_args", "task_kwargs", "retry_history", "context"):
            row[key] = json.dumps(row[key])
        columns = ", ".join(row)
        values = ", ".join(f"%({key})s" for key in row)
        found = db.execute(
            f"INSERT INTO dlq_tasks ({columns}) VALUES ({values}) RETURNING id", row
        ).fetchone()
        assert found is not None
        return f"dlq_{found[0]}"

    return insert


def _default_entry() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "task_name": "process_conversation_step_v2",
        "celery_task_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
        "status": "pending",
        "category": "llm_api",
        "error_message": "OpenAI API rate limit exceeded",
        "error_type": "RateLimitError",
        "traceback": "Traceback (most recent call last):\n  ...",
        "retry_count": 3,
        "max_retries": 5,
        "created_at": now,
        "updated_at": now,
        "last_retry_at": None,
        "next_retry_at": now + timedelta(hours=1),
        "resolved_at": None,
        "task_args": ["conv-uuid-123", "user input", {}],
        "task_kwargs": {"task_id": "correlation-id"},
        "retry_history": [],
        "context": {},
    }


def entry_of(rest: httpx.Client, account: Account, task_id: str) -> dict[str, Any]:
    reply = rest.get(f"{BASE}/tasks/{task_id}/", headers=account.headers)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def assert_error(reply: httpx.Response, status: int, error: str) -> dict[str, Any]:
    """The documented REST error shape with this status and code."""
    assert reply.status_code == status, reply.text
    body = dict(reply.json())
    assert body["error"] == error
    assert body["detail"]
    assert body["correlation_id"] == reply.headers["x-correlation-id"]
    return body
