"""Schemathesis against the live gateway: no 5xx, no answer off the schema.

Every operation of the served document is fuzzed, none excluded, with
schema-valid and schema-violating requests (negative mode, extra parameters
and headers included), as a superuser, so the permission checks let every
request through to the service. Half of the session ids are one session the
fixture started, so the success paths of the session operations are reached
too; the other half are random.

One rule narrows the checks, for a stated reason:

- Services still served by the generated base class answer 501
  not_implemented; for their operations 501 is not counted as a server
  error, though its body must still match the documented error schema.

Each bug the fuzzer found has a reproducer at the end of this file.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from server.app import SERVICES
from tests.conftest import Stack
from tests.openapi.conftest import FuzzTarget
from tests.support.stack import DESCRIPTOR

# Examples per operation in the fuzzing phase; the examples and coverage
# phases add their own. The default run is derandomized, so it passes or
# fails the same way every time; FUZZ_MAX_EXAMPLES=200 makes a deeper,
# random run that may find more.
DEEP = "FUZZ_MAX_EXAMPLES" in os.environ
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "15"))
SEEDED_SESSION = str(uuid.uuid4())
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "max-examples": MAX_EXAMPLES,
            "deterministic": not DEEP,
            "database": "none",
            # Credentials come from the superuser's token; random API keys
            # would only ever reach the 401 path.
            "with-security-parameters": False,
        },
        # Stateful testing needs OpenAPI links, which the document has none of.
        "phases": {"stateful": {"enabled": False}},
        "dictionaries": {"sessions": {"values": [SEEDED_SESSION]}},
        "parameters": {
            "path.session_id": {"dictionary": "sessions", "probability": 0.5}
        },
    }
)
# The document the gateway serves; test_document checks that they are equal.
schema = schemathesis.openapi.from_path(
    DESCRIPTOR.parent / "openapi.json", config=CONFIG
)

# Services whose implementation has not landed: the generated base classes.
PENDING_SERVICES = {
    binding.descriptor.name
    for binding in SERVICES
    if binding.servicer_class.__module__.startswith("onboarding.")
}


@pytest.fixture(scope="module")
def seeded_session(fuzz_target: FuzzTarget) -> str:
    """SEEDED_SESSION, started with events and a checkpoint."""
    started = datetime.now(UTC) - timedelta(minutes=20)
    with httpx.Client(
        base_url=fuzz_target.base_url,
        headers=fuzz_target.superuser.headers,
        timeout=30,
    ) as client:
        base = f"/api/v1/onboarding/sessions/{SEEDED_SESSION}"
        steps = [
            (
                "/api/v1/onboarding/sessions/",
                {
                    "session_id": SEEDED_SESSION,
                    "client_id": 1,
                    "conversation_type": "site_survey",
                    "language": "en",
                    "started_at": _iso(started),
                },
            ),
            (
                f"{base}/events/",
                {
                    "events": [
                        {
                            "event_id": "collecting",
                            "occurred_at": _iso(started + timedelta(minutes=1)),
                            "state_transition": {"state": "COLLECTING_INFO"},
                        },
                        {
                            "event_id": "answer-0",
                            "occurred_at": _iso(started + timedelta(minutes=2)),
                            "question_answered": {
                                "question_index": 0,
                                "question": "How many sites?",
                                "answer_length": 12,
                            },
                        },
                    ]
                },
            ),
            (
                f"{base}/checkpoint/",
                {
                    "checkpoint_data": {
                        "version": 1,
                        "state": "COLLECTING_INFO",
                        "data": {"answers": ["three"], "progress": 0.2},
                    }
                },
            ),
        ]
        for path, body in steps:
            reply = client.post(path, json=body)
            assert reply.status_code == 200, (path, reply.text)
    return SEEDED_SESSION


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@schema.parametrize()
def test_gateway_answers_as_documented(
    case: Any, fuzz_target: FuzzTarget, seeded_session: str
) -> None:
    response = case.call(
        base_url=fuzz_target.base_url, headers=fuzz_target.superuser.headers
    )
    pending = response.status_code == 501 and any(
        tag in PENDING_SERVICES for tag in case.operation.tags or ()
    )
    checks = [response_schema_conformance]
    if not pending:
        checks.append(not_a_server_error)
    case.validate_response(response, checks=checks)


def test_header_outside_grpc_metadata_syntax_is_no_server_error(
    stack: Stack, rest: httpx.Client
) -> None:
    reply = rest.get("/api/v1/auth/me/", headers={"a|b": "1"})

    assert reply.status_code == 401


def test_error_body_for_a_non_utf8_request_is_json(
    stack: Stack, rest: httpx.Client
) -> None:
    reply = rest.post(
        "/api/v1/auth/login/",
        content=b'{"username": "\xb1\xb1"}',
        headers={"Content-Type": "application/json"},
    )

    assert reply.status_code == 400
    assert reply.json()["error"] == "invalid_request"


def test_login_with_a_nul_character_is_no_server_error(
    stack: Stack, rest: httpx.Client
) -> None:
    reply = rest.post(
        "/api/v1/auth/login/", json={"username": "a\u0000b", "password": "x"}
    )

    assert reply.status_code == 400, reply.text
    assert reply.json()["field_errors"] == {
        "username": ["Null characters are not allowed."]
    }
