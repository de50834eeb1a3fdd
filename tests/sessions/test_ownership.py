"""Every session endpoint: own sessions only, staff all, others look missing.

Another user's session answers exactly like a session that does not exist
(404 session_not_found, never 403), so session ids cannot be probed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.conftest import Account
from tests.sessions.api import Api, Reply, without_correlation
from tests.sessions.conftest import activity, start, utcnow

Call = Callable[[Api, Account | None, str], Reply]


def _event() -> dict[str, Any]:
    return activity(f"own-{uuid.uuid4().hex}", utcnow())


CALLS: dict[str, Call] = {
    "RecordEvents": lambda api, who, sid: api.call(
        "RecordEvents", who, session_id=sid, events=[_event()]
    ),
    "BatchRecordEvents": lambda api, who, sid: api.call(
        "BatchRecordEvents", who, requests=[{"session_id": sid, "events": [_event()]}]
    ),
    "CreateCheckpoint": lambda api, who, sid: api.call(
        "CreateCheckpoint",
        who,
        session_id=sid,
        # Equal to the latest: answers "unchanged" to whoever may write.
        checkpoint_data={"version": 2, "state": "STARTED", "data": {}},
    ),
    "ResumeSession": lambda api, who, sid: api.call(
        "ResumeSession", who, session_id=sid
    ),
    "ListCheckpoints": lambda api, who, sid: api.call(
        "ListCheckpoints", who, session_id=sid
    ),
    "GetAbandonmentRisk": lambda api, who, sid: api.call(
        "GetAbandonmentRisk", who, session_id=sid
    ),
}


@pytest.fixture
def alices_session(setup_api: Api, alice: Account) -> str:
    """A session of alice with a checkpoint, so that every call can succeed."""
    session_id = start(setup_api, alice, started_at=utcnow() - timedelta(minutes=5))
    reply = setup_api.call(
        "CreateCheckpoint",
        alice,
        session_id=session_id,
        checkpoint_data={"version": 1, "state": "STARTED", "data": {}},
    )
    assert reply.status == 200
    return session_id


def _without_ids(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in without_correlation(body).items() if k != "session_id"}


@pytest.mark.parametrize("rpc", CALLS)
def test_another_users_session_looks_missing(
    api: Api, alice: Account, bob: Account, alices_session: str, rpc: str
) -> None:
    theirs = CALLS[rpc](api, bob, alices_session)
    missing = CALLS[rpc](api, bob, str(uuid.uuid4()))

    assert theirs.status == missing.status == 404
    assert theirs.body["error"] == "session_not_found"
    assert theirs.body["session_id"] == alices_session
    assert _without_ids(theirs.body) == _without_ids(missing.body)


@pytest.mark.parametrize("rpc", CALLS)
def test_the_owner_reaches_their_session(
    api: Api, alice: Account, alices_session: str, rpc: str
) -> None:
    reply = CALLS[rpc](api, alice, alices_session)

    assert reply.status == 200, reply.body


@pytest.mark.parametrize("rpc", CALLS)
def test_staff_reach_every_session(
    api: Api, staff: Account, superuser: Account, alices_session: str, rpc: str
) -> None:
    assert CALLS[rpc](api, staff, alices_session).status == 200
    assert CALLS[rpc](api, superuser, alices_session).status == 200


@pytest.mark.parametrize("rpc", CALLS)
def test_anonymous_callers_are_unauthenticated(
    api: Api, alices_session: str, rpc: str
) -> None:
    reply = CALLS[rpc](api, None, alices_session)

    assert reply.status == 401
    assert reply.body["error"] == "not_authenticated"


def test_nothing_of_a_foreign_batch_is_stored(
    api: Api,
    alice: Account,
    bob: Account,
    alices_session: str,
    pg: psycopg.Connection[Any],
) -> None:
    bobs = start(api, bob, started_at=utcnow() - timedelta(minutes=5))

    reply = api.call(
        "BatchRecordEvents",
        bob,
        requests=[
            {"session_id": bobs, "events": [_event()]},
            {"session_id": alices_session, "events": [_event()]},
        ],
    )

    assert reply.status == 404
    assert reply.body["session_id"] == alices_session
    stored = pg.execute(
        "SELECT count(*) FROM session_events WHERE session_id = %s AND"
        " event_type = 'activity'",
        (bobs,),
    ).fetchone()
    assert stored == (0,)


def test_a_foreign_checkpoint_is_not_stored(
    api: Api, bob: Account, alices_session: str, pg: psycopg.Connection[Any]
) -> None:
    CALLS["CreateCheckpoint"](api, bob, alices_session)

    versions = pg.execute(
        "SELECT count(*) FROM session_checkpoints WHERE session_id = %s",
        (alices_session,),
    ).fetchone()
    assert versions == (1,)


def test_the_at_risk_list_is_for_staff_only(
    api: Api, alice: Account, staff: Account, superuser: Account
) -> None:
    assert api.call("ListAtRiskSessions", alice).status == 403
    assert api.call("ListAtRiskSessions", None).status == 401
    assert api.call("ListAtRiskSessions", staff).status == 200
    assert api.call("ListAtRiskSessions", superuser).status == 200


def test_sessions_are_started_for_oneself_only(
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
        started_at=utcnow().isoformat(),
    )
    anonymous = api.call("StartSession", None, session_id=str(uuid.uuid4()))

    assert reply.status == 403
    assert anonymous.status == 401
