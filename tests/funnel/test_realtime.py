"""GET /analytics/realtime/: live figures and their five-minute cache."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import redis

from tests.conftest import Account
from tests.funnel.conftest import FunnelStack, Journey, Sessions, iso, now

COMPLETE = (
    ("COLLECTING_INFO", 5),
    ("GENERATING_RECOMMENDATIONS", 10),
    ("PENDING_APPROVAL", 20),
)


@pytest.fixture
def live(sessions: Sessions) -> dict[str, Journey]:
    """Sessions around now, to the whole second so that times print alike.

    Idle times keep clear of the 30-minute timeout and of whole-minute
    steps of the risk score for the length of a test.
    """
    moment = now().replace(microsecond=0) - timedelta(seconds=20)
    m = timedelta(minutes=1)
    journeys = {
        "active": Journey(moment - 50 * m).to("COLLECTING_INFO", 45),
        "completed": Journey(moment - 40 * m).path(*COMPLETE, ("COMPLETED", 30)),
        "completed_early_start": Journey(moment - 120 * m).path(
            *COMPLETE, ("COMPLETED", 70)
        ),
        "failing": Journey(moment - 30 * m)
        .path(("COLLECTING_INFO", 5), ("GENERATING_RECOMMENDATIONS", 15))
        .error("LLM_TIMEOUT", 20),
        "abandoned": Journey(moment - 55 * m).to("INITIAL_PROMPT", 1).activity(2),
        "old": Journey(moment - 300 * m).error("VALIDATION_ERROR", 10),
        "at_risk": Journey(moment - 45 * m)
        .to("COLLECTING_INFO", 1)
        .repeat(2)
        .repeat(3)
        .repeat(4)
        .repeat(5)
        .error("SCHEMA_ERROR", 6)
        .error("SCHEMA_ERROR", 7)
        .error("SCHEMA_ERROR", 8)
        .error("SCHEMA_ERROR", 9)
        .activity(25),
    }
    sessions.add(*journeys.values())
    return journeys


def realtime(rest: httpx.Client, account: Account, **params: int) -> httpx.Response:
    return rest.get("/realtime/", params=params, headers=account.headers)


def error_event(journey: Journey, minutes: int, error_type: str, stage: str):
    return {
        "timestamp": iso(journey.started_at + timedelta(minutes=minutes)),
        "session_id": str(journey.id),
        "error_type": error_type,
        "stage": stage,
    }


def test_live_figures_of_the_last_hour(
    rest: httpx.Client, analyst: Account, live: dict[str, Journey]
) -> None:
    reply = realtime(rest, analyst)

    assert reply.status_code == 200, reply.text
    body = reply.json()
    body.pop("last_updated")
    at_risk = body.pop("at_risk_sessions")
    assert body == {
        "active_sessions": 3,
        "sessions_started_last_hour": 5,
        "sessions_completed_last_hour": 2,
        "current_conversion_rate": 0.4,
        "avg_session_duration_minutes": 50.0,
        "sessions_by_stage": {
            "COLLECTING_INFO": 2,
            "COMPLETED": 1,
            "GENERATING_RECOMMENDATIONS": 1,
            "INITIAL_PROMPT": 1,
        },
        "recent_errors": [
            error_event(
                live["failing"], 20, "LLM_TIMEOUT", "GENERATING_RECOMMENDATIONS"
            ),
            *(
                error_event(live["at_risk"], minute, "SCHEMA_ERROR", "COLLECTING_INFO")
                for minute in (9, 8, 7, 6)
            ),
        ],
        "cache_ttl": 300,
    }
    assert [s["session_id"] for s in at_risk] == [str(live["at_risk"].id)]


def test_at_risk_sessions_rate_as_the_session_recovery_api_does(
    rest: httpx.Client,
    analyst: Account,
    funnel_stack: FunnelStack,
    live: dict[str, Journey],
) -> None:
    listed = httpx.get(
        f"{funnel_stack.base_url}/api/v1/onboarding/admin/at-risk-sessions/",
        params={"risk_level": "high"},
        headers=analyst.headers,
    ).json()["sessions"]

    at_risk = realtime(rest, analyst).json()["at_risk_sessions"]

    assert at_risk == [
        {
            "session_id": s["session_id"],
            "risk_level": s["risk_level"],
            "risk_score": s["risk_score"],
            "last_activity": s["last_activity"],
            "current_stage": s["current_stage"],
        }
        for s in listed
    ]
    assert at_risk[0]["last_activity"] == iso(
        live["at_risk"].started_at + timedelta(minutes=25)
    )


def test_figures_are_cached_for_five_minutes(
    rest: httpx.Client,
    analyst: Account,
    sessions: Sessions,
    redis_client: redis.Redis,
    live: dict[str, Journey],
) -> None:
    first = realtime(rest, analyst).json()
    sessions.add(Journey(now() - timedelta(minutes=1)))

    cached = realtime(rest, analyst).json()
    key = "funnel:realtime:v1:1h"
    ttl = redis_client.ttl(key)
    redis_client.delete(key)
    fresh = realtime(rest, analyst).json()

    assert cached == first
    assert 0 < ttl <= 300
    assert fresh["sessions_started_last_hour"] == 6


def test_a_longer_window(
    rest: httpx.Client, analyst: Account, live: dict[str, Journey]
) -> None:
    body = realtime(rest, analyst, time_range_hours=3).json()

    assert body["sessions_started_last_hour"] == 6
    assert body["sessions_completed_last_hour"] == 2
    assert body["sessions_by_stage"]["COMPLETED"] == 2
    assert body["current_conversion_rate"] == round(2 / 6, 4)


def test_nothing_happening(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    body = realtime(rest, analyst).json()
    body.pop("last_updated")

    assert body == {
        "active_sessions": 0,
        "sessions_started_last_hour": 0,
        "sessions_completed_last_hour": 0,
        "current_conversion_rate": 0.0,
        "avg_session_duration_minutes": 0.0,
        "sessions_by_stage": {},
        "recent_errors": [],
        "at_risk_sessions": [],
        "cache_ttl": 300,
    }
