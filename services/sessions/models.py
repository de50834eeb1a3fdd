"""Conversation sessions, their events and their checkpoints.

``session_events`` is the raw, append-only record every analytic is
computed from. ``onboarding_sessions`` is a per-session rollup kept up to
date as events arrive (current state, first time each funnel stage was
reached, counters), so funnel queries aggregate one row per session instead
of scanning events.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from server.db import Base, utcnow


class OnboardingSession(Base):
    """One conversation session and its rolled-up progress."""

    __tablename__ = "onboarding_sessions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(Integer)
    conversation_type: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    current_state: Mapped[str] = mapped_column(String(40))
    # Index 0-4 of the furthest funnel stage reached (see services.funnel).
    furthest_stage: Mapped[int] = mapped_column(SmallInteger, default=0)
    # When each stage was first reached; None when never reached.
    collecting_at: Mapped[datetime | None] = mapped_column(default=None)
    recommendations_at: Mapped[datetime | None] = mapped_column(default=None)
    approval_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    questions_answered: Mapped[int] = mapped_column(Integer, default=0)
    questions_repeated: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error_type: Mapped[str | None] = mapped_column(String(60), default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_onboarding_sessions_started_at", "started_at"),
        Index("ix_onboarding_sessions_user_id", "user_id"),
        Index("ix_onboarding_sessions_client_started", "client_id", "started_at"),
        Index("ix_onboarding_sessions_last_activity_at", "last_activity_at"),
        # The abandonment risk compares a session with the completed sessions
        # of its client and conversation type (migration 0004).
        Index(
            "ix_onboarding_sessions_completed_baseline",
            "client_id",
            "conversation_type",
            "questions_answered",
            postgresql_where=text("completed_at IS NOT NULL"),
        ),
    )


class SessionEvent(Base):
    """One thing that happened in a session, at the event's own time."""

    __tablename__ = "session_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("onboarding_sessions.id", ondelete="CASCADE")
    )
    # Supplied by the client so that a retried send is stored once.
    client_event_id: Mapped[str] = mapped_column(String(100))
    # session_start, state_transition, question_answered, question_repeated,
    # error, activity, checkpoint_created, session_resumed.
    event_type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime]
    # The session state the event happened in (after it, for transitions).
    state: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("session_id", "client_event_id"),
        Index("ix_session_events_session_occurred", "session_id", "occurred_at"),
        Index("ix_session_events_type_occurred", "event_type", "occurred_at"),
    )


class Checkpoint(Base):
    """The durable copy of one checkpoint version."""

    __tablename__ = "session_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    version: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    checkpoint_hash: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("session_id", "version"),
        Index("ix_session_checkpoints_created_at", "created_at"),
    )
