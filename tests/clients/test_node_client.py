"""The Node.js client built on the generated TypeScript stubs, over native gRPC.

It runs ``clients/node/client.ts`` with tsx against the stack's Envoy, which
passes native gRPC through to the server, and checks what it printed. A
service whose implementation has not landed yet must show up as exactly
UNIMPLEMENTED in the client's report; every other step as its exact result.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.app import SERVICES
from tests.conftest import PASSWORD, Account, Stack
from tests.support.stack import ROOT

CLIENT = ROOT / "clients" / "node" / "client.ts"
BIN = ROOT / "node_modules" / ".bin"
GENERATED = ROOT / "gen" / "ts" / "onboarding" / "v1"

# Services still served by the generated base class answer UNIMPLEMENTED; the
# client must then report exactly that for their steps, and go on.
PENDING_SERVICES = {
    binding.descriptor.name
    for binding in SERVICES
    if binding.servicer_class.__module__.startswith("onboarding.")
}
CALLED_SERVICES = {"SessionRecoveryService", "FunnelAnalyticsService"}

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npx") is None,
    reason="Node.js (node and npx) is not installed on this machine",
)


@pytest.fixture(scope="module", autouse=True)
def _toolchain() -> None:
    """With Node.js present, a missing toolchain or stub is a failure, not a skip."""
    missing = [
        str(path.relative_to(ROOT))
        for path in (BIN / "tsx", BIN / "tsc", GENERATED / "sessions_pb.ts")
        if not path.exists()
    ]
    assert missing == [], "run `python3 dev.py gen` (npm ci, then buf generate)"


def run_client(
    stack: Stack, username: str, password: str, session_id: str, *args: str
) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [
            str(BIN / "tsx"),
            str(CLIENT),
            f"--address=127.0.0.1:{stack.gateway.port}",
            f"--username={username}",
            "--password-stdin",
            f"--session-id={session_id}",
            *args,
        ],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.stdout, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, report


def test_client_type_checks_against_the_generated_stubs() -> None:
    result = subprocess.run(
        [str(BIN / "tsc"), "-p", str(CLIENT.parent / "tsconfig.json")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_client_logs_in_checkpoints_and_reads_the_funnel(
    stack: Stack, staff: Account
) -> None:
    session_id = str(uuid.uuid4())
    client_id = random.randint(10**6, 2**31 - 1)  # a funnel of this test alone
    # The funnel's default period ends at the current whole second.
    started_at = datetime.now(UTC) - timedelta(minutes=1)

    code, report = run_client(
        stack,
        staff.username,
        PASSWORD,
        session_id,
        f"--client-id={client_id}",
        f"--started-at={started_at.isoformat()}",
    )

    assert report["login"] == {
        "ok": True,
        "user": {"id": staff.id, "username": staff.username, "is_staff": True},
    }
    sessions_landed = "SessionRecoveryService" not in PENDING_SERVICES
    if sessions_landed:
        _assert_started(report["start_session"], session_id, staff.id, client_id)
        _assert_checkpointed(report["create_checkpoint"])
    else:
        _assert_unimplemented(report["start_session"])
        _assert_unimplemented(report["create_checkpoint"])
    if "FunnelAnalyticsService" not in PENDING_SERVICES:
        funnel = report["get_funnel"]
        assert funnel["ok"] is True, funnel
        assert funnel["response"]["total_sessions"] == int(sessions_landed)
        assert funnel["response"]["completed_sessions"] == 0
    else:
        _assert_unimplemented(report["get_funnel"])
    assert code == (1 if PENDING_SERVICES & CALLED_SERVICES else 0)


def _assert_started(
    step: dict[str, Any], session_id: str, user_id: int, client_id: int
) -> None:
    assert step["ok"] is True, step
    assert step["response"]["status"] == "created"
    session = step["response"]["session"]
    assert (session["session_id"], session["user_id"], session["client_id"]) == (
        session_id,
        user_id,
        client_id,
    )


def _assert_checkpointed(step: dict[str, Any]) -> None:
    assert step["ok"] is True, step
    response = step["response"]
    assert response["status"] == "created"
    assert response["checkpoint_version"] == 1
    assert re.fullmatch("[0-9a-f]{64}", response["checkpoint_hash"])
    assert response["storage"] == {"redis": True, "postgresql": True}


def _assert_unimplemented(step: dict[str, Any]) -> None:
    assert step["ok"] is False, step
    assert step["code"] == "UNIMPLEMENTED"
    assert step["message"]


def test_client_reports_a_refused_login(stack: Stack, staff: Account) -> None:
    code, report = run_client(stack, staff.username, "wrong", str(uuid.uuid4()))

    assert report == {
        "login": {
            "ok": False,
            "code": "UNAUTHENTICATED",
            "message": report["login"]["message"],
        }
    }
    assert code == 1
