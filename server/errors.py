"""Domain errors and their one translation into gRPC status and REST body.

Services raise these; the interceptor turns them into a ``google.rpc.Status``
with rich details for gRPC clients and, through initial metadata that the
gateway reads, into the documented REST error body.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import grpc
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "onboarding.v1"

# Initial-metadata key that carries the complete REST error body to Envoy.
ERROR_BODY_HEADER = "x-error-body"


class ApiError(Exception):
    """An error a client should see, with a stable code and a human detail."""

    status: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    default_reason: ClassVar[str] = "internal_error"

    def __init__(
        self,
        detail: str,
        *,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
        field_errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.reason = reason or self.default_reason
        self.extra = extra or {}
        self.field_errors = field_errors or {}

    def rest_body(self, correlation_id: str) -> dict[str, Any]:
        """The documented REST error shape."""
        body: dict[str, Any] = {"error": self.reason, "detail": self.detail}
        if self.field_errors:
            body["field_errors"] = self.field_errors
        body.update(self.extra)
        body["correlation_id"] = correlation_id
        return body

    def rich_details(self) -> list[Any]:
        """Typed ``google.rpc`` details beyond ErrorInfo."""
        if not self.field_errors:
            return []
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field=name, description=msg)
            for name, messages in self.field_errors.items()
            for msg in messages
        ]
        return [error_details_pb2.BadRequest(field_violations=violations)]

    def to_status(self, correlation_id: str) -> status_pb2.Status:
        """The ``google.rpc.Status`` sent to gRPC clients."""
        metadata = {"correlation_id": correlation_id}
        for key, value in self.extra.items():
            if isinstance(value, str | int | float | bool):
                metadata[key] = str(value)
        info = error_details_pb2.ErrorInfo(
            reason=self.reason.upper(), domain=ERROR_DOMAIN, metadata=metadata
        )
        status = status_pb2.Status(code=self.status.value[0], message=self.detail)
        for detail in [info, *self.rich_details()]:
            status.details.add().Pack(detail)
        return status


class InvalidArgument(ApiError):
    status = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "validation_error"


class FailedPrecondition(ApiError):
    status = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "failed_precondition"


class Unauthenticated(ApiError):
    status = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "not_authenticated"


class PermissionDenied(ApiError):
    status = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "permission_denied"


class NotFound(ApiError):
    status = grpc.StatusCode.NOT_FOUND
    default_reason = "not_found"


class AlreadyExists(ApiError):
    status = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "conflict"


class Aborted(ApiError):
    status = grpc.StatusCode.ABORTED
    default_reason = "conflict"


class Unavailable(ApiError):
    status = grpc.StatusCode.UNAVAILABLE
    default_reason = "service_unavailable"


class Unimplemented(ApiError):
    status = grpc.StatusCode.UNIMPLEMENTED
    default_reason = "not_implemented"


class Internal(ApiError):
    status = grpc.StatusCode.INTERNAL
    default_reason = "internal_error"


class RateLimited(ApiError):
    """Too many requests; carries the spec's retry_after and limit_info."""

    status = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "rate_limit_exceeded"

    def __init__(
        self,
        detail: str,
        *,
        resource: str,
        retry_after: int,
        limit: int,
        reset_time: str,
    ) -> None:
        super().__init__(
            detail,
            extra={
                "retry_after": retry_after,
                "limit_info": {
                    "limit": limit,
                    "remaining": 0,
                    "reset_time": reset_time,
                },
            },
        )
        self.resource = resource
        self.retry_after = retry_after

    def rich_details(self) -> list[Any]:
        retry = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=self.retry_after)
        )
        quota = error_details_pb2.QuotaFailure(
            violations=[
                error_details_pb2.QuotaFailure.Violation(
                    subject=self.resource, description=self.detail
                )
            ]
        )
        return [retry, quota]


def error_body_header(error: ApiError, correlation_id: str) -> tuple[str, str]:
    """The metadata pair that carries the REST body; ASCII-only JSON."""
    body = json.dumps(error.rest_body(correlation_id), ensure_ascii=True)
    return ERROR_BODY_HEADER, body


# Every gRPC code a domain error can carry; a completeness test checks that
# each has a known HTTP mapping in the gateway.
DOMAIN_ERRORS: tuple[type[ApiError], ...] = (
    InvalidArgument,
    FailedPrecondition,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    Aborted,
    Unavailable,
    Unimplemented,
    Internal,
    RateLimited,
)
