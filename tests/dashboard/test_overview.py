"""GET /dashboard/overview/: figures, recovery, risk and the five-minute cache."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Account
from tests.dashboard.api import dashboard_api
from tests.funnel.conftest import Event, FunnelStack, Journey, Sessions, iso, now
from tests.sessions.api import Api
from tests.sessions.conftest import redis_through
from tests.support.stack import ServerProcess
from tests.support.tcp_proxy import TcpProxy

M = timedelta(minutes=1)
COMPLETE = (
    ("COLLECTING_INFO", 1),
    ("GENERATING_RECOMMENDATIONS", 10),
    ("PENDING_APPROVAL", 15),
)
CACHE_KEY = "dashboard:overview:v1:24h:client:all"


def overview(board: httpx.Client, account: Account, **params: Any) -> httpx.Response:
    return board.get("/overview/", params=params, headers=account.headers)


def risky(started_at: datetime, last: float) -> Journey:
    """Four repeated questions and four errors: 50 risk points."""
    journey = Journey(started_at).to("COLLECTING_INFO", 1)
    for n in range(4):
        journey.repeat(2 + n).error("SCHEMA_ERROR", 6 + n)
    return journey.activity(last)


def checkpoint(api: Api, account: Account, journey: Journey, version: int) -> None:
    reply = api.call(
        "CreateCheckpoint",
        account,
        session_id=str(journey.id),
        checkpoint_data={
            "version": version,
            "state": "COLLECTING_INFO",
            "data": {"v": version},
        },
    )
    assert reply.status == 200, reply.body


def resume(api: Api, account: Account, journey: Journey) -> None:
    reply = api.call("ResumeSession", account, session_id=str(journey.id))
    assert reply.status == 200, reply.body


@pytest.fixture
def day(store: Sessions, recovery_api: Api, analyst: Account) -> dict[str, Journey]:
    """Seven sessions of the last day and one older, with checkpoints and
    resumes; times to the whole second, clear of the 30-minute timeout and
    of whole-minute steps of the risk score for the length of a test."""
    moment = now().replace(microsecond=0) - timedelta(seconds=20)
    older = Journey(moment - 30 * 60 * M).path(*COMPLETE, ("COMPLETED", 20))
    older.events += [
        Event("checkpoint_created", older.started_at + 5 * M, data={"state": "X"}),
        Event("session_resumed", older.started_at + 6 * M),
    ]
    journeys = {
        "a": Journey(moment - 300 * M)
        .path(*COMPLETE, ("COMPLETED", 20))
        .answer(2)
        .answer(3),
        "b": Journey(moment - 240 * M)
        .path(*COMPLETE, ("COMPLETED", 40))
        .answer(2)
        .answer(3),
        "c": Journey(moment - 180 * M).to("COLLECTING_INFO", 1).activity(5),
        "d": Journey(moment - 360 * M)
        .path(("COLLECTING_INFO", 1), ("GENERATING_RECOMMENDATIONS", 3))
        .error("LLM_TIMEOUT", 4),
        # Active, with twice the answers of the client's completed sessions.
        "e": risky(moment - 40 * M, 30).answer(3).answer(4).answer(5).answer(5.5),
        # Active, idle five minutes.
        "h": risky(moment - 45 * M, 40),
        "g": Journey(moment - 120 * M, client_id=2).activity(1),
        "older": older.answer(2).answer(3),
    }
    store.add(*journeys.values())

    for journey, version in (("a", 1), ("a", 2), ("e", 1)):
        checkpoint(recovery_api, analyst, journeys[journey], version)
    for journey in ("a", "a", "e"):
        resume(recovery_api, analyst, journeys[journey])
    # Windows end at a whole second, so let these events fall before it.
    time.sleep(1)
    return journeys


def stage(name: str, count: int, conversion: float, drop: float) -> dict[str, Any]:
    return {
        "name": name,
        "count": count,
        "conversion_rate": conversion,
        "drop_off_rate": drop,
    }


def drop_off(state: str, count: int, percentage: float) -> dict[str, Any]:
    return {"state": state, "count": count, "percentage": percentage}


def test_the_overview_of_the_last_day(
    board: httpx.Client, analyst: Account, day: dict[str, Journey]
) -> None:
    reply = overview(board, analyst)

    assert reply.status_code == 200, reply.text
    body = reply.json()
    time_range, updated = body.pop("time_range"), body.pop("last_updated")
    at_risk = body["recovery"].pop("at_risk_sessions")
    assert body == {
        "overview": {
            "total_sessions": 7,
            "active_sessions": 2,
            "completed_sessions": 2,
            "conversion_rate": round(2 / 7, 4),
            "avg_completion_time_minutes": 30.0,
        },
        "funnel": {
            "stages": [
                stage("Session Started", 7, 1.0, 0.0),
                stage("Information Collection", 6, round(6 / 7, 4), round(1 / 7, 4)),
                stage("Recommendation Review", 3, round(3 / 7, 4), 0.5),
                stage("Approval Process", 2, round(2 / 7, 4), round(1 / 3, 4)),
                stage("Completed", 2, round(2 / 7, 4), 0.0),
            ],
            "top_drop_offs": [
                drop_off("STARTED", 1, round(1 / 7, 4)),
                drop_off("COLLECTING_INFO", 1, round(1 / 7, 4)),
                drop_off("GENERATING_RECOMMENDATIONS", 1, round(1 / 7, 4)),
            ],
        },
        "recovery": {
            "checkpoints_created": 3,
            "sessions_resumed": 2,
            "at_risk_count": 2,
        },
        "recommendations": [],
    }
    assert time_range["hours"] == 24
    assert time_range["end"] == updated
    end = datetime.fromisoformat(updated)
    assert time_range["start"] == iso(end - timedelta(hours=24))
    assert now() - timedelta(minutes=1) < end <= now()
    # e was resumed just now, so it is not idle: 25 + 25 + 20 (complexity).
    resumed_at = at_risk[0].pop("last_activity")
    assert end - timedelta(minutes=1) < datetime.fromisoformat(resumed_at) <= end
    assert at_risk == [
        {"session_id": str(day["e"].id), "risk_score": 70, "risk_level": "critical"},
        {
            "session_id": str(day["h"].id),
            "risk_score": 51.5,
            "risk_level": "high",
            "last_activity": iso(day["h"].started_at + 40 * M),
        },
    ]


def test_one_clients_overview(
    board: httpx.Client, analyst: Account, day: dict[str, Journey]
) -> None:
    first = overview(board, analyst, client_id=1).json()
    second = overview(board, analyst, client_id=2).json()

    assert first["overview"] == {
        "total_sessions": 6,
        "active_sessions": 2,
        "completed_sessions": 2,
        "conversion_rate": round(2 / 6, 4),
        "avg_completion_time_minutes": 30.0,
    }
    assert [s["count"] for s in first["funnel"]["stages"]] == [6, 6, 3, 2, 2]
    assert [d["state"] for d in first["funnel"]["top_drop_offs"]] == [
        "COLLECTING_INFO",
        "GENERATING_RECOMMENDATIONS",
    ]
    assert first["recovery"]["checkpoints_created"] == 3
    assert first["recovery"]["sessions_resumed"] == 2
    assert first["recovery"]["at_risk_count"] == 2

    assert second["overview"] == {
        "total_sessions": 1,
        "active_sessions": 0,
        "completed_sessions": 0,
        "conversion_rate": 0.0,
        "avg_completion_time_minutes": 0.0,
    }
    assert second["funnel"]["top_drop_offs"] == [drop_off("STARTED", 1, 1.0)]
    assert second["recovery"] == {
        "checkpoints_created": 0,
        "sessions_resumed": 0,
        "at_risk_count": 0,
        "at_risk_sessions": [],
    }


def test_recovery_counts_events_of_the_window_whenever_sessions_started(
    board: httpx.Client, analyst: Account, day: dict[str, Journey]
) -> None:
    body = overview(board, analyst, time_range_hours=1).json()

    # Only e and h started in the last hour; a's checkpoints are recent.
    assert body["overview"]["total_sessions"] == 2
    assert body["overview"]["active_sessions"] == 2
    assert body["recovery"]["checkpoints_created"] == 3
    assert body["recovery"]["sessions_resumed"] == 2
    assert body["time_range"]["hours"] == 1

    everything = overview(board, analyst, time_range_hours=48).json()
    assert everything["overview"]["total_sessions"] == 8
    assert everything["recovery"]["checkpoints_created"] == 4
    assert everything["recovery"]["sessions_resumed"] == 3


def test_the_funnel_is_the_funnel_endpoints_for_the_same_window(
    board: httpx.Client,
    funnel_stack: FunnelStack,
    analyst: Account,
    day: dict[str, Journey],
) -> None:
    body = overview(board, analyst).json()
    window = body["time_range"]

    funnel = httpx.get(
        f"{funnel_stack.base_url}/api/v1/onboarding/analytics/funnel/",
        params={"start_date": window["start"], "end_date": window["end"]},
        headers=analyst.headers,
    ).json()

    assert body["overview"]["total_sessions"] == funnel["total_sessions"]
    assert body["overview"]["conversion_rate"] == funnel["overall_conversion_rate"]
    assert body["funnel"]["stages"] == [
        {k: s[k] for k in ("name", "count", "conversion_rate", "drop_off_rate")}
        for s in funnel["stages"]
    ]
    assert body["funnel"]["top_drop_offs"] == [
        {k: p[k] for k in ("state", "count", "percentage")}
        for p in funnel["top_drop_off_points"][:3]
    ]


def test_recommendations_are_the_funnels(
    board: httpx.Client, analyst: Account, store: Sessions
) -> None:
    """Half of twenty sessions leave before Information Collection; the
    others spend two minutes in every stage."""
    moment = now().replace(microsecond=0) - 3 * 60 * M
    steady = (
        ("COLLECTING_INFO", 2),
        ("GENERATING_RECOMMENDATIONS", 4),
        ("PENDING_APPROVAL", 6),
        ("COMPLETED", 8),
    )
    store.add(
        *(Journey(moment + n * M).activity(1) for n in range(10)),
        *(Journey(moment + n * M).path(*steady) for n in range(10)),
    )

    body = overview(board, analyst).json()

    assert body["recommendations"] == [
        {
            "priority": "high",
            "recommendation": "Reduce drop-off during Session Started "
            "(STARTED, INITIAL_PROMPT) so that more sessions reach "
            "Information Collection",
            "impact": "Could improve conversion by 50.0 percentage points",
        }
    ]


def test_the_overview_is_cached_for_five_minutes_per_parameters(
    board: httpx.Client,
    analyst: Account,
    store: Sessions,
    redis_client: redis.Redis,
    day: dict[str, Journey],
) -> None:
    first = overview(board, analyst).json()
    store.add(Journey(now() - 10 * M).activity(1))

    cached = overview(board, analyst).json()
    longer = overview(board, analyst, time_range_hours=25).json()
    of_client = overview(board, analyst, client_id=1).json()
    ttl = redis_client.ttl(CACHE_KEY)
    redis_client.delete(CACHE_KEY)
    fresh = overview(board, analyst).json()

    assert cached == first
    assert 0 < ttl <= 300
    assert longer["overview"]["total_sessions"] == 8
    assert of_client["overview"]["total_sessions"] == 7
    assert fresh["overview"]["total_sessions"] == 8
    assert sorted(k.decode() for k in redis_client.scan_iter("dashboard:*")) == [
        "dashboard:overview:v1:24h:client:1",
        CACHE_KEY,
        "dashboard:overview:v1:25h:client:all",
    ]


@pytest.fixture(scope="module")
def redis_proxy(redis_url: str) -> Iterator[TcpProxy]:
    proxy = TcpProxy.for_url(redis_url).start()
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def outage_server(
    funnel_stack: FunnelStack, redis_url: str, redis_proxy: TcpProxy, work_dir: Path
) -> Iterator[ServerProcess]:
    """A second server of the funnel database whose Redis can be cut."""
    env = {**funnel_stack.env, "REDIS_URL": redis_through(redis_url, redis_proxy)}
    server = ServerProcess(env, work_dir / "logs" / "dashboard-outage.log").start()
    yield server
    server.stop()


def test_without_redis_the_overview_is_computed_on_every_call(
    outage_server: ServerProcess,
    redis_proxy: TcpProxy,
    analyst: Account,
    store: Sessions,
) -> None:
    api = dashboard_api("grpc_direct", 0, outage_server.port)
    redis_proxy.cut()
    try:
        first = api.call("GetOverview", analyst)
        store.add(Journey(now() - 10 * M))
        second = api.call("GetOverview", analyst)
    finally:
        redis_proxy.start()

    assert first.status == second.status == 200
    assert first.body["overview"]["total_sessions"] == 0
    assert second.body["overview"]["total_sessions"] == 1


def test_nothing_happening(
    board: httpx.Client, analyst: Account, store: Sessions
) -> None:
    body = overview(board, analyst, time_range_hours=6).json()

    assert body["overview"] == {
        "total_sessions": 0,
        "active_sessions": 0,
        "completed_sessions": 0,
        "conversion_rate": 0.0,
        "avg_completion_time_minutes": 0.0,
    }
    assert body["funnel"]["stages"][1] == stage("Information Collection", 0, 0, 0)
    assert body["funnel"]["top_drop_offs"] == []
    assert body["recovery"]["at_risk_sessions"] == []
    assert body["recommendations"] == []
    assert body["time_range"]["hours"] == 6
