"""Checkpoints: create, dedupe, races, size limit, resume and history."""

from __future__ import annotations

import hashlib
import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from threading import Barrier
from typing import Any

import psycopg
import pytest
import redis
from onboarding.v1 import sessions_pb2

from tests.conftest import Account, Stack
from tests.sessions.api import Api, Reply, without_correlation
from tests.sessions.conftest import api_for, start, utcnow

ANSWERS = [
    {"question": "Site name?", "answer": "Factory A"},
    {"question": "Location?", "answer": "Mumbai"},
]
DATA = {"answers": ANSWERS, "progress": 0.4}


def _create(
    api: Api,
    account: Account,
    session_id: str,
    version: int,
    data: dict[str, Any] | None = None,
    state: str = "COLLECTING_INFO",
    force: bool = False,
) -> Reply:
    return api.call(
        "CreateCheckpoint",
        account,
        session_id=session_id,
        checkpoint_data={"version": version, "state": state, "data": data or DATA},
        force=force,
    )


def _expected_hash(state: str, data: dict[str, Any]) -> str:
    document = json.dumps(
        {"state": state, "data": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(document.encode()).hexdigest()


def _stored_versions(pg: psycopg.Connection[Any], session_id: str) -> list[int]:
    rows = pg.execute(
        "SELECT version FROM session_checkpoints WHERE session_id = %s"
        " ORDER BY version",
        (session_id,),
    ).fetchall()
    return [version for (version,) in rows]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_create_stores_in_postgresql_and_redis(
    api: Api,
    alice: Account,
    pg: psycopg.Connection[Any],
    redis_client: redis.Redis,
) -> None:
    session_id = start(api, alice)
    before = utcnow()

    reply = _create(api, alice, session_id, 1)

    assert reply.status == 200
    body = reply.body
    assert {k: v for k, v in body.items() if k != "created_at"} == {
        "status": "created",
        "checkpoint_version": 1,
        "checkpoint_hash": _expected_hash("COLLECTING_INFO", DATA),
        "storage": {"redis": True, "postgresql": True},
        "ttl_seconds": 3600,
    }
    assert before <= _parse_time(body["created_at"]) <= utcnow()
    assert _stored_versions(pg, session_id) == [1]
    key = f"ckpt:{session_id}:1"
    assert 3590 < redis_client.ttl(key) <= 3600
    hot = json.loads(redis_client.get(key))  # type: ignore[arg-type]
    assert (hot["version"], hot["state"], hot["data"]) == (1, "COLLECTING_INFO", DATA)


def test_creating_a_checkpoint_is_recorded_as_an_event(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    session_id = start(api, alice)

    _create(api, alice, session_id, 3, state="ASKING_QUESTIONS")

    rows = pg.execute(
        "SELECT client_event_id, data FROM session_events"
        " WHERE session_id = %s AND event_type = 'checkpoint_created'",
        (session_id,),
    ).fetchall()
    assert rows == [
        ("srv:checkpoint:3", {"checkpoint_version": 3, "state": "ASKING_QUESTIONS"})
    ]


def test_a_checkpoint_equal_to_the_latest_is_not_stored_again(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    session_id = start(api, alice)
    first = _create(api, alice, session_id, 1)

    again = _create(api, alice, session_id, 2)

    assert again.status == 200
    assert again.body["status"] == "unchanged"
    assert again.body["checkpoint_version"] == 1
    assert again.body["checkpoint_hash"] == first.body["checkpoint_hash"]
    assert again.body["created_at"] == first.body["created_at"]
    assert _stored_versions(pg, session_id) == [1]


def test_key_order_and_integral_numbers_do_not_change_the_hash(
    api: Api, alice: Account
) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1, data={"progress": 1, "step": 2.0})

    again = _create(api, alice, session_id, 2, data={"step": 2, "progress": 1.0})

    assert again.body["status"] == "unchanged"


def test_force_stores_an_identical_checkpoint(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    session_id = start(api, alice)
    first = _create(api, alice, session_id, 1)

    forced = _create(api, alice, session_id, 2, force=True)

    assert forced.body["status"] == "created"
    assert forced.body["checkpoint_version"] == 2
    assert forced.body["checkpoint_hash"] == first.body["checkpoint_hash"]
    assert _stored_versions(pg, session_id) == [1, 2]


def test_a_version_not_newer_than_the_latest_is_a_conflict(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 3)

    reply = _create(api, alice, session_id, 2, data={"other": True})

    assert reply.status == 409
    assert without_correlation(reply.body) == {
        "error": "checkpoint_version_conflict",
        "detail": "Checkpoint version 2 is not newer than the latest stored version 3.",
        "session_id": session_id,
        "latest_version": 3,
    }
    assert _stored_versions(pg, session_id) == [3]


def test_racing_writers_of_one_version_one_wins_the_others_conflict(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1)
    writers = 8
    barrier = Barrier(writers)

    def write(n: int) -> Reply:
        barrier.wait()
        return _create(api, alice, session_id, 2, data={"writer": n})

    with ThreadPoolExecutor(writers) as pool:
        replies = list(pool.map(write, range(writers)))

    statuses = sorted(reply.status for reply in replies)
    assert statuses == [200] + [409] * (writers - 1)
    winner = next(n for n, reply in enumerate(replies) if reply.status == 200)
    assert {r.body["error"] for r in replies if r.status == 409} == {
        "checkpoint_version_conflict"
    }
    stored = pg.execute(
        "SELECT data FROM session_checkpoints WHERE session_id = %s AND version = 2",
        (session_id,),
    ).fetchall()
    assert stored == [({"writer": winner},)]


def test_oversized_data_is_rejected_and_nothing_is_stored(
    api: Api,
    alice: Account,
    pg: psycopg.Connection[Any],
    redis_client: redis.Redis,
) -> None:
    session_id = start(api, alice)
    blob = "x" * (1024 * 1024)

    reply = _create(api, alice, session_id, 1, data={"blob": blob})

    assert reply.status == 400
    size = len('{"blob":""}') + len(blob)
    assert reply.body["field_errors"] == {
        "checkpoint_data.data": [
            f"Ensure the data is at most 1048576 bytes as JSON (it is {size})."
        ]
    }
    assert _stored_versions(pg, session_id) == []
    assert redis_client.exists(f"ckpt:{session_id}:1") == 0


def test_data_at_the_size_limit_is_accepted(api: Api, alice: Account) -> None:
    session_id = start(api, alice)
    blob = "x" * (1024 * 1024 - len('{"blob":""}'))

    reply = _create(api, alice, session_id, 1, data={"blob": blob})

    assert reply.status == 200


def test_invalid_checkpoints_list_every_problem(api: Api, alice: Account) -> None:
    session_id = start(api, alice)

    reply = api.call(
        "CreateCheckpoint",
        alice,
        session_id=session_id,
        checkpoint_data={"version": 0, "state": "FINISHED"},
    )

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "checkpoint_data.version": ["Ensure this value is at least 1."],
        "checkpoint_data.state": [
            "Must be one of: STARTED, INITIAL_PROMPT, COLLECTING_INFO, "
            "ASKING_QUESTIONS, GENERATING_RECOMMENDATIONS, AWAITING_APPROVAL, "
            "PENDING_APPROVAL, COMPLETED."
        ],
        "checkpoint_data.data": ["This field is required."],
    }


def test_nul_characters_are_rejected_before_postgresql_sees_them(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    session_id = start(api, alice)

    reply = _create(api, alice, session_id, 1, data={"name": "a\u0000b"})

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "checkpoint_data.data": ["Must not contain NUL (U+0000) characters."]
    }
    assert _stored_versions(pg, session_id) == []


@pytest.mark.parametrize("transport", ["grpc_gateway", "grpc_direct"])
def test_numbers_that_are_not_json_are_rejected(
    stack: Stack, alice: Account, transport: str
) -> None:
    api = api_for(transport, stack.gateway.port, stack.server.port)
    session_id = start(api, alice)
    request = sessions_pb2.CreateCheckpointRequest(session_id=session_id)
    request.checkpoint_data.version = 1
    request.checkpoint_data.state = "STARTED"
    request.checkpoint_data.data.update({"progress": math.nan})

    reply = api.send("CreateCheckpoint", alice, request)

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "checkpoint_data.data": ["Numbers must be finite."]
    }


def test_checkpoint_data_is_required(api: Api, alice: Account) -> None:
    session_id = start(api, alice)

    reply = api.call("CreateCheckpoint", alice, session_id=session_id)

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "checkpoint_data": ["This field is required."]
    }


def test_a_malformed_session_id_is_a_field_error(api: Api, alice: Account) -> None:
    reply = api.call(
        "CreateCheckpoint",
        alice,
        session_id="123",
        checkpoint_data={"version": 1, "state": "STARTED", "data": {}},
    )

    assert reply.status == 400
    assert reply.body["field_errors"] == {"session_id": ["Must be a UUID."]}


def test_resume_restores_the_latest_checkpoint_from_redis(
    api: Api, alice: Account
) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1, data={"answers": ANSWERS[:1], "progress": 0.2})
    _create(api, alice, session_id, 2, state="PENDING_APPROVAL")
    time.sleep(1.1)

    reply = api.call("ResumeSession", alice, session_id=session_id)

    assert reply.status == 200
    assert reply.headers["x-checkpoint-source"] == "redis"
    age = reply.body.pop("checkpoint_age_seconds")
    assert 1 <= age <= 5
    assert reply.body == {
        "status": "resumed",
        "session_id": session_id,
        "restored_state": "PENDING_APPROVAL",
        "restored_data": DATA,
        "checkpoint_version": 2,
        "next_action": {
            "type": "check_approval",
            "description": "Check the status of the pending approval",
        },
    }


def test_resume_restores_a_given_version(api: Api, alice: Account) -> None:
    session_id = start(api, alice)
    older = {"answers": ANSWERS[:1], "progress": 0.2}
    _create(api, alice, session_id, 1, data=older)
    _create(api, alice, session_id, 2)

    reply = api.call(
        "ResumeSession", alice, session_id=session_id, checkpoint_version=1
    )

    assert reply.status == 200
    assert reply.body["checkpoint_version"] == 1
    assert reply.body["restored_data"] == older
    assert reply.body["next_action"] == {
        "type": "continue_questions",
        "description": "Resume answering remaining questions",
    }


def test_a_null_version_means_the_latest(api: Api, alice: Account) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1)
    _create(api, alice, session_id, 2, data={"progress": 0.5})

    reply = api.call(
        "ResumeSession", alice, session_id=session_id, checkpoint_version=None
    )

    assert reply.body["checkpoint_version"] == 2


def test_resuming_renews_the_hot_copy_ttl(
    api: Api, alice: Account, redis_client: redis.Redis
) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1)
    key = f"ckpt:{session_id}:1"
    redis_client.expire(key, 30)

    reply = api.call("ResumeSession", alice, session_id=session_id)

    assert reply.headers["x-checkpoint-source"] == "redis"
    assert 3590 < redis_client.ttl(key) <= 3600


def test_an_expired_hot_copy_falls_back_to_postgresql_and_is_warmed_again(
    api: Api, alice: Account, redis_client: redis.Redis
) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1)
    key = f"ckpt:{session_id}:1"
    redis_client.pexpire(key, 1)
    time.sleep(0.05)
    assert redis_client.exists(key) == 0

    cold = api.call("ResumeSession", alice, session_id=session_id)
    warm = api.call("ResumeSession", alice, session_id=session_id)

    assert cold.status == 200
    assert cold.headers["x-checkpoint-source"] == "postgresql"
    assert cold.body["restored_data"] == DATA
    assert 3590 < redis_client.ttl(key) <= 3600
    assert warm.headers["x-checkpoint-source"] == "redis"
    assert warm.body["restored_data"] == DATA


def test_a_hot_copy_that_disagrees_with_postgresql_is_never_served(
    api: Api, alice: Account, redis_client: redis.Redis
) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1)
    key = f"ckpt:{session_id}:1"
    stale = json.loads(redis_client.get(key))  # type: ignore[arg-type]
    stale.update(checkpoint_hash="0" * 64, data={"stale": True})
    redis_client.set(key, json.dumps(stale))

    reply = api.call("ResumeSession", alice, session_id=session_id)

    assert reply.headers["x-checkpoint-source"] == "postgresql"
    assert reply.body["restored_data"] == DATA


def test_resuming_is_recorded_as_an_event(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1)

    api.call("ResumeSession", alice, session_id=session_id)

    rows = pg.execute(
        "SELECT client_event_id, data FROM session_events"
        " WHERE session_id = %s AND event_type = 'session_resumed'",
        (session_id,),
    ).fetchall()
    assert len(rows) == 1
    assert rows[0][0].startswith("srv:resume:")
    assert rows[0][1] == {
        "checkpoint_version": 1,
        "restored_state": "COLLECTING_INFO",
        "source": "redis",
    }


def test_resume_without_checkpoints_is_the_documented_404(
    api: Api, alice: Account
) -> None:
    session_id = start(api, alice)

    reply = api.call("ResumeSession", alice, session_id=session_id)

    assert reply.status == 404
    assert without_correlation(reply.body) == {
        "error": "no_checkpoints_found",
        "detail": "No checkpoints available for this session",
        "session_id": session_id,
        "suggestion": "Start a new session instead",
    }


def test_resume_of_a_missing_version_is_404(api: Api, alice: Account) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1)

    reply = api.call(
        "ResumeSession", alice, session_id=session_id, checkpoint_version=7
    )

    assert reply.status == 404
    assert without_correlation(reply.body) == {
        "error": "checkpoint_not_found",
        "detail": "Checkpoint version 7 does not exist for this session.",
        "session_id": session_id,
        "checkpoint_version": 7,
    }


def test_resume_rejects_a_non_positive_version(api: Api, alice: Account) -> None:
    session_id = start(api, alice)

    reply = api.call(
        "ResumeSession", alice, session_id=session_id, checkpoint_version=0
    )

    assert reply.status == 400
    assert reply.body["field_errors"] == {
        "checkpoint_version": ["Ensure this value is at least 1."]
    }


def test_every_state_has_a_next_action(api: Api, alice: Account) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1, state="GENERATING_RECOMMENDATIONS")

    reply = api.call("ResumeSession", alice, session_id=session_id)

    assert reply.body["next_action"]["type"] == "generate_recommendations"


def test_list_returns_newest_first_with_summaries(api: Api, alice: Account) -> None:
    session_id = start(api, alice)
    states = ["COLLECTING_INFO", "ASKING_QUESTIONS", "GENERATING_RECOMMENDATIONS"]
    for version, state in enumerate(states, start=1):
        data = {"answers": ANSWERS * version, "progress": version / 10}
        _create(api, alice, session_id, version, data=data, state=state)
    _create(api, alice, session_id, 4, data={"note": "no answers"}, state="COMPLETED")

    reply = api.call("ListCheckpoints", alice, session_id=session_id, limit=3)

    assert reply.status == 200
    assert reply.body["session_id"] == session_id
    assert reply.body["total_checkpoints"] == 4
    listed = [
        (c["version"], c["state"], c["data_summary"]) for c in reply.body["checkpoints"]
    ]
    assert listed == [
        (4, "COMPLETED", {"answers_count": 0}),
        (3, "GENERATING_RECOMMENDATIONS", {"answers_count": 6, "progress": 0.3}),
        (2, "ASKING_QUESTIONS", {"answers_count": 4, "progress": 0.2}),
    ]
    hashes = [c["checkpoint_hash"] for c in reply.body["checkpoints"]]
    assert hashes[0] == _expected_hash("COMPLETED", {"note": "no answers"})
    times = [_parse_time(c["created_at"]) for c in reply.body["checkpoints"]]
    assert times == sorted(times, reverse=True)


def test_list_defaults_to_ten(api: Api, alice: Account) -> None:
    session_id = start(api, alice)
    for version in range(1, 13):
        _create(api, alice, session_id, version, data={"step": version})

    reply = api.call("ListCheckpoints", alice, session_id=session_id)

    assert reply.body["total_checkpoints"] == 12
    assert [c["version"] for c in reply.body["checkpoints"]] == list(range(12, 2, -1))


def test_list_of_a_session_without_checkpoints_is_empty(
    api: Api, alice: Account
) -> None:
    session_id = start(api, alice)

    reply = api.call("ListCheckpoints", alice, session_id=session_id)

    assert reply.body == {
        "session_id": session_id,
        "total_checkpoints": 0,
        "checkpoints": [],
    }


def test_list_limit_is_bounded(api: Api, alice: Account) -> None:
    session_id = start(api, alice)

    too_many = api.call("ListCheckpoints", alice, session_id=session_id, limit=101)
    negative = api.call("ListCheckpoints", alice, session_id=session_id, limit=-1)

    assert too_many.status == 400
    assert too_many.body["field_errors"] == {
        "limit": ["Ensure this value is at most 100."]
    }
    assert negative.body["field_errors"] == {
        "limit": ["Ensure this value is at least 1."]
    }


def test_a_checkpoint_of_an_unknown_session_is_404(api: Api, alice: Account) -> None:
    reply = _create(api, alice, "550e8400-e29b-41d4-a716-446655440000", 1)

    assert reply.status == 404
    assert without_correlation(reply.body) == {
        "error": "session_not_found",
        "detail": "Session not found.",
        "session_id": "550e8400-e29b-41d4-a716-446655440000",
    }


def test_checkpoint_age_is_measured_from_creation(
    api: Api, alice: Account, pg: psycopg.Connection[Any]
) -> None:
    session_id = start(api, alice)
    _create(api, alice, session_id, 1)
    pg.execute(
        "UPDATE session_checkpoints SET created_at = now() - interval '30 minutes'"
        " WHERE session_id = %s",
        (session_id,),
    )

    reply = api.call("ResumeSession", alice, session_id=session_id)

    assert 1800 <= reply.body["checkpoint_age_seconds"] <= 1805
