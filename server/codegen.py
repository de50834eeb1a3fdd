"""Generate the Python stubs and Envoy's descriptor set from ``protos/``.

Generated files go to ``gen/`` and are never edited by hand; run
``python -m server.codegen`` after changing a proto.
"""

from __future__ import annotations

import logging
import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

from gateway import openapi

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
GEN_DIR = ROOT / "gen"
PYTHON_OUT = GEN_DIR / "python"
DESCRIPTOR_SET = GEN_DIR / "onboarding.pb"
GOOGLEAPIS_OUT = GEN_DIR / "googleapis"


def _googleapis_root() -> Path:
    """The site-packages folder that holds ``google/api/*.proto``."""
    import google.api

    return Path(google.api.__path__[0]).parent.parent


def _well_known_root() -> Path:
    """The folder of ``google/protobuf/*.proto`` shipped with grpc_tools."""
    return Path(str(resources.files("grpc_tools") / "_proto"))


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.rglob("*.proto"))


def copy_googleapis() -> None:
    """Copy the google.api and google.rpc protos for buf, which cannot see pip."""
    for sub in ("google/api", "google/rpc"):
        target = GOOGLEAPIS_OUT / sub
        target.mkdir(parents=True, exist_ok=True)
        for src in (_googleapis_root() / sub).glob("*.proto"):
            shutil.copy2(src, target / src.name)


# Envoy prints rich error details (google.rpc.Status) as JSON only when their
# types are in its descriptor set, so the set carries them beside the API.
DESCRIPTOR_EXTRAS = ("google/rpc/status.proto", "google/rpc/error_details.proto")


def _protoc(*args: str) -> None:
    includes = [
        f"-I{PROTO_DIR}",
        f"-I{_googleapis_root()}",
        f"-I{_well_known_root()}",
    ]
    if protoc.main(["grpc_tools.protoc", *includes, *args]) != 0:
        raise SystemExit("protoc failed")


def generate() -> None:
    if PYTHON_OUT.exists():
        shutil.rmtree(PYTHON_OUT)
    PYTHON_OUT.mkdir(parents=True)
    files = [str(p.relative_to(PROTO_DIR)) for p in proto_files()]
    _protoc(
        f"--python_out={PYTHON_OUT}",
        f"--pyi_out={PYTHON_OUT}",
        f"--grpc_python_out={PYTHON_OUT}",
        *files,
    )
    _protoc(
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={DESCRIPTOR_SET}",
        *files,
        *DESCRIPTOR_EXTRAS,
    )
    copy_googleapis()
    openapi.write_document(DESCRIPTOR_SET, GEN_DIR / "openapi.json")
    logger.info("generated %d protos into %s", len(files), GEN_DIR)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    generate()
