"""The one interceptor every RPC of the API passes through.

It sets the correlation id, authenticates, counts the rate limit, checks the
declared permission, and translates domain errors into gRPC status with rich
details plus the REST error body the gateway serves. It also writes the one
log line per RPC.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import Any

import grpc
from grpc_status import rpc_status

from server.errors import (
    ApiError,
    Internal,
    RateLimited,
    Unimplemented,
    error_body_header,
)
from server.logs import bind_context, clear_context
from server.security.authn import Authenticator
from server.security.policy import RpcPolicy, check_permission
from server.security.principal import ANONYMOUS, Principal, set_principal
from server.security.ratelimit import RateLimiter

logger = logging.getLogger(__name__)

API_PREFIX = "/onboarding.v1."

_response_headers: ContextVar[list[tuple[str, str]] | None] = ContextVar(
    "response_headers", default=None
)

Behavior = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


def add_response_header(key: str, value: str) -> None:
    """Let a servicer add a header (initial metadata) to its response."""
    headers = _response_headers.get()
    if headers is not None:
        headers.append((key.lower(), value))


def correlation_id_of(metadata: Mapping[str, str]) -> str:
    """The caller's correlation or request id, else a new UUID."""
    for key in ("x-correlation-id", "x-request-id"):
        value = metadata.get(key, "").strip()
        if value and len(value) <= 128 and value.isprintable():
            return value
    return str(uuid.uuid4())


def caller_key(principal: Principal, metadata: Mapping[str, str], peer: str) -> str:
    """Rate-limit identity: the user, or the client address when anonymous."""
    if principal.user_id is not None:
        return f"user:{principal.user_id}"
    forwarded = metadata.get("x-forwarded-for", "").split(",")[0].strip()
    return f"addr:{forwarded or peer}"


class ApiInterceptor(grpc.aio.ServerInterceptor):
    """Enforces the policy table on every RPC under ``/onboarding.v1.``."""

    def __init__(
        self,
        authenticator: Authenticator,
        limiter: RateLimiter,
        policies: Mapping[str, RpcPolicy],
    ) -> None:
        self._authenticator = authenticator
        self._limiter = limiter
        self._policies = policies

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(API_PREFIX):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap(method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap(method, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        raise TypeError(f"{method}: streaming responses are not supported")

    def _wrap(self, method: str, behavior: Behavior) -> Behavior:
        policy = self._policies.get(method)

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await self._serve(method, policy, behavior, request, context)

        return wrapped

    async def _serve(
        self,
        method: str,
        policy: RpcPolicy | None,
        behavior: Behavior,
        request: Any,
        context: grpc.aio.ServicerContext,
    ) -> Any:
        started = time.perf_counter()
        metadata = {
            k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)
        }
        correlation_id = correlation_id_of(metadata)
        clear_context()
        bind_context(correlation_id=correlation_id, rpc=method)
        headers: list[tuple[str, str]] = [("x-correlation-id", correlation_id)]
        _response_headers.set(headers)
        set_principal(ANONYMOUS)

        error: ApiError | None = None
        response = None
        try:
            await self._admit(method, policy, metadata, context, headers)
            response = await behavior(request, context)
        except ApiError as err:
            error = err
        except NotImplementedError:
            error = Unimplemented(
                f"{method.rsplit('/', 1)[-1]} is not implemented yet."
            )
        except Exception:
            logger.exception("unhandled error in %s", method)
            error = Internal(
                "An internal error occurred; quote the correlation id when reporting."
            )

        self._log(method, error, started)
        if error is None:
            await context.send_initial_metadata(headers)
            return response
        await self._abort(context, error, headers, correlation_id)

    async def _admit(
        self,
        method: str,
        policy: RpcPolicy | None,
        metadata: Mapping[str, str],
        context: grpc.aio.ServicerContext,
        headers: list[tuple[str, str]],
    ) -> None:
        """Authenticate, count the rate limit, then check the permission."""
        if policy is None:
            raise Internal(f"{method} has no declared permission.")

        principal, auth_error = ANONYMOUS, None
        try:
            principal = await self._authenticator.authenticate(metadata)
        except ApiError as err:
            auth_error = err
        set_principal(principal)
        bind_context(user=principal.username or None)

        key = caller_key(principal, metadata, context.peer() or "unknown")
        windows = self._limiter.windows(
            principal, key, method, policy.critical_resource
        )
        decision = await self._limiter.hit(windows)
        if decision is not None:
            headers.extend(decision.headers())
            if not decision.allowed:
                raise decision.error()

        if auth_error is not None:
            raise auth_error
        check_permission(policy.permission, principal)

    @staticmethod
    async def _abort(
        context: grpc.aio.ServicerContext,
        error: ApiError,
        headers: list[tuple[str, str]],
        correlation_id: str,
    ) -> None:
        if isinstance(error, RateLimited):
            headers.append(("retry-after", str(error.retry_after)))
        headers.append(error_body_header(error, correlation_id))
        await context.send_initial_metadata(headers)
        status = rpc_status.to_status(error.to_status(correlation_id))
        await context.abort(status.code, status.details, status.trailing_metadata)

    @staticmethod
    def _log(method: str, error: ApiError | None, started: float) -> None:
        status = "OK" if error is None else error.status.name
        level = logging.INFO
        if error is not None and error.status in (
            grpc.StatusCode.INTERNAL,
            grpc.StatusCode.UNAVAILABLE,
        ):
            level = logging.WARNING
        logger.log(
            level,
            "rpc finished",
            extra={
                "status": status,
                "error": None if error is None else error.reason,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
