"""The rollups follow every write to onboarding_sessions exactly."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import psycopg

from services.funnel.rollup import ERROR_MEASURES, SESSION_MEASURES
from tests.conftest import Account
from tests.funnel.conftest import T0, Journey, Sessions

DAY = "date_trunc('day', started_at, 'UTC')"
# Each rollup's key expressions, measures and the sessions it counts.
ROLLUPS = {
    "funnel_daily_rollup": (
        [DAY, "client_id", "conversation_type", "language"],
        SESSION_MEASURES,
        "true",
    ),
    "funnel_hourly_rollup": (
        ["date_trunc('hour', started_at, 'UTC')"],
        SESSION_MEASURES,
        "true",
    ),
    "funnel_error_rollup": (
        [DAY, "client_id", "conversation_type", "last_error_type"],
        ERROR_MEASURES,
        "last_error_type IS NOT NULL",
    ),
}


def rollup_rows(pg: psycopg.Connection[Any], table: str) -> set[tuple[Any, ...]]:
    """The rollup's rows, leaving out rows whose sessions all went away."""
    _, measures, _ = ROLLUPS[table]
    zero = ", ".join("0" for _ in measures)
    rows = pg.execute(
        f"SELECT * FROM {table} WHERE ({', '.join(measures)}) IS DISTINCT FROM ({zero})"
    )
    return {tuple(r) for r in rows}


def recomputed(pg: psycopg.Connection[Any], table: str) -> set[tuple[Any, ...]]:
    keys, measures, where = ROLLUPS[table]
    key_list = ", ".join(keys)
    sums = ", ".join(f"sum({name})" for name in measures)
    rows = pg.execute(
        f"SELECT {key_list}, {sums} FROM funnel_session_facts "
        f"WHERE {where} GROUP BY {key_list}"
    ).fetchall()
    return {tuple(r) for r in rows}


def assert_rollups_match(pg: psycopg.Connection[Any]) -> None:
    for table in ROLLUPS:
        assert rollup_rows(pg, table) == recomputed(pg, table), table


def test_rollup_columns_are_the_measures_the_service_reads(
    pg: psycopg.Connection[Any], sessions: Sessions
) -> None:
    for table, (keys, measures, _) in ROLLUPS.items():
        columns = [
            r[0]
            for r in pg.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position",
                (table,),
            )
        ]
        assert columns[len(keys) :] == list(measures), table


def test_inserts_updates_and_deletes_keep_the_rollups_exact(
    pg: psycopg.Connection[Any], sessions: Sessions
) -> None:
    first, second, third = sessions.add(
        Journey(T0).to("COLLECTING_INFO", 1).error("LLM_TIMEOUT", 2),
        Journey(T0 + timedelta(hours=1), client_id=2).to("INITIAL_PROMPT", 1),
        Journey(T0 + timedelta(days=1)).to("COLLECTING_INFO", 1),
    )
    assert_rollups_match(pg)

    # As the intake would: the first session moves on and completes.
    pg.execute(
        "UPDATE onboarding_sessions SET current_state = 'COMPLETED', "
        "furthest_stage = 4, recommendations_at = started_at + interval '3 min', "
        "approval_at = started_at + interval '4 min', "
        "completed_at = started_at + interval '5 min', "
        "last_activity_at = started_at + interval '5 min' WHERE id = %s",
        (first.id,),
    )
    assert_rollups_match(pg)

    # An activity-only update, then a change of error, then a deletion.
    pg.execute(
        "UPDATE onboarding_sessions SET last_activity_at = last_activity_at "
        "+ interval '1 min', questions_answered = 3 WHERE id = %s",
        (second.id,),
    )
    pg.execute(
        "UPDATE onboarding_sessions SET last_error_type = 'SCHEMA_ERROR', "
        "last_error_at = last_activity_at, error_count = 1 WHERE id = %s",
        (third.id,),
    )
    pg.execute("DELETE FROM onboarding_sessions WHERE id = %s", (second.id,))
    assert_rollups_match(pg)


def test_a_statement_touching_many_sessions(
    pg: psycopg.Connection[Any], sessions: Sessions
) -> None:
    sessions.add(
        *(
            Journey(T0 + timedelta(minutes=7 * i)).to("COLLECTING_INFO", 1)
            for i in range(30)
        )
    )

    pg.execute(
        "UPDATE onboarding_sessions SET furthest_stage = 2, "
        "current_state = 'GENERATING_RECOMMENDATIONS', "
        "recommendations_at = started_at + interval '2 min'"
    )

    assert_rollups_match(pg)


def test_figures_follow_a_session_as_it_progresses(
    rest: httpx.Client,
    analyst: Account,
    pg: psycopg.Connection[Any],
    sessions: Sessions,
) -> None:
    (journey,) = sessions.add(Journey(T0).to("COLLECTING_INFO", 1))
    params = {"start_date": "2024-03-04", "end_date": "2024-03-04"}
    before = rest.get("/funnel/", params=params, headers=analyst.headers).json()

    pg.execute(
        "UPDATE onboarding_sessions SET current_state = 'COMPLETED', "
        "furthest_stage = 4, recommendations_at = started_at + interval '2 min', "
        "approval_at = started_at + interval '3 min', "
        "completed_at = started_at + interval '4 min' WHERE id = %s",
        (journey.id,),
    )
    after = rest.get("/funnel/", params=params, headers=analyst.headers).json()

    assert (before["completed_sessions"], before["abandoned_sessions"]) == (0, 1)
    assert (after["completed_sessions"], after["abandoned_sessions"]) == (1, 0)
    assert after["avg_completion_time_minutes"] == 4.0


def test_truncate_empties_the_rollups(
    pg: psycopg.Connection[Any], sessions: Sessions
) -> None:
    sessions.add(Journey(T0).error("LLM_TIMEOUT", 1))

    pg.execute("TRUNCATE onboarding_sessions CASCADE")

    for table in ROLLUPS:
        assert pg.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
