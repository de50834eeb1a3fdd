"""Latency of the analytics dashboard at 1,000,000 sessions.

Loads the funnel benchmark's data set with its own loader (``load`` of
bench/funnel_bench.py: sessions and ~10 events each over the last ``--days``
days), adds the checkpoint and resume events that data set lacks, then times
every dashboard endpoint over native gRPC straight to the server, and a few
through Envoy::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/11 \\
    .venv/bin/python bench/dashboard_bench.py [--sessions 1000000] [--days 365]

Prints one Markdown row per scenario with its median and p95 in
milliseconds.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen" / "python")]

from onboarding.v1 import dashboard_pb2  # noqa: E402
from onboarding.v1 import dashboard_pb2_grpc as dashboard_grpc  # noqa: E402

from bench.funnel_bench import (  # noqa: E402
    PASSWORD,
    Scenario,
    bench_database,
    load,
    login,
    parse_args,
    stats,
    time_calls,
)
from server import devstack  # noqa: E402
from tests.support.stack import Gateway, ServerProcess, run_cli  # noqa: E402

DATABASE = "onboarding_dashboard_bench"
CACHE_KEYS = "dashboard:overview:*"
# Checkpoints when each stage is first reached, as a product saving state at
# every step would, and a resume at the last event of one session in twenty.
_RECOVERY_EVENTS = """
INSERT INTO session_events
    (session_id, client_event_id, event_type, occurred_at, state, data, received_at)
SELECT s.id, 'srv:checkpoint:' || c.version, 'checkpoint_created', c.at, c.state,
       jsonb_build_object('checkpoint_version', c.version, 'state', c.state), c.at
FROM onboarding_sessions AS s
CROSS JOIN LATERAL (VALUES
    (1, s.collecting_at, 'COLLECTING_INFO'),
    (2, s.recommendations_at, 'GENERATING_RECOMMENDATIONS'),
    (3, s.approval_at, 'PENDING_APPROVAL')) AS c(version, at, state)
WHERE c.at IS NOT NULL
UNION ALL
SELECT s.id, 'srv:resume:1', 'session_resumed', s.last_activity_at, s.current_state,
       jsonb_build_object('checkpoint_version', 1,
                          'restored_state', 'COLLECTING_INFO', 'source', 'redis'),
       s.last_activity_at
FROM onboarding_sessions AS s
WHERE s.collecting_at IS NOT NULL AND abs(hashtext(s.id::text)) % 20 = 0
"""


def scenarios(days: int, replayed: list[str]) -> list[Scenario]:
    everything = (datetime.now(UTC) - timedelta(days=days + 1)).isoformat()
    d = dashboard_pb2
    overview = d.GetOverviewRequest
    return [
        Scenario("overview, 24 h, cached", "GetOverview", overview()),
        Scenario("overview, 24 h, cache cleared", "GetOverview", overview(), True),
        Scenario(
            "overview, 24 h, client_id, cache cleared",
            "GetOverview",
            overview(client_id=7),
            True,
        ),
        Scenario(
            "overview, 720 h, cache cleared",
            "GetOverview",
            overview(time_range_hours=720),
            True,
        ),
        Scenario(
            "overview, 8760 h, cache cleared",
            "GetOverview",
            overview(time_range_hours=8760),
            True,
        ),
        Scenario("heatmap, default 7 days daily", "GetHeatmap", d.GetHeatmapRequest()),
        Scenario(
            "heatmap, 7 days hourly",
            "GetHeatmap",
            d.GetHeatmapRequest(granularity="hourly"),
        ),
        Scenario(
            "heatmap, whole history weekly",
            "GetHeatmap",
            d.GetHeatmapRequest(start_date=everything, granularity="weekly"),
        ),
        *(
            Scenario(
                f"session replay ({n + 1})",
                "GetSessionReplay",
                d.GetSessionReplayRequest(session_id=session_id),
            )
            for n, session_id in enumerate(replayed)
        ),
        Scenario(
            "cohort trends, default 30 days weekly",
            "GetCohortTrends",
            d.GetCohortTrendsRequest(),
        ),
        Scenario(
            "cohort trends, whole history daily",
            "GetCohortTrends",
            d.GetCohortTrendsRequest(start_date=everything, cohort_type="daily"),
        ),
        Scenario(
            "cohort trends, whole history monthly",
            "GetCohortTrends",
            d.GetCohortTrendsRequest(start_date=everything, cohort_type="monthly"),
        ),
    ]


def _covered(reply: Any) -> str:
    """How many sessions (or, for a replay, events) the reply covers."""
    if hasattr(reply, "overview"):
        return str(reply.overview.total_sessions)
    if hasattr(reply, "heatmap_data"):
        return str(sum(p.total_sessions for p in reply.heatmap_data))
    if hasattr(reply, "cohorts"):
        return str(sum(c.total_sessions for c in reply.cohorts))
    return f"{reply.session_summary.total_events} events"


def measure_grpc(
    port: int, token: str, cache: redis.Redis, cases: list[Scenario], count: int
) -> None:
    metadata = [("authorization", f"Bearer {token}")]
    print("| Scenario (direct gRPC) | Covers | Median ms | p95 ms |")
    print("|---|---:|---:|---:|")
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = dashboard_grpc.AnalyticsDashboardServiceStub(channel)
        for scenario in cases:

            def before(cold: bool = scenario.cold) -> None:
                if cold:
                    _forget(cache)

            call = functools.partial(
                getattr(stub, scenario.rpc),
                scenario.request,
                metadata=metadata,
                timeout=60,
            )
            timings, reply = time_calls(call, count, before)
            median, p95 = stats(timings)
            print(
                f"| {scenario.name} | {_covered(reply)} | {median:.1f} | {p95:.1f} |",
                flush=True,
            )


def measure_rest(base_url: str, token: str, replayed: str, count: int) -> None:
    paths = [
        ("overview, 24 h, cached", "/overview/"),
        ("heatmap, default 7 days daily", "/heatmap/"),
        ("session replay", f"/session-replay/{replayed}/"),
        ("cohort trends, default 30 days weekly", "/cohort-trends/"),
    ]
    headers = {"Authorization": f"Bearer {token}"}
    print("\n| Scenario (REST through Envoy) | Median ms | p95 ms |")
    print("|---|---:|---:|")
    base = base_url + "/api/v1/onboarding/dashboard"
    with httpx.Client(base_url=base, timeout=60) as client:
        for name, path in paths:
            call = functools.partial(client.get, path, headers=headers)
            timings, reply = time_calls(call, count, lambda: None)
            reply.raise_for_status()
            median, p95 = stats(timings)
            print(f"| {name} | {median:.1f} | {p95:.1f} |", flush=True)


def _forget(cache: redis.Redis) -> None:
    for key in cache.scan_iter(CACHE_KEYS):
        cache.delete(key)


# Running ------------------------------------------------------------------


def _build(env: dict[str, str], options: argparse.Namespace) -> None:
    run_cli(["migrate"], env)
    started = time.perf_counter()
    events = load(env["DATABASE_URL"], options.sessions, options.days)
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        events += conn.execute(_RECOVERY_EVENTS).rowcount
        conn.execute("VACUUM ANALYZE session_events")
    took = time.perf_counter() - started
    print(f"loaded {options.sessions} sessions, {events} events in {took:.0f} s\n")
    run_cli(["create-user", "bench", "--staff", "--password-stdin"], env, PASSWORD)


def _replayed(database_url: str, count: int) -> list[str]:
    """Random sessions of every kind, the same ones on every run."""
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT setseed(0.5)")
        rows = conn.execute(
            "SELECT id FROM onboarding_sessions ORDER BY random() LIMIT %s", (count,)
        ).fetchall()
    return [str(row[0]) for row in rows]


def main() -> None:
    options = parse_args()
    work_dir = ROOT / ".data" / "bench"
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    redis_url = devstack.redis_url(work_dir / "redis")
    with bench_database(
        work_dir, options.keep, options.reuse, DATABASE
    ) as database_url:
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
        replayed = _replayed(database_url, 3)
        server = ServerProcess(env, work_dir / "logs" / "dashboard-server.log").start()
        gateway = Gateway([server.port], work_dir).start()
        cache = redis.Redis.from_url(redis_url)
        _forget(cache)
        try:
            token = login(server.port)
            cases = scenarios(options.days, replayed)
            measure_grpc(server.port, token, cache, cases, options.requests)
            measure_rest(gateway.base_url, token, replayed[0], options.requests)
        finally:
            _forget(cache)
            gateway.stop()
            server.stop()


if __name__ == "__main__":
    main()
