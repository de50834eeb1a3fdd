"""Conversions between protobuf messages and the Python values stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from onboarding.v1 import sessions_pb2

from server.convert import timestamp
from services.sessions.models import OnboardingSession

# Struct numbers are doubles; integers beyond this lose precision there anyway.
_MAX_EXACT_INT = 2**53


def struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON values, with integral numbers as ints.

    Struct carries every number as a double, so ``1`` arrives as ``1.0``;
    turning it back keeps stored data and content hashes as the client wrote
    them, whichever protocol it used.
    """
    plain: dict[str, Any] = _integral(json_format.MessageToDict(struct))
    return plain


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < _MAX_EXACT_INT:
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the form hashed and size-limited."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def to_datetime(message: timestamp_pb2.Timestamp) -> datetime:
    moment: datetime = message.ToDatetime(tzinfo=UTC)
    return moment


def whole_minutes(delta: timedelta) -> int:
    """Whole minutes of a duration, never negative."""
    return max(0, int(delta.total_seconds() // 60))


def session_message(
    row: OnboardingSession, now: datetime, abandon_after: timedelta
) -> sessions_pb2.Session:
    completed = row.completed_at is not None
    return sessions_pb2.Session(
        session_id=str(row.id),
        user_id=row.user_id,
        client_id=row.client_id,
        conversation_type=row.conversation_type,
        language=row.language,
        current_state=row.current_state,
        started_at=timestamp(row.started_at),
        last_activity=timestamp(row.last_activity_at),
        furthest_stage=row.furthest_stage,
        questions_answered=row.questions_answered,
        questions_repeated=row.questions_repeated,
        error_count=row.error_count,
        completed=completed,
        abandoned=not completed and now - row.last_activity_at > abandon_after,
    )
