"""The demo plan: users, sessions with their events and checkpoints, tasks.

Plain frozen data built by ``generator.generate_plan``, with the figures the
funnel must show once the plan is sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from services.sessions.states import STAGES


class Outcome(StrEnum):
    """Where a session stands once the plan is sent, as the funnel sees it."""

    COMPLETED = "completed"
    ABANDONED = "abandoned"
    ACTIVE = "active"


@dataclass(frozen=True)
class DemoUser:
    """A product user of one client; ``index`` is its place in the plan."""

    index: int
    username: str
    client_id: int


@dataclass(frozen=True)
class PlannedEvent:
    """One event as the product sends it: ``kind`` names the oneof field."""

    event_id: str
    occurred_at: datetime
    kind: str
    payload: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The event as the REST API takes it."""
        return {
            "event_id": self.event_id,
            "occurred_at": iso(self.occurred_at),
            self.kind: self.payload,
        }


@dataclass(frozen=True)
class PlannedCheckpoint:
    """A checkpoint to create, in version order."""

    version: int
    state: str
    data: dict[str, Any]


@dataclass(frozen=True)
class PlannedSession:
    """A session, everything that happens in it, and its outcome."""

    session_id: uuid.UUID
    user_index: int
    client_id: int
    conversation_type: str
    language: str
    started_at: datetime
    events: tuple[PlannedEvent, ...]
    checkpoints: tuple[PlannedCheckpoint, ...]
    resumed: bool
    outcome: Outcome
    current_state: str
    furthest_stage: int

    @property
    def last_event_at(self) -> datetime:
        return self.events[-1].occurred_at if self.events else self.started_at


@dataclass(frozen=True)
class PlannedTask:
    """An onboarding Celery task to enqueue for a session."""

    task_name: str
    args: tuple[Any, ...]
    correlation_id: str
    session_id: uuid.UUID
    user_index: int
    client_id: int
    # The task rejects its input: it lands in the DLQ whatever the LLM does.
    fails_validation: bool

    @property
    def kwargs(self) -> dict[str, Any]:
        # The product passes its correlation id as the task_id keyword.
        return {"task_id": self.correlation_id}


@dataclass(frozen=True)
class Figures:
    """Funnel figures the plan's sessions give once sent."""

    total: int
    completed: int
    abandoned: int
    active: int
    # Sessions whose furthest stage is at least stage k, for k = 0..4.
    stage_counts: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    """The whole workload of one run."""

    seed: int
    days: int
    now: datetime
    users: tuple[DemoUser, ...]
    sessions: tuple[PlannedSession, ...]
    tasks: tuple[PlannedTask, ...]

    def figures(self, client_id: int | None = None) -> Figures:
        """The funnel figures of all sessions, or of one client's."""
        chosen = [
            s for s in self.sessions if client_id is None or s.client_id == client_id
        ]
        outcomes = [s.outcome for s in chosen]
        return Figures(
            total=len(chosen),
            completed=outcomes.count(Outcome.COMPLETED),
            abandoned=outcomes.count(Outcome.ABANDONED),
            active=outcomes.count(Outcome.ACTIVE),
            stage_counts=tuple(
                sum(s.furthest_stage >= stage.index for s in chosen) for stage in STAGES
            ),
        )

    @property
    def event_count(self) -> int:
        return sum(len(s.events) for s in self.sessions)

    @property
    def checkpoint_count(self) -> int:
        return sum(len(s.checkpoints) for s in self.sessions)

    @property
    def resume_count(self) -> int:
        return sum(s.resumed for s in self.sessions)

    @property
    def failing_task_count(self) -> int:
        return sum(t.fails_validation for t in self.tasks)


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z, as the API writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
