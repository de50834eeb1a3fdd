"""One client for the Session Recovery API over REST or native gRPC.

Tests call ``api.call("CreateCheckpoint", account, session_id=..., ...)`` and
get the same ``Reply`` whichever transport the ``api`` fixture picked: the
HTTP status (the transcoder's mapping for gRPC codes), the JSON body (for
gRPC errors rebuilt from ErrorInfo and BadRequest details) and the headers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from onboarding.v1 import sessions_pb2, sessions_pb2_grpc

from tests.conftest import Account
from tests.test_completeness import HTTP_BY_STATUS

PREFIX = "/api/v1/onboarding"

# REST method and path of each RPC, written the way the spec's clients do.
ROUTES: dict[str, tuple[str, str]] = {
    "StartSession": ("POST", "/sessions/"),
    "RecordEvents": ("POST", "/sessions/{session_id}/events/"),
    "BatchRecordEvents": ("POST", "/sessions/events/batch/"),
    "CreateCheckpoint": ("POST", "/sessions/{session_id}/checkpoint/"),
    "ResumeSession": ("POST", "/sessions/{session_id}/resume/"),
    "ListCheckpoints": ("GET", "/sessions/{session_id}/checkpoints/"),
    "GetAbandonmentRisk": ("GET", "/sessions/{session_id}/risk/"),
    "ListAtRiskSessions": ("GET", "/admin/at-risk-sessions/"),
}


@dataclass
class Reply:
    """What a client saw, in REST terms."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Api:
    """Calls the Session Recovery API over one transport."""

    def __init__(
        self,
        transport: str,
        base_url: str,
        grpc_target: str,
    ) -> None:
        self.transport = transport
        self._base_url = base_url
        self._target = grpc_target

    def call(self, rpc: str, account: Account | None, **fields: Any) -> Reply:
        if self.transport == "rest":
            return self._rest(rpc, account, fields)
        return self._grpc(rpc, account, fields)

    def send(self, rpc: str, account: Account | None, request: Any) -> Reply:
        """A request message as built, for values JSON cannot carry (gRPC only)."""
        assert self.transport != "rest"
        with grpc.insecure_channel(self._target) as channel:
            stub = sessions_pb2_grpc.SessionRecoveryServiceStub(channel)
            return invoke(getattr(stub, rpc), request, account)

    def _rest(self, rpc: str, account: Account | None, fields: dict[str, Any]) -> Reply:
        method, template = ROUTES[rpc]
        fields = dict(fields)
        path = template.format(
            **{key: fields.pop(key) for key in ("session_id",) if key in template}
        )
        headers = account.headers if account else {}
        with httpx.Client(base_url=self._base_url, timeout=30) as client:
            if method == "GET":
                reply = client.get(PREFIX + path, params=fields, headers=headers)
            else:
                reply = client.post(PREFIX + path, json=fields, headers=headers)
        return rest_reply(reply)

    def _grpc(self, rpc: str, account: Account | None, fields: dict[str, Any]) -> Reply:
        request_class = getattr(sessions_pb2, f"{rpc}Request")
        request = json_format.ParseDict(fields, request_class())
        with grpc.insecure_channel(self._target) as channel:
            stub = sessions_pb2_grpc.SessionRecoveryServiceStub(channel)
            return invoke(getattr(stub, rpc), request, account)


def rest_reply(reply: httpx.Response) -> Reply:
    return Reply(reply.status_code, reply.json(), dict(reply.headers))


def invoke(method: Any, request: Any, account: Account | None) -> Reply:
    metadata = account.metadata if account else []
    try:
        response, call = method.with_call(request, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        return _grpc_error(error)
    body = json_format.MessageToDict(
        response,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    return Reply(200, body, dict(call.initial_metadata()))


def _grpc_error(error: grpc.RpcError) -> Reply:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, error
    body: dict[str, Any] = {"detail": status.message}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            body["error"] = info.reason.lower()
            body.update({k: _number_or_text(v) for k, v in info.metadata.items()})
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            errors: dict[str, list[str]] = {}
            for violation in bad.field_violations:
                errors.setdefault(violation.field, []).append(violation.description)
            body["field_errors"] = errors
    code = error.code().name  # type: ignore[attr-defined]
    headers = dict(error.initial_metadata() or ())  # type: ignore[attr-defined]
    return Reply(HTTP_BY_STATUS[code], body, headers)


def _number_or_text(value: str) -> Any:
    """ErrorInfo metadata are strings; numbers come back as numbers."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, int | float) else value


def without_correlation(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "correlation_id"}
