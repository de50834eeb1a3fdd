"""The spec's curl examples, run as written by bash against the demo.

Only the base URL, the tokens and the session id (a fresh session of the
staff user, so that checkpoint version 1 is new) change. Each example pipes
its answer through jq, and the four lines printed must be the server's real
figures.
"""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest

from tests.clients.conftest import DemoRun, DemoStack, code_block
from tests.conftest import Account

EXAMPLE_BASE = "https://your-domain.com"
EXAMPLE_SESSION = "550e8400-e29b-41d4-a716-446655440000"

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("jq") is None,
    reason="the spec's curl examples need curl and jq, not both installed here",
)


def examples(base_url: str, token: str, session_id: str) -> str:
    script = code_block("### cURL Examples", "bash")
    replacements = {
        EXAMPLE_BASE: base_url,
        "{token}": token,
        "{admin_token}": token,
        EXAMPLE_SESSION: session_id,
    }
    for old, new in replacements.items():
        assert old in script, f"the examples no longer contain {old!r}"
        script = script.replace(old, new)
    return script


def test_the_curl_examples_print_the_servers_figures(
    demo_stack: DemoStack,
    demo_run: DemoRun,
    demo_api: httpx.Client,
    demo_staff: Account,
    demo_session: str,
) -> None:
    api, staff = demo_api, demo_staff
    script = examples(demo_stack.base_url, staff.access, demo_session)

    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    funnel = api.get(
        "/analytics/funnel/",
        params={"start_date": "2025-09-01"},
        headers=staff.headers,
    ).json()
    stats = api.get("/admin/dlq/stats/", headers=staff.headers).json()
    at_risk = api.get(
        "/admin/at-risk-sessions/",
        params={"risk_level": "high"},
        headers=staff.headers,
    ).json()
    assert float(lines[0]) == funnel["overall_conversion_rate"] > 0
    assert lines[1] == '"created"'
    assert int(lines[2]) == stats["total_failed_tasks"] > 0
    assert int(lines[3]) == len(at_risk["sessions"]) > 0
