"""Bad parameters are 400s naming the fields; staff only; date forms."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Account
from tests.funnel.conftest import Sessions

BAD = [
    ("/funnel/", {"start_date": "yesterday"}, ["start_date"]),
    ("/funnel/", {"end_date": "2024-02-30"}, ["end_date"]),
    ("/funnel/", {"start_date": "0999-01-01"}, ["start_date"]),
    (
        "/funnel/",
        {"start_date": "2024-03-05", "end_date": "2024-03-04T12:00:00Z"},
        ["start_date"],
    ),
    (
        "/funnel/",
        {"conversation_type": "onboarding", "start_date": "nope"},
        ["conversation_type", "start_date"],
    ),
    ("/drop-off-heatmap/", {"granularity": "monthly"}, ["granularity"]),
    ("/cohort-comparison/", {"cohort_by": "region"}, ["cohort_by"]),
    ("/recommendations/", {"min_confidence": "1.5"}, ["min_confidence"]),
    ("/recommendations/", {"min_confidence": "-0.1"}, ["min_confidence"]),
    ("/recommendations/", {"min_confidence": "NaN"}, ["min_confidence"]),
    ("/realtime/", {"time_range_hours": "-1"}, ["time_range_hours"]),
    ("/realtime/", {"time_range_hours": "169"}, ["time_range_hours"]),
    (
        "/comparison/",
        {},
        ["period1_start", "period1_end", "period2_start", "period2_end"],
    ),
    (
        "/comparison/",
        {
            "period1_start": "2024-03-01",
            "period1_end": "2024-03-15",
            "period2_start": "2024-04-01",
            "period2_end": "2024-03-16",
        },
        ["period2_start"],
    ),
]


@pytest.mark.parametrize(("path", "params", "fields"), BAD)
def test_bad_parameters_are_400_with_field_errors(
    rest: httpx.Client,
    analyst: Account,
    sessions: Sessions,
    path: str,
    params: dict[str, str],
    fields: list[str],
) -> None:
    reply = rest.get(path, params=params, headers=analyst.headers)

    assert reply.status_code == 400
    body = reply.json()
    assert body["error"] == "validation_error"
    assert sorted(body["field_errors"]) == sorted(fields)
    assert body["correlation_id"] == reply.headers["x-correlation-id"]


def test_a_non_number_is_rejected_by_the_gateway(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    reply = rest.get("/funnel/", params={"client_id": "abc"}, headers=analyst.headers)

    assert reply.status_code == 400


@pytest.mark.parametrize(
    ("raw", "start"),
    [
        ("2024-03-04", "2024-03-04T00:00:00Z"),
        ("2024-03-04T10:00:00Z", "2024-03-04T10:00:00Z"),
        ("2024-03-04T12:00:00+02:00", "2024-03-04T10:00:00Z"),
        # A "+" left unencoded in a query string arrives as a space.
        ("2024-03-04T12:00:00 02:00", "2024-03-04T10:00:00Z"),
        ("2024-03-04T10:00:00", "2024-03-04T10:00:00Z"),
        ("2024-03-04T10:00:00.250Z", "2024-03-04T10:00:00.250Z"),
    ],
)
def test_date_forms(
    rest: httpx.Client, analyst: Account, sessions: Sessions, raw: str, start: str
) -> None:
    reply = rest.get(
        "/funnel/",
        params={"start_date": raw, "end_date": "2024-03-05"},
        headers=analyst.headers,
    )

    assert reply.status_code == 200, reply.text
    assert reply.json()["time_range"]["start"] == start
    assert reply.json()["time_range"]["end"] == "2024-03-06T00:00:00Z"


def test_a_missing_start_is_thirty_days_before_the_end(
    rest: httpx.Client, analyst: Account, sessions: Sessions
) -> None:
    body = rest.get(
        "/funnel/", params={"end_date": "2024-03-31"}, headers=analyst.headers
    ).json()

    assert body["time_range"] == {
        "start": "2024-03-02T00:00:00Z",
        "end": "2024-04-01T00:00:00Z",
        "days": 30,
    }


PATHS = [
    "/funnel/",
    "/drop-off-heatmap/",
    "/cohort-comparison/",
    "/recommendations/",
    "/realtime/",
    "/comparison/",
]


@pytest.mark.parametrize("path", PATHS)
def test_staff_only(
    rest: httpx.Client, viewer: Account, sessions: Sessions, path: str
) -> None:
    assert rest.get(path, headers=viewer.headers).status_code == 403
    assert rest.get(path).status_code == 401
