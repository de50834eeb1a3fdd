"""Reading the dashboard's query parameters; one 400 lists every bad field."""

from __future__ import annotations

from datetime import datetime

from onboarding.v1 import dashboard_pb2

from server.errors import InvalidArgument
from services.funnel.heatmap import truncate
from services.funnel.periods import Period, period_from
from services.funnel.rollup import Filters

DEFAULT_HOURS = 24
# A year: the rollups keep long windows cheap, and the recovery counts scan
# at most a year of checkpoint and resume events.
MAX_HOURS = 8760


def one_of(value: str, field: str, choices: tuple[str, ...]) -> dict[str, list[str]]:
    """The field error of a value outside ``choices``, if it is."""
    if value in choices:
        return {}
    return {field: [f"Must be one of: {', '.join(choices)}."]}


def overview_params(request: dashboard_pb2.GetOverviewRequest) -> tuple[int, Filters]:
    """The window in hours and the client filter of an overview request."""
    errors: dict[str, list[str]] = {}
    hours = DEFAULT_HOURS
    if request.HasField("time_range_hours"):
        hours = request.time_range_hours
        if not 1 <= hours <= MAX_HOURS:
            errors["time_range_hours"] = [f"Must be from 1 to {MAX_HOURS}."]
    client_id = None
    if request.HasField("client_id"):
        client_id = request.client_id
        if client_id < 1:
            errors["client_id"] = ["Ensure this value is at least 1."]
    if errors:
        raise InvalidArgument("Invalid query parameters.", field_errors=errors)
    return hours, Filters(client_id=client_id)


def dashboard_period(
    start_raw: str,
    end_raw: str,
    *,
    default_days: int,
    now: datetime,
    errors: dict[str, list[str]],
) -> Period:
    """The period of the funnel's date parameters, reported with ``errors``;
    a missing start is midnight UTC ``default_days`` before the end, so the
    first day or week is a whole one."""
    period = period_from(
        start_raw, end_raw, default_days=default_days, now=now, errors=errors
    )
    if start_raw.strip():
        return period
    return Period(truncate(period.start, "day"), period.end)
