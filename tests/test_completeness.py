"""Every RPC of the protos has an HTTP rule, a permission and a servicer."""

from __future__ import annotations

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from server.app import SERVICES
from server.errors import DOMAIN_ERRORS
from server.security.policy import POLICIES
from tests.support.stack import DESCRIPTOR

# The HTTP codes Envoy's transcoder gives each gRPC status a domain error uses.
HTTP_BY_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
}


def _api_methods() -> list[tuple[str, descriptor_pb2.MethodDescriptorProto]]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    return [
        (f"/{f.package}.{service.name}/{method.name}", method)
        for f in files.file
        if f.package == "onboarding.v1"
        for service in f.service
        for method in service.method
    ]


def test_descriptor_lists_every_service() -> None:
    services = {name.split("/")[1] for name, _ in _api_methods()}

    assert services == {b.full_name for b in SERVICES}


def test_every_rpc_has_an_http_rule() -> None:
    missing = [
        name
        for name, method in _api_methods()
        if not method.options.HasExtension(annotations_pb2.http)
    ]

    assert missing == []


def test_every_http_rule_is_under_the_documented_prefixes() -> None:
    for name, method in _api_methods():
        rule = method.options.Extensions[annotations_pb2.http]
        path = getattr(rule, rule.WhichOneof("pattern"))
        assert path.startswith(("/api/v1/onboarding/", "/api/v1/auth/")), name
        assert not path.endswith("/"), name


def test_every_rpc_has_a_declared_permission() -> None:
    declared = set(POLICIES)
    methods = {name for name, _ in _api_methods()}

    assert methods - declared == set()
    assert declared - methods == set()


def test_every_rpc_has_a_servicer_method() -> None:
    for binding in SERVICES:
        for method in binding.descriptor.methods:
            handler = getattr(binding.servicer_class, method.name, None)
            assert callable(handler), f"{binding.full_name}/{method.name}"


def test_every_domain_error_maps_to_a_known_http_code() -> None:
    for error in DOMAIN_ERRORS:
        assert error.status.name in HTTP_BY_STATUS, error.__name__
