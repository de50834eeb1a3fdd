"""GET /dashboard/heatmap/: sessions per stage per period, errors and hours."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.funnel.conftest import T0, Journey, Sessions, iso, now

GEN = "GENERATING_RECOMMENDATIONS"
COMPLETE = (
    ("COLLECTING_INFO", 1),
    (GEN, 2),
    ("PENDING_APPROVAL", 3),
    ("COMPLETED", 4),
)
STAGES = (
    "Session Started",
    "Information Collection",
    "Recommendation Review",
    "Approval Process",
    "Completed",
)


def at(days: int, hours: int, minutes: int) -> Journey:
    return Journey(T0 + timedelta(days=days, hours=hours, minutes=minutes))


@pytest.fixture
def week(store: Sessions) -> None:
    """Monday 4 March 2024: two sessions at 09h (one abandoned), two at 14h
    (both abandoned); Tuesday one at 09h, completed after an error, and one
    at 14h abandoned at once; the next Tuesday one completed at 09h. One
    session on the Sunday before, with an error, is outside every period."""
    store.add(
        at(0, 9, 10).path(*COMPLETE),
        at(0, 9, 40).to("COLLECTING_INFO", 1),
        at(0, 14, 5).path(("COLLECTING_INFO", 1), (GEN, 2)).error("LLM_TIMEOUT", 3),
        at(0, 14, 30)
        .path(("COLLECTING_INFO", 1), (GEN, 2), ("PENDING_APPROVAL", 5))
        .error("LLM_TIMEOUT", 6),
        at(1, 9, 20)
        .to("COLLECTING_INFO", 1)
        .error("VALIDATION_ERROR", 1.5)
        .path(*COMPLETE[1:]),
        at(1, 14, 15).activity(1),
        at(8, 9, 0).path(*COMPLETE),
        at(-1, 23, 50).error("RATE_LIMITED", 5),
    )


def heatmap(board: httpx.Client, account: Account, **params: str) -> httpx.Response:
    return board.get("/heatmap/", params=params, headers=account.headers)


def period(label: str, start: datetime, end: datetime, *counts: int) -> dict[str, Any]:
    return {
        "time_period": label,
        "start": iso(start),
        "end": iso(end),
        "stage_counts": [
            {"stage": name, "count": count}
            for name, count in zip(STAGES, counts, strict=True)
        ],
        "total_sessions": counts[0],
    }


DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def test_daily_periods_count_sessions_that_reached_each_stage(
    board: httpx.Client, analyst: Account, week: None
) -> None:
    reply = heatmap(
        board,
        analyst,
        granularity="daily",
        start_date="2024-03-04",
        end_date="2024-03-06",
    )

    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "heatmap_data": [
            period("2024-03-04", T0, T0 + DAY, 4, 4, 3, 2, 1),
            period("2024-03-05", T0 + DAY, T0 + 2 * DAY, 2, 1, 1, 1, 1),
            period("2024-03-06", T0 + 2 * DAY, T0 + 3 * DAY, 0, 0, 0, 0, 0),
        ],
        "overall_drop_offs": {
            "STARTED": 1,
            "COLLECTING_INFO": 1,
            GEN: 1,
            "PENDING_APPROVAL": 1,
        },
        "error_patterns": [
            {
                "error_type": "LLM_TIMEOUT",
                "count": 2,
                "stages": [GEN, "PENDING_APPROVAL"],
            },
            {
                "error_type": "VALIDATION_ERROR",
                "count": 1,
                "stages": ["COLLECTING_INFO"],
            },
        ],
        "time_analysis": {
            "peak_drop_off_hour": "14:00-15:00",
            "lowest_drop_off_hour": "09:00-10:00",
        },
        "granularity": "daily",
        "period": {"start": iso(T0), "end": iso(T0 + 3 * DAY)},
    }


def test_hourly_periods_are_clipped_to_the_period(
    board: httpx.Client, analyst: Account, week: None
) -> None:
    body = heatmap(
        board,
        analyst,
        granularity="hourly",
        start_date="2024-03-04T09:30:00Z",
        end_date="2024-03-04T11:30:00Z",
    ).json()

    nine = T0 + 9 * HOUR
    assert body["heatmap_data"] == [
        period("2024-03-04T09:00", nine + HOUR / 2, nine + HOUR, 1, 1, 0, 0, 0),
        period("2024-03-04T10:00", nine + HOUR, nine + 2 * HOUR, 0, 0, 0, 0, 0),
        period("2024-03-04T11:00", nine + 2 * HOUR, nine + 2.5 * HOUR, 0, 0, 0, 0, 0),
    ]
    assert body["overall_drop_offs"] == {"COLLECTING_INFO": 1}
    assert body["error_patterns"] == []
    assert body["time_analysis"] == {
        "peak_drop_off_hour": "09:00-10:00",
        "lowest_drop_off_hour": "09:00-10:00",
    }


def test_weeks_count_from_the_periods_first_day(
    board: httpx.Client, analyst: Account, week: None
) -> None:
    body = heatmap(
        board,
        analyst,
        granularity="weekly",
        start_date="2024-03-05",
        end_date="2024-03-18",
    ).json()

    tuesday = T0 + DAY
    assert body["heatmap_data"] == [
        period("2024-03-05", tuesday, tuesday + 7 * DAY, 2, 1, 1, 1, 1),
        period("2024-03-12", tuesday + 7 * DAY, tuesday + 14 * DAY, 1, 1, 1, 1, 1),
    ]
    assert body["overall_drop_offs"] == {"STARTED": 1}
    assert body["granularity"] == "weekly"


def test_the_default_is_daily_from_midnight_seven_days_ago(
    board: httpx.Client, analyst: Account, store: Sessions
) -> None:
    body = heatmap(board, analyst).json()

    end = datetime.fromisoformat(body["period"]["end"])
    midnight = (end - 7 * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
    assert now() - timedelta(minutes=1) < end <= now()
    assert body["period"]["start"] == iso(midnight)
    assert body["granularity"] == "daily"
    assert [p["start"] for p in body["heatmap_data"]] == [
        iso(midnight + n * DAY) for n in range(8)
    ]
    assert body["heatmap_data"][-1]["end"] == body["period"]["end"]
    assert body["time_analysis"] == {
        "peak_drop_off_hour": "",
        "lowest_drop_off_hour": "",
    }
