"""Storing session events and keeping each session's rollup row up to date.

Events may arrive late, out of order or twice. Storing is idempotent on
(session_id, client_event_id), and the rollup is derived so that arrival
order never matters:

- ``current_state`` is the state of the latest state-setting event by event
  time, read back from ``session_events``;
- ``collecting_at`` .. ``completed_at`` keep the earliest time each funnel
  stage was reached (LEAST), ``furthest_stage`` the highest stage index
  (GREATEST) and ``last_activity_at`` the latest event time;
- the counters grow only by the events this call really inserted; other
  event types (activity, checkpoints, resumes) only move last_activity_at.

Callers lock the affected session rows first (``access.visible_sessions``
with ``lock``) and commit afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from server.db import utcnow
from services.sessions.events import (
    ERROR,
    QUESTION_ANSWERED,
    QUESTION_REPEATED,
    STATE_SETTING,
    STATE_TRANSITION,
    EventRow,
)
from services.sessions.states import STAGE_OF_STATE, STAGES

_STATE_SETTING_SQL = ", ".join(f"'{t}'" for t in STATE_SETTING)

# Non-state-setting events without an explicit state happened in the state of
# the latest state-setting event at or before them; errors also keep it in
# their data as ``stage``, which the dashboards show.
_INSERT = f"""
INSERT INTO session_events
    (session_id, client_event_id, event_type, occurred_at, state, data, received_at)
SELECT r.session_id, r.event_id, r.event_type, r.occurred_at, st.state,
       CASE WHEN r.event_type = '{ERROR}'
            THEN r.data || jsonb_build_object('stage', st.state)
            ELSE r.data END,
       :received_at
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
    session_id uuid, event_id text, event_type text,
    occurred_at timestamptz, state text, data jsonb)
CROSS JOIN LATERAL (
    SELECT COALESCE(r.state, (
        SELECT e.state FROM session_events AS e
        WHERE e.session_id = r.session_id
          AND e.event_type IN ({_STATE_SETTING_SQL})
          AND e.occurred_at <= r.occurred_at
        ORDER BY e.occurred_at DESC, e.id DESC
        LIMIT 1
    ), 'STARTED') AS state
) AS st
ORDER BY r.occurred_at
ON CONFLICT (session_id, client_event_id) DO NOTHING
RETURNING id, session_id, client_event_id
"""


def _quoted(states: Sequence[str]) -> str:
    return ", ".join(f"'{state}'" for state in states)


_STAGE_INDEX = (
    "CASE e.state "
    + " ".join(f"WHEN '{s}' THEN {stage.index}" for s, stage in STAGE_OF_STATE.items())
    + " ELSE 0 END"
)
_FIRST_REACHED_DELTA = ",\n".join(
    f"min(e.occurred_at) FILTER (WHERE e.event_type = '{STATE_TRANSITION}'"
    f" AND e.state IN ({_quoted(stage.states)})) AS {stage.reached_column}"
    for stage in STAGES[1:]
)
_FIRST_REACHED_SET = ",\n".join(
    f"{column} = LEAST(s.{column}, d.{column})"
    for column in (stage.reached_column for stage in STAGES[1:])
)

# GREATEST and LEAST ignore NULLs in PostgreSQL, which is what "first reached"
# and "latest error" need when one side has none yet.
_ROLLUP = f"""
UPDATE onboarding_sessions AS s SET
    last_activity_at = GREATEST(s.last_activity_at, d.last_at),
    questions_answered = s.questions_answered + d.answered,
    questions_repeated = s.questions_repeated + d.repeated,
    error_count = s.error_count + d.errors,
    last_error_type = CASE
        WHEN d.last_error_at IS NOT NULL
             AND (s.last_error_at IS NULL OR d.last_error_at >= s.last_error_at)
        THEN d.last_error_type ELSE s.last_error_type END,
    last_error_at = GREATEST(s.last_error_at, d.last_error_at),
    furthest_stage = GREATEST(s.furthest_stage, d.furthest_stage),
    {_FIRST_REACHED_SET},
    current_state = (
        SELECT e.state FROM session_events AS e
        WHERE e.session_id = s.id AND e.event_type IN ({_STATE_SETTING_SQL})
        ORDER BY e.occurred_at DESC, e.id DESC
        LIMIT 1
    )
FROM (
    SELECT e.session_id,
        max(e.occurred_at) AS last_at,
        count(*) FILTER (WHERE e.event_type = '{QUESTION_ANSWERED}') AS answered,
        count(*) FILTER (WHERE e.event_type = '{QUESTION_REPEATED}') AS repeated,
        count(*) FILTER (WHERE e.event_type = '{ERROR}') AS errors,
        max(e.occurred_at) FILTER (WHERE e.event_type = '{ERROR}') AS last_error_at,
        (array_agg(e.data ->> 'error_type' ORDER BY e.occurred_at DESC, e.id DESC)
            FILTER (WHERE e.event_type = '{ERROR}'))[1] AS last_error_type,
        COALESCE(max({_STAGE_INDEX})
            FILTER (WHERE e.event_type = '{STATE_TRANSITION}'), 0) AS furthest_stage,
        {_FIRST_REACHED_DELTA}
    FROM session_events AS e
    WHERE e.id = ANY(:ids)
    GROUP BY e.session_id
) AS d
WHERE s.id = d.session_id
"""


@dataclass(frozen=True)
class Stored:
    """Which events of a call were new, per session."""

    inserted: dict[uuid.UUID, set[str]]

    def inserted_for(self, session_id: uuid.UUID) -> set[str]:
        return self.inserted.get(session_id, set())

    @property
    def total(self) -> int:
        return sum(len(ids) for ids in self.inserted.values())


async def store_events(db: AsyncSession, rows: Sequence[EventRow]) -> Stored:
    """Insert ``rows``, skipping stored ids, and roll the new ones up."""
    # State-setting events go first so that the other events of the same call
    # find the state they happened in.
    setting = [row for row in rows if row.event_type in STATE_SETTING]
    others = [row for row in rows if row.event_type not in STATE_SETTING]
    received_at = utcnow()
    inserted: dict[uuid.UUID, set[str]] = {}
    new_ids: list[int] = []
    for group in (setting, others):
        if not group:
            continue
        result = await db.execute(
            text(_INSERT),
            {
                "rows": json.dumps([row.as_json() for row in group]),
                "received_at": received_at,
            },
        )
        for event_pk, session_id, event_id in result.all():
            new_ids.append(event_pk)
            inserted.setdefault(session_id, set()).add(event_id)
    if new_ids:
        await db.execute(text(_ROLLUP), {"ids": new_ids})
    return Stored(inserted)
