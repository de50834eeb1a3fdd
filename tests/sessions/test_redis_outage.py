"""Checkpoints through a real Redis outage: saved in PostgreSQL, then healed.

A second server reaches Redis through a TCP proxy that the test cuts, as a
crashed or unreachable Redis would be; PostgreSQL stays reachable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Account, Stack
from tests.sessions.api import Api, Reply
from tests.sessions.conftest import (
    TRANSPORTS,
    ExtraStack,
    extra_stack,
    redis_through,
    start,
)
from tests.support.tcp_proxy import TcpProxy


@pytest.fixture(scope="module")
def redis_proxy(stack: Stack) -> Iterator[TcpProxy]:
    proxy = TcpProxy.for_url(stack.redis_url).start()
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def outage_stack(
    stack: Stack, work_dir: Path, redis_proxy: TcpProxy
) -> Iterator[ExtraStack]:
    env = {"REDIS_URL": redis_through(stack.redis_url, redis_proxy)}
    with extra_stack(stack, work_dir, env, "sessions-redis-outage") as running:
        yield running


@pytest.fixture(params=TRANSPORTS)
def outage_api(request: pytest.FixtureRequest, outage_stack: ExtraStack) -> Api:
    return outage_stack.api(request.param)


@pytest.fixture
def redis_down(redis_proxy: TcpProxy) -> Iterator[TcpProxy]:
    redis_proxy.cut()
    yield redis_proxy
    redis_proxy.start()


def _create(api: Api, account: Account, session_id: str, version: int) -> Reply:
    return api.call(
        "CreateCheckpoint",
        account,
        session_id=session_id,
        checkpoint_data={
            "version": version,
            "state": "STARTED",
            "data": {"v": version},
        },
    )


def _eventually_from_redis(api: Api, account: Account, session_id: str) -> Reply:
    """Resume until Redis answers again; the client reconnects on its own."""
    deadline = time.monotonic() + 15
    while True:
        reply = api.call("ResumeSession", account, session_id=session_id)
        source = reply.headers.get("x-checkpoint-source")
        if source == "redis" or time.monotonic() > deadline:
            return reply
        time.sleep(0.3)


def test_checkpoints_are_saved_and_resumed_while_redis_is_down(
    outage_api: Api, alice: Account, redis_proxy: TcpProxy
) -> None:
    session_id = start(outage_api, alice)
    assert _create(outage_api, alice, session_id, 1).body["storage"]["redis"] is True

    redis_proxy.cut()
    try:
        during = _create(outage_api, alice, session_id, 2)
        resumed = outage_api.call("ResumeSession", alice, session_id=session_id)
        listed = outage_api.call("ListCheckpoints", alice, session_id=session_id)
    finally:
        redis_proxy.start()

    assert during.status == 200
    assert during.body["status"] == "created"
    assert during.body["storage"] == {"redis": False, "postgresql": True}
    assert during.body["ttl_seconds"] == 0
    assert resumed.status == 200
    assert resumed.headers["x-checkpoint-source"] == "postgresql"
    assert (resumed.body["checkpoint_version"], resumed.body["restored_data"]) == (
        2,
        {"v": 2},
    )
    assert listed.body["total_checkpoints"] == 2


def test_the_hot_copy_comes_back_after_redis_recovers(
    outage_api: Api, alice: Account, redis_proxy: TcpProxy
) -> None:
    session_id = start(outage_api, alice)
    redis_proxy.cut()
    try:
        assert (
            _create(outage_api, alice, session_id, 1).body["storage"]["redis"] is False
        )
    finally:
        redis_proxy.start()

    healed = _eventually_from_redis(outage_api, alice, session_id)

    assert healed.headers["x-checkpoint-source"] == "redis"
    assert healed.body["restored_data"] == {"v": 1}
    created = _create(outage_api, alice, session_id, 2)
    assert created.body["storage"] == {"redis": True, "postgresql": True}


def test_other_session_endpoints_work_without_redis(
    outage_api: Api, alice: Account, redis_down: TcpProxy
) -> None:
    session_id = start(outage_api, alice)

    risk = outage_api.call("GetAbandonmentRisk", alice, session_id=session_id)

    assert risk.status == 200
    assert risk.body["risk_level"] == "low"
