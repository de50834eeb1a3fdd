"""Sums of per-session measures over a period, read in PostgreSQL.

Each session contributes fixed measures (reached stage k, stopped in state
S, minutes between stages, ...; the function ``funnel_session_measures`` of
migration 0005 defines them). Figures are ratios of their sums. The sums of
whole hours or days come from rollups that triggers keep current on every
write to ``onboarding_sessions``; the partial buckets at a period's edges
come from the sessions themselves through the view ``funnel_session_facts``.

Whether a session is abandoned depends on the time of the query, so the
rollups count every session that has not completed as ``open``; the sums
of the sessions still active at ``Snapshot.now`` are read alongside, and
abandoned = open - active.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.funnel.periods import Period
from services.sessions.states import STAGES

# The states a session that has not completed can be in.
OPEN_STATES: tuple[str, ...] = tuple(s for stage in STAGES[:4] for s in stage.states)

# The measure columns of the session rollups, as migration 0005 creates them.
SESSION_MEASURES: tuple[str, ...] = (
    "sessions",
    *(f"reached_{k}" for k in range(1, 5)),
    "open",
    *(f"open_{state.lower()}" for state in OPEN_STATES),
    "completion_n",
    "completion_us",
    *(f"dur{k}_{part}" for k in range(4) for part in ("n", "us", "sq")),
    "repeat_n",
    "repeat_open",
    "reached_1_open",
    "noerr_n",
    "noerr_open",
)
# The measures behind conversion and completion time alone.
OUTCOME_MEASURES: tuple[str, ...] = (
    "sessions",
    "reached_4",
    "completion_n",
    "completion_us",
)
# The measures behind where abandoned sessions stopped.
DROP_OFF_MEASURES: tuple[str, ...] = (
    *OUTCOME_MEASURES,
    "open",
    *(f"open_{state.lower()}" for state in OPEN_STATES),
)
# The measure columns of the rollup by last error type.
ERROR_MEASURES: tuple[str, ...] = (
    "sessions",
    "open",
    *(f"stopped_{state.lower()}" for state in OPEN_STATES),
)


class Measures(dict[str, float]):
    """Sums of measures by name; a measure never summed reads as 0."""

    def __missing__(self, name: str) -> float:
        return 0

    def __add__(self, other: Mapping[str, float]) -> Measures:  # type: ignore[override]
        total = Measures(self)
        for name, value in other.items():
            total[name] = total[name] + value
        return total


@dataclass(frozen=True)
class SessionSums:
    """Measures summed over a set of sessions and over its active subset."""

    total: Measures = field(default_factory=Measures)
    active: Measures = field(default_factory=Measures)

    def finished(self, name: str) -> float:
        """The sum over sessions that are completed or abandoned."""
        return self.total[name] - self.active[name]

    @property
    def sessions(self) -> int:
        return int(self.total["sessions"])

    @property
    def completed(self) -> int:
        return int(self.total["reached_4"])

    @property
    def active_sessions(self) -> int:
        return int(self.active["sessions"])

    @property
    def abandoned(self) -> int:
        return int(self.finished("open"))

    def reached(self, stage: int) -> int:
        """Sessions that reached ``stage`` (0-4) or a later one."""
        return self.sessions if stage == 0 else int(self.total[f"reached_{stage}"])

    def abandoned_in(self, state: str) -> int:
        """Abandoned sessions whose current state is ``state``."""
        return int(self.finished(f"open_{state.lower()}"))

    def __add__(self, other: SessionSums) -> SessionSums:
        return SessionSums(self.total + other.total, self.active + other.active)


@dataclass(frozen=True)
class Filters:
    """Which sessions to include; None means any."""

    client_id: int | None = None
    conversation_type: str | None = None

    @property
    def empty(self) -> bool:
        return self.client_id is None and self.conversation_type is None


@dataclass(frozen=True)
class Snapshot:
    """The moment figures are computed for, and the inactivity timeout."""

    now: datetime
    abandon_after: timedelta

    @property
    def active_since(self) -> datetime:
        """Sessions with activity at or after this are still active."""
        return self.now - self.abandon_after


@dataclass(frozen=True)
class Grouping:
    """How to group sessions: a SQL template over ``{time}`` (the bucket
    or start time) and ``{error}`` (the last error type)."""

    template: str
    needs_dimensions: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)


TOTAL = Grouping("0")
HOUR_OF_DAY = Grouping("extract(hour FROM {time} AT TIME ZONE 'UTC')::int")
BY_ERROR = Grouping("{error}")


def by_dimension(column: str) -> Grouping:
    """Group by client_id, conversation_type or language."""
    return Grouping(f"{column}::text", needs_dimensions=True)


def by_time_bucket(unit: str) -> Grouping:
    """Group by the start of the hour, day or week (Monday) of the start."""
    # As UTC wall time: naive datetimes convert far faster than zoned ones.
    return Grouping(
        "date_trunc(:unit, {time}, 'UTC') AT TIME ZONE 'UTC'", params={"unit": unit}
    )


@dataclass(frozen=True)
class _Source:
    table: str
    time_column: str
    grain: timedelta
    measures: tuple[str, ...]
    base_condition: str = ""


_HOURLY = _Source("funnel_hourly_rollup", "hour", timedelta(hours=1), SESSION_MEASURES)
_DAILY = _Source("funnel_daily_rollup", "day", timedelta(days=1), SESSION_MEASURES)
_ERRORS = _Source(
    "funnel_error_rollup",
    "day",
    timedelta(days=1),
    ERROR_MEASURES,
    " AND last_error_type IS NOT NULL",
)


async def begin_consistent_read(session: AsyncSession) -> None:
    """Start a read-only REPEATABLE READ transaction, so that the several
    queries behind one response see the same sessions. It must be the
    transaction's first statement."""
    await session.execute(
        text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    )


async def session_sums(
    session: AsyncSession,
    period: Period,
    snapshot: Snapshot,
    filters: Filters = Filters(),
    grouping: Grouping = TOTAL,
    measures: tuple[str, ...] = SESSION_MEASURES,
) -> dict[Any, SessionSums]:
    """Sums of the session measures of the period, by group; only the
    ``measures`` named are summed, the others read as 0."""
    # The hourly rollup is the smallest and finest but has no dimensions.
    plain = filters.empty and not grouping.needs_dimensions
    source = _HOURLY if plain else _DAILY
    source = replace(source, measures=measures)
    return await _load(session, source, period, snapshot, filters, grouping)


async def error_sums(
    session: AsyncSession,
    period: Period,
    snapshot: Snapshot,
    filters: Filters = Filters(),
) -> dict[str, SessionSums]:
    """Sums of the error measures of the period, by last error type."""
    return await _load(session, _ERRORS, period, snapshot, filters, BY_ERROR)


async def total_sums(
    session: AsyncSession,
    period: Period,
    snapshot: Snapshot,
    filters: Filters,
    measures: tuple[str, ...] = SESSION_MEASURES,
) -> SessionSums:
    """Sums of the session measures of the whole period."""
    groups = await session_sums(session, period, snapshot, filters, TOTAL, measures)
    return groups.get(0, SessionSums())


async def _load(
    session: AsyncSession,
    source: _Source,
    period: Period,
    snapshot: Snapshot,
    filters: Filters,
    grouping: Grouping,
) -> dict[Any, SessionSums]:
    whole_start, whole_end = _whole_buckets(period, source.grain)
    params = {
        "start": period.start,
        "end": period.end,
        "whole_start": whole_start,
        "whole_end": whole_end,
        "active_since": snapshot.active_since,
        "client_id": filters.client_id,
        "conversation_type": filters.conversation_type,
        **grouping.params,
    }
    # JIT compilation costs more than these small aggregates take.
    await session.execute(text("SET LOCAL jit = off"))
    result = await session.execute(text(_sql(source, grouping, filters)), params)

    totals: dict[Any, Measures] = {}
    actives: dict[Any, Measures] = {}
    for row in result.mappings():
        target = totals if row["part"] == "total" else actives
        sums = target.setdefault(_key(row["key"]), Measures())
        for name in source.measures:
            sums[name] += _number(row[name])
    keys = totals.keys() | actives.keys()
    return {
        k: SessionSums(totals.get(k, Measures()), actives.get(k, Measures()))
        for k in keys
    }


def _sql(source: _Source, grouping: Grouping, filters: Filters) -> str:
    sums = ", ".join(f"sum({name}) AS {name}" for name in source.measures)
    rollup_key = grouping.template.format(time=source.time_column, error="error_type")
    base_key = grouping.template.format(time="started_at", error="last_error_type")
    where = ""
    if filters.client_id is not None:
        where += " AND client_id = :client_id"
    if filters.conversation_type is not None:
        where += " AND conversation_type = :conversation_type"
    base_where = where + source.base_condition
    bucket = source.time_column
    return f"""
SELECT 'total' AS part, {rollup_key} AS key, {sums} FROM {source.table}
WHERE {bucket} >= :whole_start AND {bucket} < :whole_end{where}
GROUP BY 2
UNION ALL
SELECT 'total', {base_key}, {sums} FROM funnel_session_facts
WHERE (started_at >= :start AND started_at < :whole_start
       OR started_at >= :whole_end AND started_at < :end){base_where}
GROUP BY 2
UNION ALL
SELECT 'active', {base_key}, {sums} FROM funnel_session_facts
WHERE started_at >= :start AND started_at < :end
  AND furthest_stage < 4 AND last_activity_at >= :active_since{base_where}
GROUP BY 2"""


def _whole_buckets(period: Period, grain: timedelta) -> tuple[datetime, datetime]:
    """The whole buckets inside the period; empty (end, end) when none."""
    first = _floor(period.start, grain)
    if first < period.start:
        first += grain
    last = _floor(period.end, grain)
    if first >= last:
        return period.end, period.end
    return first, last


def _floor(moment: datetime, grain: timedelta) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if grain >= timedelta(days=1) else moment


def _number(value: Any) -> float:
    # Sums of bigint come back as Decimal; they are whole numbers.
    if isinstance(value, Decimal):
        return int(value)
    return value or 0


def _key(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) else value
