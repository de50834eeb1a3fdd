"""The demo workload as a plan: a pure function of its arguments.

``generate_plan`` draws everything from one ``random.Random(seed)`` and
derives ids from the seed and ``now``: the same arguments give the same
plan, and the same seed whole days later gives the same workload moved by
those days under new ids, so a second run adds to the first instead of
colliding with it.

- Users of five clients own about fifteen sessions each.
- Finished sessions are spread over the past ``days`` (more on recent days
  and in working hours). They walk the states with per-client, per-type
  and per-language drop-off, minute gaps, repeated questions, and LLM errors
  while recommendations are generated, some of which end the session.
- A few sessions are still running at ``now``, a third of them struggling
  with repeated questions and errors (the at-risk list), and a few completed
  within the last hour (the realtime figures).
- Checkpoints are taken when a session enters a new stage. The API stamps a
  checkpoint with the server's clock and counts it as activity, so they are
  planned only where that cannot change an outcome: completed sessions,
  running ones, and the abandoned sessions the demo resumes, which are then
  active again.
- Onboarding Celery tasks are planned for some sessions; about one in six
  carries input the task rejects (a translation into Hindi, an empty
  message) and fails, without retries, into the DLQ.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from services.demo import journeys
from services.demo.content import ANSWERS, CLIENTS, TRANSLATION_TARGETS
from services.demo.plan import (
    DemoUser,
    Outcome,
    Plan,
    PlannedEvent,
    PlannedSession,
    PlannedTask,
    iso,
)
from services.sessions.states import STAGE_OF_STATE

# Sessions started in each UTC hour, relatively: working hours are busiest.
_NIGHT_AND_MORNING = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9)
_AFTERNOON_AND_EVENING = (8, 9, 10, 9, 7, 5, 4, 3, 2, 2, 1, 1)
HOUR_WEIGHTS = _NIGHT_AND_MORNING + _AFTERNOON_AND_EVENING
# Each day further back has this much less traffic than the next.
DAILY_GROWTH = 0.03
SESSIONS_PER_USER = 15

LIVE_SHARE = 0.015
MIN_LIVE = 3
RECENT_SHARE = 0.01
MIN_RECENT = 3
RESUMED_SHARE = 0.2
# Users come back to sessions they left within this long, after a reminder.
RESUME_WITHIN = timedelta(days=3)
FAILING_TASK_SHARE = 1 / 6
# Abandoned sessions end at least this long before the abandonment timeout
# runs out at ``now``, and running ones had an event this recently, so each
# keeps its outcome for the minutes a run and a look at it take.
ABANDON_MARGIN = timedelta(minutes=15)
LIVE_LAST_EVENT_MINUTES = (1.0, 8.0)
RECENT_COMPLETION_MINUTES = (3.0, 50.0)
_ZERO = timedelta(0)
_ID_NAMESPACE = uuid.UUID("6f1c42a4-3f55-4c55-9a55-2f6a0f0de3b1")


def generate_plan(
    *,
    seed: int,
    sessions: int,
    days: int,
    now: datetime,
    dlq_tasks: int = 0,
    abandon_after: timedelta = timedelta(minutes=30),
) -> Plan:
    """The workload of ``sessions`` sessions over the ``days`` before ``now``."""
    if sessions < 1 or days < 1 or dlq_tasks < 0:
        raise ValueError("sessions and days must be 1 or more, dlq_tasks 0 or more")
    now = now.astimezone(UTC).replace(microsecond=0)
    rng = random.Random(seed)
    users = _users(rng, sessions)
    owners = _owners(rng, users, sessions)
    placement = _Placement(rng, now, days, abandon_after + ABANDON_MARGIN)

    drafts = [
        _draft(rng, placement, index, users[owner], kind)
        for index, (owner, kind) in enumerate(owners)
    ]
    _choose_resumed(rng, drafts, now)
    drafts.sort(key=lambda d: (d.started_at, d.index))
    planned = tuple(
        d.build(_uuid(seed, now, f"session/{position}"))
        for position, d in enumerate(drafts)
    )
    tasks = _tasks(rng, seed, now, planned, dlq_tasks)
    return Plan(seed, days, now, users, planned, tasks)


# Users and sessions ---------------------------------------------------------------


def _uuid(seed: int, now: datetime, name: str) -> uuid.UUID:
    return uuid.uuid5(_ID_NAMESPACE, f"{seed}/{iso(now)}/{name}")


def _users(rng: random.Random, sessions: int) -> tuple[DemoUser, ...]:
    """Enough users for about SESSIONS_PER_USER sessions each, every client
    with at least one."""
    count = max(len(CLIENTS), math.ceil(sessions / SESSIONS_PER_USER))
    ids = list(CLIENTS)
    weights = [share for share, _ in CLIENTS.values()]
    clients = ids + rng.choices(ids, weights=weights, k=count - len(ids))
    return tuple(
        DemoUser(index, f"demo-user-{index + 1:04d}", client)
        for index, client in enumerate(clients)
    )


class _Kind(StrEnum):
    HISTORICAL = "historical"
    RECENT = "recent"
    LIVE = "live"
    STRUGGLING = "struggling"


def _owners(
    rng: random.Random, users: Sequence[DemoUser], sessions: int
) -> list[tuple[int, _Kind]]:
    """Each session's user and kind; users get equal shares of the sessions,
    which keeps every user's requests well inside the rate limits."""
    live = min(sessions, max(MIN_LIVE, round(sessions * LIVE_SHARE)))
    recent = min(sessions - live, max(MIN_RECENT, round(sessions * RECENT_SHARE)))
    struggling = math.ceil(live / 3)
    kinds = (
        [_Kind.STRUGGLING] * struggling
        + [_Kind.LIVE] * (live - struggling)
        + [_Kind.RECENT] * recent
        + [_Kind.HISTORICAL] * (sessions - live - recent)
    )
    owners = [index % len(users) for index in range(sessions)]
    rng.shuffle(owners)
    return list(zip(owners, kinds, strict=True))


# Placing sessions in time ---------------------------------------------------------


@dataclass
class _Placement:
    """Start times: over the past days, busier in working hours and lately."""

    rng: random.Random
    now: datetime
    days: int
    # A finished, abandoned session ends at least this long before now.
    abandoned_gap: timedelta

    def historical(self, duration: timedelta, completed: bool) -> datetime:
        gap = timedelta(minutes=2) if completed else self.abandoned_gap
        latest = self.now - gap - duration
        today = self.now.replace(hour=0, minute=0, second=0)
        day_weights = [1 / (1 + DAILY_GROWTH) ** day for day in range(self.days)]
        for _ in range(50):
            day = self.rng.choices(range(self.days), weights=day_weights)[0]
            hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            start = today - timedelta(days=day) + timedelta(hours=hour)
            start += timedelta(seconds=self.rng.randrange(3600))
            if start <= latest:
                return start
        return latest - timedelta(seconds=self.rng.randrange(3600))

    def ending_ago(self, duration: timedelta, minutes: tuple[float, float]) -> datetime:
        """A start for a session whose last event was ``minutes`` ago."""
        ago = timedelta(seconds=round(self.rng.uniform(*minutes) * 60))
        return self.now - ago - duration


@dataclass
class _Draft:
    """A session before it gets its id (ids follow the start-time order)."""

    index: int
    user: DemoUser
    profile: journeys.Profile
    walk: journeys.Walk
    started_at: datetime
    live: bool
    resumed: bool = False

    @property
    def last_event_at(self) -> datetime:
        return self.started_at + (self.walk.steps[-1][0] if self.walk.steps else _ZERO)

    @property
    def outcome(self) -> Outcome:
        if self.walk.state == "COMPLETED":
            return Outcome.COMPLETED
        if self.live or self.resumed:
            return Outcome.ACTIVE
        return Outcome.ABANDONED

    def build(self, session_id: uuid.UUID) -> PlannedSession:
        events = tuple(
            PlannedEvent(f"e{n:03d}", self.started_at + offset, kind, payload)
            for n, (offset, kind, payload) in enumerate(self.walk.steps, start=1)
        )
        outcome = self.outcome
        # An abandoned session's checkpoint, stamped now, would revive it.
        checkpoints = (
            ()
            if outcome is Outcome.ABANDONED
            else tuple(c for _, c in self.walk.checkpoints)
        )
        transitions = [
            e.payload["state"] for e in events if e.kind == "state_transition"
        ]
        return PlannedSession(
            session_id=session_id,
            user_index=self.user.index,
            client_id=self.profile.client_id,
            conversation_type=self.profile.conversation_type,
            language=self.profile.language,
            started_at=self.started_at,
            events=events,
            checkpoints=checkpoints,
            resumed=self.resumed,
            outcome=outcome,
            current_state=transitions[-1] if transitions else "STARTED",
            furthest_stage=max(
                (STAGE_OF_STATE[s].index for s in transitions), default=0
            ),
        )


def _draft(
    rng: random.Random, placement: _Placement, index: int, user: DemoUser, kind: _Kind
) -> _Draft:
    profile = journeys.draw_profile(rng, user.client_id)
    if kind is _Kind.STRUGGLING:
        walk = journeys.struggling_walk(rng, profile)
    else:
        walk = journeys.walk_session(rng, profile, may_drop=kind is _Kind.HISTORICAL)
    if kind is _Kind.LIVE:
        walk = journeys.running_prefix(rng, walk)

    duration = walk.steps[-1][0] if walk.steps else _ZERO
    live = kind in (_Kind.LIVE, _Kind.STRUGGLING)
    if live:
        started_at = placement.ending_ago(duration, LIVE_LAST_EVENT_MINUTES)
    elif kind is _Kind.RECENT:
        started_at = placement.ending_ago(duration, RECENT_COMPLETION_MINUTES)
    else:
        started_at = placement.historical(duration, walk.state == "COMPLETED")
    return _Draft(index, user, profile, walk, started_at, live)


def _choose_resumed(rng: random.Random, drafts: list[_Draft], now: datetime) -> None:
    """Some users who left mid-way lately come back now and resume from a
    checkpoint."""
    candidates = [
        d
        for d in drafts
        if d.outcome is Outcome.ABANDONED
        and d.walk.checkpoints
        and STAGE_OF_STATE[d.walk.state].index in (1, 2)
        and d.last_event_at >= now - RESUME_WITHIN
    ]
    if not candidates:
        return
    count = max(1, round(len(candidates) * RESUMED_SHARE))
    for draft in rng.sample(candidates, k=count):
        draft.resumed = True


# Celery tasks ---------------------------------------------------------------------


def _tasks(
    rng: random.Random,
    seed: int,
    now: datetime,
    sessions: Sequence[PlannedSession],
    count: int,
) -> tuple[PlannedTask, ...]:
    if count == 0:
        return ()
    failing = set(rng.sample(range(count), k=max(1, round(count * FAILING_TASK_SHARE))))
    hindi = [s for s in sessions if s.language == "hi"]
    tasks = []
    for index in range(count):
        correlation_id = str(_uuid(seed, now, f"task/{index}"))
        if index in failing:
            session = rng.choice(hindi or list(sessions))
            name, args = _failing_call(rng, session)
        else:
            session = rng.choice(sessions)
            name, args = _call(rng, session, index)
        tasks.append(
            PlannedTask(
                name,
                args,
                correlation_id,
                session.session_id,
                session.user_index,
                session.client_id,
                index in failing,
            )
        )
    return tuple(tasks)


def _call(
    rng: random.Random, session: PlannedSession, index: int
) -> tuple[str, tuple[Any, ...]]:
    """A task call the task accepts."""
    text = rng.choice(ANSWERS)
    target = TRANSLATION_TARGETS.get(session.language)
    draw = rng.random()
    if target is not None and draw < 0.3:
        return "translate_conversation_step", (str(session.session_id), text, target)
    if draw < 0.5:
        document = f"kb-client-{session.client_id}-doc-{index + 1}"
        return "embed_knowledge_document", (document, text)
    return "process_conversation_step_v2", (str(session.session_id), text, {})


def _failing_call(
    rng: random.Random, session: PlannedSession
) -> tuple[str, tuple[Any, ...]]:
    """A task call the task rejects: the translator has no Hindi, and an
    empty message is not a conversation turn."""
    if session.language == "hi":
        text = rng.choice(ANSWERS)
        return "translate_conversation_step", (str(session.session_id), text, "hi")
    return "process_conversation_step_v2", (str(session.session_id), "", {})
