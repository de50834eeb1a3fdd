"""The funnel definitions of docs/funnel-definitions.md applied to raw events.

An independent route to the figures: it reads a journey's event list, never
the rollup row, keeps exact fractions and rounds only at the end, as the API
documents. Tests compare the API with it on random sessions and periods.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.sessions.states import STAGE_OF_STATE, STAGES
from tests.funnel.conftest import Event, Journey

OPEN_STATES = [s for stage in STAGES[:4] for s in stage.states]
INACTIVITY = {
    "STARTED": "User left before the conversation began",
    "INITIAL_PROMPT": "User left at the initial prompt",
    "COLLECTING_INFO": "User abandoned during question answering",
    "ASKING_QUESTIONS": "User abandoned during question answering",
    "GENERATING_RECOMMENDATIONS": "User left while recommendations were generated",
    "AWAITING_APPROVAL": "User left before approving recommendations",
    "PENDING_APPROVAL": "User left while approval was pending",
}


@dataclass(frozen=True)
class Facts:
    """What the definitions need of one session, read from its events."""

    journey: Journey
    reached_at: list[datetime | None]
    furthest: int
    state: str
    last_event: Event
    last_error: Event | None

    @property
    def completed(self) -> bool:
        return self.furthest == 4

    def abandoned(self, now: datetime, timeout: timedelta) -> bool:
        return not self.completed and self.last_event.at < now - timeout

    def stop_reason(self) -> str:
        """The error type when an error is the latest event, else ''."""
        error = self.last_error
        return (
            error.data["error_type"] if error and error.at >= self.last_event.at else ""
        )


def facts(journey: Journey) -> Facts:
    events = journey.ordered()
    transitions = [e for e in events if e.event_type == "state_transition"]
    reached: list[datetime | None] = [journey.started_at]
    for stage in STAGES[1:]:
        times = [e.at for e in transitions if e.state in stage.states]
        reached.append(min(times) if times else None)
    errors = [e for e in events if e.event_type == "error"]
    setting = [e for e in events if e.state is not None]
    return Facts(
        journey=journey,
        reached_at=reached,
        furthest=max(
            (STAGE_OF_STATE[e.state or ""].index for e in transitions), default=0
        ),
        state=max(enumerate(setting), key=lambda p: (p[1].at, p[0]))[1].state or "",
        last_event=max(events, key=lambda e: e.at),
        last_error=max(enumerate(errors), key=lambda p: (p[1].at, p[0]))[1]
        if errors
        else None,
    )


def select(
    journeys: list[Journey],
    start: datetime,
    end: datetime,
    client_id: int | None = None,
    conversation_type: str | None = None,
) -> list[Facts]:
    return [
        facts(j)
        for j in journeys
        if start <= j.started_at < end
        and client_id in (None, j.client_id)
        and conversation_type in (None, j.conversation_type)
    ]


def rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def minutes(durations: list[timedelta]) -> float:
    if not durations:
        return 0.0
    micros = sum(durations, timedelta()) // timedelta(microseconds=1)
    return round(micros / (len(durations) * 60_000_000), 2)


def funnel(sessions: list[Facts], now: datetime, timeout: timedelta) -> dict[str, Any]:
    """The funnel response's figures, without time_range and last_updated."""
    total = len(sessions)
    counts = [sum(1 for s in sessions if s.furthest >= k) for k in range(5)]
    completed = counts[4]
    abandoned = [s for s in sessions if s.abandoned(now, timeout)]
    stages = []
    for stage in STAGES:
        k = stage.index
        previous = counts[k - 1] if k else counts[0]
        durations = [
            s.reached_at[k + 1] - s.reached_at[k]  # type: ignore[operator]
            for s in sessions
            if k < 4 and s.reached_at[k] and s.reached_at[k + 1]
        ]
        stages.append(
            {
                "name": stage.name,
                "session_states": list(stage.states),
                "count": counts[k],
                "conversion_rate": rate(counts[k], total),
                "drop_off_rate": rate(previous - counts[k], previous),
                "avg_time_in_stage_minutes": minutes(durations),
            }
        )
    return {
        "overall_conversion_rate": rate(completed, total),
        "total_sessions": total,
        "completed_sessions": completed,
        "abandoned_sessions": len(abandoned),
        "avg_completion_time_minutes": minutes(
            [
                s.reached_at[4] - s.journey.started_at  # type: ignore[operator]
                for s in sessions
                if s.completed
            ]
        ),
        "stages": stages,
        "top_drop_off_points": drop_off_points(abandoned, total),
    }


def drop_off_points(abandoned: list[Facts], total: int) -> list[dict[str, Any]]:
    by_state = Counter(s.state for s in abandoned)
    points = []
    for state in sorted(
        by_state, key=lambda st: (-by_state[st], OPEN_STATES.index(st))
    ):
        causes = Counter(s.stop_reason() for s in abandoned if s.state == state)
        inactive = causes.pop("", 0)
        best = min(causes, key=lambda e: (-causes[e], e), default=None)
        reason = INACTIVITY[state]
        if best is not None and causes[best] > inactive:
            reason = f"Left after error {best}"
        points.append(
            {
                "state": state,
                "count": by_state[state],
                "percentage": rate(by_state[state], total),
                "reason": reason,
            }
        )
    return points[:5]


def heatmap_buckets(
    sessions: list[Facts], now: datetime, timeout: timedelta, unit: str
) -> list[dict[str, Any]]:
    groups: dict[datetime, list[Facts]] = {}
    for s in sessions:
        groups.setdefault(truncate(s.journey.started_at, unit), []).append(s)
    buckets = []
    for start in sorted(groups):
        members = groups[start]
        stopped = Counter(s.state for s in members if s.abandoned(now, timeout))
        buckets.append(
            {
                "time_bucket": f"{start:%Y-%m-%dT%H:00}"
                if unit == "hour"
                else f"{start:%Y-%m-%d}",
                "sessions_started": len(members),
                "drop_offs_by_stage": {
                    st: stopped[st] for st in OPEN_STATES if stopped[st]
                },
                "completion_rate": rate(
                    sum(s.completed for s in members), len(members)
                ),
            }
        )
    return buckets


def truncate(moment: datetime, unit: str) -> datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    if unit == "hour":
        return moment
    moment = moment.replace(hour=0)
    return moment - timedelta(days=moment.weekday()) if unit == "week" else moment
