"""The session states of a conversation and the funnel stages they form."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """A funnel stage: a name and the session states that belong to it."""

    index: int
    name: str
    states: tuple[str, ...]
    # Column of ``onboarding_sessions`` holding when the stage was first
    # reached; the first stage is reached at ``started_at``.
    reached_column: str


STAGES: tuple[Stage, ...] = (
    Stage(0, "Session Started", ("STARTED", "INITIAL_PROMPT"), "started_at"),
    Stage(
        1,
        "Information Collection",
        ("COLLECTING_INFO", "ASKING_QUESTIONS"),
        "collecting_at",
    ),
    Stage(
        2,
        "Recommendation Review",
        ("GENERATING_RECOMMENDATIONS", "AWAITING_APPROVAL"),
        "recommendations_at",
    ),
    Stage(3, "Approval Process", ("PENDING_APPROVAL",), "approval_at"),
    Stage(4, "Completed", ("COMPLETED",), "completed_at"),
)

STATES: tuple[str, ...] = tuple(state for stage in STAGES for state in stage.states)

STAGE_OF_STATE: dict[str, Stage] = {
    state: stage for stage in STAGES for state in stage.states
}

COMPLETED = "COMPLETED"

CONVERSATION_TYPES: dict[str, str] = {
    "site_survey": "Site Survey",
    "business_unit_setup": "Business Unit Setup",
}
