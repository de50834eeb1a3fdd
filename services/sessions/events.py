"""Session events as the product sends them: validated into rows to store.

Every event carries a client-chosen id and its own time. Ids starting with
``srv:`` are reserved for the events the server records itself (session
start, checkpoint created, session resumed), so they can never collide.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from onboarding.v1 import sessions_pb2

from services.sessions.convert import to_datetime
from services.sessions.states import STATES
from services.sessions.validation import REQUIRED, FieldErrors, is_printable_ascii

# The event types of ``session_events.event_type``.
SESSION_START = "session_start"
STATE_TRANSITION = "state_transition"
QUESTION_ANSWERED = "question_answered"
QUESTION_REPEATED = "question_repeated"
ERROR = "error"
ACTIVITY = "activity"
CHECKPOINT_CREATED = "checkpoint_created"
SESSION_RESUMED = "session_resumed"

# Events that set the session's state; every other event happens in one.
STATE_SETTING = (SESSION_START, STATE_TRANSITION)

SERVER_ID_PREFIX = "srv:"
MAX_EVENT_ID = 100
MAX_TEXT = 1000
MAX_KIND = 60
# The product's clock may run a little ahead of ours; further is a bug.
MAX_CLOCK_SKEW = timedelta(minutes=5)
_ERROR_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,59}")


@dataclass(frozen=True)
class EventRow:
    """One event ready to store; ``state`` None means "the state at that time"."""

    session_id: uuid.UUID
    event_id: str
    event_type: str
    occurred_at: datetime
    state: str | None
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "session_id": str(self.session_id),
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at.isoformat(),
            "state": self.state,
            "data": self.data,
        }


def parse_events(
    session_id: uuid.UUID,
    events: Sequence[sessions_pb2.SessionEvent],
    prefix: str,
    errors: FieldErrors,
    now: datetime,
    seen: set[str],
) -> list[EventRow]:
    """Rows for ``events``; problems go to ``errors`` under ``prefix``.

    ``seen`` holds the event ids of the session already in this request; a
    repeat within one request is a client bug, not a retry.
    """
    if not events:
        errors.add(f"{prefix}events", "At least one event is required.")
        return []
    rows: list[EventRow] = []
    for index, event in enumerate(events):
        path = f"{prefix}events[{index}]"
        row = _parse_event(session_id, event, path, errors, now)
        if row is None:
            continue
        if row.event_id in seen:
            errors.add(f"{path}.event_id", "Duplicate event_id in this request.")
        seen.add(row.event_id)
        rows.append(row)
    return rows


def _parse_event(
    session_id: uuid.UUID,
    event: sessions_pb2.SessionEvent,
    path: str,
    errors: FieldErrors,
    now: datetime,
) -> EventRow | None:
    before = len(errors)
    _check_event_id(event.event_id, f"{path}.event_id", errors)
    occurred_at = _occurred_at(event, f"{path}.occurred_at", errors, now)
    kind = event.WhichOneof("kind")
    if kind is None:
        errors.add(
            f"{path}.kind",
            "Exactly one of state_transition, question_answered, "
            "question_repeated, error or activity is required.",
        )
        return None
    event_type, state, data = _PAYLOADS[kind](
        getattr(event, kind), f"{path}.{kind}", errors
    )
    if occurred_at is None or len(errors) != before:
        return None
    return EventRow(session_id, event.event_id, event_type, occurred_at, state, data)


def _check_event_id(event_id: str, path: str, errors: FieldErrors) -> None:
    errors.check_text(path, event_id, max_length=MAX_EVENT_ID)
    if event_id and not is_printable_ascii(event_id):
        errors.add(path, "Use printable ASCII characters only.")
    if event_id.startswith(SERVER_ID_PREFIX):
        errors.add(path, f"The {SERVER_ID_PREFIX} prefix is reserved for the server.")


def _occurred_at(
    event: sessions_pb2.SessionEvent, path: str, errors: FieldErrors, now: datetime
) -> datetime | None:
    if not event.HasField("occurred_at"):
        errors.add(path, REQUIRED)
        return None
    occurred_at = to_datetime(event.occurred_at)
    if occurred_at > now + MAX_CLOCK_SKEW:
        errors.add(path, "Must not be more than 5 minutes in the future.")
        return None
    return occurred_at


Payload = tuple[str, str | None, dict[str, Any]]


def _transition(
    message: sessions_pb2.StateTransition, path: str, errors: FieldErrors
) -> Payload:
    errors.check_choice(f"{path}.state", message.state, STATES)
    return STATE_TRANSITION, message.state, {"current_state": message.state}


def _answered(
    message: sessions_pb2.QuestionAnswered, path: str, errors: FieldErrors
) -> Payload:
    errors.check_range(f"{path}.question_index", message.question_index, minimum=0)
    errors.check_text(f"{path}.question", message.question, max_length=MAX_TEXT)
    errors.check_range(f"{path}.answer_length", message.answer_length, minimum=0)
    data = {
        "question_index": message.question_index,
        "question": message.question,
        "answer_length": message.answer_length,
    }
    return QUESTION_ANSWERED, None, data


def _repeated(
    message: sessions_pb2.QuestionRepeated, path: str, errors: FieldErrors
) -> Payload:
    errors.check_range(f"{path}.question_index", message.question_index, minimum=0)
    errors.check_text(f"{path}.question", message.question, max_length=MAX_TEXT)
    data = {"question_index": message.question_index, "question": message.question}
    return QUESTION_REPEATED, None, data


def _error(
    message: sessions_pb2.SessionError, path: str, errors: FieldErrors
) -> Payload:
    if not message.error_type:
        errors.add(f"{path}.error_type", REQUIRED)
    elif not _ERROR_TYPE.fullmatch(message.error_type):
        errors.add(
            f"{path}.error_type",
            "Use upper snake case of at most 60 characters, such as LLM_TIMEOUT.",
        )
    errors.check_choice(f"{path}.stage", message.stage, STATES, required=False)
    errors.check_text(
        f"{path}.message", message.message, max_length=MAX_TEXT, required=False
    )
    data: dict[str, Any] = {"error_type": message.error_type}
    if message.message:
        data["message"] = message.message
    # The stored stage is filled in from the session's state when omitted.
    return ERROR, message.stage or None, data


def _activity(
    message: sessions_pb2.Activity, path: str, errors: FieldErrors
) -> Payload:
    errors.check_text(f"{path}.kind", message.kind, max_length=MAX_KIND, required=False)
    return ACTIVITY, None, {"kind": message.kind} if message.kind else {}


_PAYLOADS: dict[str, Callable[[Any, str, FieldErrors], Payload]] = {
    "state_transition": _transition,
    "question_answered": _answered,
    "question_repeated": _repeated,
    "error": _error,
    "activity": _activity,
}


def server_event(
    session_id: uuid.UUID,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    state: str | None,
    data: dict[str, Any],
) -> EventRow:
    """An event the server records itself, under the reserved id prefix."""
    return EventRow(
        session_id, SERVER_ID_PREFIX + event_id, event_type, occurred_at, state, data
    )
