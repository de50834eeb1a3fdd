"""The spec's Postman collection, run by newman against the demo stack.

The collection is read from the API document at test time, never copied.
Its variables are set to the gateway, a staff token and a fresh session of
that staff user. The session has no checkpoint yet: the collection creates
version 1 itself before it resumes, and an earlier version 1 with other data
would make that create a 409.

Each request is judged from newman's JSON report: a 2xx whose body has the
top-level keys of the spec's example response, except the requests naming
the spec's example DLQ id, ``dlq_123456``, which does not exist here: those
answer 404 in the error shape.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import (
    API,
    DemoRun,
    DemoStack,
    code_block,
    documented_endpoints,
    login,
    start_session,
)
from tests.support.stack import ROOT

NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
EXAMPLE_TASK_ID = "dlq_123456"
ERROR_KEYS = {"error", "detail", "correlation_id"}

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npx") is None,
    reason="Node.js (node and npx) is not installed on this machine",
)


def collection() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(code_block("## Postman Collection", "json"))
    return document


def request_names() -> list[str]:
    return [
        request["name"] for folder in collection()["item"] for request in folder["item"]
    ]


@pytest.fixture(scope="module")
def executions(
    demo_stack: DemoStack, demo_run: DemoRun, demo_staff_name: str, work_dir: Path
) -> dict[str, dict[str, Any]]:
    """newman's record of each request of the collection, by request name."""
    assert NEWMAN.exists(), "run `npm ci` (python3 dev.py test does)"
    staff = login(demo_stack, demo_staff_name)
    with httpx.Client(base_url=demo_stack.api_url, timeout=30) as api:
        session_id = start_session(api, staff)
    source = work_dir / "postman-collection.json"
    source.write_text(json.dumps(collection()))
    report = work_dir / "logs" / "newman-report.json"
    variables = {
        "base_url": demo_stack.api_url,
        "jwt_token": staff.access,
        "session_id": session_id,
    }
    command = [str(NEWMAN), "run", str(source), "--reporters", "json"]
    command += ["--reporter-json-export", str(report)]
    for name, value in variables.items():
        command += ["--env-var", f"{name}={value}"]

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    runs = json.loads(report.read_text())["run"]["executions"]
    return {run["item"]["name"]: run for run in runs}


def test_newman_ran_every_request_of_the_collection(
    executions: dict[str, dict[str, Any]],
) -> None:
    assert sorted(executions) == sorted(request_names())


@pytest.mark.parametrize("name", request_names())
def test_the_request_answers_as_the_spec_documents(
    name: str, executions: dict[str, dict[str, Any]]
) -> None:
    run = executions[name]
    assert "requestError" not in run, run.get("requestError")
    method = run["request"]["method"]
    path = "/" + "/".join(run["request"]["url"]["path"])
    assert path.startswith(API + "/"), path
    relative = path.removeprefix(API)
    response = run["response"]
    body = json.loads(bytes(response["stream"]["data"]))

    if EXAMPLE_TASK_ID in relative:
        assert response["code"] == 404, body
        assert set(body) >= ERROR_KEYS and body["error"] == "not_found"
        return
    documented = [d for d in documented_endpoints() if d.matches(method, relative)]
    assert len(documented) == 1, f"{method} {relative} is not documented once"
    assert 200 <= response["code"] < 300, body
    assert set(body) == set(documented[0].example), body
