"""The gateway serves the OpenAPI document, and the document fits the protos."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from google.api import annotations_pb2
from google.protobuf.descriptor_pb2 import FileDescriptorSet
from grpc_tools import protoc

from gateway.openapi import DOCUMENT_PATH, build_document, load_access
from server import codegen
from server.security.policy import POLICIES, Permission
from tests.conftest import Stack
from tests.support.stack import DESCRIPTOR

ERROR_STATUSES = ("400", "401", "403", "404", "409", "429", "500", "501", "503")
SERVED = DESCRIPTOR.parent / "openapi.json"


def _compile_protos(out: Path) -> FileDescriptorSet:
    """A descriptor set compiled from protos/ now, as server.codegen makes it."""
    files = [str(p.relative_to(codegen.PROTO_DIR)) for p in codegen.proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{codegen.PROTO_DIR}",
        f"-I{codegen._googleapis_root()}",
        f"-I{codegen._well_known_root()}",
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={out}",
        *files,
    ]
    assert protoc.main(args) == 0
    return FileDescriptorSet.FromString(out.read_bytes())


def _rules() -> list[tuple[str, str, str]]:
    """(gRPC method, verb, documented path) of every HTTP rule."""
    files = FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    rules = []
    for f in files.file:
        if f.package != "onboarding.v1":
            continue
        for service in f.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                path = re.sub(r"\{([^}=]+)[^}]*\}", r"{\1}", getattr(rule, verb))
                name = f"/{f.package}.{service.name}/{method.name}"
                rules.append((name, verb, path + "/"))
    return rules


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SERVED.read_text())
    return loaded


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["x-grpc-method"]: operation
        for path, item in document["paths"].items()
        if path != DOCUMENT_PATH
        for operation in item.values()
    }


def test_gateway_serves_the_document_built_from_the_protos(
    rest: httpx.Client, stack: Stack, tmp_path: Path
) -> None:
    expected = build_document(
        _compile_protos(tmp_path / "protos.pb"), access=load_access()
    )

    reply = rest.get(DOCUMENT_PATH)

    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-correlation-id"]
    # A stale gen/ fails here: regenerate with `python3 dev.py gen`.
    assert reply.json() == expected


def test_document_is_not_served_to_other_methods(
    rest: httpx.Client, stack: Stack
) -> None:
    reply = rest.post(DOCUMENT_PATH, json={})

    assert reply.status_code == 404
    assert reply.json()["error"] == "not_found"


def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"

    schemathesis.openapi.from_dict(document).validate()


def test_every_http_rule_has_exactly_one_operation(document: dict[str, Any]) -> None:
    documented = {
        (operation["x-grpc-method"], verb, path)
        for path, item in document["paths"].items()
        if path != DOCUMENT_PATH
        for verb, operation in item.items()
    }

    assert documented == set(_rules())


def test_every_operation_documents_the_error_responses(
    document: dict[str, Any],
) -> None:
    for name, operation in _operations(document).items():
        responses = operation["responses"]
        assert "200" in responses, name
        assert [s for s in ERROR_STATUSES if s not in responses] == [], name
        assert responses["429"] == {"$ref": "#/components/responses/TooManyRequests"}, (
            name
        )


def test_operations_state_the_permission_the_server_enforces(
    document: dict[str, Any],
) -> None:
    for name, operation in _operations(document).items():
        permission = POLICIES[name].permission
        assert operation["x-permission"] == permission.value, name
        if permission is Permission.ALLOW_ANY:
            assert operation["security"] == [], name
        else:
            assert "security" not in operation, name  # the document-wide one
    assert document["security"] == [{"bearerAuth": []}, {"apiKeyAuth": []}]


def test_paths_and_query_come_from_the_http_rules(document: dict[str, Any]) -> None:
    paths = document["paths"]
    get_task = paths["/api/v1/onboarding/admin/dlq/tasks/{task_id}/"]["get"]
    list_tasks = paths["/api/v1/onboarding/admin/dlq/tasks/"]["get"]
    clear = paths["/api/v1/onboarding/admin/dlq/clear/"]["delete"]

    assert [(p.get("name"), p.get("in")) for p in get_task["parameters"]] == [
        ("task_id", "path"),
        (None, None),  # the X-Correlation-ID header, by reference
    ]
    assert [p["name"] for p in list_tasks["parameters"][:-1]] == [
        "status",
        "category",
        "task_name",
        "correlation_id",
        "page",
        "page_size",
    ]
    assert "requestBody" not in list_tasks
    assert clear["parameters"][:-1] == []
    assert clear["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ClearTasksRequest"
    }


def test_path_fields_are_left_out_of_the_request_body(
    document: dict[str, Any],
) -> None:
    operation = document["paths"][
        "/api/v1/onboarding/sessions/{session_id}/checkpoint/"
    ]
    body = operation["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert list(body["properties"]) == ["checkpoint_data", "force"]
    assert body["additionalProperties"] is False


def test_response_schemas_require_the_fields_the_transcoder_always_prints(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]

    # Scalars, lists and maps are always printed; messages, Values and
    # `optional` fields only when set.
    assert schemas["LoginResponse"]["required"] == ["access", "refresh"]
    assert schemas["ListTasksResponse"]["required"] == ["count", "results"]
    assert "tasks_by_status" in schemas["GetStatsResponse"]["required"]
    assert "last_retry_at" not in schemas["DlqTask"]["required"]
    # Requests require nothing: the transcoder parses any subset of fields.
    assert "required" not in schemas["LoginRequest"]


def test_json_mapping_of_field_types(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    task = schemas["DlqTask"]["properties"]
    stats = schemas["GetStatsResponse"]["properties"]

    assert task["retry_count"]["type"] == "integer"
    assert task["created_at"]["format"] == "date-time"
    assert task["task_args"]["type"] == "array"
    assert task["task_kwargs"]["type"] == "object"
    assert "type" not in task["last_retry_at"]  # any JSON value, null included
    assert stats["average_retry_count"]["type"] == "number"
    assert stats["tasks_by_status"]["additionalProperties"]["type"] == "integer"


def test_descriptions_come_from_the_proto_comments(document: dict[str, Any]) -> None:
    login = document["paths"]["/api/v1/auth/login/"]["post"]
    user = document["components"]["schemas"]["AuthUser"]

    assert login["summary"] == (
        "Login checks a username and password and returns a token pair."
    )
    assert user["properties"]["is_staff"]["description"] == (
        "Whether the user is staff (IsAdminUser endpoints)."
    )


def test_rate_limited_responses_document_retry_after(document: dict[str, Any]) -> None:
    too_many = document["components"]["responses"]["TooManyRequests"]

    assert set(too_many["headers"]) == {
        "X-Correlation-ID",
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
        "Retry-After",
    }
    schema = too_many["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/RateLimitError"}
