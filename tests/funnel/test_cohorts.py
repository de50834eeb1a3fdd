"""GET /analytics/cohort-comparison/: conversion per cohort, best and worst."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.conftest import Account
from tests.funnel.conftest import MIN_SAMPLE, T0, Journey, Sessions

DAY1 = "2024-03-04"


def completed(client: int, kind: str, language: str, minutes: int, n: int) -> Journey:
    return Journey(
        T0 + timedelta(hours=8, minutes=n),
        client_id=client,
        conversation_type=kind,
        language=language,
    ).path(
        ("COLLECTING_INFO", 1),
        ("GENERATING_RECOMMENDATIONS", 2),
        ("PENDING_APPROVAL", 3),
        ("COMPLETED", minutes),
    )


def abandoned(client: int, kind: str, language: str, n: int) -> Journey:
    return Journey(
        T0 + timedelta(hours=12, minutes=n),
        client_id=client,
        conversation_type=kind,
        language=language,
    ).to("COLLECTING_INFO", 1)


@pytest.fixture
def cohorts(sessions: Sessions) -> None:
    """Client 1: 9 of 12 completed in 10 min (site survey, English);
    client 2: 5 of 10 in 20 min (business unit setup, Hindi); client 3:
    3 of 3 in 6 min (site survey, pt-BR), too few to rank, the next day."""
    assert MIN_SAMPLE == 10
    sessions.add(
        *(completed(1, "site_survey", "en", 10, n) for n in range(9)),
        *(abandoned(1, "site_survey", "en", n) for n in range(3)),
        *(completed(2, "business_unit_setup", "hi", 20, n) for n in range(5)),
        *(abandoned(2, "business_unit_setup", "hi", n) for n in range(5)),
        *(
            Journey(
                T0 + timedelta(days=1, minutes=n),
                client_id=3,
                language="pt-BR",
            ).path(
                ("COLLECTING_INFO", 1),
                ("GENERATING_RECOMMENDATIONS", 2),
                ("PENDING_APPROVAL", 3),
                ("COMPLETED", 6),
            )
            for n in range(3)
        ),
    )


def compare(rest: httpx.Client, account: Account, **params: str) -> httpx.Response:
    return rest.get("/cohort-comparison/", params=params, headers=account.headers)


def cohort(cid: str, name: str, total: int, done: int, rate: float, minutes: float):
    return {
        "cohort_id": cid,
        "cohort_name": name,
        "total_sessions": total,
        "completed_sessions": done,
        "conversion_rate": rate,
        "avg_completion_time_minutes": minutes,
    }


def test_by_client_is_the_default(
    rest: httpx.Client, analyst: Account, cohorts: None
) -> None:
    reply = compare(rest, analyst, start_date=DAY1, end_date="2024-03-05")

    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "cohorts": [
            cohort("1", "Client 1", 12, 9, 0.75, 10.0),
            cohort("2", "Client 2", 10, 5, 0.5, 20.0),
            cohort("3", "Client 3", 3, 3, 1.0, 6.0),
        ],
        # Client 3 converts best but has fewer than MIN_SAMPLE sessions.
        "best_performing_cohort": {"cohort_id": "1", "conversion_rate": 0.75},
        "worst_performing_cohort": {"cohort_id": "2", "conversion_rate": 0.5},
        "cohort_by": "client",
        "time_range": {"start": "2024-03-04T00:00:00Z", "end": "2024-03-06T00:00:00Z"},
    }


def test_by_conversation_type(
    rest: httpx.Client, analyst: Account, cohorts: None
) -> None:
    body = compare(
        rest,
        analyst,
        cohort_by="conversation_type",
        start_date=DAY1,
        end_date="2024-03-05",
    ).json()

    assert body["cohorts"] == [
        cohort("site_survey", "Site Survey", 15, 12, 0.8, (9 * 10 + 3 * 6) / 12),
        cohort("business_unit_setup", "Business Unit Setup", 10, 5, 0.5, 20.0),
    ]
    assert body["best_performing_cohort"]["cohort_id"] == "site_survey"
    assert body["worst_performing_cohort"]["cohort_id"] == "business_unit_setup"


def test_by_language(rest: httpx.Client, analyst: Account, cohorts: None) -> None:
    body = compare(
        rest, analyst, cohort_by="language", start_date=DAY1, end_date="2024-03-05"
    ).json()

    assert [(c["cohort_id"], c["cohort_name"]) for c in body["cohorts"]] == [
        ("en", "English"),
        ("hi", "Hindi"),
        ("pt-BR", "Portuguese (pt-BR)"),
    ]


def test_no_ranking_when_no_cohort_is_large_enough(
    rest: httpx.Client, analyst: Account, cohorts: None
) -> None:
    body = compare(rest, analyst, start_date="2024-03-05", end_date="2024-03-05").json()

    assert body["cohorts"] == [cohort("3", "Client 3", 3, 3, 1.0, 6.0)]
    assert "best_performing_cohort" not in body
    assert "worst_performing_cohort" not in body


def test_empty_period(rest: httpx.Client, analyst: Account, cohorts: None) -> None:
    body = compare(rest, analyst, start_date="2024-04-01", end_date="2024-04-02").json()

    assert body["cohorts"] == []
    assert body["cohort_by"] == "client"
