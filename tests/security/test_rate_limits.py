"""Per-user, per-endpoint rate limits in Redis, seen through Envoy and gRPC."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.conftest import Account, Stack

ME = "/api/v1/auth/me/"
RETRY = "/api/v1/onboarding/admin/dlq/tasks/dlq_000001/retry/"


def _limit_headers(reply: httpx.Response) -> tuple[int, int, int]:
    return (
        int(reply.headers["x-ratelimit-limit"]),
        int(reply.headers["x-ratelimit-remaining"]),
        int(reply.headers["x-ratelimit-reset"]),
    )


def test_success_carries_rate_limit_headers(rest: httpx.Client, alice: Account) -> None:
    first = rest.get(ME, headers=alice.headers)
    second = rest.get(ME, headers=alice.headers)

    assert first.status_code == second.status_code == 200
    limit, remaining, reset = _limit_headers(first)
    assert (limit, remaining) == (100, 99)
    assert _limit_headers(second)[:2] == (100, 98)
    assert time.time() < reset <= time.time() + 300 + 1


def test_errors_carry_rate_limit_headers(rest: httpx.Client, alice: Account) -> None:
    reply = rest.get("/api/v1/onboarding/admin/dlq/stats/", headers=alice.headers)

    assert reply.status_code == 403
    assert _limit_headers(reply)[:2] == (100, 99)


def test_staff_limit_is_500(rest: httpx.Client, staff: Account) -> None:
    reply = rest.get(ME, headers=staff.headers)

    assert _limit_headers(reply)[:2] == (500, 499)


def test_limits_are_per_endpoint(rest: httpx.Client, alice: Account) -> None:
    rest.get(ME, headers=alice.headers)
    rest.get(ME, headers=alice.headers)

    other = rest.get(
        "/api/v1/onboarding/sessions/x/checkpoints/", headers=alice.headers
    )

    assert _limit_headers(other)[:2] == (100, 99)


def test_first_request_past_the_limit_is_429(
    rest: httpx.Client, alice: Account
) -> None:
    for _ in range(100):
        assert rest.get(ME, headers=alice.headers).status_code == 200

    reply = rest.get(ME, headers=alice.headers)

    assert reply.status_code == 429
    body = reply.json()
    assert body["error"] == "rate_limit_exceeded"
    endpoint = "/onboarding.v1.AuthService/GetCurrentUser"
    assert body["detail"] == f"Rate limit exceeded for resource '{endpoint}'"
    retry_after = int(reply.headers["retry-after"])
    assert 0 < retry_after <= 300
    assert body["retry_after"] == retry_after
    assert body["limit_info"]["limit"] == 100
    assert body["limit_info"]["remaining"] == 0
    assert body["limit_info"]["reset_time"].endswith("Z")
    assert _limit_headers(reply)[:2] == (100, 0)
    assert body["correlation_id"] == reply.headers["x-correlation-id"]


def test_other_users_are_not_limited_by_alice(
    rest: httpx.Client, alice: Account, bob: Account
) -> None:
    for _ in range(101):
        rest.get(ME, headers=alice.headers)

    assert rest.get(ME, headers=bob.headers).status_code == 200


def test_exactly_100_of_120_concurrent_requests_are_admitted(
    stack: Stack, alice: Account
) -> None:
    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=120)
        async with httpx.AsyncClient(
            base_url=stack.base_url, limits=limits, timeout=60
        ) as client:
            replies = await asyncio.gather(
                *(client.get(ME, headers=alice.headers) for _ in range(120))
            )
        return [r.status_code for r in replies]

    codes = asyncio.run(burst())

    assert codes.count(200) == 100
    assert codes.count(429) == 20


def test_critical_resource_is_limited_per_hour(
    rest: httpx.Client, staff: Account
) -> None:
    for _ in range(50):
        reply = rest.post(RETRY, headers=staff.headers, json={"force": False})
        assert reply.status_code != 429

    reply = rest.post(RETRY, headers=staff.headers, json={"force": False})

    assert reply.status_code == 429
    body = reply.json()
    assert body["detail"] == "Rate limit exceeded for resource 'llm_calls'"
    assert body["limit_info"]["limit"] == 50
    assert 3500 < body["retry_after"] <= 3600
