"""Fixtures of the session tests.

Sessions are built through the API itself (StartSession and RecordEvents
with event times in the past), so a test states the factor values it wants
and the server computes everything else. ``api`` runs a test over REST
through Envoy, native gRPC through Envoy and native gRPC straight to the
server. ``extra_stack`` starts another server and Envoy with settings of
their own, on a fresh database or behind a cuttable Redis proxy.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis

from server import devstack
from tests.conftest import PASSWORD, Account, Stack
from tests.sessions.api import Api
from tests.support.stack import Gateway, ServerProcess, run_cli
from tests.support.tcp_proxy import TcpProxy

TRANSPORTS = ("rest", "grpc_gateway", "grpc_direct")


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def idle(minutes: int) -> timedelta:
    """An idle time that reads as exactly ``minutes`` for the next 40 seconds."""
    return timedelta(minutes=minutes, seconds=20)


def api_for(transport: str, gateway_port: int, server_port: int) -> Api:
    grpc_port = server_port if transport == "grpc_direct" else gateway_port
    return Api(transport, f"http://127.0.0.1:{gateway_port}", f"127.0.0.1:{grpc_port}")


@pytest.fixture(params=TRANSPORTS)
def api(request: pytest.FixtureRequest, stack: Stack) -> Api:
    return api_for(request.param, stack.gateway.port, stack.server.port)


@pytest.fixture
def setup_api(stack: Stack) -> Api:
    """REST, for building sessions that a test then reads over ``api``."""
    return api_for("rest", stack.gateway.port, stack.server.port)


@pytest.fixture
def client_id() -> int:
    """A client of its own, so complexity baselines and at-risk lists of a
    test see only that test's sessions."""
    return random.randint(10**6, 2**31 - 1)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def pg(stack: Stack) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        yield conn


# Events -----------------------------------------------------------------


def transition(event_id: str, at: datetime, state: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": iso(at),
        "state_transition": {"state": state},
    }


def answered(event_id: str, at: datetime, index: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": iso(at),
        "question_answered": {
            "question_index": index,
            "question": f"Question {index}?",
            "answer_length": 10 + index,
        },
    }


def repeated(event_id: str, at: datetime, index: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": iso(at),
        "question_repeated": {
            "question_index": index,
            "question": f"Question {index}?",
        },
    }


def error(
    event_id: str, at: datetime, error_type: str = "LLM_TIMEOUT", stage: str = ""
) -> dict[str, Any]:
    payload = {"error_type": error_type}
    if stage:
        payload["stage"] = stage
    return {"event_id": event_id, "occurred_at": iso(at), "error": payload}


def activity(event_id: str, at: datetime, kind: str = "message_sent") -> dict[str, Any]:
    return {"event_id": event_id, "occurred_at": iso(at), "activity": {"kind": kind}}


# Sessions ---------------------------------------------------------------


def start(
    api: Api,
    account: Account,
    *,
    client_id: int = 1,
    started_at: datetime | None = None,
    conversation_type: str = "site_survey",
) -> str:
    """A new session of ``account``; returns its id."""
    session_id = str(uuid.uuid4())
    reply = api.call(
        "StartSession",
        account,
        session_id=session_id,
        client_id=client_id,
        conversation_type=conversation_type,
        language="en",
        started_at=iso(started_at or utcnow() - timedelta(minutes=1)),
    )
    assert reply.status == 200, reply.body
    return session_id


def record(
    api: Api, account: Account, session_id: str, events: list[dict[str, Any]]
) -> None:
    reply = api.call("RecordEvents", account, session_id=session_id, events=events)
    assert reply.status == 200, reply.body


@dataclass(frozen=True)
class Plan:
    """A session to build, described by the factor values it should have."""

    client_id: int
    idle: timedelta = timedelta(0)
    answered: int = 0
    repeats: int = 0
    errors: int = 0
    completed: bool = False
    age: timedelta = timedelta(minutes=45)


def build(api: Api, account: Account, plan: Plan) -> str:
    """Start a session and record events that give it ``plan``'s factors.

    Its counted events fall between the start and the last event, which
    happens ``plan.idle`` ago and completes the session when asked to.
    """
    now = utcnow()
    began, last = now - plan.age, now - plan.idle
    session_id = start(api, account, client_id=plan.client_id, started_at=began)
    kinds = (
        [(answered, i) for i in range(plan.answered)]
        + [(repeated, i) for i in range(plan.repeats)]
        + [(lambda eid, at, _: error(eid, at), i) for i in range(plan.errors)]
    )
    step = (last - began) / (len(kinds) + 2)
    events = [transition("collecting", began + step, "COLLECTING_INFO")]
    for n, (make, index) in enumerate(kinds):
        events.append(make(f"e{n}", began + step * (n + 2), index))
    if plan.completed:
        events.append(transition("completed", last, "COMPLETED"))
    else:
        events.append(activity("last", last))
    record(api, account, session_id, events)
    return session_id


# Extra stacks -----------------------------------------------------------


@dataclass
class ExtraStack:
    """A second server and Envoy with settings of their own."""

    env: dict[str, str]
    server: ServerProcess
    gateway: Gateway

    def api(self, transport: str = "rest") -> Api:
        return api_for(transport, self.gateway.port, self.server.port)

    @property
    def base_url(self) -> str:
        return self.gateway.base_url


def create_account(extra: ExtraStack, username: str, *flags: str) -> Account:
    run_cli(["create-user", username, *flags, "--password-stdin"], extra.env, PASSWORD)
    reply = httpx.post(
        f"{extra.base_url}/api/v1/auth/login/",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    reply.raise_for_status()
    body = reply.json()
    return Account(body["user"]["id"], username, body["access"], body["refresh"])


def redis_through(url: str, proxy: TcpProxy) -> str:
    """The same Redis database, reached over TCP through ``proxy``."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        db = parse_qs(parts.query).get("db", ["0"])[0]
    else:
        db = parts.path.lstrip("/") or "0"
    return urlunsplit(("redis", f"127.0.0.1:{proxy.port}", f"/{db}", "", ""))


@contextmanager
def fresh_database(work_dir: Path) -> Iterator[str]:
    admin_url = devstack.postgres_url(work_dir / "postgres")
    name = f"onboarding_sessions_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def extra_stack(
    stack: Stack, work_dir: Path, env: dict[str, str], log_name: str
) -> Iterator[ExtraStack]:
    """Server and Envoy on ``stack``'s settings overridden by ``env``."""
    merged = {**stack.env, **env}
    server = ServerProcess(merged, work_dir / "logs" / f"{log_name}.log").start()
    gateway = Gateway([server.port], work_dir).start()
    try:
        yield ExtraStack(merged, server, gateway)
    finally:
        gateway.stop()
        server.stop()


@pytest.fixture(scope="module")
def isolated_stack_factory(
    stack: Stack, work_dir: Path
) -> Iterator[Callable[[dict[str, str]], ExtraStack]]:
    """Builds stacks on fresh databases; everything stops with the module."""
    with ExitStack() as exits:

        def build_stack(env: dict[str, str]) -> ExtraStack:
            url = exits.enter_context(fresh_database(work_dir))
            merged = {**env, "DATABASE_URL": url}
            run_cli(["migrate"], {**stack.env, **merged})
            return exits.enter_context(
                extra_stack(stack, work_dir, merged, "sessions-isolated")
            )

        yield build_stack
