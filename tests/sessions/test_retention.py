"""Checkpoint retention through the CLI, on a database of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
import redis

from tests.conftest import Account
from tests.sessions.api import Api
from tests.sessions.conftest import ExtraStack, create_account, start
from tests.support.stack import run_cli


@pytest.fixture(scope="module")
def retention_stack(
    isolated_stack_factory: Callable[[dict[str, str]], ExtraStack],
) -> ExtraStack:
    return isolated_stack_factory({})


@pytest.fixture(scope="module")
def dave(retention_stack: ExtraStack) -> Account:
    return create_account(retention_stack, "dave")


@pytest.fixture
def db(retention_stack: ExtraStack) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(retention_stack.env["DATABASE_URL"], autocommit=True) as conn:
        yield conn


@pytest.fixture
def hot(retention_stack: ExtraStack) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(retention_stack.env["REDIS_URL"])
    yield client
    client.close()


def _with_checkpoints(api: Api, account: Account, versions: int) -> str:
    session_id = start(api, account)
    for version in range(1, versions + 1):
        reply = api.call(
            "CreateCheckpoint",
            account,
            session_id=session_id,
            checkpoint_data={
                "version": version,
                "state": "STARTED",
                "data": {"v": version},
            },
        )
        assert reply.status == 200, reply.body
    return session_id


def _versions(db: psycopg.Connection[Any], session_id: str) -> list[int]:
    rows = db.execute(
        "SELECT version FROM session_checkpoints WHERE session_id = %s ORDER BY 1",
        (session_id,),
    ).fetchall()
    return [version for (version,) in rows]


def _hot_versions(hot: redis.Redis, session_id: str) -> list[int]:
    keys = hot.keys(f"ckpt:{session_id}:*")
    return sorted(int(key.decode().rsplit(":", 1)[1]) for key in keys)


def test_pruning_keeps_the_newest_versions_of_each_session(
    retention_stack: ExtraStack,
    dave: Account,
    db: psycopg.Connection[Any],
    hot: redis.Redis,
) -> None:
    api = retention_stack.api()
    five = _with_checkpoints(api, dave, 5)
    two = _with_checkpoints(api, dave, 2)

    output = run_cli(["prune-checkpoints", "--keep", "2"], retention_stack.env)

    assert output.strip() == "pruned 3 checkpoints of 1 sessions (3 hot copies)"
    assert _versions(db, five) == [4, 5]
    assert _hot_versions(hot, five) == [4, 5]
    assert _versions(db, two) == [1, 2]
    listed = api.call("ListCheckpoints", dave, session_id=five).body
    assert listed["total_checkpoints"] == 2


def test_pruning_removes_versions_past_the_maximum_age(
    retention_stack: ExtraStack,
    dave: Account,
    db: psycopg.Connection[Any],
    hot: redis.Redis,
) -> None:
    api = retention_stack.api()
    session_id = _with_checkpoints(api, dave, 3)
    db.execute(
        "UPDATE session_checkpoints SET created_at = now() - interval '31 days'"
        " WHERE session_id = %s AND version < 3",
        (session_id,),
    )

    output = run_cli(["prune-checkpoints"], retention_stack.env)

    assert output.strip() == "pruned 2 checkpoints of 1 sessions (2 hot copies)"
    assert _versions(db, session_id) == [3]
    assert _hot_versions(hot, session_id) == [3]
    resumed = api.call(
        "ResumeSession", dave, session_id=session_id, checkpoint_version=1
    )
    assert resumed.status == 404


def test_pruning_refuses_to_keep_nothing(retention_stack: ExtraStack) -> None:
    with pytest.raises(RuntimeError, match="keep_latest must be at least 1"):
        run_cli(["prune-checkpoints", "--keep", "0"], retention_stack.env)
