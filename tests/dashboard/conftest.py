"""Fixtures of the dashboard tests, reused from the funnel and session tests.

Overview, heatmap and cohort figures are sums over every session in the
database, so those tests run on the funnel tests' own stack and database
(emptied before each test) and build sessions with their ``Journey``
builder; recovery events come from the real checkpoint and resume API. The
replay tests read single sessions, so they use the shared stack and build
sessions through the session intake API.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.conftest import Stack
from tests.dashboard.api import DashboardApi, dashboard_api
from tests.funnel import conftest as funnel
from tests.funnel.conftest import FunnelStack, Sessions
from tests.sessions.api import Api
from tests.sessions.conftest import TRANSPORTS, api_for

# The funnel tests' fixtures, shared rather than written again.
funnel_stack = funnel.funnel_stack
analyst = funnel.analyst
viewer = funnel.viewer
pg = funnel.pg
redis_client = funnel.redis_client
sessions = funnel.sessions

OVERVIEW_KEYS = "dashboard:overview:*"


def forget_overviews(client: redis.Redis) -> None:
    keys = list(client.scan_iter(OVERVIEW_KEYS))
    if keys:
        client.delete(*keys)


@pytest.fixture
def store(sessions: Sessions, redis_client: redis.Redis) -> Iterator[Sessions]:
    """An empty funnel database and no cached overview."""
    forget_overviews(redis_client)
    yield sessions
    forget_overviews(redis_client)


@pytest.fixture
def board(funnel_stack: FunnelStack) -> Iterator[httpx.Client]:
    """REST to the dashboard endpoints of the funnel stack."""
    base = funnel_stack.base_url + "/api/v1/onboarding/dashboard"
    with httpx.Client(base_url=base, timeout=30) as client:
        yield client


@pytest.fixture
def recovery_api(funnel_stack: FunnelStack) -> Api:
    """The session recovery API of the funnel stack, over REST."""
    return api_for("rest", funnel_stack.gateway.port, funnel_stack.server.port)


@pytest.fixture(params=TRANSPORTS)
def replay_api(request: pytest.FixtureRequest, stack: Stack) -> DashboardApi:
    """The dashboard API of the shared stack, over each transport."""
    return dashboard_api(request.param, stack.gateway.port, stack.server.port)


@pytest.fixture
def intake(stack: Stack) -> Api:
    """The session intake of the shared stack, over REST."""
    return api_for("rest", stack.gateway.port, stack.server.port)
