"""What to do about a session at risk, from its level and dominant factor.

The level sets the priority; the dominant factor (the largest contribution,
the first listed on a tie) sets what to offer. A user idle for
``AWAY_AFTER_MINUTES`` or more has left the conversation, so only a reminder
outside it can reach them; a critical session calls for a person.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.sessions.risk import Factor, SessionRisk

AWAY_AFTER_MINUTES = 10

PRIORITY_BY_LEVEL = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "critical": "immediate",
}
# The short action of the at-risk list, by level.
ACTION_BY_LEVEL = {
    "low": "No action needed",
    "medium": "Offer help in the conversation",
    "high": "Send reminder email with resume link",
    "critical": "Manual outreach via phone",
}
# How the dominant factor reads after "User has been inactive for N minutes".
_CIRCUMSTANCE = {
    "inactivity": "",
    "question_repetition": " after repeating questions",
    "error_frequency": " with multiple errors",
    "session_complexity": " in an unusually complex session",
}
# The help that addresses the dominant factor, added to any intervention.
_REMEDY = {
    "inactivity": None,
    "question_repetition": "Rephrase the repeated questions",
    "error_frequency": "Offer chat support",
    "session_complexity": "Offer a guided walkthrough",
}
# In-conversation interventions for a user who is still there.
_IN_SESSION = {
    "inactivity": (
        "send_nudge",
        "Nudge the user in the conversation.",
        ["Send an in-app nudge"],
    ),
    "question_repetition": (
        "clarify_questions",
        "Rephrase them and show example answers.",
        ["Rephrase the repeated questions", "Show example answers"],
    ),
    "error_frequency": (
        "offer_support",
        "Offer help before the user gives up.",
        ["Offer chat support", "Retry the failed step"],
    ),
    "session_complexity": (
        "offer_assistance",
        "Offer a guided walkthrough.",
        ["Offer a guided walkthrough", "Offer chat support"],
    ),
}


@dataclass(frozen=True)
class Intervention:
    """A recommended intervention."""

    type: str
    priority: str
    message: str
    actions: list[str]


def recommend(risk: SessionRisk) -> Intervention:
    """The intervention for a scored session."""
    if risk.completed:
        return Intervention("none", "low", "Session completed; nothing to do.", [])
    if risk.risk_level == "low":
        return Intervention(
            "none", "low", "Session is progressing normally; nothing to do.", []
        )
    dominant = max(risk.factors, key=lambda factor: factor.contribution)
    if risk.risk_level == "critical":
        return _outreach(risk, dominant)
    if risk.inactive_minutes >= AWAY_AFTER_MINUTES:
        return _reminder(risk, dominant)
    return _in_session(risk, dominant)


def _away(risk: SessionRisk, dominant: Factor) -> str:
    minutes = risk.inactive_minutes
    unit = "minute" if minutes == 1 else "minutes"
    circumstance = _CIRCUMSTANCE[dominant.name]
    return f"User has been inactive for {minutes} {unit}{circumstance}"


def _with_remedy(actions: list[str], dominant: Factor) -> list[str]:
    remedy = _REMEDY[dominant.name]
    return [*actions, remedy] if remedy and remedy not in actions else actions


def _reminder(risk: SessionRisk, dominant: Factor) -> Intervention:
    return Intervention(
        "send_reminder",
        PRIORITY_BY_LEVEL[risk.risk_level],
        f"{_away(risk, dominant)}. Send reminder email with resume link.",
        _with_remedy(["Send email reminder", "Include session resume link"], dominant),
    )


def _outreach(risk: SessionRisk, dominant: Factor) -> Intervention:
    if risk.inactive_minutes >= AWAY_AFTER_MINUTES:
        situation = _away(risk, dominant)
    else:
        situation = dominant.description
    return Intervention(
        "manual_outreach",
        PRIORITY_BY_LEVEL["critical"],
        f"{situation}. Call the user and offer to finish the session together.",
        _with_remedy(["Call the user", "Include session resume link"], dominant),
    )


def _in_session(risk: SessionRisk, dominant: Factor) -> Intervention:
    kind, advice, actions = _IN_SESSION[dominant.name]
    return Intervention(
        kind,
        PRIORITY_BY_LEVEL[risk.risk_level],
        f"{dominant.description}. {advice}",
        list(actions),
    )
