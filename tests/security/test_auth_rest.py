"""Login, refresh, tokens and API keys through Envoy's REST surface."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from tests.conftest import PASSWORD, Account, Stack
from tests.support.stack import run_cli

ME = "/api/v1/auth/me/"


def _assert_error(reply: httpx.Response, status: int, error: str) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert body["error"] == error
    assert body["detail"]
    assert body["correlation_id"] == reply.headers["x-correlation-id"]
    return body


def test_login_answers_exactly_the_documented_shape(
    rest: httpx.Client, alice: Account
) -> None:
    reply = rest.post(
        "/api/v1/auth/login/", json={"username": "alice", "password": PASSWORD}
    )

    assert reply.status_code == 200
    body = reply.json()
    assert set(body) == {"access", "refresh", "user"}
    assert body["user"] == {"id": alice.id, "username": "alice", "is_staff": False}
    claims = jwt.decode(body["access"], options={"verify_signature": False})
    assert claims["type"] == "access"
    assert claims["sub"] == str(alice.id)


def test_login_works_without_trailing_slash(rest: httpx.Client, alice: Account) -> None:
    reply = rest.post(
        "/api/v1/auth/login", json={"username": "alice", "password": PASSWORD}
    )

    assert reply.status_code == 200
    assert reply.json()["user"]["username"] == "alice"


def test_login_with_wrong_password_is_401(rest: httpx.Client, alice: Account) -> None:
    reply = rest.post(
        "/api/v1/auth/login/", json={"username": "alice", "password": "wrong-one"}
    )

    _assert_error(reply, 401, "invalid_credentials")


def test_login_for_unknown_user_is_401(rest: httpx.Client, stack: Stack) -> None:
    reply = rest.post(
        "/api/v1/auth/login/", json={"username": "nobody", "password": PASSWORD}
    )

    _assert_error(reply, 401, "invalid_credentials")


def test_login_without_fields_is_400_with_field_errors(
    rest: httpx.Client, stack: Stack
) -> None:
    reply = rest.post("/api/v1/auth/login/", json={"username": "alice"})

    body = _assert_error(reply, 400, "validation_error")
    assert body["field_errors"] == {"password": ["This field is required."]}


def test_refresh_issues_a_working_access_token(
    rest: httpx.Client, alice: Account
) -> None:
    reply = rest.post("/api/v1/auth/refresh/", json={"refresh": alice.refresh})

    assert reply.status_code == 200
    access = reply.json()["access"]
    me = rest.get(ME, headers={"Authorization": f"Bearer {access}"})
    assert me.status_code == 200
    assert me.json() == {"id": alice.id, "username": "alice", "is_staff": False}


def test_refresh_rejects_an_access_token(rest: httpx.Client, alice: Account) -> None:
    reply = rest.post("/api/v1/auth/refresh/", json={"refresh": alice.access})

    _assert_error(reply, 401, "token_invalid")


def test_request_without_credentials_is_401(rest: httpx.Client, stack: Stack) -> None:
    _assert_error(rest.get(ME), 401, "not_authenticated")


def _token(stack: Stack, account: Account, **overrides: object) -> str:
    now = datetime.now(UTC)
    payload: dict[str, object] = {
        "sub": str(account.id),
        "username": account.username,
        "is_staff": True,
        "is_superuser": True,
        "type": "access",
        "iss": "onboarding-reliability",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    payload.update(overrides)
    return jwt.encode(payload, stack.env["JWT_SECRET"], algorithm="HS256")


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    forged = jwt.utils.base64url_encode(
        jwt.utils.base64url_decode(payload).replace(
            b'"is_staff":false', b'"is_staff":true'
        )
    ).decode()
    assert forged != payload
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("expired", "token_expired"),
        ("tampered", "token_invalid"),
        ("alg_none", "token_invalid"),
        ("wrong_key", "token_invalid"),
        ("refresh_as_access", "token_invalid"),
        ("garbage", "token_invalid"),
        ("wrong_scheme", "token_invalid"),
    ],
)
def test_bad_tokens_are_401(
    rest: httpx.Client, stack: Stack, alice: Account, kind: str, reason: str
) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    header = {
        "expired": lambda: f"Bearer {_token(stack, alice, iat=past, exp=past)}",
        "tampered": lambda: f"Bearer {_tampered(alice.access)}",
        "alg_none": lambda: (
            "Bearer "
            + jwt.encode(
                jwt.decode(alice.access, options={"verify_signature": False}),
                key=None,
                algorithm="none",
            )
        ),
        "wrong_key": lambda: (
            "Bearer "
            + jwt.encode(
                jwt.decode(alice.access, options={"verify_signature": False}),
                "another-secret-of-sufficient-length-0123",
                algorithm="HS256",
            )
        ),
        "refresh_as_access": lambda: f"Bearer {alice.refresh}",
        "garbage": lambda: "Bearer not.a.jwt",
        "wrong_scheme": lambda: f"Token {alice.access}",
    }[kind]()

    reply = rest.get(ME, headers={"Authorization": header})

    _assert_error(reply, 401, reason)


def test_api_key_authenticates_until_revoked(
    rest: httpx.Client, stack: Stack, bob: Account
) -> None:
    output = run_cli(["create-api-key", "bob", "--name", "ci"], stack.env)
    key = output.strip().splitlines()[-1]
    prefix = key.split("_")[1]

    me = rest.get(ME, headers={"X-API-Key": key})
    assert me.status_code == 200
    assert me.json() == {"id": bob.id, "username": "bob", "is_staff": False}

    run_cli(["revoke-api-key", prefix], stack.env)
    _assert_error(rest.get(ME, headers={"X-API-Key": key}), 401, "invalid_api_key")


def test_api_key_is_stored_hashed(stack: Stack, bob: Account) -> None:
    import psycopg

    key = run_cli(["create-api-key", "bob"], stack.env).strip().splitlines()[-1]

    with psycopg.connect(stack.database_url) as conn:
        rows = conn.execute("SELECT key_hash FROM api_keys").fetchall()
    assert rows
    assert all(key not in row[0] and len(row[0]) == 64 for row in rows)


def test_unknown_api_key_is_401(rest: httpx.Client, stack: Stack) -> None:
    reply = rest.get(ME, headers={"X-API-Key": "obk_000000000000_nope"})

    _assert_error(reply, 401, "invalid_api_key")


def test_standard_user_gets_403_on_staff_endpoint(
    rest: httpx.Client, alice: Account
) -> None:
    reply = rest.get("/api/v1/onboarding/admin/dlq/tasks/", headers=alice.headers)

    _assert_error(reply, 403, "permission_denied")


def test_staff_gets_403_on_superuser_endpoint(
    rest: httpx.Client, staff: Account
) -> None:
    reply = rest.request(
        "DELETE",
        "/api/v1/onboarding/admin/dlq/clear/",
        headers=staff.headers,
        json={"confirm": True},
    )

    _assert_error(reply, 403, "permission_denied")


def test_api_key_use_is_recorded_at_most_once_a_minute(
    rest: httpx.Client, stack: Stack, bob: Account
) -> None:
    import psycopg

    key = run_cli(["create-api-key", "bob"], stack.env).strip().splitlines()[-1]
    prefix = key.split("_")[1]
    query = "SELECT last_used_at FROM api_keys WHERE prefix = %s"

    assert rest.get(ME, headers={"X-API-Key": key}).status_code == 200
    with psycopg.connect(stack.database_url) as conn:
        first = conn.execute(query, (prefix,)).fetchone()
    assert rest.get(ME, headers={"X-API-Key": key}).status_code == 200
    with psycopg.connect(stack.database_url) as conn:
        second = conn.execute(query, (prefix,)).fetchone()

    assert first is not None and first[0] is not None
    assert second == first
