"""A stack of the demo's own, loaded by ``onboarding demo``, and the spec's text.

The demo test and the spec's own clients (its Postman collection, its Python
and curl examples) run against a server, Envoy and Celery worker on a fresh
database and a private Redis server, loaded once by the real command. Its
figures are then exactly the plan's, and no other test's worker can take the
demo's tasks from the broker. The worker's LLM double never fails, so the DLQ
holds exactly the tasks whose input the task rejects.

Sessions the tests start themselves belong to client ``TEST_CLIENT``, which
the demo never uses, so the figures of clients 1-5 stay the plan's.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis

from server import devstack
from server.app import SERVICES
from services.demo.generator import generate_plan
from services.demo.plan import Plan, iso
from tests.conftest import PASSWORD, Account
from tests.dlq.conftest import CeleryProcess, wait_until
from tests.support.stack import ROOT, Gateway, ServerProcess, free_port, run_cli

# The API document lives in the shared folder beside the repository (CI lays
# it there); ONBOARDING_API_SPEC points elsewhere.
SPEC = Path(
    os.environ.get("ONBOARDING_API_SPEC")
    or ROOT.parent / "shared" / "spec" / "onboarding-api.md"
)
API = "/api/v1/onboarding"
TEST_CLIENT = 9
# Small, but big enough for the recommendation rules and the cohorts' best
# and worst, which want 30 sessions a group.
DEMO_SEED = 7
DEMO_SESSIONS = 300
DEMO_DAYS = 3
DEMO_TASKS = 18
STAFF = "demo-staff"
ROOT_USER = "demo-root"
WORKER_ENV = {
    "DLQ_TASK_MAX_RETRIES": "1",
    "DLQ_TASK_BACKOFF_SECONDS": "0.2",
    "DLQ_RETRY_BACKOFF_SECONDS": "3600",
    "LLM_TEST_DOUBLE_RATE_LIMIT_RATE": "0",
    "LLM_TEST_DOUBLE_TIMEOUT_RATE": "0",
}

# Services still served by the generated base class answer 501.
PENDING_SERVICES = {
    binding.descriptor.name
    for binding in SERVICES
    if binding.servicer_class.__module__.startswith("onboarding.")
}


@dataclass
class DemoStack:
    """The demo stack's environment and gateway."""

    env: dict[str, str]
    base_url: str

    @property
    def api_url(self) -> str:
        """The spec's base URL: the gateway's ``/api/v1/onboarding``."""
        return self.base_url + API


@dataclass(frozen=True)
class DemoRun:
    """What ``onboarding demo`` planned, printed and left in the DLQ."""

    plan: Plan
    output: str
    # The DLQ as the worker left it, before any test retried or deleted.
    dlq_entries: list[dict[str, Any]]


# The stack ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_redis(work_dir: Path) -> Iterator[str]:
    """A Redis server of the demo stack alone, its Celery broker included."""
    port = free_port()
    argv = [
        str(devstack.redis_server_binary()),
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
    ]  # fmt: skip
    with (work_dir / "logs" / "demo-redis.log").open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        wait_until(lambda: _pings(client), timeout=10)
        yield url
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture(scope="session")
def demo_database(work_dir: Path) -> Iterator[str]:
    admin_url = devstack.postgres_url(work_dir / "postgres")
    name = f"onboarding_demo_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def demo_stack(
    demo_database: str, demo_redis: str, work_dir: Path
) -> Iterator[DemoStack]:
    env = {
        "DATABASE_URL": demo_database,
        "REDIS_URL": demo_redis,
        "JWT_SECRET": "demo-test-secret-" + uuid.uuid4().hex,
        "LOG_FORMAT": "json",
    }
    logs = work_dir / "logs"
    run_cli(["migrate"], env)
    server = ServerProcess(env, logs / "demo-server.log").start()
    gateway = Gateway([server.port], work_dir).start()
    hostname = f"demo-{uuid.uuid4().hex[:8]}"
    worker = CeleryProcess(
        ["worker", "--concurrency", "2", "--hostname", hostname],
        {**env, **WORKER_ENV},
        logs / "demo-worker.log",
    ).start()
    try:
        yield DemoStack(env, gateway.base_url)
    finally:
        worker.stop()
        gateway.stop()
        server.stop()


@pytest.fixture(scope="session")
def demo_staff_name(demo_stack: DemoStack) -> str:
    args = ["create-user", STAFF, "--staff", "--password-stdin"]
    run_cli(args, demo_stack.env, PASSWORD)
    return STAFF


@pytest.fixture
def demo_staff(demo_stack: DemoStack, demo_staff_name: str) -> Account:
    """The demo's staff user with a fresh token (tokens live 15 minutes)."""
    return login(demo_stack, demo_staff_name)


@pytest.fixture(scope="session")
def demo_root_name(demo_stack: DemoStack) -> str:
    args = ["create-user", ROOT_USER, "--superuser", "--password-stdin"]
    run_cli(args, demo_stack.env, PASSWORD)
    return ROOT_USER


@pytest.fixture
def demo_superuser(demo_stack: DemoStack, demo_root_name: str) -> Account:
    """A superuser of the demo stack (DLQ clear), with a fresh token."""
    return login(demo_stack, demo_root_name)


def login(stack: DemoStack, username: str) -> Account:
    reply = httpx.post(
        f"{stack.base_url}/api/v1/auth/login/",
        json={"username": username, "password": PASSWORD},
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    return Account(body["user"]["id"], username, body["access"], body["refresh"])


@pytest.fixture
def demo_api(demo_stack: DemoStack) -> Iterator[httpx.Client]:
    """A REST client at the spec's base URL."""
    with httpx.Client(base_url=demo_stack.api_url, timeout=60) as client:
        yield client


@pytest.fixture(scope="session")
def demo_run(demo_stack: DemoStack, demo_staff_name: str) -> DemoRun:
    """The demo command, run once, and the DLQ entries it leads to."""
    now = datetime.now(UTC).replace(microsecond=0)
    args = [
        "demo",
        "--sessions", str(DEMO_SESSIONS),
        "--days", str(DEMO_DAYS),
        "--seed", str(DEMO_SEED),
        "--dlq-tasks", str(DEMO_TASKS),
        "--now", iso(now),
        "--gateway", demo_stack.base_url,
        "--username", demo_staff_name,
    ]  # fmt: skip
    output = run_cli(args, {**demo_stack.env, "ONBOARDING_PASSWORD": PASSWORD})
    plan = generate_plan(
        seed=DEMO_SEED,
        sessions=DEMO_SESSIONS,
        days=DEMO_DAYS,
        now=now,
        dlq_tasks=DEMO_TASKS,
    )
    entries = _settled_dlq(demo_stack, demo_staff_name, plan.failing_task_count)
    return DemoRun(plan, output, entries)


def _settled_dlq(
    stack: DemoStack, username: str, expected: int
) -> list[dict[str, Any]]:
    """The DLQ entries once the ``expected`` number of them has landed."""
    headers = login(stack, username).headers
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:

        def landed() -> list[dict[str, Any]] | None:
            reply = client.get("/admin/dlq/tasks/", headers=headers)
            reply.raise_for_status()
            body = reply.json()
            return body["results"] if body["count"] >= expected else None

        entries: list[dict[str, Any]] = wait_until(landed, timeout=60, interval=0.5)
    return entries


# Sessions of the tests' own -------------------------------------------------------


@pytest.fixture
def demo_session(demo_api: httpx.Client, demo_staff: Account) -> str:
    """A session of the staff user, collecting answers, without checkpoints."""
    return start_session(demo_api, demo_staff)


def start_session(api: httpx.Client, account: Account) -> str:
    """Start a session of ``account`` with two answers, one repeated question
    and one error, over the last three minutes; returns its id."""
    session_id = str(uuid.uuid4())
    started = datetime.now(UTC) - timedelta(minutes=3)
    reply = api.post(
        "/sessions",
        headers=account.headers,
        json={
            "session_id": session_id,
            "client_id": TEST_CLIENT,
            "conversation_type": "site_survey",
            "language": "en",
            "started_at": iso(started),
        },
    )
    assert reply.status_code == 200, reply.text
    first, second = "What is the site name?", "Where is the site located?"
    events = [
        ("state_transition", {"state": "COLLECTING_INFO"}),
        ("question_answered", _answer(0, first, 9)),
        ("question_repeated", {"question_index": 1, "question": second}),
        ("question_answered", _answer(1, second, 6)),
        ("error", {"error_type": "LLM_TIMEOUT", "message": "No answer in 60 s"}),
    ]
    body = {
        "events": [
            {
                "event_id": f"t{index}",
                "occurred_at": iso(started + timedelta(seconds=20 * (index + 1))),
                kind: payload,
            }
            for index, (kind, payload) in enumerate(events)
        ]
    }
    path = f"/sessions/{session_id}/events"
    reply = api.post(path, headers=account.headers, json=body)
    assert reply.status_code == 200, reply.text
    return session_id


def _answer(index: int, question: str, length: int) -> dict[str, Any]:
    return {"question_index": index, "question": question, "answer_length": length}


# The spec's text ----------------------------------------------------------------


def spec_text() -> str:
    """The API document; outside CI its absence skips the tests built on it."""
    if not SPEC.exists():
        message = f"the API document is missing: {SPEC} (set ONBOARDING_API_SPEC)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)
    return SPEC.read_text()


def code_block(heading: str, language: str) -> str:
    """The first ```language block after the line ``heading``."""
    text = spec_text()
    start = text.index(f"\n{heading}\n")
    match = re.compile(rf"```{language}\n(.*?)\n```", re.S).search(text, start)
    assert match is not None, f"no {language} block after {heading!r}"
    return match.group(1)


@dataclass(frozen=True)
class Documented:
    """An endpoint of the spec and the example response it documents."""

    method: str
    # Relative to the base URL, such as /admin/dlq/tasks/{task_id}/.
    path: str
    example: dict[str, Any]

    def matches(self, method: str, path: str) -> bool:
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(self.path))
        return method == self.method and re.fullmatch(pattern, path) is not None


def documented_endpoints() -> list[Documented]:
    """Every ``**Endpoint:**`` of the spec with its first example response."""
    text = spec_text()
    found = []
    for match in re.finditer(r"\*\*Endpoint:\*\* `([A-Z]+) ([^`]+)`", text):
        example = re.compile(
            r"\*\*Example Response:\*\*\s*```json\n(.*?)\n```", re.S
        ).search(text, match.end())
        assert example is not None, match.group(0)
        found.append(
            Documented(match.group(1), match.group(2), json.loads(example.group(1)))
        )
    return found
