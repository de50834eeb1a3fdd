"""The spec's Python ``requests`` example, run as written against the demo.

Only its example values change: the base URL, the token, the session id (a
fresh session of the staff user, so that checkpoint version 1 is new) and
the DLQ task id (a real entry of the demo). What it prints must be the
server's real figures.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

import httpx
import pytest

from tests.clients.conftest import (
    DemoRun,
    DemoStack,
    code_block,
    login,
    start_session,
)
from tests.conftest import Account
from tests.dlq.conftest import wait_until

EXAMPLE_BASE = "https://your-domain.com"
EXAMPLE_TOKEN = "your-jwt-token"
EXAMPLE_SESSION = "550e8400-e29b-41d4-a716-446655440000"
EXAMPLE_TASK_ID = "dlq_123456"
# The example prints each stage's conversion rate as a percentage.
STAGE_LINE = re.compile(r"  (.+): (\d+\.\d\d)%")


def example(replacements: dict[str, str]) -> str:
    script = code_block("### Python (requests)", "python")
    for old, new in replacements.items():
        assert old in script, f"the example no longer contains {old!r}"
        script = script.replace(old, new)
    return script


def retryable_entry(api: httpx.Client, staff: Account) -> str:
    """A DLQ entry of the demo that is not being retried right now."""

    def ready() -> str | None:
        reply = api.get("/admin/dlq/tasks/", headers=staff.headers)
        assert reply.status_code == 200, reply.text
        entries = [e for e in reply.json()["results"] if e["status"] != "retrying"]
        return str(entries[0]["task_id"]) if entries else None

    found: str = wait_until(ready, timeout=60, interval=0.5)
    return found


@dataclass(frozen=True)
class ExampleRun:
    """What the example printed, for which session, as which staff user."""

    output: str
    session_id: str
    staff: Account


@pytest.fixture(scope="module")
def run(demo_stack: DemoStack, demo_run: DemoRun, demo_staff_name: str) -> ExampleRun:
    staff = login(demo_stack, demo_staff_name)
    with httpx.Client(base_url=demo_stack.api_url, timeout=30) as api:
        session_id = start_session(api, staff)
        task_id = retryable_entry(api, staff)
    script = example(
        {
            EXAMPLE_BASE: demo_stack.base_url,
            EXAMPLE_TOKEN: staff.access,
            EXAMPLE_SESSION: session_id,
            EXAMPLE_TASK_ID: task_id,
        }
    )
    # The example sends datetime.now() without an offset, which the API
    # reads as UTC; the test machine's zone must not shift the period.
    env = {**os.environ, "TZ": "UTC"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Error:" not in result.stdout, result.stdout
    return ExampleRun(result.stdout, session_id, staff)


def test_it_prints_the_funnel_of_the_last_30_days(
    run: ExampleRun, demo_api: httpx.Client
) -> None:
    output = run.output
    reply = demo_api.get("/analytics/funnel/", headers=run.staff.headers)
    assert reply.status_code == 200, reply.text
    funnel = reply.json()

    assert f"Total sessions: {funnel['total_sessions']}\n" in output
    rate = funnel["overall_conversion_rate"]
    assert f"Overall conversion rate: {rate:.2%}\n" in output
    stages = STAGE_LINE.findall(output)
    assert stages == [
        (stage["name"], f"{stage['conversion_rate'] * 100:.2f}")
        for stage in funnel["stages"]
    ]


def test_it_creates_checkpoint_version_1(run: ExampleRun) -> None:
    assert "Checkpoint created: version 1\n" in run.output


def test_it_prints_the_sessions_risk(run: ExampleRun, demo_api: httpx.Client) -> None:
    output = run.output
    path = f"/sessions/{run.session_id}/risk/"
    risk = demo_api.get(path, headers=run.staff.headers).json()

    # One repeat and one error: 6.25 + 6.25, no inactivity, no baseline.
    assert f"Risk level: {risk['risk_level']} (score: 12.5)\n" in output
    assert risk["risk_level"] == "low"
    recommendation = risk["intervention_recommendation"]["type"]
    assert f"Recommendation: {recommendation}\n" in output


def test_it_retries_the_dlq_task(run: ExampleRun) -> None:
    assert run.output.endswith("Task retrying: retrying\n")
