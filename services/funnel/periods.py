"""Analysis periods: parsing the API's date parameters and naming periods.

A period is half-open, ``[start, end)``, in UTC. A date without a time means
midnight UTC at the start of that day for a start, and the whole of that day
for an end, so ``end_date=2025-09-15`` includes the 15th and adjacent periods
such as 1-15 and 16-30 tile without a gap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from server.errors import InvalidArgument

_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A "+02:00" offset arrives as " 02:00" when a client leaves "+" unencoded.
_UNENCODED_OFFSET = re.compile(r" (\d{2}:?\d{2})$")
_FIRST_YEAR, _LAST_YEAR = 1900, 2999
INVALID_DATE = (
    "Enter an ISO 8601 date (2025-09-01) or date-time (2025-09-01T10:00:00Z)."
)
OUT_OF_RANGE = f"Dates must fall between {_FIRST_YEAR} and {_LAST_YEAR}."


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval ``[start, end)`` of session start times."""

    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        """Whole days in the period."""
        return (self.end - self.start) // timedelta(days=1)

    @property
    def label(self) -> str:
        """A readable name such as ``Sep 1-15`` or ``Sep 16-Oct 1``."""
        first = self.start.date()
        last = (self.end - timedelta(microseconds=1)).date()
        if last <= first:
            return _day(first, with_year=False)
        if first.year != last.year:
            return f"{_day(first, with_year=True)}-{_day(last, with_year=True)}"
        if first.month == last.month:
            return f"{_day(first, with_year=False)}-{last.day}"
        return f"{_day(first, with_year=False)}-{_day(last, with_year=False)}"


def _day(value: date, *, with_year: bool) -> str:
    text = f"{value:%b} {value.day}"
    return f"{text}, {value.year}" if with_year else text


def utc_now() -> datetime:
    """Now in UTC, to the second, as figures and time ranges report it."""
    return datetime.now(UTC).replace(microsecond=0)


def parse_instant(raw: str, *, is_end: bool) -> datetime:
    """One date parameter in UTC; raises ValueError with the field message."""
    text = _UNENCODED_OFFSET.sub(r"+\1", raw.strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(INVALID_DATE) from None
    if not _FIRST_YEAR <= moment.year <= _LAST_YEAR:
        raise ValueError(OUT_OF_RANGE)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if is_end and _DATE_ONLY.match(text):
        moment += timedelta(days=1)
    return moment.astimezone(UTC)


def period_from(
    start_raw: str,
    end_raw: str,
    *,
    default_days: int,
    now: datetime,
    fields: tuple[str, str] = ("start_date", "end_date"),
    errors: dict[str, list[str]] | None = None,
) -> Period:
    """The period of two optional parameters; a missing end is now and a
    missing start is ``default_days`` before the end."""
    pairs = [(start_raw, end_raw, fields)]
    return periods_from(pairs, default_days, now, errors)[0]


def periods_from(
    pairs: list[tuple[str, str, tuple[str, str]]],
    default_days: int | None,
    now: datetime,
    errors: dict[str, list[str]] | None = None,
) -> list[Period]:
    """Parse several periods, reporting every bad field in one error along
    with the ``errors`` of other parameters found by the caller.

    With ``default_days`` of None both bounds of every pair are required.
    """
    errors = dict(errors or {})
    periods = []
    for start_raw, end_raw, (start_field, end_field) in pairs:
        start = _bound(start_raw, start_field, False, default_days, errors)
        end = _bound(end_raw, end_field, True, default_days, errors)
        if start_field in errors or end_field in errors:
            continue
        end = end or now
        start = start or end - timedelta(days=default_days or 0)
        if start > end:
            errors[start_field] = [f"{start_field} must not be after {end_field}."]
            continue
        periods.append(Period(start, end))
    if errors:
        raise InvalidArgument("Invalid query parameters.", field_errors=errors)
    return periods


def _bound(
    raw: str,
    field: str,
    is_end: bool,
    default_days: int | None,
    errors: dict[str, list[str]],
) -> datetime | None:
    if not raw.strip():
        if default_days is None:
            errors[field] = ["This field is required."]
        return None
    try:
        return parse_instant(raw, is_end=is_end)
    except ValueError as err:
        errors[field] = [str(err)]
        return None
