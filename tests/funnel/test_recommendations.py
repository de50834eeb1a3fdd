"""GET /analytics/recommendations/: each rule's finding, evidence and effect.

The expected confidences are worked out here from the counts with the
normal CDF written via erfc, independently of the service's scipy calls.
"""

from __future__ import annotations

import math
import statistics
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import Account
from tests.funnel.conftest import MIN_SAMPLE, T0, Journey, Sessions

PERIOD = {"start_date": "2024-03-04", "end_date": "2024-03-04"}


def phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


def above(x1: int, n1: int, x2: int, n2: int) -> float:
    """Confidence that x1/n1 > x2/n2 by the pooled two-proportion z-test."""
    pooled = (x1 + x2) / (n1 + n2)
    error = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return round(phi((x1 / n1 - x2 / n2) / error), 4)


@pytest.fixture
def findings(sessions: Sessions) -> None:
    """70 sessions built so that every rule fires.

    A: 40 complete; Information Collection takes 2 minutes in half of them
       and 3 in the other half, every other stage 1 minute.
    B: 20 stop in Information Collection after a repeated question.
    C: 10 reach Recommendation Review (after 2 minutes of Information
       Collection) and stop right after an LLM_TIMEOUT error.
    """
    assert MIN_SAMPLE == 10
    a = [
        Journey(T0 + timedelta(minutes=i)).path(
            ("COLLECTING_INFO", 1),
            ("GENERATING_RECOMMENDATIONS", 3 + i % 2),
            ("PENDING_APPROVAL", 4 + i % 2),
            ("COMPLETED", 5 + i % 2),
        )
        for i in range(40)
    ]
    b = [
        Journey(T0 + timedelta(hours=2, minutes=i))
        .to("COLLECTING_INFO", 1)
        .answer(2)
        .repeat(3)
        for i in range(20)
    ]
    c = [
        Journey(T0 + timedelta(hours=3, minutes=i))
        .path(("COLLECTING_INFO", 1), ("GENERATING_RECOMMENDATIONS", 3))
        .error("LLM_TIMEOUT", 4)
        for i in range(10)
    ]
    sessions.add(*a, *b, *c)


def expected_findings() -> list[dict[str, Any]]:
    # Stage transitions: entered / lost = 70/0, 70/20, 50/10, 40/0.
    # Finished sessions without errors: A and B, 20 of 60 abandoned.
    # Information Collection durations: 30 x 2 min and 20 x 3 min (seconds
    # below); the other stages: 150 passages of 1 minute.
    collecting = [120.0] * 30 + [180.0] * 20
    welch = (statistics.mean(collecting) - 60) / math.sqrt(
        statistics.variance(collecting) / 50
    )
    return [
        {
            "id": "rec_001",
            "priority": "high",
            "confidence": above(20, 20, 10, 50),
            "category": "content",
            "recommendation": "Reword the questions users are asked to repeat "
            "during Information Collection",
            "reasoning": "20 of 20 finished sessions with a repeated question were "
            "abandoned (100.0%), against 10 of 50 finished sessions without one "
            "(20.0%)",
            "expected_impact": {
                "conversion_rate_increase": round(20 * (1 - 0.2) / 70, 4),
                "completion_time_decrease_minutes": 0.0,
            },
            "implementation_effort": "low",
            "data_points": 70,
        },
        {
            "id": "rec_002",
            "priority": "high",
            "confidence": above(20, 70, 10, 160),
            "category": "user_experience",
            "recommendation": "Reduce drop-off during Information Collection "
            "(COLLECTING_INFO, ASKING_QUESTIONS) so that more sessions reach "
            "Recommendation Review",
            "reasoning": "20 of the 70 sessions that reached Information Collection "
            "(28.6%) did not reach Recommendation Review, against 10 of 160 (6.2%) "
            "at the other stage transitions",
            # 70 x (1 - 10/160) would reach it and 40 of 50 of them complete.
            "expected_impact": {
                "conversion_rate_increase": round((70 * 150 / 160 * 0.8 - 40) / 70, 4),
                "completion_time_decrease_minutes": 0.0,
            },
            "implementation_effort": "medium",
            "data_points": 70,
        },
        {
            "id": "rec_003",
            "priority": "high",
            "confidence": above(10, 10, 20, 60),
            "category": "performance",
            "recommendation": "Reduce LLM_TIMEOUT errors, or recover from them "
            "without losing the session",
            "reasoning": "10 of 10 finished sessions whose last error was "
            "LLM_TIMEOUT were abandoned (100.0%), against 20 of 60 finished "
            "sessions without errors (33.3%); 10 abandoned sessions stopped right "
            "after LLM_TIMEOUT",
            "expected_impact": {
                "conversion_rate_increase": round(10 * (1 - 20 / 60) / 70, 4),
                "completion_time_decrease_minutes": 0.0,
            },
            "implementation_effort": "medium",
            "data_points": 70,
        },
        {
            "id": "rec_004",
            "priority": "high",
            "confidence": above(10, 50, 20, 180),
            "category": "user_experience",
            "recommendation": "Reduce drop-off during Recommendation Review "
            "(GENERATING_RECOMMENDATIONS, AWAITING_APPROVAL) so that more "
            "sessions reach Approval Process",
            "reasoning": "10 of the 50 sessions that reached Recommendation Review "
            "(20.0%) did not reach Approval Process, against 20 of 180 (11.1%) at "
            "the other stage transitions",
            "expected_impact": {
                "conversion_rate_increase": round((50 * 160 / 180 - 40) / 70, 4),
                "completion_time_decrease_minutes": 0.0,
            },
            "implementation_effort": "medium",
            "data_points": 50,
        },
        {
            "id": "rec_005",
            "priority": "low",
            "confidence": round(phi(welch), 4),
            "category": "user_experience",
            "recommendation": "Shorten the Information Collection stage "
            "(COLLECTING_INFO, ASKING_QUESTIONS)",
            "reasoning": "50 sessions took 2.4 minutes on average from reaching "
            "Information Collection to reaching Recommendation Review, against 1.0 "
            "minutes over 150 passages through the other stages",
            "expected_impact": {
                "conversion_rate_increase": 0.0,
                "completion_time_decrease_minutes": 1.4,
            },
            "implementation_effort": "medium",
            "data_points": 50,
        },
    ]


def recommendations(
    rest: httpx.Client, account: Account, **params: float
) -> httpx.Response:
    return rest.get(
        "/recommendations/", params={**PERIOD, **params}, headers=account.headers
    )


def test_every_rule_with_its_evidence(
    rest: httpx.Client, analyst: Account, findings: None
) -> None:
    reply = recommendations(rest, analyst)

    assert reply.status_code == 200, reply.text
    expected = expected_findings()
    assert reply.json() == {
        "recommendations": expected,
        "total_recommendations": 5,
        "aggregated_impact": {
            "potential_conversion_increase": round(
                sum(r["expected_impact"]["conversion_rate_increase"] for r in expected),
                4,
            ),
            "potential_time_saved_minutes": 1.4,
        },
        "time_range": {"start": "2024-03-04T00:00:00Z", "end": "2024-03-05T00:00:00Z"},
    }


def test_min_confidence_filters_and_ids_stay(
    rest: httpx.Client, analyst: Account, findings: None
) -> None:
    # rec_004's confidence (about 0.95) is the only one below 0.99.
    threshold = 0.99
    expected = [r for r in expected_findings() if r["confidence"] >= threshold]

    body = recommendations(rest, analyst, min_confidence=threshold).json()

    assert [r["id"] for r in body["recommendations"]] == [r["id"] for r in expected]
    assert [r["id"] for r in expected] == ["rec_001", "rec_002", "rec_003", "rec_005"]
    assert body["total_recommendations"] == 4


def test_the_funnel_embeds_the_short_form(
    rest: httpx.Client, analyst: Account, findings: None
) -> None:
    body = rest.get("/funnel/", params=PERIOD, headers=analyst.headers).json()

    first, *_, last = expected_findings()
    assert len(body["recommendations"]) == 5
    assert body["recommendations"][0] == {
        "priority": "high",
        "recommendation": first["recommendation"],
        "impact": "Could improve conversion by 22.9 percentage points",
        "confidence": first["confidence"],
    }
    assert body["recommendations"][-1]["impact"] == (
        "Could save 1.4 minutes per completed session"
    )
    assert body["recommendations"][-1]["confidence"] == last["confidence"]


def test_nothing_is_recommended_without_a_measured_gap(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    sessions.add(
        *(
            Journey(T0 + timedelta(minutes=i)).path(
                ("COLLECTING_INFO", 1),
                ("GENERATING_RECOMMENDATIONS", 2),
                ("PENDING_APPROVAL", 3),
                ("COMPLETED", 4),
            )
            for i in range(40)
        )
    )

    body = recommendations(rest, analyst, min_confidence=0).json()

    assert body["recommendations"] == []
    assert body["aggregated_impact"] == {
        "potential_conversion_increase": 0.0,
        "potential_time_saved_minutes": 0.0,
    }
