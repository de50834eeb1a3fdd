"""GET /analytics/drop-off-heatmap/: buckets, drop-offs by state, hours."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.conftest import Account
from tests.funnel.conftest import T0, Journey, Sessions

COMPLETE = (
    ("COLLECTING_INFO", 1),
    ("GENERATING_RECOMMENDATIONS", 2),
    ("PENDING_APPROVAL", 3),
    ("COMPLETED", 4),
)


def at(days: int, hours: int, minutes: int) -> Journey:
    return Journey(T0 + timedelta(days=days, hours=hours, minutes=minutes))


@pytest.fixture
def week(sessions: Sessions) -> None:
    """Seven sessions over two Mondays: at 09h two of four are abandoned,
    at 14h two of three."""
    sessions.add(
        at(0, 9, 10).path(*COMPLETE),
        at(0, 9, 40).to("COLLECTING_INFO", 1),
        at(0, 14, 5).path(("COLLECTING_INFO", 1), ("GENERATING_RECOMMENDATIONS", 2)),
        at(0, 14, 30).path(("COLLECTING_INFO", 1), ("GENERATING_RECOMMENDATIONS", 2)),
        at(1, 9, 20).path(*COMPLETE),
        at(1, 14, 15).path(*COMPLETE),
        at(7, 9, 0).path(
            ("COLLECTING_INFO", 1),
            ("GENERATING_RECOMMENDATIONS", 2),
            ("PENDING_APPROVAL", 3),
        ),
    )


def heatmap(rest: httpx.Client, account: Account, **params: str) -> httpx.Response:
    return rest.get("/drop-off-heatmap/", params=params, headers=account.headers)


def bucket(label: str, started: int, drops: dict[str, int], completion: float):
    return {
        "time_bucket": label,
        "sessions_started": started,
        "drop_offs_by_stage": drops,
        "completion_rate": completion,
    }


GEN = "GENERATING_RECOMMENDATIONS"


def test_hourly_buckets_are_the_default(
    rest: httpx.Client, analyst: Account, week: None
) -> None:
    reply = heatmap(rest, analyst, start_date="2024-03-04", end_date="2024-03-11")

    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "heatmap_data": [
            bucket("2024-03-04T09:00", 2, {"COLLECTING_INFO": 1}, 0.5),
            bucket("2024-03-04T14:00", 2, {GEN: 2}, 0.0),
            bucket("2024-03-05T09:00", 1, {}, 1.0),
            bucket("2024-03-05T14:00", 1, {}, 1.0),
            bucket("2024-03-11T09:00", 1, {"PENDING_APPROVAL": 1}, 0.0),
        ],
        "overall_drop_off_rate": round(4 / 7, 4),
        "highest_drop_off_hour": "14:00-15:00",
        "lowest_drop_off_hour": "09:00-10:00",
        "time_range": {
            "start": "2024-03-04T00:00:00Z",
            "end": "2024-03-12T00:00:00Z",
            "granularity": "hourly",
        },
    }


def test_daily_buckets(rest: httpx.Client, analyst: Account, week: None) -> None:
    body = heatmap(
        rest,
        analyst,
        start_date="2024-03-04",
        end_date="2024-03-11",
        granularity="daily",
    ).json()

    assert body["heatmap_data"] == [
        bucket("2024-03-04", 4, {"COLLECTING_INFO": 1, GEN: 2}, 0.25),
        bucket("2024-03-05", 2, {}, 1.0),
        bucket("2024-03-11", 1, {"PENDING_APPROVAL": 1}, 0.0),
    ]
    assert body["time_range"]["granularity"] == "daily"


def test_weekly_buckets_start_on_monday(
    rest: httpx.Client, analyst: Account, week: None
) -> None:
    body = heatmap(
        rest,
        analyst,
        start_date="2024-03-05T12:00:00Z",
        end_date="2024-03-12",
        granularity="weekly",
    ).json()

    assert body["heatmap_data"] == [
        bucket("2024-03-04", 1, {}, 1.0),
        bucket("2024-03-11", 1, {"PENDING_APPROVAL": 1}, 0.0),
    ]
    assert body["overall_drop_off_rate"] == 0.5
    assert body["highest_drop_off_hour"] == "09:00-10:00"
    assert body["lowest_drop_off_hour"] == "14:00-15:00"


def test_an_empty_period_has_no_buckets(
    rest: httpx.Client, analyst: Account, week: None
) -> None:
    body = heatmap(rest, analyst, start_date="2024-03-06", end_date="2024-03-10").json()

    assert body["heatmap_data"] == []
    assert body["overall_drop_off_rate"] == 0.0
    assert body["highest_drop_off_hour"] == ""
    assert body["lowest_drop_off_hour"] == ""


def test_too_many_hourly_buckets_is_a_400(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    reply = heatmap(rest, analyst, start_date="2023-01-01", end_date="2024-01-01")

    assert reply.status_code == 400
    assert list(reply.json()["field_errors"]) == ["granularity"]
