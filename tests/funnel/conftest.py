"""A stack of its own for the funnel tests, and sessions built by hand.

Funnel figures are sums over every session in the database, so these tests
run their own server and Envoy on a fresh database that each test empties
first. Sessions are written straight into ``onboarding_sessions`` and
``session_events``: a ``Journey`` lists a session's events, and its rollup
row is derived from them by the rules of ``services/sessions/eventstore.py``
(the intake is tested in tests/sessions).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import httpx
import psycopg
import pytest
import redis

from server import devstack
from services.sessions.states import STAGE_OF_STATE, STAGES
from tests.conftest import PASSWORD, Account
from tests.support.stack import Gateway, ServerProcess, run_cli

BASE = "/api/v1/onboarding/analytics"
# Small enough that a test's hand-built groups can reach it.
MIN_SAMPLE = 10
ABANDON_AFTER = timedelta(minutes=30)
# A Monday long past: sessions started then are all finished.
T0 = datetime(2024, 3, 4, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def now() -> datetime:
    return datetime.now(UTC)


# Journeys ---------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One session event: its type, time, state (transitions) and data."""

    event_type: str
    at: datetime
    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Journey:
    """A session's events, each placed ``minutes`` after its start."""

    started_at: datetime
    client_id: int = 1
    conversation_type: str = "site_survey"
    language: str = "en"
    events: list[Event] = field(default_factory=list)
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        self.events.insert(0, Event("session_start", self.started_at, "STARTED"))

    def _at(self, minutes: float) -> datetime:
        return self.started_at + timedelta(minutes=minutes)

    def to(self, state: str, minutes: float) -> Journey:
        self.events.append(Event("state_transition", self._at(minutes), state))
        return self

    def path(self, *steps: tuple[str, float]) -> Journey:
        for state, minutes in steps:
            self.to(state, minutes)
        return self

    def answer(self, minutes: float) -> Journey:
        self.events.append(Event("question_answered", self._at(minutes)))
        return self

    def repeat(self, minutes: float) -> Journey:
        self.events.append(Event("question_repeated", self._at(minutes)))
        return self

    def error(self, error_type: str, minutes: float) -> Journey:
        data = {"error_type": error_type}
        self.events.append(Event("error", self._at(minutes), data=data))
        return self

    def activity(self, minutes: float) -> Journey:
        self.events.append(Event("activity", self._at(minutes)))
        return self

    def ordered(self) -> list[Event]:
        """Events as the intake stores them: state-setting ones first."""
        setting = [e for e in self.events if e.state is not None]
        others = [e for e in self.events if e.state is None]
        return sorted(setting, key=lambda e: e.at) + sorted(others, key=lambda e: e.at)

    def state_at(self, moment: datetime) -> str:
        """The state of the latest state-setting event at or before moment."""
        setting = [e for e in self.ordered() if e.state is not None and e.at <= moment]
        latest = max(enumerate(setting), key=lambda p: (p[1].at, p[0]), default=None)
        return latest[1].state if latest and latest[1].state else "STARTED"

    def row(self, user_id: int) -> dict[str, Any]:
        """The onboarding_sessions row the intake keeps for these events."""
        events = self.ordered()
        transitions = [e for e in events if e.event_type == "state_transition"]
        errors = [(e.at, i, e) for i, e in enumerate(events) if e.event_type == "error"]
        last_error = max(errors, key=lambda t: (t[0], t[1]))[2] if errors else None
        reached = {
            stage.reached_column: min(
                (e.at for e in transitions if e.state in stage.states), default=None
            )
            for stage in STAGES[1:]
        }
        return {
            "id": self.id,
            "user_id": user_id,
            "client_id": self.client_id,
            "conversation_type": self.conversation_type,
            "language": self.language,
            "started_at": self.started_at,
            "last_activity_at": max(e.at for e in events),
            "current_state": self.state_at(max(e.at for e in events)),
            "furthest_stage": max(
                (STAGE_OF_STATE[e.state].index for e in transitions if e.state),
                default=0,
            ),
            **reached,
            "questions_answered": _count(events, "question_answered"),
            "questions_repeated": _count(events, "question_repeated"),
            "error_count": len(errors),
            "last_error_type": last_error.data["error_type"] if last_error else None,
            "last_error_at": last_error.at if last_error else None,
            "created_at": self.started_at,
        }


def _count(events: list[Event], event_type: str) -> int:
    return sum(1 for e in events if e.event_type == event_type)


class Sessions:
    """Writes journeys into the funnel stack's database."""

    def __init__(self, conn: psycopg.Connection[Any], user_id: int) -> None:
        self._conn = conn
        self._user_id = user_id
        self._event_ids = itertools.count(1)

    def add(self, *journeys: Journey) -> list[Journey]:
        with self._conn.transaction():
            for journey in journeys:
                self._insert(journey)
        return list(journeys)

    def _insert(self, journey: Journey) -> None:
        row = journey.row(self._user_id)
        columns = ", ".join(row)
        values = ", ".join(f"%({name})s" for name in row)
        self._conn.execute(
            f"INSERT INTO onboarding_sessions ({columns}) VALUES ({values})", row
        )
        for event in journey.ordered():
            self._conn.execute(
                "INSERT INTO session_events (session_id, client_event_id, "
                "event_type, occurred_at, state, data, received_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (
                    journey.id,
                    f"e{next(self._event_ids)}",
                    event.event_type,
                    event.at,
                    event.state or journey.state_at(event.at),
                    json.dumps(_stored_data(journey, event)),
                    event.at,
                ),
            )


def _stored_data(journey: Journey, event: Event) -> dict[str, Any]:
    # The intake adds the state an error happened in to its data.
    if event.event_type == "error":
        return {**event.data, "stage": journey.state_at(event.at)}
    return event.data


# The stack --------------------------------------------------------------


@dataclass
class FunnelStack:
    """A server and Envoy on a database of the funnel tests alone."""

    env: dict[str, str]
    database_url: str
    server: ServerProcess
    gateway: Gateway

    @property
    def base_url(self) -> str:
        return self.gateway.base_url


@pytest.fixture(scope="session")
def funnel_stack(redis_url: str, work_dir: Path) -> Iterator[FunnelStack]:
    admin_url = devstack.postgres_url(work_dir / "postgres")
    name = f"onboarding_funnel_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": "funnel-test-secret-" + uuid.uuid4().hex,
        "LOG_FORMAT": "json",
        "FUNNEL_MIN_SAMPLE_SIZE": str(MIN_SAMPLE),
        "SESSION_ABANDON_AFTER_MINUTES": str(ABANDON_AFTER // timedelta(minutes=1)),
    }
    run_cli(["migrate"], env)
    server = ServerProcess(env, work_dir / "logs" / "funnel-server.log").start()
    gateway = Gateway([server.port], work_dir).start()
    try:
        yield FunnelStack(env, database_url, server, gateway)
    finally:
        gateway.stop()
        server.stop()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _account(stack: FunnelStack, username: str, *flags: str) -> Account:
    run_cli(["create-user", username, *flags, "--password-stdin"], stack.env, PASSWORD)
    reply = httpx.post(
        f"{stack.base_url}/api/v1/auth/login/",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    reply.raise_for_status()
    body = reply.json()
    return Account(body["user"]["id"], username, body["access"], body["refresh"])


@pytest.fixture(scope="session")
def analyst(funnel_stack: FunnelStack) -> Account:
    return _account(funnel_stack, "analyst", "--staff")


@pytest.fixture(scope="session")
def viewer(funnel_stack: FunnelStack) -> Account:
    return _account(funnel_stack, "viewer")


@pytest.fixture
def pg(funnel_stack: FunnelStack) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(funnel_stack.database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _forget(client: redis.Redis, pattern: str) -> None:
    keys = list(client.scan_iter(pattern))
    if keys:
        client.delete(*keys)


@pytest.fixture
def sessions(
    pg: psycopg.Connection[Any], analyst: Account, redis_client: redis.Redis
) -> Iterator[Sessions]:
    """An empty database, no cached realtime figures, fresh rate limits."""
    pg.execute("TRUNCATE onboarding_sessions CASCADE")
    for pattern in ("funnel:realtime:*", "rl:*"):
        _forget(redis_client, pattern)
    yield Sessions(pg, analyst.id)
    # The main stack shares this Redis database; leave it no figures of ours.
    _forget(redis_client, "funnel:realtime:*")


@pytest.fixture
def rest(funnel_stack: FunnelStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=funnel_stack.base_url + BASE, timeout=30) as client:
        yield client


@pytest.fixture
def direct_channel(funnel_stack: FunnelStack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{funnel_stack.server.port}") as channel:
        yield channel
