"""Every HTTP rule of the protos is routed by Envoy, with and without slash."""

from __future__ import annotations

import re

import httpx
import pytest
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from server.security.policy import POLICIES, Permission
from tests.conftest import Stack
from tests.support.stack import DESCRIPTOR


def _rules() -> list[tuple[str, str, str]]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes())
    rules = []
    for f in files.file:
        if f.package != "onboarding.v1":
            continue
        for service in f.service:
            for method in service.method:
                rule = method.options.Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                path = re.sub(r"\{[^}]+\}", "x-1", getattr(rule, verb))
                name = f"/{f.package}.{service.name}/{method.name}"
                rules.append((name, verb.upper(), path))
    return rules


@pytest.mark.parametrize("slash", ["", "/"])
@pytest.mark.parametrize(("rpc", "verb", "path"), _rules())
def test_every_rule_reaches_the_server(
    rest: httpx.Client, stack: Stack, rpc: str, verb: str, path: str, slash: str
) -> None:
    body = b"{}" if verb in ("POST", "DELETE", "PUT", "PATCH") else None

    reply = rest.request(
        verb,
        path + slash,
        content=body,
        headers={"Content-Type": "application/json"},
    )

    # The server, not Envoy, answered: anonymous callers get 401 from the
    # interceptor; the open endpoints validate their (empty) body instead.
    expected = 400 if POLICIES[rpc].permission is Permission.ALLOW_ANY else 401
    assert reply.status_code == expected, reply.text
    assert reply.json()["error"] in ("not_authenticated", "validation_error")
