"""The parts of the document that do not come from the protos.

The error body and its responses, the response headers, the correlation id
request header, the security schemes and the operation that serves the
document itself: what the gateway, the interceptor and the error filter
(``gateway/errors.lua``) add to every RPC.
"""

from __future__ import annotations

from typing import Any

from gateway.openapi._schemas import Schema

DOCUMENT_PATH = "/api/v1/openapi.json"
JSON = "application/json"

# HTTP status, component name, what the status means here.
ERRORS: tuple[tuple[int, str, str], ...] = (
    (
        400,
        "BadRequest",
        "Invalid request (INVALID_ARGUMENT, FAILED_PRECONDITION): "
        "validation_error, invalid_request, max_retries_exceeded, "
        "confirmation_required.",
    ),
    (
        401,
        "Unauthorized",
        "Missing or invalid credentials (UNAUTHENTICATED): not_authenticated, "
        "invalid_credentials, token_expired, token_invalid, invalid_api_key.",
    ),
    (403, "Forbidden", "Not allowed (PERMISSION_DENIED): permission_denied."),
    (404, "NotFound", "No such resource or path (NOT_FOUND): not_found and others."),
    (409, "Conflict", "Conflict (ALREADY_EXISTS, ABORTED): conflict and others."),
    (
        429,
        "TooManyRequests",
        "A rate limit was exceeded (RESOURCE_EXHAUSTED): rate_limit_exceeded.",
    ),
    (
        500,
        "InternalServerError",
        "Server-side failure (INTERNAL): internal_error; quote the correlation id.",
    ),
    (501, "NotImplemented", "Not implemented yet (UNIMPLEMENTED): not_implemented."),
    (
        503,
        "ServiceUnavailable",
        "A backing service is down (UNAVAILABLE): database_unavailable, "
        "service_unavailable.",
    ),
)
TOO_LARGE = (413, "PayloadTooLarge", "The request body is over the limit.")
DEFAULT_ERROR = "OtherError"


def document_operation() -> dict[str, Any]:
    return {
        "get": {
            "operationId": "GetOpenApiDocument",
            "summary": "This document.",
            "description": "The OpenAPI description of the REST surface.",
            "tags": ["OpenAPI"],
            "security": [],
            "responses": {
                "200": {
                    "description": "OK",
                    "headers": {
                        "X-Correlation-ID": {
                            "$ref": "#/components/headers/X-Correlation-ID"
                        }
                    },
                    "content": {JSON: {"schema": {"type": "object"}}},
                }
            },
        }
    }


def error_schemas() -> dict[str, Schema]:
    return {
        "Error": {
            "type": "object",
            "description": (
                "The body of every error. Endpoint-specific fields of the API "
                "document (retry_after, limit_info, matching_tasks, suggestion, "
                "...) may stand beside these."
            ),
            "required": ["error", "detail", "correlation_id"],
            "properties": {
                "error": {
                    "type": "string",
                    "description": "A stable code, such as validation_error.",
                },
                "detail": {"type": "string", "description": "What went wrong."},
                "field_errors": {
                    "type": "object",
                    "description": "Messages per invalid request field.",
                    "additionalProperties": {
                        "type": "array",
                        "items": {"type": "string"},
                    },
                },
                "correlation_id": {
                    "type": "string",
                    "description": "The request's correlation id, as in "
                    "X-Correlation-ID; quote it when reporting a problem.",
                },
            },
            "additionalProperties": True,
        },
        "RateLimitError": {
            "allOf": [
                {"$ref": "#/components/schemas/Error"},
                {
                    "type": "object",
                    "required": ["retry_after", "limit_info"],
                    "properties": {
                        "retry_after": {
                            "type": "integer",
                            "description": "Seconds until a retry can succeed.",
                        },
                        "limit_info": {
                            "type": "object",
                            "required": ["limit", "remaining", "reset_time"],
                            "properties": {
                                "limit": {"type": "integer"},
                                "remaining": {"type": "integer"},
                                "reset_time": {
                                    "type": "string",
                                    "format": "date-time",
                                },
                            },
                        },
                    },
                },
            ]
        },
    }


def error_responses() -> dict[str, Any]:
    responses = {}
    for status, name, description in sorted([*ERRORS, TOO_LARGE]):
        headers = common_headers()
        schema = "Error"
        if status == 429:
            headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
            schema = "RateLimitError"
        responses[name] = {
            "description": f"{status}: {description}",
            "headers": headers,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    responses[DEFAULT_ERROR] = {
        "description": "Any other error, such as 504 when the server is too slow.",
        "headers": common_headers(),
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return responses


def common_headers() -> dict[str, Any]:
    names = (
        "X-Correlation-ID",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    )
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def header_components() -> dict[str, Any]:
    integer = {"type": "integer"}
    return {
        "X-Correlation-ID": {
            "description": "The caller's X-Correlation-ID, else its X-Request-ID, "
            "else a new UUID.",
            "required": True,
            "schema": {"type": "string"},
        },
        "X-RateLimit-Limit": {
            "description": "Requests allowed in the most restrictive window that "
            "applies; absent while rate limiting is unavailable.",
            "schema": integer,
        },
        "X-RateLimit-Remaining": {
            "description": "Requests left in that window.",
            "schema": integer,
        },
        "X-RateLimit-Reset": {
            "description": "When that window resets, in Unix seconds.",
            "schema": integer,
        },
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": integer,
        },
    }


def parameter_components() -> dict[str, Any]:
    return {
        "CorrelationId": {
            "name": "X-Correlation-ID",
            "in": "header",
            "required": False,
            "description": "Ties the request to logs and errors; echoed in the "
            "response. X-Request-ID is used when this is absent.",
            "schema": {"type": "string"},
        }
    }


def security_schemes() -> dict[str, Any]:
    return {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token from POST /api/v1/auth/login/.",
        },
        "apiKeyAuth": {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "An API key made with `onboarding create-api-key`.",
        },
    }
