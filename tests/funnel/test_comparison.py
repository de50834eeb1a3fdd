"""GET /analytics/comparison/: two periods, their changes and significance.

The expected p-values are computed here with the z statistic and erfc,
independently of the service's scipy chi-squared test.
"""

from __future__ import annotations

import math
from datetime import timedelta

import httpx
import pytest

from tests.conftest import Account
from tests.funnel.conftest import T0, Journey, Sessions

FIRST = {"period1_start": "2024-03-01", "period1_end": "2024-03-15"}
SECOND = {"period2_start": "2024-03-16", "period2_end": "2024-04-01"}


def two_sided_p(x1: int, n1: int, x2: int, n2: int) -> float:
    pooled = (x1 + x2) / (n1 + n2)
    error = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return math.erfc(abs(x1 / n1 - x2 / n2) / error / math.sqrt(2))


def outcomes(day: int, total: int, completed: int, minutes: int) -> list[Journey]:
    """``total`` sessions on March ``day``, the first ``completed`` of
    them completing after ``minutes``."""
    start = T0.replace(day=day)
    return [
        Journey(start + timedelta(minutes=i)).path(
            ("COLLECTING_INFO", 1),
            ("GENERATING_RECOMMENDATIONS", 2),
            ("PENDING_APPROVAL", 3),
            ("COMPLETED", minutes),
        )
        if i < completed
        else Journey(start + timedelta(minutes=i)).to("COLLECTING_INFO", 1)
        for i in range(total)
    ]


def compare(rest: httpx.Client, account: Account, **params: str) -> httpx.Response:
    return rest.get("/comparison/", params=params, headers=account.headers)


@pytest.fixture
def improving(sessions: Sessions) -> None:
    # Half of 20 completed in 10 minutes, then 16 of 20 in 8 minutes.
    sessions.add(*outcomes(4, 20, 10, 10), *outcomes(18, 20, 16, 8))


def test_a_significant_improvement(
    rest: httpx.Client, analyst: Account, improving: None
) -> None:
    reply = compare(rest, analyst, **FIRST, **SECOND)

    assert reply.status_code == 200, reply.text
    body = reply.json()
    p_value = body["statistical_significance"].pop("p_value")
    assert p_value == pytest.approx(two_sided_p(10, 20, 16, 20), abs=5e-7)
    assert p_value < 0.05
    assert body == {
        "period1": {
            "label": "Mar 1-15",
            "total_sessions": 20,
            "completed_sessions": 10,
            "conversion_rate": 0.5,
            "avg_completion_time_minutes": 10.0,
        },
        "period2": {
            "label": "Mar 16-Apr 1",
            "total_sessions": 20,
            "completed_sessions": 16,
            "conversion_rate": 0.8,
            "avg_completion_time_minutes": 8.0,
        },
        "comparison": {
            "conversion_rate_change": 0.3,
            "conversion_rate_change_percent": 60.0,
            "completion_time_change_minutes": -2.0,
            "sessions_change": 0,
            "sessions_change_percent": 0.0,
        },
        "trend": "improving",
        "statistical_significance": {"is_significant": True, "confidence_level": 0.95},
    }


def test_the_same_change_the_other_way_is_a_decline(
    rest: httpx.Client, analyst: Account, improving: None
) -> None:
    body = compare(
        rest,
        analyst,
        period1_start="2024-03-16",
        period1_end="2024-04-01",
        period2_start="2024-03-01",
        period2_end="2024-03-15",
    ).json()

    assert body["trend"] == "declining"
    assert body["comparison"]["conversion_rate_change"] == -0.3
    assert body["comparison"]["conversion_rate_change_percent"] == -37.5


def test_a_small_change_is_stable(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    sessions.add(*outcomes(4, 30, 15, 10), *outcomes(18, 40, 22, 12))

    body = compare(rest, analyst, **FIRST, **SECOND).json()

    significance = body["statistical_significance"]
    assert significance["p_value"] == pytest.approx(
        two_sided_p(15, 30, 22, 40), abs=5e-7
    )
    assert significance["is_significant"] is False
    assert body["trend"] == "stable"
    assert body["comparison"] == {
        "conversion_rate_change": 0.05,
        "conversion_rate_change_percent": 10.0,
        "completion_time_change_minutes": 2.0,
        "sessions_change": 10,
        "sessions_change_percent": round(10 / 30 * 100, 2),
    }


def test_empty_periods_have_no_test(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    body = compare(rest, analyst, **FIRST, **SECOND).json()

    assert body["statistical_significance"] == {
        "p_value": 1.0,
        "is_significant": False,
        "confidence_level": 0.95,
    }
    assert body["trend"] == "stable"
    assert body["comparison"]["sessions_change_percent"] == 0.0
