"""GET /dashboard/session-replay/{id}/: the timeline, its summary, ownership."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Account, Stack
from tests.dashboard.api import DashboardApi, dashboard_api
from tests.sessions.api import Api, without_correlation
from tests.sessions.conftest import (
    activity,
    answered,
    error,
    iso,
    record,
    repeated,
    start,
    transition,
    utcnow,
)

MINUTE = timedelta(minutes=1)


def replay(api: DashboardApi, account: Account | None, session_id: str):
    return api.call("GetSessionReplay", account, session_id=session_id)


def event(at: datetime, event_type: str, **data: Any) -> dict[str, Any]:
    return {"timestamp": iso(at), "event_type": event_type, "data": data}


def build_survey(intake: Api, owner: Account) -> tuple[str, datetime]:
    """A session completed 18.5 minutes after its start, its events sent in
    two calls, the second with events older than the first's."""
    began = (utcnow() - timedelta(hours=2)).replace(microsecond=0)
    session_id = start(intake, owner, started_at=began)
    record(
        intake,
        owner,
        session_id,
        [
            transition("t2", began + 10 * MINUTE, "GENERATING_RECOMMENDATIONS"),
            {
                "event_id": "e2",
                "occurred_at": iso(began + 12 * MINUTE),
                "error": {"error_type": "LLM_TIMEOUT", "message": "No answer in 60s"},
            },
            transition("t3", began + 18.5 * MINUTE, "COMPLETED"),
        ],
    )
    record(
        intake,
        owner,
        session_id,
        [
            transition("t1", began + MINUTE, "COLLECTING_INFO"),
            answered("a0", began + 2.5 * MINUTE, 0),
            repeated("r0", began + 3 * MINUTE, 0),
            error("e1", began + 4 * MINUTE, "VALIDATION_ERROR"),
            activity("x1", began + 5 * MINUTE),
            answered("a1", began + 6 * MINUTE, 1),
        ],
    )
    return session_id, began


def test_the_timeline_lists_every_event_in_time_order(
    replay_api: DashboardApi, intake: Api, bob: Account
) -> None:
    session_id, began = build_survey(intake, bob)

    reply = replay(replay_api, bob, session_id)

    assert reply.status == 200, reply.body
    assert reply.body == {
        "session_id": session_id,
        "timeline": [
            event(
                began, "session_start", language="en", conversation_type="site_survey"
            ),
            event(began + MINUTE, "state_transition", current_state="COLLECTING_INFO"),
            event(
                began + 2.5 * MINUTE,
                "question_answered",
                question_index=0,
                question="Question 0?",
                answer_length=10,
            ),
            event(
                began + 3 * MINUTE,
                "question_repeated",
                question_index=0,
                question="Question 0?",
            ),
            event(
                began + 4 * MINUTE,
                "error",
                error_type="VALIDATION_ERROR",
                stage="COLLECTING_INFO",
            ),
            event(began + 5 * MINUTE, "activity", kind="message_sent"),
            event(
                began + 6 * MINUTE,
                "question_answered",
                question_index=1,
                question="Question 1?",
                answer_length=11,
            ),
            event(
                began + 10 * MINUTE,
                "state_transition",
                current_state="GENERATING_RECOMMENDATIONS",
            ),
            event(
                began + 12 * MINUTE,
                "error",
                error_type="LLM_TIMEOUT",
                message="No answer in 60s",
                stage="GENERATING_RECOMMENDATIONS",
            ),
            event(began + 18.5 * MINUTE, "state_transition", current_state="COMPLETED"),
        ],
        "session_summary": {
            "started_at": iso(began),
            "updated_at": iso(began + 18.5 * MINUTE),
            "current_state": "COMPLETED",
            "total_events": 10,
            "duration_minutes": 18.5,
        },
    }


def test_checkpoints_and_resumes_appear_when_they_happened(
    replay_api: DashboardApi, intake: Api, bob: Account
) -> None:
    session_id, began = build_survey(intake, bob)
    created = intake.call(
        "CreateCheckpoint",
        bob,
        session_id=session_id,
        checkpoint_data={"version": 1, "state": "COLLECTING_INFO", "data": {"a": 1}},
    )
    assert created.status == 200, created.body
    before_resume = datetime.now(UTC)
    assert intake.call("ResumeSession", bob, session_id=session_id).status == 200

    body = replay(replay_api, bob, session_id).body

    *earlier, checkpoint, resume = body["timeline"]
    assert len(earlier) == 10
    assert checkpoint == {
        "timestamp": created.body["created_at"],
        "event_type": "checkpoint_created",
        "data": {"checkpoint_version": 1, "state": "COLLECTING_INFO"},
    }
    assert resume["event_type"] == "session_resumed"
    assert resume["data"] == {
        "checkpoint_version": 1,
        "restored_state": "COLLECTING_INFO",
        "source": "redis",
    }
    resumed_at = datetime.fromisoformat(resume["timestamp"])
    assert before_resume - timedelta(seconds=1) <= resumed_at <= datetime.now(UTC)
    summary = body["session_summary"]
    assert summary["updated_at"] == resume["timestamp"]
    assert summary["total_events"] == 12
    # The completed session stays completed: resuming does not change state.
    assert summary["current_state"] == "COMPLETED"
    minutes = (resumed_at - began) / MINUTE
    assert summary["duration_minutes"] == round(minutes, 2)


def test_another_users_session_is_not_found_like_an_unknown_one(
    replay_api: DashboardApi, intake: Api, alice: Account, bob: Account
) -> None:
    session_id, _ = build_survey(intake, bob)
    unknown = str(uuid.uuid4())

    theirs = replay(replay_api, alice, session_id)
    missing = replay(replay_api, alice, unknown)

    assert theirs.status == missing.status == 404
    assert without_correlation(theirs.body) == {
        "error": "session_not_found",
        "detail": "Session not found.",
        "session_id": session_id,
    }
    assert without_correlation(missing.body) == {
        **without_correlation(theirs.body),
        "session_id": unknown,
    }


def test_staff_replay_any_session_and_owners_their_own(
    replay_api: DashboardApi, intake: Api, alice: Account, bob: Account, staff: Account
) -> None:
    session_id, _ = build_survey(intake, bob)
    own_id, _ = build_survey(intake, alice)

    as_staff = replay(replay_api, staff, session_id)
    as_owner = replay(replay_api, bob, session_id)
    own = replay(replay_api, alice, own_id)

    assert as_staff.status == as_owner.status == own.status == 200
    assert as_staff.body == as_owner.body
    assert own.body["session_id"] == own_id


def test_anonymous_callers_are_refused(
    replay_api: DashboardApi, intake: Api, bob: Account
) -> None:
    session_id, _ = build_survey(intake, bob)

    reply = replay(replay_api, None, session_id)

    assert reply.status == 401
    assert reply.body["error"] == "not_authenticated"


def test_a_session_id_that_is_not_a_uuid_is_400(
    replay_api: DashboardApi, bob: Account
) -> None:
    reply = replay(replay_api, bob, "not-a-uuid")

    assert reply.status == 400
    assert reply.body["error"] == "validation_error"
    assert reply.body["field_errors"] == {"session_id": ["Must be a UUID."]}


def test_a_long_timeline_lists_its_first_thousand_events(
    stack: Stack, intake: Api, bob: Account
) -> None:
    began = (utcnow() - timedelta(hours=3)).replace(microsecond=0)
    session_id = start(intake, bob, started_at=began)
    second = timedelta(seconds=1)
    for batch in range(2):
        events = [
            activity(f"x{n}", began + (n + 1) * second)
            for n in range(batch * 600, (batch + 1) * 600)
        ]
        record(intake, bob, session_id, events)

    body = replay(dashboard_api("rest", stack.gateway.port, 0), bob, session_id).body

    timeline = body["timeline"]
    assert len(timeline) == 1000
    assert timeline[0]["event_type"] == "session_start"
    assert timeline[-1]["timestamp"] == iso(began + 999 * second)
    assert body["session_summary"]["total_events"] == 1201
    assert body["session_summary"]["updated_at"] == iso(began + 1200 * second)
    assert body["session_summary"]["duration_minutes"] == 20.0
