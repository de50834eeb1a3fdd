"""Bad parameters are 400 naming the fields; dashboards are for staff."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import Account
from tests.dashboard.api import dashboard_api
from tests.funnel.conftest import FunnelStack, Sessions
from tests.sessions.conftest import TRANSPORTS

BAD: list[tuple[str, dict[str, str], dict[str, list[str]]]] = [
    ("/overview/", {"time_range_hours": "0"}, {"time_range_hours": ["1-8760"]}),
    ("/overview/", {"time_range_hours": "-5"}, {"time_range_hours": ["1-8760"]}),
    ("/overview/", {"time_range_hours": "8761"}, {"time_range_hours": ["1-8760"]}),
    (
        "/overview/",
        {"client_id": "0", "time_range_hours": "-1"},
        {"client_id": ["at least 1"], "time_range_hours": ["1-8760"]},
    ),
    ("/heatmap/", {"granularity": "monthly"}, {"granularity": ["one of"]}),
    ("/heatmap/", {"start_date": "yesterday"}, {"start_date": ["ISO 8601"]}),
    ("/heatmap/", {"end_date": "2024-13-01"}, {"end_date": ["ISO 8601"]}),
    (
        "/heatmap/",
        {"start_date": "2024-03-10", "end_date": "2024-03-01"},
        {"start_date": ["not be after"]},
    ),
    (
        "/heatmap/",
        {"granularity": "hourly", "start_date": "2024-01-01", "end_date": "2024-04-01"},
        {"granularity": ["more than 2000 hours"]},
    ),
    (
        "/heatmap/",
        {"granularity": "minutely", "start_date": "1800-01-01"},
        {"granularity": ["one of"], "start_date": ["between 1900 and 2999"]},
    ),
    ("/cohort-trends/", {"cohort_type": "hourly"}, {"cohort_type": ["one of"]}),
    (
        "/cohort-trends/",
        {"start_date": "2024-03-10T00:00:01Z", "end_date": "2024-03-09"},
        {"start_date": ["not be after"]},
    ),
    (
        "/cohort-trends/",
        {"cohort_type": "daily", "start_date": "2000-01-01", "end_date": "2024-01-01"},
        {"cohort_type": ["more than 2000 days"]},
    ),
]


@pytest.mark.parametrize(("path", "params", "fields"), BAD)
def test_bad_parameters_are_400_with_field_errors(
    board: httpx.Client,
    analyst: Account,
    store: Sessions,
    path: str,
    params: dict[str, str],
    fields: dict[str, list[str]],
) -> None:
    reply = board.get(path, params=params, headers=analyst.headers)

    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["error"] == "validation_error"
    assert sorted(body["field_errors"]) == sorted(fields)
    for field, fragments in fields.items():
        for fragment, message in zip(
            fragments, body["field_errors"][field], strict=True
        ):
            assert fragment in message.replace(" to ", "-"), message
    assert body["correlation_id"] == reply.headers["x-correlation-id"]


GRPC_BAD = [
    ("GetOverview", {"time_range_hours": 0}, "time_range_hours"),
    ("GetHeatmap", {"granularity": "yearly"}, "granularity"),
    ("GetCohortTrends", {"end_date": "soon"}, "end_date"),
]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("rpc", "fields", "field"), GRPC_BAD)
def test_every_transport_names_the_bad_field(
    funnel_stack: FunnelStack,
    analyst: Account,
    store: Sessions,
    transport: str,
    rpc: str,
    fields: dict[str, object],
    field: str,
) -> None:
    api = dashboard_api(transport, funnel_stack.gateway.port, funnel_stack.server.port)

    reply = api.call(rpc, analyst, **fields)

    assert reply.status == 400
    assert reply.body["error"] == "validation_error"
    assert list(reply.body["field_errors"]) == [field]


@pytest.mark.parametrize("path", ["/overview/", "/heatmap/", "/cohort-trends/"])
def test_staff_only(
    board: httpx.Client, viewer: Account, store: Sessions, path: str
) -> None:
    denied = board.get(path, headers=viewer.headers)

    assert denied.status_code == 403
    assert denied.json()["error"] == "permission_denied"
    assert board.get(path).status_code == 401


def test_a_non_number_is_rejected_by_the_gateway(
    board: httpx.Client, analyst: Account, store: Sessions
) -> None:
    reply = board.get(
        "/overview/", params={"time_range_hours": "a day"}, headers=analyst.headers
    )

    assert reply.status_code == 400
