"""With PostgreSQL or Redis unreachable the server answers, then recovers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import PASSWORD, Account, Stack
from tests.support.stack import Gateway, ServerProcess
from tests.support.tcp_proxy import TcpProxy


def _through(url: str, proxy: TcpProxy) -> str:
    """The same URL, reached over TCP through the proxy."""
    parts = urlsplit(url)
    scheme = "redis" if parts.scheme in ("unix", "redis") else parts.scheme
    user = f"{parts.username}@" if parts.username else ""
    query = "&".join(
        q for q in parts.query.split("&") if q and not q.startswith("host=")
    )
    path = parts.path
    if parts.scheme == "unix":
        db = [q.split("=")[1] for q in parts.query.split("&") if q.startswith("db=")]
        path, query = f"/{db[0] if db else 0}", ""
    return urlunsplit((scheme, f"{user}127.0.0.1:{proxy.port}", path, query, ""))


@pytest.fixture
def proxied(stack: Stack, work_dir: Path) -> Iterator[dict[str, object]]:
    db_proxy = TcpProxy.for_url(stack.database_url).start()
    redis_proxy = TcpProxy.for_url(stack.redis_url).start()
    env = {
        **stack.env,
        "DATABASE_URL": _through(stack.database_url, db_proxy),
        "REDIS_URL": _through(stack.redis_url, redis_proxy),
    }
    server = ServerProcess(env, work_dir / "logs" / "outage-server.log").start()
    gateway = Gateway([server.port], work_dir).start()
    try:
        yield {"db": db_proxy, "redis": redis_proxy, "server": server, "gw": gateway}
    finally:
        gateway.stop()
        server.stop()
        db_proxy.close()
        redis_proxy.close()


def _login(base_url: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/api/v1/auth/login/",
        json={"username": "alice", "password": PASSWORD},
        timeout=30,
    )


def _eventually(check: object, timeout: float = 15.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        reply = check()  # type: ignore[operator]
        if reply.status_code == 200 or time.monotonic() > deadline:
            return reply
        time.sleep(0.3)


def test_database_outage_is_503_and_recovers(
    proxied: dict[str, object], alice: Account
) -> None:
    gateway: Gateway = proxied["gw"]  # type: ignore[assignment]
    db_proxy: TcpProxy = proxied["db"]  # type: ignore[assignment]
    server: ServerProcess = proxied["server"]  # type: ignore[assignment]
    assert _login(gateway.base_url).status_code == 200

    db_proxy.cut()
    reply = _login(gateway.base_url)

    assert reply.status_code == 503
    body = reply.json()
    assert body["error"] == "database_unavailable"
    assert body["correlation_id"] == reply.headers["x-correlation-id"]
    assert server.process is not None and server.process.poll() is None

    db_proxy.start()
    assert _eventually(lambda: _login(gateway.base_url)).status_code == 200


def test_redis_outage_admits_requests_without_limit_headers(
    proxied: dict[str, object], alice: Account
) -> None:
    gateway: Gateway = proxied["gw"]  # type: ignore[assignment]
    redis_proxy: TcpProxy = proxied["redis"]  # type: ignore[assignment]
    me = f"{gateway.base_url}/api/v1/auth/me/"
    assert "x-ratelimit-limit" in httpx.get(me, headers=alice.headers).headers

    redis_proxy.cut()
    degraded = httpx.get(me, headers=alice.headers, timeout=30)

    assert degraded.status_code == 200
    assert "x-ratelimit-limit" not in degraded.headers

    redis_proxy.start()
    time.sleep(1)
    recovered = _eventually(lambda: httpx.get(me, headers=alice.headers, timeout=30))
    assert recovered.status_code == 200
    assert "x-ratelimit-limit" in recovered.headers
