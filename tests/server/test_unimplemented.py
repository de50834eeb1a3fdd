"""An RPC without an implementation answers UNIMPLEMENTED in the error shape.

Every service of the API is implemented, so this builds a server whose
dashboard service is the generated base class, behind the real interceptor
with the stack's real PostgreSQL and Redis.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import pytest
import redis.asyncio as redis
from onboarding.v1 import dashboard_pb2, dashboard_pb2_grpc

from server.app import Resources
from server.db import Database, create_engine
from server.interceptor import ApiInterceptor
from server.security.authn import Authenticator
from server.security.policy import POLICIES
from server.security.ratelimit import RateLimiter
from server.security.tokens import TokenService
from server.settings import Settings
from tests.conftest import Account, Stack


@pytest.fixture
async def bare_server(stack: Stack) -> AsyncIterator[int]:
    settings = Settings(
        database_url=stack.database_url,
        redis_url=stack.redis_url,
        jwt_secret=stack.env["JWT_SECRET"],
    )
    resources = Resources(
        settings=settings,
        db=Database(create_engine(settings)),
        redis=redis.Redis.from_url(settings.redis_url),
        tokens=TokenService(settings),
    )
    interceptor = ApiInterceptor(
        Authenticator(resources.tokens, resources.db),
        RateLimiter(resources.redis, settings),
        POLICIES,
    )
    server = grpc.aio.server(interceptors=[interceptor])
    dashboard_pb2_grpc.add_AnalyticsDashboardServiceServicer_to_server(
        dashboard_pb2_grpc.AnalyticsDashboardServiceServicer(), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)
        await resources.close()


async def test_base_servicer_answers_unimplemented_with_the_error_body(
    bare_server: int, staff: Account
) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{bare_server}") as channel:
        stub = dashboard_pb2_grpc.AnalyticsDashboardServiceStub(channel)
        call = stub.GetOverview(
            dashboard_pb2.GetOverviewRequest(), metadata=staff.metadata
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call

    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    headers = dict(caught.value.initial_metadata())
    body = json.loads(headers["x-error-body"])
    assert body == {
        "error": "not_implemented",
        "detail": "GetOverview is not implemented yet.",
        "correlation_id": headers["x-correlation-id"],
    }
