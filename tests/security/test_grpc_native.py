"""The same security behaviour for native gRPC clients, with rich details."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from onboarding.v1 import auth_pb2, auth_pb2_grpc, dlq_pb2, dlq_pb2_grpc

from tests.conftest import PASSWORD, Account


def _details(error: grpc.RpcError) -> dict[str, Any]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    found: dict[str, Any] = {}
    for any_detail in status.details:
        for kind in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.RetryInfo,
            error_details_pb2.QuotaFailure,
        ):
            if any_detail.Is(kind.DESCRIPTOR):
                message = kind()
                any_detail.Unpack(message)
                found[kind.__name__] = message
    return found


@pytest.fixture(params=["gateway", "direct"])
def channel(request: pytest.FixtureRequest) -> grpc.Channel:
    return request.getfixturevalue(f"{request.param}_channel")


def test_login_over_grpc(channel: grpc.Channel, alice: Account) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)

    reply, call = stub.Login.with_call(
        auth_pb2.LoginRequest(username="alice", password=PASSWORD)
    )

    assert reply.user.id == alice.id
    assert reply.user.username == "alice"
    headers = dict(call.initial_metadata())
    assert headers["x-ratelimit-limit"] == "100"


def test_missing_credentials_are_unauthenticated(
    channel: grpc.Channel, alice: Account
) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)

    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest())

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = _details(caught.value)["ErrorInfo"]
    assert info.reason == "NOT_AUTHENTICATED"
    assert info.domain == "onboarding.v1"
    correlation = dict(caught.value.initial_metadata())["x-correlation-id"]
    assert info.metadata["correlation_id"] == correlation


def test_refresh_token_is_not_an_access_token(
    channel: grpc.Channel, alice: Account
) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)

    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCurrentUser(
            auth_pb2.GetCurrentUserRequest(),
            metadata=[("authorization", f"Bearer {alice.refresh}")],
        )

    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_valid_token_is_accepted(channel: grpc.Channel, alice: Account) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)

    me = stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=alice.metadata)

    assert (me.id, me.username, me.is_staff) == (alice.id, "alice", False)


def test_standard_user_is_permission_denied(
    channel: grpc.Channel, alice: Account
) -> None:
    stub = dlq_pb2_grpc.DlqAdminServiceStub(channel)

    with pytest.raises(grpc.RpcError) as caught:
        stub.ListTasks(dlq_pb2.ListTasksRequest(), metadata=alice.metadata)

    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _details(caught.value)["ErrorInfo"].reason == "PERMISSION_DENIED"


def test_validation_errors_carry_bad_request(
    channel: grpc.Channel, alice: Account
) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)

    with pytest.raises(grpc.RpcError) as caught:
        stub.Login(auth_pb2.LoginRequest(username="alice"))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = _details(caught.value)["BadRequest"]
    violations = [(v.field, v.description) for v in bad.field_violations]
    assert violations == [("password", "This field is required.")]


def test_rate_limit_carries_retry_and_quota_details(
    channel: grpc.Channel, alice: Account
) -> None:
    stub = auth_pb2_grpc.AuthServiceStub(channel)
    for _ in range(100):
        stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=alice.metadata)

    with pytest.raises(grpc.RpcError) as caught:
        stub.GetCurrentUser(auth_pb2.GetCurrentUserRequest(), metadata=alice.metadata)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = _details(caught.value)
    delay = details["RetryInfo"].retry_delay.seconds
    assert 0 < delay <= 300
    violation = details["QuotaFailure"].violations[0]
    assert violation.subject == "/onboarding.v1.AuthService/GetCurrentUser"
    headers = dict(caught.value.initial_metadata())
    assert headers["retry-after"] == str(delay)
    assert headers["x-ratelimit-remaining"] == "0"
