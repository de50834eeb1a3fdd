"""One client for the Analytics Dashboard API over REST or native gRPC.

The same ``Reply`` whichever transport, as ``tests/sessions/api.py`` gives
for the Session Recovery API, whose gRPC error decoding this reuses.
"""

from __future__ import annotations

from typing import Any

import grpc
import httpx
from google.protobuf import json_format
from onboarding.v1 import dashboard_pb2, dashboard_pb2_grpc

from tests.conftest import Account
from tests.sessions.api import PREFIX, Reply, invoke, rest_reply

ROUTES: dict[str, str] = {
    "GetOverview": "/dashboard/overview/",
    "GetHeatmap": "/dashboard/heatmap/",
    "GetSessionReplay": "/dashboard/session-replay/{session_id}/",
    "GetCohortTrends": "/dashboard/cohort-trends/",
}


class DashboardApi:
    """Calls the Analytics Dashboard API over one transport."""

    def __init__(self, transport: str, base_url: str, grpc_target: str) -> None:
        self.transport = transport
        self._base_url = base_url
        self._target = grpc_target

    def call(self, rpc: str, account: Account | None, **fields: Any) -> Reply:
        if self.transport == "rest":
            return self._rest(rpc, account, fields)
        request = json_format.ParseDict(
            fields, getattr(dashboard_pb2, f"{rpc}Request")()
        )
        with grpc.insecure_channel(self._target) as channel:
            stub = dashboard_pb2_grpc.AnalyticsDashboardServiceStub(channel)
            return invoke(getattr(stub, rpc), request, account)

    def _rest(self, rpc: str, account: Account | None, fields: dict[str, Any]) -> Reply:
        fields = dict(fields)
        path = ROUTES[rpc]
        if "{session_id}" in path:
            path = path.format(session_id=fields.pop("session_id"))
        headers = account.headers if account else {}
        with httpx.Client(base_url=self._base_url, timeout=30) as client:
            reply = client.get(PREFIX + path, params=fields, headers=headers)
        return rest_reply(reply)


def dashboard_api(transport: str, gateway_port: int, server_port: int) -> DashboardApi:
    grpc_port = server_port if transport == "grpc_direct" else gateway_port
    return DashboardApi(
        transport, f"http://127.0.0.1:{gateway_port}", f"127.0.0.1:{grpc_port}"
    )
