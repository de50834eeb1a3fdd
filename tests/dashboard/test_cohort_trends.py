"""GET /dashboard/cohort-trends/: conversion per cohort and the trend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.dashboard.trends import Trends, trends
from services.funnel.rollup import Measures, SessionSums
from tests.conftest import Account
from tests.funnel.conftest import Journey, Sessions, iso, now

PATH = (
    ("COLLECTING_INFO", 1),
    ("GENERATING_RECOMMENDATIONS", 2),
    ("PENDING_APPROVAL", 3),
)
DAY = timedelta(days=1)
WEDNESDAY = datetime(2024, 3, 6, tzinfo=UTC)


def completed(started_at: datetime, minutes: float) -> Journey:
    return Journey(started_at).path(*PATH, ("COMPLETED", minutes))


def abandoned(started_at: datetime) -> Journey:
    return Journey(started_at).to("COLLECTING_INFO", 1)


def cohort_trends(
    board: httpx.Client, account: Account, **params: str
) -> httpx.Response:
    return board.get("/cohort-trends/", params=params, headers=account.headers)


def cohort(
    start: datetime,
    end: datetime,
    total: int,
    done: int,
    conversion: float,
    minutes: float,
) -> dict[str, Any]:
    return {
        "cohort_label": f"{start:%Y-%m-%d}",
        "start_date": iso(start),
        "end_date": iso(end),
        "total_sessions": total,
        "completed_sessions": done,
        "conversion_rate": conversion,
        "avg_completion_time_minutes": minutes,
    }


@pytest.fixture
def three_weeks(store: Sessions) -> None:
    """Weeks from Wednesday 6 March 2024: 2 of 4 sessions completed, none,
    then 4 of 5; one session the day before is outside the period."""
    first, third = WEDNESDAY + DAY, WEDNESDAY + 14 * DAY + 6 * DAY
    store.add(
        completed(first, 10),
        completed(first + DAY, 20),
        abandoned(first + 2 * DAY),
        abandoned(WEDNESDAY + 6 * DAY + timedelta(hours=23, minutes=59)),
        *(completed(third, m) for m in (10, 10, 20, 30)),
        abandoned(third),
        completed(WEDNESDAY - DAY, 5),
    )


def test_weekly_cohorts_start_on_the_periods_first_day(
    board: httpx.Client, analyst: Account, three_weeks: None
) -> None:
    reply = cohort_trends(
        board, analyst, start_date="2024-03-06", end_date="2024-03-26"
    )

    assert reply.status_code == 200, reply.text
    week = 7 * DAY
    assert reply.json() == {
        "cohorts": [
            cohort(WEDNESDAY, WEDNESDAY + week, 4, 2, 0.5, 15.0),
            cohort(WEDNESDAY + week, WEDNESDAY + 2 * week, 0, 0, 0.0, 0.0),
            cohort(WEDNESDAY + 2 * week, WEDNESDAY + 3 * week, 5, 4, 0.8, 17.5),
        ],
        "trends": {
            "conversion_trend": "improving",
            "conversion_change": 0.3,
            "volume_trend": "growing",
            "volume_change_percent": 25.0,
        },
        "cohort_type": "weekly",
        "period": {"start": iso(WEDNESDAY), "end": iso(WEDNESDAY + 3 * week)},
    }


def test_a_cut_short_cohort_is_listed_but_not_compared(
    board: httpx.Client, analyst: Account, store: Sessions
) -> None:
    store.add(
        completed(WEDNESDAY, 10),
        abandoned(WEDNESDAY + DAY),
        abandoned(WEDNESDAY + 7 * DAY),
        completed(WEDNESDAY + 8 * DAY, 20),
        # The last two days: far fewer sessions, all completed.
        completed(WEDNESDAY + 14 * DAY, 30),
    )

    body = cohort_trends(
        board, analyst, start_date="2024-03-06", end_date="2024-03-21"
    ).json()

    assert [c["cohort_label"] for c in body["cohorts"]] == [
        "2024-03-06",
        "2024-03-13",
        "2024-03-20",
    ]
    assert body["cohorts"][-1] == cohort(
        WEDNESDAY + 14 * DAY, WEDNESDAY + 16 * DAY, 1, 1, 1.0, 30.0
    )
    assert body["trends"] == {
        "conversion_trend": "stable",
        "conversion_change": 0.0,
        "volume_trend": "stable",
        "volume_change_percent": 0.0,
    }


def test_daily_cohorts(
    board: httpx.Client, analyst: Account, three_weeks: None
) -> None:
    body = cohort_trends(
        board,
        analyst,
        cohort_type="daily",
        start_date="2024-03-07T12:00:00Z",
        end_date="2024-03-09",
    ).json()

    thursday = WEDNESDAY + DAY
    assert body["cohorts"] == [
        # Starts at noon: cut short, so not compared; the 7th's session
        # started at midnight is before the period.
        cohort(thursday + DAY / 2, thursday + DAY, 0, 0, 0.0, 0.0),
        cohort(thursday + DAY, thursday + 2 * DAY, 1, 1, 1.0, 20.0),
        cohort(thursday + 2 * DAY, thursday + 3 * DAY, 1, 0, 0.0, 0.0),
    ]
    assert body["trends"] == {
        "conversion_trend": "declining",
        "conversion_change": -1.0,
        "volume_trend": "stable",
        "volume_change_percent": 0.0,
    }


def test_monthly_cohorts_are_calendar_months(
    board: httpx.Client, analyst: Account, store: Sessions
) -> None:
    jan, feb, mar = (datetime(2024, m, 1, tzinfo=UTC) for m in (1, 2, 3))
    store.add(
        completed(jan + 20 * DAY, 10),
        *(completed(feb + n * DAY, 12) for n in range(3)),
        abandoned(feb + 27 * DAY),
        *(completed(mar + n * DAY, 8) for n in range(2)),
        abandoned(mar + 30 * DAY),
    )

    body = cohort_trends(
        board,
        analyst,
        cohort_type="monthly",
        start_date="2024-01-15",
        end_date="2024-03-31",
    ).json()

    assert body["cohorts"] == [
        cohort(jan + 14 * DAY, feb, 1, 1, 1.0, 10.0),
        cohort(feb, mar, 4, 3, 0.75, 12.0),
        cohort(mar, datetime(2024, 4, 1, tzinfo=UTC), 3, 2, round(2 / 3, 4), 8.0),
    ]
    assert body["trends"] == {
        "conversion_trend": "declining",
        "conversion_change": round(2 / 3 - 3 / 4, 4),
        "volume_trend": "shrinking",
        "volume_change_percent": -25.0,
    }


def test_the_default_is_weekly_from_midnight_thirty_days_ago(
    board: httpx.Client, analyst: Account, store: Sessions
) -> None:
    body = cohort_trends(board, analyst).json()

    end = datetime.fromisoformat(body["period"]["end"])
    midnight = (end - 30 * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
    assert now() - timedelta(minutes=1) < end <= now()
    assert body["period"]["start"] == iso(midnight)
    assert body["cohort_type"] == "weekly"
    assert [c["start_date"] for c in body["cohorts"]] == [
        iso(midnight + n * 7 * DAY) for n in range(5)
    ]
    assert body["trends"]["conversion_trend"] == "stable"


def sums(sessions: int, completed: int) -> SessionSums:
    return SessionSums(Measures(sessions=sessions, reached_4=completed))


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        # A change of exactly one point, or five percent, is a trend.
        (sums(100, 50), sums(105, 53), Trends("stable", 0.0048, "growing", 5.0)),
        (sums(100, 50), sums(100, 51), Trends("improving", 0.01, "stable", 0.0)),
        (sums(100, 50), sums(100, 49), Trends("declining", -0.01, "stable", 0.0)),
        (sums(1000, 500), sums(1000, 509), Trends("stable", 0.009, "stable", 0.0)),
        (sums(100, 50), sums(95, 47), Trends("stable", -0.0053, "shrinking", -5.0)),
        (sums(1000, 500), sums(1049, 524), Trends("stable", -0.0005, "stable", 4.9)),
    ],
)
def test_trend_thresholds(
    first: SessionSums, last: SessionSums, expected: Trends
) -> None:
    assert trends([first, sums(7, 7), last]) == expected


def test_fewer_than_two_cohorts_have_no_trend() -> None:
    assert trends([]) == trends([sums(10, 5)]) == Trends("stable", 0.0, "stable", 0.0)
