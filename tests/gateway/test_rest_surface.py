"""What REST clients see from Envoy: error shape, headers, paths, CORS."""

from __future__ import annotations

import uuid

import httpx

from tests.conftest import Account, Stack

ME = "/api/v1/auth/me/"


def test_correlation_id_is_echoed(rest: httpx.Client, alice: Account) -> None:
    sent = str(uuid.uuid4())

    reply = rest.get(ME, headers={**alice.headers, "X-Correlation-ID": sent})

    assert reply.headers["x-correlation-id"] == sent


def test_request_id_is_used_when_no_correlation_id(
    rest: httpx.Client, alice: Account
) -> None:
    sent = str(uuid.uuid4())

    reply = rest.get(ME, headers={**alice.headers, "X-Request-ID": sent})

    assert reply.headers["x-correlation-id"] == sent


def test_a_new_correlation_id_is_made_otherwise(
    rest: httpx.Client, alice: Account
) -> None:
    first = rest.get(ME, headers=alice.headers).headers["x-correlation-id"]
    second = rest.get(ME, headers=alice.headers).headers["x-correlation-id"]

    assert str(uuid.UUID(first)) == first
    assert first != second


def test_error_body_carries_the_sent_correlation_id(
    rest: httpx.Client, stack: Stack
) -> None:
    sent = "req-" + uuid.uuid4().hex

    reply = rest.get(ME, headers={"X-Correlation-ID": sent})

    assert reply.status_code == 401
    assert reply.json()["correlation_id"] == sent


def test_no_grpc_headers_leak(rest: httpx.Client, alice: Account) -> None:
    ok = rest.get(ME, headers=alice.headers)
    error = rest.get(ME)

    for reply in (ok, error):
        leaked = [
            h for h in reply.headers if h.startswith("grpc-") or h == "x-error-body"
        ]
        assert leaked == []


def test_unknown_path_is_404_in_the_error_shape(
    rest: httpx.Client, stack: Stack
) -> None:
    reply = rest.get("/api/v1/onboarding/no-such-thing/")

    assert reply.status_code == 404
    body = reply.json()
    assert body["error"] == "not_found"
    assert body["correlation_id"] == reply.headers["x-correlation-id"]


def test_malformed_json_is_400_in_the_error_shape(
    rest: httpx.Client, stack: Stack
) -> None:
    reply = rest.post(
        "/api/v1/auth/login/",
        content=b'{"username": "alice", ',
        headers={"Content-Type": "application/json"},
    )

    assert reply.status_code == 400
    body = reply.json()
    assert body["error"] == "invalid_request"
    assert body["correlation_id"] == reply.headers["x-correlation-id"]


def test_wrong_json_type_is_400_in_the_error_shape(
    rest: httpx.Client, alice: Account
) -> None:
    reply = rest.post(
        "/api/v1/onboarding/sessions/550e8400-e29b-41d4-a716-446655440000/checkpoint/",
        headers=alice.headers,
        json={"checkpoint_data": {"version": "abc", "state": "X", "data": {}}},
    )

    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_request"


def test_oversized_body_is_413_in_the_error_shape(
    rest: httpx.Client, alice: Account
) -> None:
    blob = "x" * (3 * 1024 * 1024)

    reply = rest.post("/api/v1/auth/login/", json={"username": blob, "password": "p"})

    assert reply.status_code == 413
    assert reply.json()["error"] == "payload_too_large"


def test_cors_preflight_allows_browser_clients(
    rest: httpx.Client, stack: Stack
) -> None:
    reply = rest.options(
        "/api/v1/onboarding/dashboard/overview/",
        headers={
            "Origin": "http://localhost:3000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )

    assert reply.status_code in (200, 204)
    assert reply.headers["access-control-allow-origin"] in (
        "*",
        "http://localhost:3000",
    )
    allowed = reply.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed


def test_cors_exposes_rate_limit_headers(rest: httpx.Client, alice: Account) -> None:
    reply = rest.get(ME, headers={**alice.headers, "Origin": "http://localhost:3000"})

    exposed = reply.headers["access-control-expose-headers"].lower()
    assert "x-ratelimit-remaining" in exposed
    assert "x-correlation-id" in exposed
