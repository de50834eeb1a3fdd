"""The server process: reflection, health, JSON logs and graceful shutdown."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from server.app import SERVICES
from tests.conftest import Account, Stack
from tests.support.stack import ServerProcess


def test_reflection_lists_every_service_through_envoy(
    gateway_channel: grpc.Channel,
) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(gateway_channel)

    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for reply in replies for s in reply.list_services_response.service}

    assert {b.full_name for b in SERVICES} <= names
    assert "grpc.health.v1.Health" in names


def test_health_is_serving_through_envoy(gateway_channel: grpc.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(gateway_channel)

    reply = stub.Check(
        health_pb2.HealthCheckRequest(service="onboarding.v1.AuthService")
    )

    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_each_rpc_logs_one_json_line(stack: Stack, alice: Account) -> None:
    import httpx

    correlation_id = "log-" + uuid.uuid4().hex
    httpx.get(
        f"{stack.base_url}/api/v1/auth/me/",
        headers={**alice.headers, "X-Correlation-ID": correlation_id},
    )

    lines = [
        json.loads(line)
        for line in stack.server.log_path.read_text().splitlines()
        if correlation_id in line
    ]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "rpc finished"
    assert line["rpc"] == "/onboarding.v1.AuthService/GetCurrentUser"
    assert line["status"] == "OK"
    assert line["user"] == "alice"
    assert line["correlation_id"] == correlation_id
    assert isinstance(line["duration_ms"], float)


def test_sigterm_stops_the_server_cleanly(stack: Stack, work_dir: Path) -> None:
    server = ServerProcess(stack.env, work_dir / "logs" / "sigterm.log").start()
    assert server.process is not None

    server.process.send_signal(signal.SIGTERM)

    assert server.process.wait(timeout=20) == 0
    assert "shutting down" in server.log_path.read_text()
