"""Latency of the funnel analytics at 1,000,000 sessions and ~10,000,000 events.

Builds a database of its own, bulk-loads sessions and their events with COPY
(each session's rollup row derived from its events as the intake does), then
times every endpoint over native gRPC straight to the server, and a few
through Envoy to show the gateway's share::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/13 \\
    .venv/bin/python bench/funnel_bench.py [--sessions 1000000] [--days 365]

Sessions start evenly over the last ``--days`` days up to now; those still
running at the time of the load keep only the events that have happened, so
the realtime figures see active sessions. Prints one Markdown row per
scenario with the sessions it covers, median and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen" / "python")]

from onboarding.v1 import auth_pb2, auth_pb2_grpc, funnel_pb2  # noqa: E402
from onboarding.v1 import funnel_pb2_grpc as funnel_grpc  # noqa: E402

from server import devstack  # noqa: E402
from services.sessions.states import STAGE_OF_STATE  # noqa: E402
from tests.support.stack import Gateway, ServerProcess, run_cli  # noqa: E402

PASSWORD = "bench-password-123"
CLIENTS, USERS = 25, 1000
LANGUAGES = ("en", "en", "hi", "es", "pt-BR")
ERRORS = ("LLM_TIMEOUT", "LLM_TIMEOUT", "RATE_LIMITED", "VALIDATION_ERROR")
# Share of sessions whose furthest stage is 0..4: the spec's example funnel.
FURTHEST_WEIGHTS = (0.12, 0.064, 0.04, 0.024, 0.752)
# Mean minutes spent in stages 0..3.
STAGE_MINUTES = (0.5, 8.0, 5.0, 3.0)
CHUNK = 50_000
ROLLUPS = ("funnel_hourly_rollup", "funnel_daily_rollup", "funnel_error_rollup")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

SESSION_COLUMNS = (
    "id, user_id, client_id, conversation_type, language, started_at, "
    "last_activity_at, current_state, furthest_stage, collecting_at, "
    "recommendations_at, approval_at, completed_at, questions_answered, "
    "questions_repeated, error_count, last_error_type, last_error_at, created_at"
)
EVENT_COLUMNS = (
    "session_id, client_event_id, event_type, occurred_at, state, data, received_at"
)


# Data -------------------------------------------------------------------


def _ts(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).isoformat()


def _copy_value(value: Any) -> str:
    return "\\N" if value is None else str(value)


@dataclass
class _Event:
    kind: str
    at: int
    state: str | None
    data: dict[str, Any]


def _journey(rng: random.Random, start: int) -> list[_Event]:
    """A session's events in time order, from session_start onwards."""
    minute = 60_000_000
    at = start
    state = "STARTED"
    events = [_Event("session_start", at, state, {})]

    def step(mean_minutes: float) -> int:
        return int(rng.expovariate(1 / mean_minutes) * minute) + 1

    def move(new_state: str, mean_minutes: float) -> None:
        nonlocal at, state
        at += step(mean_minutes)
        state = new_state
        events.append(_Event("state_transition", at, state, {"current_state": state}))

    def happen(kind: str, mean_minutes: float, data: dict[str, Any]) -> None:
        nonlocal at
        at += step(mean_minutes)
        events.append(_Event(kind, at, None, data))

    furthest = rng.choices(range(5), FURTHEST_WEIGHTS)[0]
    if rng.random() < 0.5:
        move("INITIAL_PROMPT", 0.2)
    if furthest >= 1:
        move("COLLECTING_INFO", STAGE_MINUTES[0])
        if rng.random() < 0.5:
            move("ASKING_QUESTIONS", 0.5)
        for index in range(rng.randint(2, 6)):
            question = {"question_index": index, "question": f"Question {index}?"}
            if rng.random() < 0.1:
                happen("question_repeated", 0.5, question)
            happen(
                "question_answered",
                STAGE_MINUTES[1] / 5,
                {**question, "answer_length": 24},
            )
    if furthest >= 2:
        move("GENERATING_RECOMMENDATIONS", 1.0)
        if rng.random() < 0.08:
            # A timeout the session got over.
            happen("error", 0.3, {"error_type": "LLM_TIMEOUT"})
        if rng.random() < 0.7:
            move("AWAITING_APPROVAL", STAGE_MINUTES[2])
    if furthest >= 3:
        move("PENDING_APPROVAL", 1.0)
    if furthest >= 4:
        move("COMPLETED", STAGE_MINUTES[3])
    elif rng.random() < 0.3:
        # Errors make abandonment likelier, and it often follows at once.
        happen("error", 0.5, {"error_type": rng.choice(ERRORS)})
    elif rng.random() < 0.5:
        happen("activity", 1.0, {"kind": "message_sent"})
    return events


def _session_row(
    session_id: uuid.UUID, user_id: int, rng: random.Random, events: list[_Event]
) -> list[Any]:
    """The rollup row of services/sessions/eventstore.py for ``events``."""
    transitions = [e for e in events if e.kind == "state_transition"]
    reached: dict[int, int] = {}
    for e in transitions:
        reached.setdefault(STAGE_OF_STATE[e.state or ""].index, e.at)
    errors = [e for e in events if e.kind == "error"]
    last = max(e.at for e in events)
    setting = [e for e in events if e.state is not None]
    return [
        session_id,
        user_id,
        rng.randint(1, CLIENTS),
        "site_survey" if rng.random() < 0.64 else "business_unit_setup",
        rng.choice(LANGUAGES),
        _ts(events[0].at),
        _ts(last),
        setting[-1].state,
        max(reached, default=0),
        *(_ts(reached[k]) if k in reached else None for k in range(1, 5)),
        sum(e.kind == "question_answered" for e in events),
        sum(e.kind == "question_repeated" for e in events),
        len(errors),
        errors[-1].data["error_type"] if errors else None,
        _ts(errors[-1].at) if errors else None,
        _ts(events[0].at),
    ]


def _event_rows(
    session_id: uuid.UUID, events: list[_Event], row: list[Any]
) -> Iterator[str]:
    state = "STARTED"
    start_data = {"client_id": row[2], "conversation_type": row[3], "language": row[4]}
    for n, e in enumerate(events):
        if e.state is not None:
            state = e.state
        data = start_data if e.kind == "session_start" else e.data
        if e.kind == "error":
            data = {**data, "stage": state}
        event_id = "srv:session_start" if n == 0 else f"ev-{n}"
        when = _ts(e.at)
        fields = (session_id, event_id, e.kind, when, state, json.dumps(data), when)
        yield "\t".join(map(str, fields)) + "\n"


def load(database_url: str, sessions: int, days: int, seed: int = 1) -> int:
    """COPY ``sessions`` sessions and their events; returns the events."""
    rng = random.Random(seed)
    now = (datetime.now(UTC) - EPOCH) // timedelta(microseconds=1)
    span = days * 86_400_000_000
    events_total = 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        restore = _detach_event_indexes(conn)
        _copy(
            conn,
            "users (username, password_hash, is_staff, is_superuser, is_active, "
            "created_at)",
            (f"user{i}\tx\tf\tf\tt\t{_ts(now)}\n" for i in range(USERS)),
        )
        user_ids = [r[0] for r in conn.execute("SELECT id FROM users ORDER BY id")]
        for first in range(0, sessions, CHUNK):
            session_lines: list[str] = []
            event_lines: list[str] = []
            for _ in range(min(CHUNK, sessions - first)):
                events = [
                    e for e in _journey(rng, now - rng.randrange(span)) if e.at <= now
                ]
                session_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                row = _session_row(session_id, rng.choice(user_ids), rng, events)
                session_lines.append("\t".join(map(_copy_value, row)) + "\n")
                event_lines.extend(_event_rows(session_id, events, row))
            _copy(conn, f"onboarding_sessions ({SESSION_COLUMNS})", session_lines)
            _copy(conn, f"session_events ({EVENT_COLUMNS})", event_lines)
            events_total += len(event_lines)
            print(f"  {first + CHUNK} sessions, {events_total} events", file=sys.stderr)
        for statement in restore:
            conn.execute(statement)
        # Each COPY rewrote the rollup rows of every hour it touched; steady
        # writes under autovacuum keep the rollups near their live size.
        for table in ROLLUPS:
            conn.execute(f"VACUUM FULL {table}")
        conn.execute("VACUUM ANALYZE")
    return events_total


def _copy(conn: psycopg.Connection[Any], target: str, lines: Any) -> None:
    with conn.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
        buffer = io.StringIO()
        for line in lines:
            buffer.write(line)
            if buffer.tell() > 8_000_000:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())


def _detach_event_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop session_events' secondary indexes and constraints, which are
    much cheaper to build once after the load; returns the DDL to restore."""
    constraints = conn.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'session_events'::regclass AND contype IN ('u', 'f')"
    ).fetchall()
    indexes = conn.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i "
        "WHERE i.tablename = 'session_events' AND i.indexname NOT IN "
        "(SELECT conname FROM pg_constraint "
        " WHERE conrelid = 'session_events'::regclass)"
    ).fetchall()
    for name, _ in constraints:
        conn.execute(f"ALTER TABLE session_events DROP CONSTRAINT {name}")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    return [d for _, d in indexes] + [
        f"ALTER TABLE session_events ADD CONSTRAINT {name} {d}"
        for name, d in constraints
    ]


# Measurement -------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    rpc: str
    request: Any
    # Clear the realtime cache before each call (a cold read).
    cold: bool = False


def scenarios(days: int) -> list[Scenario]:
    now = datetime.now(UTC)
    everything = (now - timedelta(days=days + 1)).isoformat()
    half = (now - timedelta(days=days / 2)).isoformat()
    f = funnel_pb2
    return [
        Scenario("funnel, default 30 days", "GetFunnel", f.GetFunnelRequest()),
        Scenario(
            "funnel, whole history",
            "GetFunnel",
            f.GetFunnelRequest(start_date=everything),
        ),
        Scenario(
            "funnel, whole history, client_id",
            "GetFunnel",
            f.GetFunnelRequest(start_date=everything, client_id=7),
        ),
        Scenario(
            "funnel, whole history, conversation_type",
            "GetFunnel",
            f.GetFunnelRequest(start_date=everything, conversation_type="site_survey"),
        ),
        Scenario(
            "heatmap, default 7 days hourly",
            "GetDropOffHeatmap",
            f.GetDropOffHeatmapRequest(),
        ),
        Scenario(
            "heatmap, whole history daily",
            "GetDropOffHeatmap",
            f.GetDropOffHeatmapRequest(start_date=everything, granularity="daily"),
        ),
        Scenario(
            "heatmap, whole history weekly",
            "GetDropOffHeatmap",
            f.GetDropOffHeatmapRequest(start_date=everything, granularity="weekly"),
        ),
        Scenario(
            "cohorts by client, default 30 days",
            "GetCohortComparison",
            f.GetCohortComparisonRequest(),
        ),
        Scenario(
            "cohorts by client, whole history",
            "GetCohortComparison",
            f.GetCohortComparisonRequest(start_date=everything),
        ),
        Scenario(
            "cohorts by language, whole history",
            "GetCohortComparison",
            f.GetCohortComparisonRequest(start_date=everything, cohort_by="language"),
        ),
        Scenario(
            "recommendations, default 30 days",
            "GetRecommendations",
            f.GetRecommendationsRequest(),
        ),
        Scenario(
            "recommendations, whole history",
            "GetRecommendations",
            f.GetRecommendationsRequest(start_date=everything, min_confidence=0),
        ),
        Scenario("realtime, 1 h, cached", "GetRealtime", f.GetRealtimeRequest()),
        Scenario(
            "realtime, 1 h, cache cleared",
            "GetRealtime",
            f.GetRealtimeRequest(),
            cold=True,
        ),
        Scenario(
            "realtime, 24 h, cache cleared",
            "GetRealtime",
            f.GetRealtimeRequest(time_range_hours=24),
            cold=True,
        ),
        Scenario(
            "comparison, two halves of the history",
            "GetPeriodComparison",
            f.GetPeriodComparisonRequest(
                period1_start=everything,
                period1_end=half,
                period2_start=half,
                period2_end=now.isoformat(),
            ),
        ),
        Scenario(
            "comparison, two 15-day periods",
            "GetPeriodComparison",
            f.GetPeriodComparisonRequest(
                period1_start=(now - timedelta(days=30)).isoformat(),
                period1_end=(now - timedelta(days=15)).isoformat(),
                period2_start=(now - timedelta(days=15)).isoformat(),
                period2_end=now.isoformat(),
            ),
        ),
    ]


def stats(timings: list[float]) -> tuple[float, float]:
    return statistics.median(timings), statistics.quantiles(timings, n=20)[18]


def time_calls(
    call: Callable[[], Any], count: int, before: Callable[[], None]
) -> tuple[list[float], Any]:
    reply = None
    for _ in range(3):
        before()
        reply = call()
    timings = []
    for _ in range(count):
        before()
        started = time.perf_counter()
        reply = call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, reply


def _covered(reply: Any) -> str:
    for field in ("total_sessions", "sessions_started_last_hour"):
        if hasattr(reply, field):
            return str(getattr(reply, field))
    if hasattr(reply, "heatmap_data"):
        return str(sum(b.sessions_started for b in reply.heatmap_data))
    if hasattr(reply, "cohorts"):
        return str(sum(c.total_sessions for c in reply.cohorts))
    if hasattr(reply, "period1"):
        return str(reply.period1.total_sessions + reply.period2.total_sessions)
    return ""


def measure_grpc(
    port: int, token: str, cache: redis.Redis, days: int, count: int
) -> None:
    metadata = [("authorization", f"Bearer {token}")]
    print("| Scenario (direct gRPC) | Sessions covered | Median ms | p95 ms |")
    print("|---|---:|---:|---:|")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = funnel_grpc.FunnelAnalyticsServiceStub(channel)
        for scenario in scenarios(days):
            method = getattr(stub, scenario.rpc)

            def before(cold: bool = scenario.cold) -> None:
                if cold:
                    for key in cache.scan_iter("funnel:realtime:*"):
                        cache.delete(key)

            call = functools.partial(
                method, scenario.request, metadata=metadata, timeout=30
            )
            timings, reply = time_calls(call, count, before)
            median, p95 = stats(timings)
            print(
                f"| {scenario.name} | {_covered(reply)} | {median:.1f} | {p95:.1f} |",
                flush=True,
            )


def measure_rest(base_url: str, token: str, days: int, count: int) -> None:
    everything = (datetime.now(UTC) - timedelta(days=days + 1)).isoformat()
    paths: list[tuple[str, str, dict[str, str]]] = [
        ("funnel, default 30 days", "/funnel/", {}),
        ("funnel, whole history", "/funnel/", {"start_date": everything}),
        ("heatmap, default 7 days hourly", "/drop-off-heatmap/", {}),
        ("realtime, 1 h, cached", "/realtime/", {}),
    ]
    headers = {"Authorization": f"Bearer {token}"}
    print("\n| Scenario (REST through Envoy) | Median ms | p95 ms |")
    print("|---|---:|---:|")
    with httpx.Client(
        base_url=base_url + "/api/v1/onboarding/analytics", timeout=30
    ) as client:
        for name, path, params in paths:
            call = functools.partial(client.get, path, params=params, headers=headers)
            timings, reply = time_calls(call, count, lambda: None)
            reply.raise_for_status()
            median, p95 = stats(timings)
            print(f"| {name} | {median:.1f} | {p95:.1f} |", flush=True)


# Running ------------------------------------------------------------------


@contextmanager
def bench_database(
    work_dir: Path, keep: bool, reuse: bool, name: str = "onboarding_funnel_bench"
) -> Iterator[str]:
    """A fresh database of this name on the bench's PostgreSQL."""
    admin_url = devstack.postgres_url(work_dir / "postgres")
    if not reuse:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        if not keep and not reuse:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def login(port: int) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = auth_pb2_grpc.AuthServiceStub(channel).Login(
            auth_pb2.LoginRequest(username="bench", password=PASSWORD)
        )
    return reply.access


def main() -> None:
    options = parse_args()
    work_dir = ROOT / ".data" / "bench"
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    redis_url = devstack.redis_url(work_dir / "redis")
    with bench_database(work_dir, options.keep, options.reuse) as database_url:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "JWT_SECRET": "bench-" + uuid.uuid4().hex,
            # The bench measures latency, not the per-user rate limit.
            "RATE_LIMIT_STAFF": "1000000",
            "LOG_LEVEL": "WARNING",
        }
        if not options.reuse:
            _build(env, options)
        server = ServerProcess(env, work_dir / "logs" / "funnel-server.log").start()
        gateway = Gateway([server.port], work_dir).start()
        cache = redis.Redis.from_url(redis_url)
        try:
            token = login(server.port)
            measure_grpc(server.port, token, cache, options.days, options.requests)
            measure_rest(gateway.base_url, token, options.days, options.requests)
        finally:
            for key in cache.scan_iter("funnel:realtime:*"):
                cache.delete(key)
            gateway.stop()
            server.stop()


def _build(env: dict[str, str], options: argparse.Namespace) -> None:
    run_cli(["migrate"], env)
    started = time.perf_counter()
    events = load(env["DATABASE_URL"], options.sessions, options.days)
    took = time.perf_counter() - started
    print(f"loaded {options.sessions} sessions, {events} events in {took:.0f} s\n")
    run_cli(["create-user", "bench", "--staff", "--password-stdin"], env, PASSWORD)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument(
        "--keep", action="store_true", help="keep the database for a second look"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the database a --keep run left, without loading again",
    )
    return parser.parse_args()


if __name__ == "__main__":
    main()
