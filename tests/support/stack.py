"""Start the real server and Envoy against real PostgreSQL and Redis.

Tests talk to these processes over the network exactly as users do: REST
through Envoy, native gRPC through Envoy or directly.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.launch import render_config, start_envoy, wait_ready

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR = ROOT / "gen" / "onboarding.pb"
ONBOARDING = Path(sys.executable).parent / "onboarding"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_grpc(port: int, timeout: float = 30.0) -> None:
    """Block until the server answers a health check."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"gRPC server on {port} did not become ready")
            time.sleep(0.1)


@dataclass
class ServerProcess:
    """One ``onboarding serve`` process with its own environment."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        env = {**os.environ, **self.env, "GRPC_PORT": str(self.port)}
        env.setdefault("GRPC_HOST", "127.0.0.1")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(ONBOARDING), "serve"], env=env, stdout=log, stderr=log
            )
        wait_for_grpc(self.port)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Gateway:
    """A real Envoy in front of one or more server processes."""

    upstream_ports: list[int]
    work_dir: Path
    port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        config = render_config(
            listen_host="127.0.0.1",
            listen_port=self.port,
            admin_port=self.admin_port,
            upstreams=[("127.0.0.1", p) for p in self.upstream_ports],
            descriptor=DESCRIPTOR,
            out=self.work_dir / f"envoy-{self.port}.yaml",
        )
        self.process = start_envoy(config, self.work_dir / f"envoy-{self.port}.log")
        wait_ready(self.admin_port, timeout=30)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_cli(args: list[str], env: dict[str, str], stdin: str = "") -> str:
    """Run the ``onboarding`` CLI and return its output; raise on failure."""
    result = subprocess.run(
        [str(ONBOARDING), *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"onboarding {' '.join(args)} failed: {result.stderr}")
    return result.stdout
