"""Builds and runs the grpc.aio server with every service of the API."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import redis.asyncio as redis
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from onboarding.v1 import (
    auth_pb2,
    auth_pb2_grpc,
    dashboard_pb2,
    dashboard_pb2_grpc,
    dlq_pb2,
    dlq_pb2_grpc,
    funnel_pb2,
    funnel_pb2_grpc,
    sessions_pb2,
    sessions_pb2_grpc,
)

from server.db import Database, create_engine
from server.interceptor import ApiInterceptor
from server.security.authn import Authenticator
from server.security.policy import POLICIES
from server.security.ratelimit import RateLimiter
from server.security.tokens import TokenService
from server.settings import Settings
from services.auth.servicer import AuthServicer
from services.dashboard.servicer import AnalyticsDashboardServicer
from services.dlq.servicer import DlqAdminServicer
from services.funnel.servicer import FunnelAnalyticsServicer
from services.sessions.servicer import SessionRecoveryServicer

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass
class Resources:
    """Connections and helpers shared by the servicers of one process."""

    settings: Settings
    db: Database
    redis: redis.Redis
    tokens: TokenService

    @classmethod
    def create(cls, settings: Settings) -> Resources:
        client = redis.Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=1,
            socket_timeout=2,
            health_check_interval=10,
        )
        return cls(
            settings=settings,
            db=Database(create_engine(settings)),
            redis=client,
            tokens=TokenService(settings),
        )

    async def close(self) -> None:
        await self.db.dispose()
        await self.redis.aclose()


@dataclass(frozen=True)
class ServiceBinding:
    """One API service: its descriptor, servicer class and registrar."""

    descriptor: Any
    servicer_class: type
    register: Callable[[Any, grpc.aio.Server], None]

    def build(self, resources: Resources) -> Any:
        """Servicers of this project take the shared resources; bases don't."""
        if self.servicer_class.__module__.startswith("onboarding."):
            return self.servicer_class()
        return self.servicer_class(resources)

    @property
    def full_name(self) -> str:
        return str(self.descriptor.full_name)


def _service(module: Any, name: str) -> Any:
    return module.DESCRIPTOR.services_by_name[name]


# Services whose implementation has not landed are served by the generated
# base classes, which answer UNIMPLEMENTED (HTTP 501) for every RPC.
SERVICES: tuple[ServiceBinding, ...] = (
    ServiceBinding(
        _service(auth_pb2, "AuthService"),
        AuthServicer,
        auth_pb2_grpc.add_AuthServiceServicer_to_server,
    ),
    ServiceBinding(
        _service(dlq_pb2, "DlqAdminService"),
        DlqAdminServicer,
        dlq_pb2_grpc.add_DlqAdminServiceServicer_to_server,
    ),
    ServiceBinding(
        _service(funnel_pb2, "FunnelAnalyticsService"),
        FunnelAnalyticsServicer,
        funnel_pb2_grpc.add_FunnelAnalyticsServiceServicer_to_server,
    ),
    ServiceBinding(
        _service(sessions_pb2, "SessionRecoveryService"),
        SessionRecoveryServicer,
        sessions_pb2_grpc.add_SessionRecoveryServiceServicer_to_server,
    ),
    ServiceBinding(
        _service(dashboard_pb2, "AnalyticsDashboardService"),
        AnalyticsDashboardServicer,
        dashboard_pb2_grpc.add_AnalyticsDashboardServiceServicer_to_server,
    ),
)


def build_server(resources: Resources) -> tuple[grpc.aio.Server, health.HealthServicer]:
    """A server with every API service, health checking and reflection."""
    interceptor = ApiInterceptor(
        Authenticator(resources.tokens, resources.db),
        RateLimiter(resources.redis, resources.settings),
        POLICIES,
    )
    server = grpc.aio.server(
        interceptors=[interceptor],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    for binding in SERVICES:
        binding.register(binding.build(resources), server)

    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [b.full_name for b in SERVICES]
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    return server, health_servicer


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight RPCs and exit."""
    if settings.uses_dev_secret:
        logger.warning("JWT_SECRET is the development default; set it in production")
    resources = Resources.create(settings)
    server, health_servicer = build_server(resources)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    server.add_insecure_port(address)
    await server.start()
    for name in ["", *(b.full_name for b in SERVICES)]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    logger.info("gRPC server listening", extra={"address": address})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()

    logger.info(
        "shutting down", extra={"grace_seconds": settings.shutdown_grace_seconds}
    )
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.shutdown_grace_seconds)
    await resources.close()
