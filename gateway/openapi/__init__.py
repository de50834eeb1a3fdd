"""The OpenAPI 3.1 description of the REST surface, built from the protos.

Everything comes from the descriptor set Envoy transcodes with (it keeps the
proto comments, which become descriptions): one operation per
``google.api.http`` rule, path parameters from the rule's template, query
parameters from the other request fields of rules without a body, request
bodies from ``body``, and response schemas from the response messages as the
transcoder prints them (see ``_schemas``). The permission of each
RPC comes from the policy table the server enforces.

``python -m server.codegen`` writes it to ``gen/openapi.json``, which the
gateway serves at ``GET /api/v1/openapi.json``. Paths are written with a
trailing slash, as the API document has them; both forms are routed.
"""

from gateway.openapi._components import DOCUMENT_PATH
from gateway.openapi._document import (
    API_PACKAGE,
    Access,
    build_document,
    http_rules,
    load_access,
    render,
    write_document,
)

__all__ = [
    "API_PACKAGE",
    "DOCUMENT_PATH",
    "Access",
    "build_document",
    "http_rules",
    "load_access",
    "render",
    "write_document",
]
