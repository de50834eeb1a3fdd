"""GET /analytics/funnel/: stages, outcomes and drop-off points, exactly."""

from __future__ import annotations

from datetime import timedelta

import grpc
import httpx
from onboarding.v1 import funnel_pb2, funnel_pb2_grpc

from tests.conftest import Account
from tests.funnel.conftest import T0, Journey, Sessions, iso, now

STATES = {
    "Session Started": ["STARTED", "INITIAL_PROMPT"],
    "Information Collection": ["COLLECTING_INFO", "ASKING_QUESTIONS"],
    "Recommendation Review": ["GENERATING_RECOMMENDATIONS", "AWAITING_APPROVAL"],
    "Approval Process": ["PENDING_APPROVAL"],
    "Completed": ["COMPLETED"],
}


def stage(name: str, count: int, conversion: float, drop: float, minutes: float):
    return {
        "name": name,
        "session_states": STATES[name],
        "count": count,
        "conversion_rate": conversion,
        "drop_off_rate": drop,
        "avg_time_in_stage_minutes": minutes,
    }


def eight_sessions(sessions: Sessions) -> list[Journey]:
    """Three completed and five abandoned sessions on 2024-03-04.

    Minutes from first reaching each stage to reaching the next:
    Session Started 2,1,3,1,2,1,1 (7 sessions), Information Collection
    8,4,5,2,2,1 (6), Recommendation Review 4,3,1 (3), Approval 6,2,1 (3).
    """
    day = T0
    return sessions.add(
        Journey(day + timedelta(hours=9)).path(
            ("INITIAL_PROMPT", 1),
            ("COLLECTING_INFO", 2),
            ("ASKING_QUESTIONS", 3),
            ("GENERATING_RECOMMENDATIONS", 10),
            ("AWAITING_APPROVAL", 12),
            ("PENDING_APPROVAL", 14),
            ("COMPLETED", 20),
        ),
        # Starts before midnight and completes after: it belongs to the 4th.
        Journey(day + timedelta(hours=23, minutes=55)).path(
            ("COLLECTING_INFO", 1),
            ("GENERATING_RECOMMENDATIONS", 5),
            ("PENDING_APPROVAL", 8),
            ("COMPLETED", 10),
        ),
        Journey(day + timedelta(hours=10))
        .to("COLLECTING_INFO", 3)
        .answer(4)
        .activity(6),
        Journey(day + timedelta(hours=11))
        .path(("COLLECTING_INFO", 1), ("GENERATING_RECOMMENDATIONS", 6))
        .error("LLM_TIMEOUT", 7),
        Journey(day + timedelta(hours=12)).to("INITIAL_PROMPT", 1),
        # An error followed by more activity: it stopped from inactivity.
        Journey(day + timedelta(hours=13))
        .path(("COLLECTING_INFO", 2), ("GENERATING_RECOMMENDATIONS", 4))
        .error("LLM_TIMEOUT", 5)
        .activity(6),
        Journey(day + timedelta(hours=14))
        .path(("COLLECTING_INFO", 1), ("GENERATING_RECOMMENDATIONS", 3))
        .error("LLM_TIMEOUT", 9),
        Journey(
            day + timedelta(hours=15),
            client_id=2,
            conversation_type="business_unit_setup",
            language="hi",
        ).path(
            ("COLLECTING_INFO", 1),
            ("GENERATING_RECOMMENDATIONS", 2),
            ("PENDING_APPROVAL", 3),
            ("COMPLETED", 4),
        ),
    )


def get(rest: httpx.Client, account: Account, **params: str | int) -> httpx.Response:
    return rest.get("/funnel/", params=params, headers=account.headers)


def test_every_figure_of_a_known_day(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    eight_sessions(sessions)

    reply = get(rest, analyst, start_date="2024-03-04", end_date="2024-03-04")

    assert reply.status_code == 200, reply.text
    body = reply.json()
    last_updated = body.pop("last_updated")
    assert last_updated.endswith("Z")
    assert body == {
        "overall_conversion_rate": 0.375,
        "total_sessions": 8,
        "completed_sessions": 3,
        "abandoned_sessions": 5,
        "avg_completion_time_minutes": round((20 + 10 + 4) / 3, 2),
        "stages": [
            stage("Session Started", 8, 1.0, 0.0, round(11 / 7, 2)),
            stage("Information Collection", 7, 0.875, 0.125, round(22 / 6, 2)),
            stage("Recommendation Review", 6, 0.75, round(1 / 7, 4), round(8 / 3, 2)),
            stage("Approval Process", 3, 0.375, 0.5, 3.0),
            stage("Completed", 3, 0.375, 0.0, 0.0),
        ],
        "top_drop_off_points": [
            {
                "state": "GENERATING_RECOMMENDATIONS",
                "count": 3,
                "percentage": 0.375,
                "reason": "Left after error LLM_TIMEOUT",
            },
            {
                "state": "INITIAL_PROMPT",
                "count": 1,
                "percentage": 0.125,
                "reason": "User left at the initial prompt",
            },
            {
                "state": "COLLECTING_INFO",
                "count": 1,
                "percentage": 0.125,
                "reason": "User abandoned during question answering",
            },
        ],
        "recommendations": [],
        "time_range": {
            "start": "2024-03-04T00:00:00Z",
            "end": "2024-03-05T00:00:00Z",
            "days": 1,
        },
    }


def test_a_session_belongs_to_the_day_it_started(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    eight_sessions(sessions)

    next_day = get(rest, analyst, start_date="2024-03-05", end_date="2024-03-05")

    assert next_day.json()["total_sessions"] == 0


def test_client_filter(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    eight_sessions(sessions)

    body = get(
        rest, analyst, start_date="2024-03-04", end_date="2024-03-04", client_id=2
    ).json()

    assert (body["total_sessions"], body["completed_sessions"]) == (1, 1)
    assert [s["count"] for s in body["stages"]] == [1, 1, 1, 1, 1]
    assert [s["avg_time_in_stage_minutes"] for s in body["stages"]] == [
        1.0,
        1.0,
        1.0,
        1.0,
        0.0,
    ]
    assert body["avg_completion_time_minutes"] == 4.0
    assert body["top_drop_off_points"] == []


def test_conversation_type_filter(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    eight_sessions(sessions)

    body = get(
        rest,
        analyst,
        start_date="2024-03-04",
        end_date="2024-03-04",
        conversation_type="site_survey",
    ).json()

    assert (body["total_sessions"], body["completed_sessions"]) == (7, 2)
    assert body["abandoned_sessions"] == 5
    assert [s["count"] for s in body["stages"]] == [7, 6, 5, 2, 2]
    assert body["avg_completion_time_minutes"] == 15.0


def test_empty_period_is_all_zeros(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    eight_sessions(sessions)

    body = get(
        rest,
        analyst,
        start_date="2024-03-04T16:00:00Z",
        end_date="2024-03-04T16:00:00Z",
    ).json()

    assert body["total_sessions"] == 0
    assert body["overall_conversion_rate"] == 0.0
    assert [s["count"] for s in body["stages"]] == [0, 0, 0, 0, 0]
    assert body["top_drop_off_points"] == []
    assert body["time_range"]["days"] == 0


def test_partial_hours_at_both_edges(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    eight_sessions(sessions)

    # 09:00 is in, 14:00 is out: the end is exclusive.
    body = get(
        rest,
        analyst,
        start_date="2024-03-04T08:59:59.5Z",
        end_date="2024-03-04T14:00:00Z",
    ).json()

    assert body["total_sessions"] == 5
    assert body["time_range"]["start"] == "2024-03-04T08:59:59.500Z"


def test_active_sessions_are_neither_completed_nor_abandoned(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    moment = now()
    sessions.add(
        Journey(moment - timedelta(minutes=50), client_id=7).to("COLLECTING_INFO", 45),
        Journey(moment - timedelta(minutes=80), client_id=7).to("COLLECTING_INFO", 45),
        Journey(moment - timedelta(minutes=20), client_id=7).path(
            ("COLLECTING_INFO", 1),
            ("GENERATING_RECOMMENDATIONS", 2),
            ("PENDING_APPROVAL", 3),
            ("COMPLETED", 4),
        ),
    )

    body = get(rest, analyst, client_id=7).json()

    assert body["total_sessions"] == 3
    assert body["completed_sessions"] == 1
    assert body["abandoned_sessions"] == 1
    assert body["top_drop_off_points"] == [
        {
            "state": "COLLECTING_INFO",
            "count": 1,
            "percentage": round(1 / 3, 4),
            "reason": "User abandoned during question answering",
        }
    ]
    assert body["time_range"]["days"] == 30


def test_native_grpc_gives_the_same_figures(
    direct_channel: grpc.Channel, analyst: Account, sessions: Sessions
) -> None:
    eight_sessions(sessions)
    stub = funnel_pb2_grpc.FunnelAnalyticsServiceStub(direct_channel)

    reply = stub.GetFunnel(
        funnel_pb2.GetFunnelRequest(
            start_date=iso(T0), end_date=iso(T0 + timedelta(days=1)), client_id=1
        ),
        metadata=analyst.metadata,
    )

    assert (reply.total_sessions, reply.completed_sessions) == (7, 2)
    assert reply.time_range.days == 1
