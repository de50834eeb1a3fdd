"""Session-wide real stack: PostgreSQL, Redis, the server and Envoy.

PostgreSQL and Redis come from DATABASE_URL / REDIS_URL when set, otherwise
from private embedded servers under ``.data/test``. Each run migrates a fresh
database of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import grpc
import httpx
import psycopg
import pytest
import redis

from server import devstack
from tests.support.stack import ROOT, Gateway, ServerProcess, run_cli

# Parallel runs on one machine can each pick their own Redis database.
TEST_REDIS_DB = int(os.environ.get("TEST_REDIS_DB", "15"))
PASSWORD = "correct-horse-battery"


@dataclass
class Stack:
    """The running processes and how to reach them."""

    env: dict[str, str]
    database_url: str
    redis_url: str
    server: ServerProcess
    gateway: Gateway
    work_dir: Path

    @property
    def base_url(self) -> str:
        return self.gateway.base_url


@dataclass
class Account:
    """A test user with a fresh access token."""

    id: int
    username: str
    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}

    @property
    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.access}")]


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _with_redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = "&".join(q for q in [parts.query, f"db={db}"] if q)
        # urlunsplit drops the empty host of unix:///path, so build it here.
        return f"unix://{parts.path}?{query}"
    return urlunsplit(parts._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def work_dir() -> Path:
    path = ROOT / ".data" / "test"
    (path / "logs").mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def database_url(work_dir: Path) -> Iterator[str]:
    admin_url = devstack.postgres_url(work_dir / "postgres")
    name = f"onboarding_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield _with_database(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url(work_dir: Path) -> str:
    url = _with_redis_db(devstack.redis_url(work_dir / "redis"), TEST_REDIS_DB)
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session")
def stack(database_url: str, redis_url: str, work_dir: Path) -> Iterator[Stack]:
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": "test-secret-" + uuid.uuid4().hex,
        "LOG_FORMAT": "json",
    }
    run_cli(["migrate"], env)
    server = ServerProcess(env, work_dir / "logs" / "server.log").start()
    gateway = Gateway([server.port], work_dir).start()
    try:
        yield Stack(env, database_url, redis_url, server, gateway, work_dir)
    finally:
        gateway.stop()
        server.stop()


def _create_account(stack: Stack, username: str, *flags: str) -> Account:
    run_cli(["create-user", username, *flags, "--password-stdin"], stack.env, PASSWORD)
    reply = httpx.post(
        f"{stack.base_url}/api/v1/auth/login/",
        json={"username": username, "password": PASSWORD},
    )
    reply.raise_for_status()
    body = reply.json()
    return Account(body["user"]["id"], username, body["access"], body["refresh"])


@pytest.fixture(scope="session")
def superuser(stack: Stack) -> Account:
    return _create_account(stack, "root", "--superuser")


@pytest.fixture(scope="session")
def staff(stack: Stack) -> Account:
    return _create_account(stack, "staffer", "--staff")


@pytest.fixture(scope="session")
def alice(stack: Stack) -> Account:
    return _create_account(stack, "alice")


@pytest.fixture(scope="session")
def bob(stack: Stack) -> Account:
    return _create_account(stack, "bob")


@pytest.fixture(autouse=True)
def _fresh_rate_limits(request: pytest.FixtureRequest) -> None:
    """Each test starts with empty rate-limit windows."""
    if "stack" not in request.fixturenames:
        return
    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter("rl:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def rest(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def gateway_channel(stack: Stack) -> Iterator[grpc.Channel]:
    """Native gRPC through Envoy's single listener."""
    with grpc.insecure_channel(f"127.0.0.1:{stack.gateway.port}") as channel:
        yield channel


@pytest.fixture
def direct_channel(stack: Stack) -> Iterator[grpc.Channel]:
    """Native gRPC straight to the server."""
    with grpc.insecure_channel(f"127.0.0.1:{stack.server.port}") as channel:
        yield channel
