"""Session intake: starting sessions and recording their events."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from onboarding.v1 import sessions_pb2
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import Database
from server.errors import AlreadyExists, InvalidArgument, PermissionDenied
from server.security.models import User
from server.security.principal import Principal
from services.sessions.access import parse_session_id, require_all, visible_sessions
from services.sessions.convert import to_datetime
from services.sessions.events import (
    MAX_CLOCK_SKEW,
    SESSION_START,
    EventRow,
    parse_events,
    server_event,
)
from services.sessions.eventstore import Stored, store_events
from services.sessions.models import OnboardingSession
from services.sessions.states import CONVERSATION_TYPES
from services.sessions.validation import REQUIRED, FieldErrors

# A BCP 47 tag in the shape products send: en, pt-BR, zh-Hant-TW.
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}")
_MAX_LANGUAGE = 16


@dataclass(frozen=True)
class NewSession:
    """A validated StartSession request."""

    session_id: uuid.UUID
    user_id: int
    client_id: int
    conversation_type: str
    language: str
    started_at: datetime

    def matches(self, row: OnboardingSession) -> bool:
        """Whether ``row`` is this very session, started before."""
        return (
            row.user_id,
            row.client_id,
            row.conversation_type,
            row.language,
            row.started_at,
        ) == (
            self.user_id,
            self.client_id,
            self.conversation_type,
            self.language,
            self.started_at,
        )


def parse_start(
    request: sessions_pb2.StartSessionRequest, principal: Principal, now: datetime
) -> NewSession:
    """Validate a StartSession request for ``principal``."""
    errors = FieldErrors()
    session_id = _session_id_or_error(request.session_id, "session_id", errors)
    errors.check_range("client_id", request.client_id, minimum=1)
    errors.check_choice(
        "conversation_type", request.conversation_type, tuple(CONVERSATION_TYPES)
    )
    if not request.language:
        errors.add("language", REQUIRED)
    elif len(request.language) > _MAX_LANGUAGE or not _LANGUAGE.fullmatch(
        request.language
    ):
        errors.add("language", "Must be a language tag such as en or pt-BR.")
    started_at = None
    if not request.HasField("started_at"):
        errors.add("started_at", REQUIRED)
    else:
        started_at = to_datetime(request.started_at)
        if started_at > now + MAX_CLOCK_SKEW:
            errors.add("started_at", "Must not be more than 5 minutes in the future.")
    errors.raise_if_any()
    assert session_id is not None and started_at is not None

    return NewSession(
        session_id=session_id,
        user_id=_owner(request, principal),
        client_id=request.client_id,
        conversation_type=request.conversation_type,
        language=request.language,
        started_at=started_at,
    )


def _owner(request: sessions_pb2.StartSessionRequest, principal: Principal) -> int:
    """The session's user: the caller unless staff name someone else."""
    assert principal.user_id is not None
    if not request.HasField("user_id") or request.user_id == principal.user_id:
        return principal.user_id
    if not principal.can_see_all_sessions():
        raise PermissionDenied(
            "Only staff may start sessions for another user.",
            reason="not_session_owner",
        )
    return request.user_id


def _session_id_or_error(raw: str, field: str, errors: FieldErrors) -> uuid.UUID | None:
    try:
        return parse_session_id(raw, field)
    except InvalidArgument as err:
        for message in err.field_errors[field]:
            errors.add(field, message)
        return None


async def start_session(db: Database, new: NewSession) -> tuple[str, OnboardingSession]:
    """Store the session and its session_start event; ``existing`` on a retry."""
    async with db.session() as session:
        await _require_user(session, new.user_id)
        inserted = await session.scalar(
            insert(OnboardingSession)
            .values(
                id=new.session_id,
                user_id=new.user_id,
                client_id=new.client_id,
                conversation_type=new.conversation_type,
                language=new.language,
                started_at=new.started_at,
                last_activity_at=new.started_at,
                current_state="STARTED",
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(OnboardingSession.id)
        )
        if inserted is None:
            return "existing", await _same_session(session, new)

        await store_events(session, [_start_event(new)])
        await session.commit()
        row = await session.get(
            OnboardingSession, new.session_id, populate_existing=True
        )
    assert row is not None
    return "created", row


async def _require_user(session: AsyncSession, user_id: int) -> None:
    if await session.get(User, user_id) is None:
        raise InvalidArgument(
            "Invalid request.", field_errors={"user_id": ["No such user."]}
        )


async def _same_session(session: AsyncSession, new: NewSession) -> OnboardingSession:
    """The stored session when it is this one; a conflict otherwise.

    The conflict does not say whose session holds the id: ids are random
    UUIDs, so this reveals nothing a caller could use.
    """
    row = await session.get(OnboardingSession, new.session_id)
    if row is None or not new.matches(row):
        raise AlreadyExists(
            "A different session already uses this session id.",
            reason="session_exists",
            extra={"session_id": str(new.session_id)},
        )
    return row


def _start_event(new: NewSession) -> EventRow:
    data = {
        "language": new.language,
        "conversation_type": new.conversation_type,
        "client_id": new.client_id,
    }
    return server_event(
        new.session_id, "session_start", SESSION_START, new.started_at, "STARTED", data
    )


@dataclass(frozen=True)
class EventGroup:
    """Validated events of one session, with where they came from."""

    session_id: uuid.UUID
    rows: list[EventRow]
    # The JSON path of the group in the request, such as ``requests[1].``.
    prefix: str


def parse_groups(
    groups: Sequence[tuple[str, Sequence[sessions_pb2.SessionEvent]]],
    prefixes: Sequence[str],
    *,
    max_events: int,
    now: datetime,
) -> list[EventGroup]:
    """Validate (session_id, events) pairs; one 400 lists every problem."""
    errors = FieldErrors()
    total = sum(len(events) for _, events in groups)
    if total > max_events:
        field = f"{prefixes[0]}events" if len(groups) == 1 else "requests"
        errors.add(field, f"Send at most {max_events} events per call.")
        errors.raise_if_any()

    parsed: list[EventGroup] = []
    seen: dict[uuid.UUID, set[str]] = {}
    for (raw_id, events), prefix in zip(groups, prefixes, strict=True):
        session_id = _session_id_or_error(raw_id, f"{prefix}session_id", errors)
        if session_id is None:
            continue
        seen_ids = seen.setdefault(session_id, set())
        rows = parse_events(session_id, events, prefix, errors, now, seen_ids)
        parsed.append(EventGroup(session_id, rows, prefix))
    errors.raise_if_any()
    return parsed


async def record_groups(
    db: Database, groups: list[EventGroup], principal: Principal
) -> tuple[Stored, dict[uuid.UUID, OnboardingSession]]:
    """Store all groups in one transaction: every event or none."""
    ids = [group.session_id for group in groups]
    async with db.session() as session:
        sessions = await require_all(session, ids, principal, lock=True)
        _check_after_start(groups, sessions)
        stored = await store_events(session, [r for g in groups for r in g.rows])
        await session.commit()
        fresh = await visible_sessions(session, ids, principal)
    return stored, fresh


def _check_after_start(
    groups: list[EventGroup], sessions: dict[uuid.UUID, OnboardingSession]
) -> None:
    errors = FieldErrors()
    for group in groups:
        started_at = sessions[group.session_id].started_at
        for index, row in enumerate(group.rows):
            if row.occurred_at < started_at:
                errors.add(
                    f"{group.prefix}events[{index}].occurred_at",
                    "Must not be before the session started.",
                )
    errors.raise_if_any()
