"""Latency of the DLQ listing and statistics with 100,000 entries.

Starts the real server and Envoy on a fresh database, seeds the entries and
retry runs in PostgreSQL, then times REST requests through the gateway::

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    REDIS_URL=redis://127.0.0.1:6379/0 \\
    .venv/bin/python bench/dlq_bench.py [--entries 100000] [--requests 50]

Without the URLs it uses the embedded servers of ``onboarding dev``. Prints
one Markdown row per scenario: median and p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen" / "python")]

from server import devstack  # noqa: E402
from tests.support.stack import Gateway, ServerProcess, run_cli  # noqa: E402

BASE = "/api/v1/onboarding/admin/dlq"
PASSWORD = "bench-password-123"

# Spread like a DLQ that is looked after: most entries waiting or given up.
SEED_SQL = """
INSERT INTO dlq_tasks (
    task_name, celery_task_id, correlation_id, status, category,
    error_message, error_type, traceback, retry_count, max_retries,
    created_at, updated_at, last_retry_at, next_retry_at, resolved_at,
    task_args, task_kwargs, retry_history, context)
SELECT
    (ARRAY['process_conversation_step_v2', 'embed_knowledge_document',
           'translate_conversation_step'])[1 + i %% 3],
    gen_random_uuid()::text,
    'corr-' || i,
    (ARRAY['pending', 'pending', 'failed', 'retrying', 'abandoned',
           'resolved', 'failed', 'pending', 'resolved', 'abandoned'])[1 + i %% 10],
    (ARRAY['llm_api', 'llm_api', 'network', 'database', 'validation'])[1 + i %% 5],
    'LLM provider rate limit exceeded',
    'RateLimitError',
    repeat('Traceback line of some length\n', 40),
    i %% 6,
    5,
    now() - make_interval(secs => i * %(spread_seconds)s),
    now(),
    now() - make_interval(secs => i * %(spread_seconds)s / 2),
    now() + interval '1 hour',
    NULL,
    jsonb_build_array('conv-' || i, 'some user input of a typical length', '{}'::jsonb),
    jsonb_build_object('task_id', 'corr-' || i),
    jsonb_build_array(
        jsonb_build_object('attempt', 1, 'timestamp', now()::text,
                           'error', 'Rate limit exceeded', 'retry_after', 30),
        jsonb_build_object('attempt', 2, 'timestamp', now()::text,
                           'error', 'Rate limit exceeded', 'retry_after', 30)),
    jsonb_build_object('session_id', 'conv-' || i, 'user_id', i %% 500,
                       'client_id', i %% 20)
FROM generate_series(1, %(entries)s) AS i
"""

RUNS_SQL = """
INSERT INTO dlq_retry_runs (entry_id, task_name, celery_task_id, trigger, forced,
                            enqueued_at, finished_at, outcome)
SELECT id, task_name, gen_random_uuid()::text, 'automatic', false,
       created_at, created_at + interval '5 seconds',
       CASE WHEN id % 3 = 0 THEN 'failed' ELSE 'succeeded' END
FROM dlq_tasks WHERE id % 2 = 0
"""


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    params: dict[str, str | int]


SCENARIOS = (
    Scenario("list, default (first page of 20)", f"{BASE}/tasks/", {}),
    Scenario("list, status=pending", f"{BASE}/tasks/", {"status": "pending"}),
    Scenario(
        "list, category + task_name",
        f"{BASE}/tasks/",
        {"category": "network", "task_name": "embed_knowledge_document"},
    ),
    Scenario("list, correlation_id", f"{BASE}/tasks/", {"correlation_id": "corr-4242"}),
    Scenario(
        "list, page 500 of 100 per page",
        f"{BASE}/tasks/",
        {"page": 500, "page_size": 100},
    ),
    Scenario("stats, 24 h window", f"{BASE}/stats/", {"time_range_hours": 24}),
    Scenario(
        "stats, whole DLQ (8760 h window)",
        f"{BASE}/stats/",
        {"time_range_hours": 8760},
    ),
)


def main() -> None:
    options = _parse_args()
    work_dir = ROOT / ".data" / "bench"
    (work_dir / "logs").mkdir(parents=True, exist_ok=True)
    with _database(work_dir) as database_url:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": devstack.redis_url(work_dir / "redis"),
            "JWT_SECRET": "bench-" + uuid.uuid4().hex,
            # The bench measures latency, not the per-user rate limit.
            "RATE_LIMIT_STAFF": "1000000",
            "LOG_LEVEL": "WARNING",
        }
        run_cli(["migrate"], env)
        _seed(database_url, options.entries, options.spread_hours)
        run_cli(["create-user", "bench", "--staff", "--password-stdin"], env, PASSWORD)
        server = ServerProcess(env, work_dir / "logs" / "server.log").start()
        gateway = Gateway([server.port], work_dir).start()
        try:
            _measure(gateway.base_url, options)
        finally:
            gateway.stop()
            server.stop()


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument(
        "--spread-hours",
        type=float,
        default=14 * 24,
        help="entries are created evenly over this many hours back",
    )
    return parser.parse_args()


@contextmanager
def _database(work_dir: Path) -> Iterator[str]:
    admin_url = devstack.postgres_url(work_dir / "postgres")
    name = f"onboarding_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _seed(database_url: str, entries: int, spread_hours: float) -> None:
    started = time.perf_counter()
    spread_seconds = spread_hours * 3600 / entries
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(SEED_SQL, {"entries": entries, "spread_seconds": spread_seconds})
        conn.execute(
            "UPDATE dlq_tasks SET resolved_at = updated_at WHERE status = 'resolved'"
        )
        conn.execute(RUNS_SQL)
        conn.execute("VACUUM ANALYZE dlq_tasks")
        conn.execute("VACUUM ANALYZE dlq_retry_runs")
    took = time.perf_counter() - started
    print(f"seeded {entries} entries in {took:.1f} s", file=sys.stderr)


def _measure(base_url: str, options: argparse.Namespace) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        login = client.post(
            "/api/v1/auth/login/", json={"username": "bench", "password": PASSWORD}
        )
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['access']}"}
        print("| Scenario | Median ms | p95 ms |")
        print("|---|---:|---:|")
        for scenario in SCENARIOS:
            timings = _time(client, headers, scenario, options.requests)
            median = statistics.median(timings)
            p95 = statistics.quantiles(timings, n=20)[18]
            print(f"| {scenario.name} | {median:.1f} | {p95:.1f} |", flush=True)


def _time(
    client: httpx.Client, headers: dict[str, str], scenario: Scenario, count: int
) -> list[float]:
    for _ in range(5):
        client.get(scenario.path, params=scenario.params, headers=headers)
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        reply = client.get(scenario.path, params=scenario.params, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        reply.raise_for_status()
    return timings


if __name__ == "__main__":
    main()
