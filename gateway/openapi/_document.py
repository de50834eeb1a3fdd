"""The operations of the document, one per HTTP rule of the protos."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor_pb2 import (
    FieldDescriptorProto,
    FileDescriptorProto,
    FileDescriptorSet,
    MethodDescriptorProto,
)

from gateway.openapi._components import (
    DEFAULT_ERROR,
    DOCUMENT_PATH,
    ERRORS,
    JSON,
    TOO_LARGE,
    common_headers,
    document_operation,
    error_responses,
    error_schemas,
    header_components,
    parameter_components,
    security_schemes,
)
from gateway.openapi._schemas import (
    SCALAR_LIKE,
    WELL_KNOWN,
    Direction,
    ProtoIndex,
    Schema,
    SchemaBuilder,
)

API_PACKAGE = "onboarding.v1"
TITLE = "Onboarding reliability API"

_F = FieldDescriptorProto
_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")

DESCRIPTION = """\
REST face of the onboarding.v1 gRPC services, served by the Envoy gateway \
through its gRPC-JSON transcoder. This document is generated from the protos \
and their HTTP rules; do not edit it.

Every path works with and without the trailing slash. JSON field names are \
the proto field names; fields without presence (numbers, strings, booleans, \
lists, maps) are always present, zero or empty included, while unset message \
fields are left out. 64-bit integers are JSON strings.

Every error has the body `{"error", "detail", "correlation_id"}`, with \
`field_errors` for invalid fields and endpoint-specific fields beside them. \
Every response carries `X-Correlation-ID`, and the rate-limit headers \
`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` while \
rate limiting is available."""

_PERMISSIONS = {
    "AllowAny": "No credentials are needed.",
    "IsAuthenticated": "Needs a signed-in user (IsAuthenticated).",
    "IsAdminUser": "Staff only (IsAdminUser).",
    "IsSuperUser": "Superusers only (IsSuperUser).",
}


@dataclass(frozen=True)
class Access:
    """Who may call an RPC, and which critical resource it spends."""

    permission: str
    critical_resource: str | None = None


@dataclass(frozen=True)
class _Rule:
    """One HTTP binding of an RPC."""

    service: str
    method: MethodDescriptorProto
    verb: str
    template: str
    body: str
    response_body: str

    @property
    def path(self) -> str:
        path = _VARIABLE.sub(lambda match: "{" + match[1] + "}", self.template)
        return path if path.endswith("/") else path + "/"

    @property
    def variables(self) -> list[str]:
        return _VARIABLE.findall(self.template)


def load_access() -> dict[str, Access]:
    """The permission table the server enforces, by gRPC method path."""
    from server.security.policy import POLICIES

    return {
        name: Access(policy.permission.value, policy.critical_resource)
        for name, policy in POLICIES.items()
    }


def api_files(
    descriptor_set: FileDescriptorSet, package: str = API_PACKAGE
) -> list[FileDescriptorProto]:
    return [file for file in descriptor_set.file if file.package == package]


def http_rules(files: Sequence[FileDescriptorProto]) -> Iterator[_Rule]:
    """Every HTTP binding of every RPC, additional bindings included."""
    for file in files:
        for service in file.service:
            for method in service.method:
                if not method.options.HasExtension(annotations_pb2.http):
                    continue
                rule = method.options.Extensions[annotations_pb2.http]
                for binding in [rule, *rule.additional_bindings]:
                    yield _binding(f"{file.package}.{service.name}", method, binding)


def _binding(
    service: str, method: MethodDescriptorProto, rule: http_pb2.HttpRule
) -> _Rule:
    pattern = rule.WhichOneof("pattern")
    if pattern == "custom":
        verb, template = rule.custom.kind.lower(), rule.custom.path
    else:
        verb, template = str(pattern), getattr(rule, str(pattern))
    return _Rule(service, method, verb, template, rule.body, rule.response_body)


def build_document(
    descriptor_set: FileDescriptorSet,
    *,
    access: Mapping[str, Access] | None = None,
    package: str = API_PACKAGE,
) -> dict[str, Any]:
    """The OpenAPI document of every HTTP rule of ``package``."""
    files = api_files(descriptor_set, package)
    return _Document(ProtoIndex.of(descriptor_set.file), files, access or {}).build()


def render(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_document(descriptor: Path, out: Path) -> Path:
    """Build the document from a descriptor set file and write it to ``out``."""
    descriptor_set = FileDescriptorSet.FromString(descriptor.read_bytes())
    out.write_text(render(build_document(descriptor_set, access=load_access())))
    return out


class _Document:
    """One build: the rules of the API files and the schemas they refer to."""

    def __init__(
        self,
        index: ProtoIndex,
        files: Sequence[FileDescriptorProto],
        access: Mapping[str, Access],
    ) -> None:
        self.index = index
        self.files = files
        self.access = access
        self.rules = list(http_rules(files))
        self.schemas = SchemaBuilder(
            index,
            request_roots=[self._body_type(rule) for rule in self.rules],
            response_roots=[self._response_type(rule) for rule in self.rules],
        )

    def build(self) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {DOCUMENT_PATH: document_operation()}
        seen: dict[str, int] = {}
        for rule in self.rules:
            operation_id = f"{rule.service.rsplit('.', 1)[-1]}_{rule.method.name}"
            seen[operation_id] = seen.get(operation_id, 0) + 1
            if seen[operation_id] > 1:
                operation_id += f"_{seen[operation_id]}"
            operation = self._operation(rule, operation_id)
            paths.setdefault(rule.path, {})[rule.verb] = operation

        return {
            "openapi": "3.1.0",
            "info": {
                "title": TITLE,
                "version": API_PACKAGE.rsplit(".", 1)[-1],
                "description": DESCRIPTION,
            },
            "tags": self._tags(),
            "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
            "paths": paths,
            "components": {
                "schemas": {**error_schemas(), **self.schemas.components},
                "responses": error_responses(),
                "parameters": parameter_components(),
                "headers": header_components(),
                "securitySchemes": security_schemes(),
            },
        }

    def _tags(self) -> list[dict[str, str]]:
        tags = []
        for file in self.files:
            for service in file.service:
                tag = {"name": service.name}
                doc = self.index.docs.get(f".{file.package}.{service.name}")
                if doc:
                    tag["description"] = doc
                tags.append(tag)
        return tags

    def _operation(self, rule: _Rule, operation_id: str) -> dict[str, Any]:
        method = rule.method
        grpc_path = f"/{rule.service}/{method.name}"
        doc = self.index.docs.get(f".{rule.service}.{method.name}", "")
        access = self.access.get(grpc_path)

        description = [doc] if doc else []
        if access is not None:
            description.append(_PERMISSIONS.get(access.permission, access.permission))
            if access.critical_resource:
                description.append(
                    "Also counts against the per-user limit of the critical "
                    f"resource `{access.critical_resource}`."
                )
        operation: dict[str, Any] = {
            "operationId": operation_id,
            "summary": _first_sentence(doc) or method.name,
            "description": "\n\n".join(description),
            "tags": [rule.service.rsplit(".", 1)[-1]],
            "x-grpc-method": grpc_path,
        }
        if access is not None:
            operation["x-permission"] = access.permission
            if access.permission == "AllowAny":
                operation["security"] = []

        operation["parameters"] = [
            *self._path_parameters(rule),
            *self._query_parameters(rule),
            {"$ref": "#/components/parameters/CorrelationId"},
        ]
        if rule.body:
            operation["requestBody"] = {
                "required": True,
                "content": {JSON: {"schema": self._body_schema(rule)}},
            }
        operation["responses"] = self._responses(rule)
        return operation

    def _path_parameters(self, rule: _Rule) -> Iterator[dict[str, Any]]:
        for name in rule.variables:
            message_name, message_field = self._field(rule.method.input_type, name)
            schema = self.schemas.field_schema(
                message_name, message_field, Direction.REQUEST
            )
            yield _parameter(name, "path", schema, required=True)

    def _query_parameters(self, rule: _Rule) -> Iterator[dict[str, Any]]:
        # Fields bound by neither the path nor the body come from the query.
        if rule.body == "*":
            return
        bound = {name.split(".")[0] for name in rule.variables}
        if rule.body:
            bound.add(rule.body)
        yield from self._query_fields(rule.method.input_type, bound, prefix="")

    def _query_fields(
        self, message_name: str, bound: set[str], prefix: str, depth: int = 0
    ) -> Iterator[dict[str, Any]]:
        for message_field in self.index.messages[message_name].field:
            if message_field.name in bound or self.index.is_map(message_field):
                continue
            name = prefix + message_field.name
            nested = message_field.type == _F.TYPE_MESSAGE
            if nested and message_field.type_name not in SCALAR_LIKE:
                # Nested messages are filled with dotted names; Struct, Value
                # and ListValue cannot be written as query parameters.
                writable = message_field.type_name not in WELL_KNOWN
                single = message_field.label != _F.LABEL_REPEATED
                if writable and single and depth < 3:
                    yield from self._query_fields(
                        message_field.type_name, set(), name + ".", depth + 1
                    )
                continue
            schema = self.schemas.field_schema(
                message_name, message_field, Direction.REQUEST
            )
            yield _parameter(name, "query", schema, required=False)

    def _body_schema(self, rule: _Rule) -> Schema:
        method = rule.method
        if rule.body != "*":
            message_name, message_field = self._field(method.input_type, rule.body)
            schema = self.schemas.field_schema(
                message_name, message_field, Direction.REQUEST
            )
        elif rule.variables:
            bound = {name.split(".")[0] for name in rule.variables}
            schema = self.schemas.message_schema(
                method.input_type, Direction.REQUEST, exclude=bound
            )
        else:
            schema = self.schemas.ref(method.input_type, Direction.REQUEST)
        if method.client_streaming:
            return {
                "type": "array",
                "description": "The stream's messages, in order.",
                "items": schema,
            }
        return schema

    def _responses(self, rule: _Rule) -> dict[str, Any]:
        method = rule.method
        if rule.response_body:
            message_name, message_field = self._field(
                method.output_type, rule.response_body
            )
            schema = self.schemas.field_schema(
                message_name, message_field, Direction.RESPONSE
            )
        else:
            schema = self.schemas.ref(method.output_type, Direction.RESPONSE)
        if method.server_streaming:
            schema = {"type": "array", "items": schema}

        responses: dict[str, Any] = {
            "200": {
                "description": "OK",
                "headers": common_headers(),
                "content": {JSON: {"schema": schema}},
            }
        }
        errors = [*ERRORS, TOO_LARGE] if rule.body else list(ERRORS)
        for status, name, _ in sorted(errors):
            responses[str(status)] = {"$ref": f"#/components/responses/{name}"}
        responses["default"] = {"$ref": f"#/components/responses/{DEFAULT_ERROR}"}
        return responses

    def _body_type(self, rule: _Rule) -> str:
        if rule.body in ("", "*"):
            return rule.method.input_type
        message_field = self._field(rule.method.input_type, rule.body)[1]
        return message_field.type_name

    def _response_type(self, rule: _Rule) -> str:
        if not rule.response_body:
            return rule.method.output_type
        return self._field(rule.method.output_type, rule.response_body)[1].type_name

    def _field(
        self, message_name: str, dotted: str
    ) -> tuple[str, FieldDescriptorProto]:
        """A field by dotted path, with the name of the message that holds it."""
        *parents, last = dotted.split(".")
        for part in parents:
            message_name = self._lookup(message_name, part).type_name
        return message_name, self._lookup(message_name, last)

    def _lookup(self, message_name: str, name: str) -> FieldDescriptorProto:
        for message_field in self.index.messages[message_name].field:
            if message_field.name == name:
                return message_field
        raise ValueError(f"{message_name} has no field {name!r}")


def _first_sentence(text: str) -> str:
    paragraph = text.split("\n\n", 1)[0]
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


def _parameter(
    name: str, location: str, schema: Schema, *, required: bool
) -> dict[str, Any]:
    description = schema.get("description")
    parameter: dict[str, Any] = {"name": name, "in": location, "required": required}
    if description:
        parameter["description"] = description
    parameter["schema"] = {k: v for k, v in schema.items() if k != "description"}
    return parameter
