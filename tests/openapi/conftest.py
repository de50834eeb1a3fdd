"""A stack of the fuzzer's own: its random writes reach no other test's data.

It is the session stack's settings on a fresh database, with a server and an
Envoy of its own, and one superuser to call every operation with.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest

from server import devstack
from tests.conftest import PASSWORD, Account, Stack
from tests.support.stack import Gateway, ServerProcess, run_cli


@dataclass
class FuzzTarget:
    """The fuzzer's gateway and the superuser it calls it as."""

    base_url: str
    superuser: Account


@contextmanager
def _fresh_database(work_dir: Path) -> Iterator[str]:
    admin_url = devstack.postgres_url(work_dir / "postgres")
    name = f"onboarding_fuzz_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _login(base_url: str, username: str) -> Account:
    reply = httpx.post(
        f"{base_url}/api/v1/auth/login/",
        json={"username": username, "password": PASSWORD},
        timeout=30,
    )
    reply.raise_for_status()
    body = reply.json()
    return Account(body["user"]["id"], username, body["access"], body["refresh"])


@pytest.fixture(scope="module")
def fuzz_target(stack: Stack, work_dir: Path) -> Iterator[FuzzTarget]:
    with _fresh_database(work_dir) as database_url:
        env = {**stack.env, "DATABASE_URL": database_url}
        run_cli(["migrate"], env)
        run_cli(
            ["create-user", "fuzzer", "--superuser", "--password-stdin"], env, PASSWORD
        )
        server = ServerProcess(env, work_dir / "logs" / "fuzz-server.log").start()
        gateway = Gateway([server.port], work_dir).start()
        try:
            yield FuzzTarget(gateway.base_url, _login(gateway.base_url, "fuzzer"))
        finally:
            gateway.stop()
            server.stop()
