"""Starting sessions and recording their events, over REST and gRPC."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from threading import Barrier
from typing import Any

import psycopg
from psycopg.rows import dict_row

from tests.conftest import Account
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


def _rollup(pg: psycopg.Connection[Any], session_id: str) -> dict[str, Any]:
    with pg.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(
            "SELECT current_state, furthest_stage, started_at, last_activity_at,"
            " collecting_at, recommendations_at, approval_at, completed_at,"
            " questions_answered, questions_repeated, error_count,"
            " last_error_type, last_error_at"
            " FROM onboarding_sessions WHERE id = %s",
            (session_id,),
        ).fetchone()
    assert row is not None
    return row


def _events(pg: psycopg.Connection[Any], session_id: str) -> list[tuple[Any, ...]]:
    return pg.execute(
        "SELECT client_event_id, event_type, occurred_at, state, data"
        " FROM session_events WHERE session_id = %s ORDER BY occurred_at, id",
        (session_id,),
    ).fetchall()


def test_start_session_stores_the_session_and_its_start_event(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    session_id = str(uuid.uuid4())
    began = utcnow().replace(microsecond=0) - timedelta(minutes=3)

    reply = api.call(
        "StartSession",
        alice,
        session_id=session_id,
        client_id=42,
        conversation_type="business_unit_setup",
        language="pt-BR",
        started_at=iso(began),
    )

    assert reply.status == 200
    assert reply.body == {
        "status": "created",
        "session": {
            "session_id": session_id,
            "user_id": alice.id,
            "client_id": 42,
            "conversation_type": "business_unit_setup",
            "language": "pt-BR",
            "current_state": "STARTED",
            "started_at": iso(began),
            "last_activity": iso(began),
            "furthest_stage": 0,
            "questions_answered": 0,
            "questions_repeated": 0,
            "error_count": 0,
            "completed": False,
            "abandoned": False,
        },
    }
    assert _events(pg, session_id) == [
        (
            "srv:session_start",
            "session_start",
            began,
            "STARTED",
            {
                "language": "pt-BR",
                "conversation_type": "business_unit_setup",
                "client_id": 42,
            },
        )
    ]


def test_starting_the_same_session_again_answers_existing(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    fields = {
        "session_id": str(uuid.uuid4()),
        "client_id": 1,
        "conversation_type": "site_survey",
        "language": "en",
        "started_at": iso(utcnow()),
    }
    first = api.call("StartSession", alice, **fields)

    again = api.call("StartSession", alice, **fields)

    assert again.status == 200
    assert again.body["status"] == "existing"
    assert again.body["session"] == first.body["session"]
    assert len(_events(pg, fields["session_id"])) == 1


def test_a_different_session_with_a_taken_id_is_a_conflict(
    api: Api, alice: Account, bob: Account
) -> None:
    session_id = start(api, alice)

    reply = api.call(
        "StartSession",
        bob,
        session_id=session_id,
        client_id=1,
        conversation_type="site_survey",
        language="en",
        started_at=iso(utcnow()),
    )

    assert reply.status == 409
    assert without_correlation(reply.body) == {
        "error": "session_exists",
        "detail": "A different session already uses this session id.",
        "session_id": session_id,
    }


def test_start_session_lists_every_invalid_field(api: Api, alice: Account) -> None:
    reply = api.call(
        "StartSession",
        alice,
        session_id="not-a-uuid",
        client_id=0,
        conversation_type="tax_return",
        language="english please",
        started_at=iso(utcnow() + timedelta(hours=1)),
    )

    assert reply.status == 400
    assert reply.body["error"] == "validation_error"
    assert reply.body["field_errors"] == {
        "session_id": ["Must be a UUID."],
        "client_id": ["Ensure this value is at least 1."],
        "conversation_type": ["Must be one of: site_survey, business_unit_setup."],
        "language": ["Must be a language tag such as en or pt-BR."],
        "started_at": ["Must not be more than 5 minutes in the future."],
    }


def test_required_start_fields_are_named(api: Api, alice: Account) -> None:
    reply = api.call("StartSession", alice)

    assert reply.status == 400
    required = ["This field is required."]
    assert reply.body["field_errors"] == {
        "session_id": required,
        "client_id": ["Ensure this value is at least 1."],
        "conversation_type": required,
        "language": required,
        "started_at": required,
    }


def test_standard_user_cannot_start_a_session_for_someone_else(
    api: Api, alice: Account, bob: Account
) -> None:
    reply = api.call(
        "StartSession",
        alice,
        session_id=str(uuid.uuid4()),
        user_id=bob.id,
        client_id=1,
        conversation_type="site_survey",
        language="en",
        started_at=iso(utcnow()),
    )

    assert reply.status == 403
    assert reply.body["error"] == "not_session_owner"


def test_staff_start_a_session_that_its_user_then_owns(
    api: Api, staff: Account, alice: Account
) -> None:
    session_id = str(uuid.uuid4())
    reply = api.call(
        "StartSession",
        staff,
        session_id=session_id,
        user_id=alice.id,
        client_id=1,
        conversation_type="site_survey",
        language="en",
        started_at=iso(utcnow()),
    )

    assert reply.status == 200
    assert reply.body["session"]["user_id"] == alice.id
    risk = api.call("GetAbandonmentRisk", alice, session_id=session_id)
    assert risk.status == 200


def test_staff_naming_an_unknown_user_is_a_field_error(
    api: Api, staff: Account
) -> None:
    reply = api.call(
        "StartSession",
        staff,
        session_id=str(uuid.uuid4()),
        user_id=999_999,
        client_id=1,
        conversation_type="site_survey",
        language="en",
        started_at=iso(utcnow()),
    )

    assert reply.status == 400
    assert reply.body["field_errors"] == {"user_id": ["No such user."]}


def test_events_roll_up_into_the_session(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow().replace(microsecond=0) - timedelta(minutes=30)
    session_id = start(api, alice, started_at=t0)
    m = timedelta(minutes=1)

    reply = api.call(
        "RecordEvents",
        alice,
        session_id=session_id,
        events=[
            transition("t1", t0 + 1 * m, "COLLECTING_INFO"),
            answered("a1", t0 + 2 * m, 0),
            repeated("r1", t0 + 3 * m, 0),
            answered("a2", t0 + 4 * m, 1),
            transition("t2", t0 + 5 * m, "ASKING_QUESTIONS"),
            error("x1", t0 + 6 * m, "LLM_TIMEOUT"),
            transition("t3", t0 + 7 * m, "GENERATING_RECOMMENDATIONS"),
            error("x2", t0 + 8 * m, "LLM_RATE_LIMIT"),
            activity("v1", t0 + 9 * m),
        ],
    )

    assert reply.status == 200
    assert reply.body["recorded_count"] == 9
    assert reply.body["duplicate_count"] == 0
    assert reply.body["session"]["current_state"] == "GENERATING_RECOMMENDATIONS"
    assert reply.body["session"]["last_activity"] == iso(t0 + 9 * m)
    assert _rollup(pg, session_id) == {
        "current_state": "GENERATING_RECOMMENDATIONS",
        "furthest_stage": 2,
        "started_at": t0,
        "last_activity_at": t0 + 9 * m,
        "collecting_at": t0 + 1 * m,
        "recommendations_at": t0 + 7 * m,
        "approval_at": None,
        "completed_at": None,
        "questions_answered": 2,
        "questions_repeated": 1,
        "error_count": 2,
        "last_error_type": "LLM_RATE_LIMIT",
        "last_error_at": t0 + 8 * m,
    }


def test_late_events_never_move_the_rollup_back(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow().replace(microsecond=0) - timedelta(minutes=30)
    session_id = start(api, alice, started_at=t0)
    m = timedelta(minutes=1)
    record(
        api,
        alice,
        session_id,
        [
            transition("t3", t0 + 10 * m, "PENDING_APPROVAL"),
            error("x2", t0 + 11 * m, "LATE_ERROR"),
        ],
    )

    # Older events arrive afterwards, out of order.
    record(
        api,
        alice,
        session_id,
        [
            transition("t2", t0 + 5 * m, "GENERATING_RECOMMENDATIONS"),
            error("x1", t0 + 6 * m, "EARLY_ERROR"),
            transition("t1", t0 + 2 * m, "COLLECTING_INFO"),
        ],
    )

    rollup = _rollup(pg, session_id)
    assert rollup["current_state"] == "PENDING_APPROVAL"
    assert rollup["furthest_stage"] == 3
    assert rollup["last_activity_at"] == t0 + 11 * m
    assert rollup["last_error_type"] == "LATE_ERROR"
    assert rollup["last_error_at"] == t0 + 11 * m
    assert (rollup["collecting_at"], rollup["recommendations_at"]) == (
        t0 + 2 * m,
        t0 + 5 * m,
    )
    assert rollup["approval_at"] == t0 + 10 * m


def test_a_stage_keeps_the_time_it_was_first_reached(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow().replace(microsecond=0) - timedelta(minutes=30)
    session_id = start(api, alice, started_at=t0)
    m = timedelta(minutes=1)

    record(
        api,
        alice,
        session_id,
        [
            transition("t1", t0 + 1 * m, "ASKING_QUESTIONS"),
            transition("t2", t0 + 2 * m, "GENERATING_RECOMMENDATIONS"),
            transition("t3", t0 + 3 * m, "COLLECTING_INFO"),
        ],
    )

    rollup = _rollup(pg, session_id)
    assert rollup["current_state"] == "COLLECTING_INFO"
    assert rollup["collecting_at"] == t0 + 1 * m
    assert rollup["furthest_stage"] == 2


def test_events_keep_their_own_time_and_the_state_they_happened_in(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow().replace(microsecond=0) - timedelta(minutes=30)
    session_id = start(api, alice, started_at=t0)
    m = timedelta(minutes=1)

    record(
        api,
        alice,
        session_id,
        [
            error("x0", t0 + 1 * m, "EARLY"),
            transition("t1", t0 + 2 * m, "COLLECTING_INFO"),
            error("x1", t0 + 3 * m, "LLM_TIMEOUT"),
            error("x2", t0 + 4 * m, "LLM_TIMEOUT", stage="AWAITING_APPROVAL"),
            answered("a1", t0 + 5 * m, 0),
        ],
    )

    assert _events(pg, session_id) == [
        ("srv:session_start", "session_start", t0, "STARTED", _start_data()),
        (
            "x0",
            "error",
            t0 + 1 * m,
            "STARTED",
            {"error_type": "EARLY", "stage": "STARTED"},
        ),
        (
            "t1",
            "state_transition",
            t0 + 2 * m,
            "COLLECTING_INFO",
            {"current_state": "COLLECTING_INFO"},
        ),
        (
            "x1",
            "error",
            t0 + 3 * m,
            "COLLECTING_INFO",
            {"error_type": "LLM_TIMEOUT", "stage": "COLLECTING_INFO"},
        ),
        (
            "x2",
            "error",
            t0 + 4 * m,
            "AWAITING_APPROVAL",
            {"error_type": "LLM_TIMEOUT", "stage": "AWAITING_APPROVAL"},
        ),
        (
            "a1",
            "question_answered",
            t0 + 5 * m,
            "COLLECTING_INFO",
            {"question_index": 0, "question": "Question 0?", "answer_length": 10},
        ),
    ]


def _start_data() -> dict[str, Any]:
    return {"language": "en", "conversation_type": "site_survey", "client_id": 1}


def test_a_retried_send_is_stored_once(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow() - timedelta(minutes=10)
    session_id = start(api, alice, started_at=t0)
    events = [
        answered("a1", t0 + timedelta(minutes=1), 0),
        error("x1", t0 + timedelta(minutes=2)),
    ]
    record(api, alice, session_id, events)

    retry = api.call(
        "RecordEvents",
        alice,
        session_id=session_id,
        events=[*events, repeated("r1", t0 + timedelta(minutes=3), 0)],
    )

    assert retry.status == 200
    assert retry.body["recorded_count"] == 1
    assert retry.body["duplicate_count"] == 2
    assert retry.body["duplicate_event_ids"] == ["a1", "x1"]
    rollup = _rollup(pg, session_id)
    assert (rollup["questions_answered"], rollup["error_count"]) == (1, 1)
    assert rollup["questions_repeated"] == 1
    assert len(_events(pg, session_id)) == 4


def test_concurrent_retries_are_stored_once(
    setup_api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow() - timedelta(minutes=10)
    session_id = start(setup_api, alice, started_at=t0)
    events = [answered(f"a{i}", t0 + timedelta(seconds=i + 1), i) for i in range(20)]
    senders = 6
    barrier = Barrier(senders)

    def send(_: int) -> int:
        barrier.wait()
        reply = setup_api.call(
            "RecordEvents", alice, session_id=session_id, events=events
        )
        assert reply.status == 200, reply.body
        return int(reply.body["recorded_count"])

    with ThreadPoolExecutor(senders) as pool:
        recorded = list(pool.map(send, range(senders)))

    assert sorted(recorded) == [0] * (senders - 1) + [20]
    assert _rollup(pg, session_id)["questions_answered"] == 20


def test_invalid_events_are_rejected_and_nothing_is_stored(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow() - timedelta(minutes=10)
    session_id = start(api, alice, started_at=t0)
    at = iso(t0 + timedelta(minutes=1))

    reply = api.call(
        "RecordEvents",
        alice,
        session_id=session_id,
        events=[
            answered("fine", t0 + timedelta(minutes=1), 0),
            {"event_id": "no-time", "activity": {}},
            {"event_id": "no-kind", "occurred_at": at},
            {"event_id": "srv:mine", "occurred_at": at, "activity": {}},
            {"event_id": "", "occurred_at": at, "state_transition": {"state": "DONE"}},
            {"event_id": "e", "occurred_at": at, "error": {"error_type": "timeout"}},
            {
                "event_id": "q",
                "occurred_at": at,
                "question_answered": {"question_index": -1, "answer_length": -2},
            },
            {"event_id": "n", "occurred_at": at, "activity": {"kind": "a\u0000"}},
        ],
    )

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "events[1].occurred_at": ["This field is required."],
        "events[2].kind": [
            "Exactly one of state_transition, question_answered, "
            "question_repeated, error or activity is required."
        ],
        "events[3].event_id": ["The srv: prefix is reserved for the server."],
        "events[4].event_id": ["This field is required."],
        "events[4].state_transition.state": [
            "Must be one of: STARTED, INITIAL_PROMPT, COLLECTING_INFO, "
            "ASKING_QUESTIONS, GENERATING_RECOMMENDATIONS, AWAITING_APPROVAL, "
            "PENDING_APPROVAL, COMPLETED."
        ],
        "events[5].error.error_type": [
            "Use upper snake case of at most 60 characters, such as LLM_TIMEOUT."
        ],
        "events[6].question_answered.question_index": [
            "Ensure this value is at least 0."
        ],
        "events[6].question_answered.question": ["This field is required."],
        "events[6].question_answered.answer_length": [
            "Ensure this value is at least 0."
        ],
        "events[7].activity.kind": ["Must not contain NUL (U+0000) characters."],
    }
    assert len(_events(pg, session_id)) == 1


def test_event_times_must_be_plausible(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow() - timedelta(minutes=10)
    session_id = start(api, alice, started_at=t0)

    reply = api.call(
        "RecordEvents",
        alice,
        session_id=session_id,
        events=[
            activity("ok", t0 + timedelta(minutes=1)),
            activity("before", t0 - timedelta(seconds=1)),
            activity("future", utcnow() + timedelta(minutes=6)),
        ],
    )

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "events[2].occurred_at": ["Must not be more than 5 minutes in the future."]
    }
    reply = api.call(
        "RecordEvents",
        alice,
        session_id=session_id,
        events=[
            activity("ok", t0 + timedelta(minutes=1)),
            activity("before", t0 - timedelta(seconds=1)),
        ],
    )
    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "events[1].occurred_at": ["Must not be before the session started."]
    }
    assert len(_events(pg, session_id)) == 1


def test_one_request_may_not_repeat_an_event_id(api: Api, alice: Account) -> None:
    t0 = utcnow() - timedelta(minutes=10)
    session_id = start(api, alice, started_at=t0)

    reply = api.call(
        "RecordEvents",
        alice,
        session_id=session_id,
        events=[
            activity("same", t0 + timedelta(minutes=1)),
            error("same", t0 + timedelta(minutes=2)),
        ],
    )

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "events[1].event_id": ["Duplicate event_id in this request."]
    }


def test_a_call_carries_at_most_the_batch_limit(api: Api, alice: Account) -> None:
    t0 = utcnow() - timedelta(minutes=30)
    session_id = start(api, alice, started_at=t0)
    events = [activity(f"v{i}", t0 + timedelta(seconds=1)) for i in range(1001)]

    reply = api.call("RecordEvents", alice, session_id=session_id, events=events)

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "events": ["Send at most 1000 events per call."]
    }


def test_an_empty_call_is_rejected(api: Api, alice: Account) -> None:
    session_id = start(api, alice)

    reply = api.call("RecordEvents", alice, session_id=session_id, events=[])

    assert reply.status == 400
    assert reply.body["field_errors"] == {"events": ["At least one event is required."]}


def test_completion_is_rolled_up(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow().replace(microsecond=0) - timedelta(minutes=20)
    session_id = start(api, alice, started_at=t0)

    reply = api.call(
        "RecordEvents",
        alice,
        session_id=session_id,
        events=[transition("done", t0 + timedelta(minutes=15), "COMPLETED")],
    )

    assert reply.body["session"]["completed"] is True
    assert reply.body["session"]["furthest_stage"] == 4
    assert _rollup(pg, session_id)["completed_at"] == t0 + timedelta(minutes=15)


def test_batch_records_several_sessions_at_once(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow() - timedelta(minutes=10)
    first, second = start(api, alice, started_at=t0), start(api, alice, started_at=t0)
    record(api, alice, second, [activity("old", t0 + timedelta(minutes=1))])

    reply = api.call(
        "BatchRecordEvents",
        alice,
        requests=[
            {"session_id": first, "events": [error("x", t0 + timedelta(minutes=2))]},
            {
                "session_id": second,
                "events": [
                    activity("old", t0 + timedelta(minutes=1)),
                    repeated("r", t0 + timedelta(minutes=3), 0),
                ],
            },
        ],
    )

    assert reply.status == 200
    assert reply.body["recorded_count"] == 2
    assert reply.body["duplicate_count"] == 1
    results = reply.body["responses"]
    assert [r["session_id"] for r in results] == [first, second]
    assert [r["recorded_count"] for r in results] == [1, 1]
    assert results[1]["duplicate_event_ids"] == ["old"]
    assert results[0]["session"]["error_count"] == 1
    assert results[1]["session"]["questions_repeated"] == 1


def test_a_batch_is_stored_whole_or_not_at_all(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    t0 = utcnow() - timedelta(minutes=10)
    first, second = start(api, alice, started_at=t0), start(api, alice, started_at=t0)

    reply = api.call(
        "BatchRecordEvents",
        alice,
        requests=[
            {"session_id": first, "events": [error("x", t0 + timedelta(minutes=2))]},
            {"session_id": second, "events": [{"event_id": "bad", "activity": {}}]},
        ],
    )

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "requests[1].events[0].occurred_at": ["This field is required."]
    }
    assert len(_events(pg, first)) == 1


def test_an_empty_batch_is_rejected(api: Api, alice: Account) -> None:
    reply = api.call("BatchRecordEvents", alice, requests=[])

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "requests": ["At least one entry is required."]
    }


def test_a_session_idle_past_the_timeout_is_abandoned_until_it_is_active(
    api: Api, alice: Account
) -> None:
    began = utcnow() - timedelta(minutes=31)
    session_id = str(uuid.uuid4())
    started = api.call(
        "StartSession",
        alice,
        session_id=session_id,
        client_id=1,
        conversation_type="site_survey",
        language="en",
        started_at=iso(began),
    )

    back = api.call(
        "RecordEvents", alice, session_id=session_id, events=[activity("v", utcnow())]
    )

    assert started.body["session"]["abandoned"] is True
    assert back.body["session"]["abandoned"] is False
