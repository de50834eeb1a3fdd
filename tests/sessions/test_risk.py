"""Abandonment risk of hand-built sessions: exact scores, levels, advice.

Every session here belongs to a client of its own (the ``client_id``
fixture), so the complexity baseline is the two completed sessions with 10
answered questions each that ``_baseline`` creates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from tests.conftest import Account
from tests.sessions.api import Api
from tests.sessions.conftest import Plan, build, idle


def _baseline(api: Api, account: Account, client_id: int) -> None:
    for _ in range(2):
        build(api, account, Plan(client_id, answered=10, completed=True))


def _factor(name: str, value: float, contribution: float, text: str) -> dict[str, Any]:
    weights = {
        "inactivity": 0.3,
        "question_repetition": 0.25,
        "error_frequency": 0.25,
        "session_complexity": 0.2,
    }
    return {
        "factor": name,
        "value": value,
        "weight": weights[name],
        "contribution": contribution,
        "description": text,
    }


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _last_activity(pg: psycopg.Connection[Any], session_id: str) -> datetime:
    row = pg.execute(
        "SELECT last_activity_at FROM onboarding_sessions WHERE id = %s",
        (session_id,),
    ).fetchone()
    assert row is not None
    last: datetime = row[0]
    return last


def test_a_session_with_known_factors_gets_the_known_score(
    api: Api,
    setup_api: Api,
    alice: Account,
    client_id: int,
    pg: psycopg.Connection[Any],
) -> None:
    _baseline(setup_api, alice, client_id)
    plan = Plan(client_id, idle=idle(12), answered=13, repeats=2, errors=1)
    session_id = build(setup_api, alice, plan)

    reply = api.call("GetAbandonmentRisk", alice, session_id=session_id)

    assert reply.status == 200
    body = reply.body
    probability = body.pop("predicted_abandonment_probability")
    assert 0 <= probability <= 1
    last_activity = _parse(body.pop("last_activity"))
    assert last_activity == _last_activity(pg, session_id)
    assert body == {
        "session_id": session_id,
        # 0.3 x 12 + 0.25 x 50 + 0.25 x 25 + 0.2 x 37.5
        "risk_score": 29.85,
        "risk_level": "medium",
        "risk_factors": [
            _factor("inactivity", 12, 3.6, "Session inactive for 12 minutes"),
            _factor("question_repetition", 2, 12.5, "User repeated 2 questions"),
            _factor("error_frequency", 1, 6.25, "1 error encountered during session"),
            _factor(
                "session_complexity",
                0.3,
                7.5,
                "Session is 30% more complex than average",
            ),
        ],
        "intervention_recommendation": {
            "type": "send_reminder",
            "priority": "medium",
            "message": "User has been inactive for 12 minutes after repeating "
            "questions. Send reminder email with resume link.",
            "actions": [
                "Send email reminder",
                "Include session resume link",
                "Rephrase the repeated questions",
            ],
        },
        "session_age_minutes": 45,
        "current_stage": "COLLECTING_INFO",
    }


def test_the_spec_example_keeps_its_advice_with_errors_capped_at_100(
    api: Api, setup_api: Api, alice: Account, client_id: int
) -> None:
    _baseline(setup_api, alice, client_id)
    plan = Plan(client_id, idle=idle(25), answered=13, repeats=3, errors=5)
    session_id = build(setup_api, alice, plan)

    reply = api.call("GetAbandonmentRisk", alice, session_id=session_id)

    body = reply.body
    assert [f["contribution"] for f in body["risk_factors"]] == [7.5, 18.75, 25, 7.5]
    assert (body["risk_score"], body["risk_level"]) == (58.75, "high")
    assert body["risk_factors"][2]["description"] == (
        "5 errors encountered during session"
    )
    assert body["intervention_recommendation"] == {
        "type": "send_reminder",
        "priority": "high",
        "message": "User has been inactive for 25 minutes with multiple errors. "
        "Send reminder email with resume link.",
        "actions": [
            "Send email reminder",
            "Include session resume link",
            "Offer chat support",
        ],
    }


def test_a_critical_session_calls_for_a_person(
    api: Api, setup_api: Api, alice: Account, client_id: int
) -> None:
    _baseline(setup_api, alice, client_id)
    plan = Plan(client_id, idle=idle(28), answered=20, repeats=4, errors=4)
    session_id = build(setup_api, alice, plan)

    reply = api.call("GetAbandonmentRisk", alice, session_id=session_id)

    body = reply.body
    # Complexity 1.0 normalises to 125, capped at 100.
    assert [f["contribution"] for f in body["risk_factors"]] == [8.4, 25, 25, 20]
    assert (body["risk_score"], body["risk_level"]) == (78.4, "critical")
    assert body["intervention_recommendation"] == {
        "type": "manual_outreach",
        "priority": "immediate",
        "message": "User has been inactive for 28 minutes after repeating "
        "questions. Call the user and offer to finish the session together.",
        "actions": [
            "Call the user",
            "Include session resume link",
            "Rephrase the repeated questions",
        ],
    }


def test_a_simpler_than_average_session_adds_no_complexity_risk(
    api: Api, setup_api: Api, alice: Account, client_id: int
) -> None:
    _baseline(setup_api, alice, client_id)
    session_id = build(setup_api, alice, Plan(client_id, answered=5))

    reply = api.call("GetAbandonmentRisk", alice, session_id=session_id)

    assert reply.body["risk_factors"][3] == _factor(
        "session_complexity", -0.5, 0, "Session is 50% less complex than average"
    )
    assert (reply.body["risk_score"], reply.body["risk_level"]) == (0, "low")
    assert reply.body["intervention_recommendation"] == {
        "type": "none",
        "priority": "low",
        "message": "Session is progressing normally; nothing to do.",
        "actions": [],
    }


def test_without_completed_sessions_complexity_is_zero(
    api: Api, setup_api: Api, alice: Account, client_id: int
) -> None:
    session_id = build(setup_api, alice, Plan(client_id, answered=30, repeats=1))

    reply = api.call("GetAbandonmentRisk", alice, session_id=session_id)

    assert reply.body["risk_factors"][3] == _factor(
        "session_complexity",
        0,
        0,
        "No completed sessions of this client and type to compare with yet",
    )
    assert reply.body["risk_score"] == 6.25


def test_a_completed_session_is_not_at_risk_of_abandonment(
    api: Api, setup_api: Api, alice: Account, client_id: int
) -> None:
    plan = Plan(
        client_id, idle=idle(50), errors=3, completed=True, age=timedelta(hours=2)
    )
    session_id = build(setup_api, alice, plan)

    reply = api.call("GetAbandonmentRisk", alice, session_id=session_id)

    body = reply.body
    assert body["risk_factors"][0] == _factor(
        "inactivity", 0, 0, "Session completed; inactivity no longer counts"
    )
    assert (body["risk_score"], body["risk_level"]) == (18.75, "low")
    assert body["predicted_abandonment_probability"] == 0
    assert body["current_stage"] == "COMPLETED"
    assert body["intervention_recommendation"]["type"] == "none"
    assert body["intervention_recommendation"]["message"] == (
        "Session completed; nothing to do."
    )


def test_levels_start_exactly_at_their_thresholds(
    api: Api, setup_api: Api, alice: Account, client_id: int
) -> None:
    _baseline(setup_api, alice, client_id)
    plans = {
        "medium": Plan(client_id, repeats=2, errors=2),
        "high": Plan(client_id, repeats=4, errors=4),
        "critical": Plan(client_id, repeats=4, errors=4, answered=20),
    }
    expected = {
        "medium": (
            25,
            "clarify_questions",
            "User repeated 2 questions. Rephrase them and show example answers.",
        ),
        "high": (
            50,
            "clarify_questions",
            "User repeated 4 questions. Rephrase them and show example answers.",
        ),
        "critical": (
            70,
            "manual_outreach",
            "User repeated 4 questions. Call the "
            "user and offer to finish the session together.",
        ),
    }

    for level, plan in plans.items():
        session_id = build(setup_api, alice, plan)
        body = api.call("GetAbandonmentRisk", alice, session_id=session_id).body
        score, kind, message = expected[level]
        assert (body["risk_score"], body["risk_level"]) == (score, level)
        advice = body["intervention_recommendation"]
        assert (advice["type"], advice["message"]) == (kind, message)


def test_errors_dominating_an_active_session_call_for_support(
    api: Api, setup_api: Api, alice: Account, client_id: int
) -> None:
    session_id = build(setup_api, alice, Plan(client_id, repeats=1, errors=3))

    reply = api.call("GetAbandonmentRisk", alice, session_id=session_id)

    assert reply.body["risk_score"] == 25
    assert reply.body["intervention_recommendation"] == {
        "type": "offer_support",
        "priority": "medium",
        "message": "3 errors encountered during session. Offer help before the "
        "user gives up.",
        "actions": ["Offer chat support", "Retry the failed step"],
    }


def test_the_risk_of_an_unknown_session_is_404(api: Api, alice: Account) -> None:
    reply = api.call(
        "GetAbandonmentRisk", alice, session_id="660f9511-f3ac-52e5-b827-557766551111"
    )

    assert reply.status == 404
    assert reply.body["error"] == "session_not_found"


def _at_risk_fixture(
    setup_api: Api, alice: Account, bob: Account, client_id: int
) -> dict[str, str]:
    """Sessions of one client at every level, plus two that are not active."""
    _baseline(setup_api, alice, client_id)
    plans = {
        "critical": (
            bob,
            Plan(client_id, idle=idle(28), answered=20, repeats=4, errors=4),
        ),
        "high": (
            alice,
            Plan(client_id, idle=idle(25), answered=13, repeats=3, errors=5),
        ),
        "medium": (
            alice,
            Plan(client_id, idle=idle(12), answered=13, repeats=2, errors=1),
        ),
        "low": (bob, Plan(client_id, idle=idle(1), answered=10, repeats=1)),
        "completed": (
            alice,
            Plan(client_id, answered=10, repeats=4, errors=4, completed=True),
        ),
        "abandoned": (alice, Plan(client_id, idle=idle(40), repeats=4, errors=4)),
    }
    return {name: build(setup_api, who, plan) for name, (who, plan) in plans.items()}


def test_the_at_risk_list_is_filtered_and_riskiest_first(
    api: Api,
    setup_api: Api,
    staff: Account,
    alice: Account,
    bob: Account,
    client_id: int,
) -> None:
    ids = _at_risk_fixture(setup_api, alice, bob, client_id)

    reply = api.call(
        "ListAtRiskSessions", staff, risk_level="high", limit=20, client_id=client_id
    )

    assert reply.status == 200
    sessions = reply.body["sessions"]
    for entry in sessions:
        entry.pop("last_activity")
    assert reply.body["total_at_risk"] == 2
    assert sessions == [
        {
            "session_id": ids["critical"],
            "user_id": bob.id,
            "risk_score": 78.4,
            "risk_level": "critical",
            "current_stage": "COLLECTING_INFO",
            "intervention_priority": "immediate",
            "recommended_action": "Manual outreach via phone",
        },
        {
            "session_id": ids["high"],
            "user_id": alice.id,
            "risk_score": 58.75,
            "risk_level": "high",
            "current_stage": "COLLECTING_INFO",
            "intervention_priority": "high",
            "recommended_action": "Send reminder email with resume link",
        },
    ]


def test_the_at_risk_list_counts_beyond_its_limit(
    api: Api,
    setup_api: Api,
    staff: Account,
    alice: Account,
    bob: Account,
    client_id: int,
) -> None:
    ids = _at_risk_fixture(setup_api, alice, bob, client_id)

    low = api.call(
        "ListAtRiskSessions", staff, risk_level="low", limit=3, client_id=client_id
    )
    default = api.call("ListAtRiskSessions", staff, client_id=client_id)

    assert low.body["total_at_risk"] == 4
    listed = [(s["session_id"], s["risk_score"]) for s in low.body["sessions"]]
    assert listed == [
        (ids["critical"], 78.4),
        (ids["high"], 58.75),
        (ids["medium"], 29.85),
    ]
    assert default.body["total_at_risk"] == 2


def test_list_and_single_session_scores_agree(
    api: Api,
    setup_api: Api,
    staff: Account,
    alice: Account,
    bob: Account,
    client_id: int,
) -> None:
    ids = _at_risk_fixture(setup_api, alice, bob, client_id)

    listed = api.call(
        "ListAtRiskSessions", staff, risk_level="low", client_id=client_id
    ).body["sessions"]

    for entry in listed:
        single = api.call("GetAbandonmentRisk", staff, session_id=entry["session_id"])
        assert single.body["risk_score"] == entry["risk_score"]
        assert single.body["risk_level"] == entry["risk_level"]
        assert single.body["last_activity"] == entry["last_activity"]
    assert ids["low"] in {entry["session_id"] for entry in listed}


def test_the_unfiltered_at_risk_list_is_ordered_by_score(
    api: Api,
    setup_api: Api,
    staff: Account,
    alice: Account,
    bob: Account,
    client_id: int,
) -> None:
    _at_risk_fixture(setup_api, alice, bob, client_id)

    reply = api.call("ListAtRiskSessions", staff, risk_level="medium", limit=100)

    scores = [s["risk_score"] for s in reply.body["sessions"]]
    assert scores == sorted(scores, reverse=True)
    assert min(scores) >= 25
    assert reply.body["total_at_risk"] >= len(scores) >= 3


def test_at_risk_list_parameters_are_validated(api: Api, staff: Account) -> None:
    level = api.call("ListAtRiskSessions", staff, risk_level="severe")
    limit = api.call("ListAtRiskSessions", staff, limit=101)
    client = api.call("ListAtRiskSessions", staff, client_id=0)

    assert level.status == limit.status == client.status == 400
    assert level.body["field_errors"] == {
        "risk_level": ["Must be one of: critical, high, medium, low."]
    }
    assert limit.body["field_errors"] == {
        "limit": ["Ensure this value is at most 100."]
    }
    assert client.body["field_errors"] == {
        "client_id": ["Ensure this value is at least 1."]
    }
